// The addresses an Ingress's status.loadBalancer.ingress publishes, as ingress-nginx picks them: the list of
// --publish-status-address, or those of the --publish-service Service by its type. Pure functions.
import { isIP } from 'node:net';
import type { Service } from '../../cluster/model/service.ts';

/** One entry of status.loadBalancer.ingress: an IP or a host name (what external-dns and `kubectl get ing` read). */
export interface LoadBalancerAddress {
  ip?: string;
  hostname?: string;
}

/** Where the published addresses come from (--publish-service or --publish-status-address). */
export type PublishSource = { service: string } | { addresses: readonly LoadBalancerAddress[] };

/** The addresses now, or why there are none to publish (nothing is written then). */
export type Published = { addresses: LoadBalancerAddress[] } | { problem: string };

const dnsName = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;
const objectName = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** An IP becomes `ip`, anything else `hostname`, as ingress-nginx's nameOrIPToLoadBalancerIngress does. */
export function nameOrIP(value: string): LoadBalancerAddress {
  return isIP(value) !== 0 ? { ip: value } : { hostname: value };
}

/**
 * --publish-status-address: addresses separated by commas (spaces after a comma allowed, as ingress-nginx splits
 * them), each an IP address or a DNS name. Throws with what is allowed.
 */
export function parseStatusAddresses(raw: string): LoadBalancerAddress[] {
  const parts = raw.trim().split(/,\s*/);
  for (const p of parts) {
    if (isIP(p) === 0 && !dnsName.test(p)) throw new Error(`${JSON.stringify(p)} is neither an IP address nor a DNS name; give addresses separated by commas, such as 203.0.113.10,lb.example.com`);
  }
  return normalize(parts.map(nameOrIP));
}

/** --publish-service: NAMESPACE/NAME of a Service. Throws with what is allowed. */
export function parseServiceRef(raw: string): string {
  const [namespace, name, ...rest] = raw.split('/');
  if (rest.length > 0 || !namespace || !name || !objectName.test(namespace) || !objectName.test(name)) {
    throw new Error('must be NAMESPACE/NAME of a Service, such as netplane-system/netplane-ingress');
  }
  return raw;
}

/**
 * The addresses of the published Service, as ingress-nginx's statusAddressFromService reads them: ExternalName its
 * name; ClusterIP its cluster IP; NodePort its external IPs, else its cluster IP; LoadBalancer each load-balancer
 * ingress (its IP, else its host name) and then the external IPs not already there. A missing or headless Service
 * is a problem.
 */
export function serviceAddresses(key: string, svc: Service | undefined): Published {
  if (svc === undefined) return { problem: `--publish-service ${key}: no such Service` };
  const { spec } = svc;
  const clusterIP = spec.clusterIPs[0];
  const noClusterIP = { problem: `--publish-service ${key}: a ${spec.type} Service without a cluster IP (headless) has no address to publish` };
  switch (spec.type) {
    case 'ExternalName':
      return { addresses: [{ hostname: spec.externalName! }] };
    case 'ClusterIP':
      return clusterIP === undefined ? noClusterIP : { addresses: [{ ip: clusterIP }] };
    case 'NodePort':
      if (spec.externalIPs.length > 0) return { addresses: normalize(spec.externalIPs.map((ip) => ({ ip }))) };
      return clusterIP === undefined ? noClusterIP : { addresses: [{ ip: clusterIP }] };
    case 'LoadBalancer': {
      const out: LoadBalancerAddress[] = svc.status.loadBalancer.ingress.flatMap((i): LoadBalancerAddress[] => (i.ip ? [{ ip: i.ip }] : i.hostname ? [{ hostname: i.hostname }] : []));
      for (const ip of spec.externalIPs) if (!out.some((a) => a.ip === ip || a.hostname === ip)) out.push({ ip });
      return { addresses: normalize(out) };
    }
  }
}

/** The published addresses from their source and the Service of --publish-service (looked up by key). */
export function publishedAddresses(source: PublishSource, service: (key: string) => Service | undefined): Published {
  return 'service' in source ? serviceAddresses(source.service, service(source.service)) : { addresses: normalize(source.addresses) };
}

/**
 * A list as stored and compared: only `ip` and `hostname` (ingress-nginx compares nothing else; ports are dropped),
 * duplicates removed, sorted by host name then IP as ingress-nginx sorts before comparing.
 */
export function normalize(list: readonly { ip?: string | undefined; hostname?: string | undefined }[] | undefined): LoadBalancerAddress[] {
  const out: LoadBalancerAddress[] = [];
  const seen = new Set<string>();
  for (const a of list ?? []) {
    const entry: LoadBalancerAddress = {};
    if (a.ip) entry.ip = a.ip;
    if (a.hostname) entry.hostname = a.hostname;
    const id = `${entry.hostname ?? ''}|${entry.ip ?? ''}`;
    if (id === '|' || seen.has(id)) continue;
    seen.add(id);
    out.push(entry);
  }
  return out.sort((x, y) => compare(x.hostname ?? '', y.hostname ?? '') || compare(x.ip ?? '', y.ip ?? ''));
}

/** Whether two lists publish the same addresses (order, ports and duplicates aside). */
export function sameAddresses(a: readonly LoadBalancerAddress[] | undefined, b: readonly LoadBalancerAddress[] | undefined): boolean {
  const key = (list: readonly LoadBalancerAddress[] | undefined) => normalize(list).map((x) => `${x.hostname ?? ''}|${x.ip ?? ''}`).join(',');
  return key(a) === key(b);
}

/** A list as short text for logs: `203.0.113.10,lb.example.com`, or `(none)`. */
export function addressText(list: readonly LoadBalancerAddress[]): string {
  return list.length === 0 ? '(none)' : list.map((a) => [a.hostname, a.ip].filter(Boolean).join('/')).join(',');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The proxy planner: a pure function from the service map and the proxy's configuration to the ProxyPlan that
// every backend programs.
import { isIP } from 'node:net';
import type { EndpointInfo, ServicePortInfo } from '../../cluster/servicemap/index.ts';
import { categorize } from './endpoints.ts';
import type { Family, HealthCheckPlan, NoEndpoints, PortPlan, ProxyPlan, Target } from './types.ts';
import { nodePortAddressesOf } from './nodeports.ts';
import { contains } from '../nftables/model.ts';
import { localTrafficFor, type DetectLocal } from './local.ts';

/** What the planner needs to know about this proxy. */
export interface PlanConfig {
  nodeName: string;
  /** This node's zone (--zone, else the node's topology label); undefined when unknown. */
  zone?: string;
  /** --cluster-cidr, any family. */
  clusterCIDRs: readonly string[];
  masqueradeAll: boolean;
  /** --nodeport-addresses as CIDRs; empty means every local address. */
  nodePortAddresses: readonly string[];
  /** This node's primary address of each family (its Node's InternalIP, else ExternalIP), where known. */
  nodeIPs?: { 4?: string; 6?: string };
  /** --detect-local-mode, resolved (local.ts resolveDetectLocal); absent means ClusterCIDR, by `clusterCIDRs`. */
  detectLocal?: DetectLocal;
}

const familyOf = (ip: string): Family => (isIP(ip.split('/')[0]!) === 6 ? 6 : 4);
const ofFamily = (list: readonly string[], f: Family) => list.filter((a) => familyOf(a) === f);
const targets = (eps: readonly EndpointInfo[]): Target[] =>
  eps.map((e) => ({ ip: e.ip, port: e.port, local: e.local || e.nodeName === undefined }));

/**
 * Every serving endpoint, whatever the policies and topology: flows already DNATed to one are left alone (kube-proxy
 * CleanStaleEntries). The same array as `all` when that holds them all, which is the common case.
 */
function servingTargets(eps: readonly EndpointInfo[], all: Target[]): Target[] {
  const serving = eps.filter((e) => e.serving || e.ready);
  // `all` is a subset of the serving endpoints (ready ones, else serving-terminating ones).
  return serving.length === all.length ? all : targets(serving);
}

/**
 * The sources that may reach the load-balancer IPs: the family's loadBalancerSourceRanges, plus the load-balancer
 * IPs themselves when a range holds this node's address (kube-proxy's allowFromNode): a VIP bound on the node is
 * reached from the node with the VIP as source, which no range names.
 */
function allowedSources(ranges: readonly string[], lbIPs: readonly string[], family: Family, nodeIP: string | undefined): string[] {
  const mine = ofFamily(ranges, family);
  if (nodeIP === undefined || !mine.some((r) => contains(r, nodeIP))) return mine;
  return [...mine, ...ofFamily(lbIPs, family).map((ip) => `${ip}/${family === 4 ? 32 : 128}`)];
}

/** Whether the proxy programs this Service port at all. */
export function handled(p: ServicePortInfo): boolean {
  const s = p.service;
  // Another proxy owns labelled Services; headless and ExternalName Services have no virtual address.
  return s.proxyName === undefined && !s.headless && s.type !== 'ExternalName';
}

/** The families a Service port is programmed in: those of its addresses (IPv4 when it has only a nodePort). */
function families(p: ServicePortInfo): Family[] {
  const s = p.service;
  const addrs = [...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs];
  const set = new Set(addrs.map(familyOf));
  if (set.size === 0 && p.nodePort !== undefined) set.add(4);
  return [...set].sort();
}

/** Plans one Service port in one family. */
export function planPort(p: ServicePortInfo, family: Family, config: PlanConfig): PortPlan {
  const s = p.service;
  const eps = p.endpoints.filter((e) => e.family === family);
  const { cluster, local, hasAny } = categorize(s, eps, config.nodeName, config.zone);
  const internalLocal = s.internalTrafficPolicy === 'Local';
  const externalLocal = s.externalTrafficPolicy === 'Local';
  // One list per policy; a list used for two purposes is the same array, so that backends can tell.
  const all = targets(cluster);
  const mine = internalLocal || externalLocal ? targets(local) : all;
  const clusterEndpoints = internalLocal ? mine : all;
  const externalEndpoints = externalLocal ? mine : all;
  // With a Local policy and endpoints elsewhere only, new connections are dropped (not refused), as kube-proxy does.
  const verdict = (isLocal: boolean): NoEndpoints => (hasAny && isLocal ? 'drop' : 'reject');
  const plan: PortPlan = {
    key: `${p.key}/v${family}`,
    portKey: p.key,
    namespace: s.namespace,
    name: s.name,
    portName: p.portName,
    family,
    protocol: p.protocol,
    port: p.port,
    clusterIPs: ofFamily(s.clusterIPs, family),
    externalIPs: ofFamily(s.externalIPs, family),
    loadBalancerIPs: ofFamily(s.loadBalancerIPs, family),
    sourceRanges: allowedSources(s.loadBalancerSourceRanges, s.loadBalancerIPs, family, config.nodeIPs?.[family]),
    clusterEndpoints,
    clusterNoEndpoints: verdict(internalLocal),
    externalEndpoints,
    externalNoEndpoints: verdict(externalLocal),
    // kube-proxy's short-circuit ignores internalTrafficPolicy: pods and the node reach external destinations as
    // if through an outside load balancer, which would send them to any endpoint.
    shortcutEndpoints: all,
    servingEndpoints: servingTargets(eps, all),
    externalLocal,
    affinitySeconds: s.sessionAffinity === 'ClientIP' ? s.sessionAffinityTimeoutSeconds : 0,
    // kube-proxy's getLocalReadyEndpointIPs: a node whose pods are all terminating fails the health check, so
    // that load balancers drain it (KEP-1669), while connections that arrive still go to them.
    localEndpoints: eps.filter((e) => e.local && e.ready).length,
  };
  if (p.nodePort !== undefined) plan.nodePort = p.nodePort;
  if (s.type === 'LoadBalancer' && externalLocal && s.healthCheckNodePort !== undefined) plan.healthCheckNodePort = s.healthCheckNodePort;
  return plan;
}

/**
 * Remembers the plans of each service-map entry (the map hands back the same object while an entry is
 * unchanged), so that a sync at 10,000 Services plans, and lets backends compare, only what changed.
 */
export class PlanCache {
  #byPort = new WeakMap<ServicePortInfo, { config: string; plans: PortPlan[] }>();

  /** The plans of one Service port in each of its families. */
  plans(p: ServicePortInfo, config: PlanConfig, configKey: string): PortPlan[] {
    const hit = this.#byPort.get(p);
    if (hit && hit.config === configKey) return hit.plans;
    const plans = families(p).map((f) => planPort(p, f, config));
    this.#byPort.set(p, { config: configKey, plans });
    return plans;
  }
}

/**
 * Plans every Service port the proxy handles. Pure: the same inputs always give an equal plan (with a cache, the
 * same PortPlan objects for unchanged entries).
 */
export function planProxy(ports: Iterable<ServicePortInfo>, config: PlanConfig, cache?: PlanCache): ProxyPlan {
  const out: PortPlan[] = [];
  const configKey = JSON.stringify(config);
  for (const p of ports) {
    if (!handled(p)) continue;
    out.push(...(cache ? cache.plans(p, config, configKey) : families(p).map((f) => planPort(p, f, config))));
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const np = (f: Family): string[] | 'all' => nodePortAddressesOf(config.nodePortAddresses, f);
  return {
    ports: out,
    clusterCIDRs: { 4: ofFamily(config.clusterCIDRs, 4), 6: ofFamily(config.clusterCIDRs, 6) },
    localTraffic: localTrafficFor(config.detectLocal, config.clusterCIDRs),
    masqueradeAll: config.masqueradeAll,
    nodePortAddresses: { 4: np(4), 6: np(6) },
    healthChecks: healthChecks(out),
  };
}

/** One health check per Service with a health-check node port; ready local endpoints counted once per address. */
function healthChecks(ports: readonly PortPlan[]): HealthCheckPlan[] {
  const byPort = new Map<number, { namespace: string; name: string; ips: Set<string> }>();
  for (const p of ports) {
    if (p.healthCheckNodePort === undefined) continue;
    const hc = byPort.get(p.healthCheckNodePort) ?? { namespace: p.namespace, name: p.name, ips: new Set<string>() };
    // Under the Local policy externalEndpoints are this node's ready endpoints when it has any (localEndpoints > 0),
    // else its serving-terminating ones, which do not count.
    if (p.localEndpoints > 0) for (const e of p.externalEndpoints) hc.ips.add(e.ip);
    byPort.set(p.healthCheckNodePort, hc);
  }
  return [...byPort.entries()]
    .sort(([a], [b]) => a - b)
    .map(([port, hc]) => ({ port, namespace: hc.namespace, name: hc.name, localEndpoints: hc.ips.size }));
}

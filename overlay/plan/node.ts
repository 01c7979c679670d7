// What the overlay reads from one Node: its pod networks, its underlay (VTEP) address and its VTEP MAC, and the
// address arithmetic around them. Pure functions; bad annotations become a problem sentence, never an exception.
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { canonicalIP, cidrRange, contains, overlaps } from '../../proxy/nftables/model.ts';
import { networkCIDR } from './cidr.ts';

/** Annotation holding a node's VTEP MAC; the agent publishes it in kubernetes mode. */
export const vtepMacAnnotation = 'netplane.io/vtep-mac';
/** Annotation holding a node's underlay (public) IP; it wins over status.addresses. */
export const publicIPAnnotation = 'netplane.io/public-ip';
/** Annotation holding the MAC of a node's IPv6 VXLAN device (--ipv6-device auto); the agent publishes it in kubernetes mode. */
export const vtepV6MacAnnotation = 'netplane.io/vtep-v6-mac';
/** Annotation holding the IPv6 address a node's IPv6 VXLAN device is reached at; the agent publishes it with that device. */
export const publicIPv6Annotation = 'netplane.io/public-ipv6';

/**
 * Flannel's Node annotations (kube subnet manager). Read when netplane's own are absent, and published too with
 * --flannel-annotations, so that during a migration Flannel nodes and netplane nodes reach each other: both speak
 * VXLAN with the VTEP at the pod network's address, VNI 1 and port 8472 by default.
 */
export const flannelAnnotations = {
  backendType: 'flannel.alpha.coreos.com/backend-type',
  backendData: 'flannel.alpha.coreos.com/backend-data',
  backendV6Data: 'flannel.alpha.coreos.com/backend-v6-data',
  kubeSubnetManager: 'flannel.alpha.coreos.com/kube-subnet-manager',
  publicIP: 'flannel.alpha.coreos.com/public-ip',
  publicIPv6: 'flannel.alpha.coreos.com/public-ipv6',
  publicIPOverwrite: 'flannel.alpha.coreos.com/public-ip-overwrite',
  publicIPv6Overwrite: 'flannel.alpha.coreos.com/public-ipv6-overwrite',
} as const;

/** Flannel's overwrite annotation of each family: set by hand, the address a node (behind NAT) is reached at. */
export const overwriteAnnotations = { 4: flannelAnnotations.publicIPOverwrite, 6: flannelAnnotations.publicIPv6Overwrite } as const;

/** Lower-case colon-separated MAC text. */
const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The first IPv4 and the first IPv6 podCIDR of a node, canonical (host bits cleared, the length always written). */
export function podCIDRs(node: Node): { v4?: string; v6?: string } {
  const out: { v4?: string; v6?: string } = {};
  for (const c of node.spec.podCIDRs) {
    const ip = c.split('/')[0] ?? '';
    const network = networkCIDR(c);
    if (network === undefined) continue;
    if (isIPv4(ip)) out.v4 ??= network;
    else if (isIPv6(ip)) out.v6 ??= network;
  }
  return out;
}

/** The VTEP address of a pod network: its network address, as Flannel uses (10.244.1.0 for 10.244.1.0/24). */
export function vtepAddress(cidr: string): string {
  return networkOf(cidr);
}

/** The network address of a CIDR in canonical text. */
export function networkOf(cidr: string): string {
  return (networkCIDR(cidr) ?? cidr).split('/')[0]!;
}

/**
 * The annotations that may name a node's underlay address, in the order they count: `peer` for another node (an
 * overwrite, set by hand, wins over what agents publish); `own` for this node's VXLAN source address from
 * manifests (an overwrite names an address outside this host, never a source); `none` for this node in kubernetes
 * mode, where the annotations are its own output.
 */
const publicIPKeys = {
  peer: [flannelAnnotations.publicIPOverwrite, flannelAnnotations.publicIPv6Overwrite, publicIPAnnotation, flannelAnnotations.publicIP, flannelAnnotations.publicIPv6, publicIPv6Annotation],
  own: [publicIPAnnotation, flannelAnnotations.publicIP, flannelAnnotations.publicIPv6],
  none: [],
} as const;

/**
 * A node's underlay address: the first annotation of `keys` (see publicIPKeys) that holds an address, else the
 * first InternalIP, else the first ExternalIP (IPv4 preferred). With `family`, only an address of that family
 * counts: the underlay of a cluster is all IPv4 or all IPv6.
 */
export function underlayAddress(node: Node, keys: keyof typeof publicIPKeys = 'peer', family?: 4 | 6): { ip?: string; problem?: string } {
  const fits = (a: string) => (family === undefined ? isIPv4(a) || isIPv6(a) : family === 4 ? isIPv4(a) : isIPv6(a));
  let problem: string | undefined;
  for (const key of publicIPKeys[keys]) {
    const annotated = node.metadata.annotations[key]?.trim();
    if (annotated === undefined) continue;
    if (fits(annotated)) return { ip: canonicalIP(annotated), ...(problem ? { problem } : {}) };
    if (!isIPv4(annotated) && !isIPv6(annotated)) problem ??= `annotation ${key} ${JSON.stringify(annotated)} is not an IP address; using status.addresses`;
  }
  for (const type of ['InternalIP', 'ExternalIP']) {
    const addrs = node.status.addresses.filter((a) => a.type === type && fits(a.address)).map((a) => a.address);
    const ip = addrs.find((a) => isIPv4(a)) ?? addrs[0];
    if (ip !== undefined) return { ip: canonicalIP(ip), ...(problem ? { problem } : {}) };
  }
  if (family !== undefined) return { problem: problem ?? `has no IPv${family} underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv${family}` };
  return { problem: problem ?? 'has no InternalIP or ExternalIP address and no netplane.io/public-ip annotation' };
}

/** Address blocks that never reach another node as a VXLAN destination, with what they are. */
const unroutable: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved or broadcast'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0/96', 'IPv4-mapped'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
];

/**
 * Why an address cannot be another node's underlay address (where its VXLAN packets are sent), or undefined:
 * unspecified, loopback, link-local, multicast (the FDB entry would flood that node's traffic to the whole link),
 * reserved, broadcast or IPv4-mapped.
 */
export function unusableUnderlay(ip: string): string | undefined {
  const a = cidrRange(ip);
  const hit = (unroutableRanges ??= unroutable.map(([cidr, why]) => ({ cidr, why, ...cidrRange(cidr) }))).find((r) => r.family === a.family && r.lo <= a.lo && a.lo <= r.hi);
  return hit && `is ${hit.why} (${hit.cidr})`;
}
/** `unroutable` as ranges, parsed once. */
let unroutableRanges: Array<{ cidr: string; why: string; family: 4 | 6; lo: bigint; hi: bigint }> | undefined;

/**
 * A node's VTEP MAC: the `netplane.io/vtep-mac` annotation when it holds a unicast MAC, else the `VtepMAC` of
 * Flannel's backend data for the underlay's family, else one derived from the underlay IP. A malformed annotation
 * is ignored (the node's own agent ignores it the same way) with a problem. `vni` is Flannel's VNI when the MAC
 * came from its backend data and names one.
 */
export function vtepMac(node: Node, underlayIP: string): { mac: string; vni?: number; problem?: string } {
  const annotated = node.metadata.annotations[vtepMacAnnotation];
  const derived = derivedMac(underlayIP);
  if (annotated !== undefined) {
    const mac = unicastMac(annotated);
    if (mac !== undefined) return { mac };
    return { mac: derived, problem: `annotation ${vtepMacAnnotation} ${JSON.stringify(annotated)} is not a unicast MAC such as 0a:58:0a:f4:01:00; using one derived from ${underlayIP}` };
  }
  const key = isIPv6(underlayIP) ? flannelAnnotations.backendV6Data : flannelAnnotations.backendData;
  const data = flannelBackendData(node, key);
  if (data === undefined) return { mac: derived };
  if ('bad' in data) return { mac: derived, problem: `${data.bad}; using a MAC derived from ${underlayIP}` };
  return data;
}

/**
 * Flannel's backend data annotation `key` (`{"VNI":N,"VtepMAC":"..."}`) of a node: its MAC and VNI, undefined when
 * absent, or `bad` with a sentence when it is not that.
 */
export function flannelBackendData(node: Node, key: string): { mac: string; vni?: number } | { bad: string } | undefined {
  const data = node.metadata.annotations[key];
  if (data === undefined) return undefined;
  const bad = { bad: `annotation ${key} ${JSON.stringify(data.slice(0, 100))} is not Flannel's {"VNI":N,"VtepMAC":"..."}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return bad;
  }
  const { VtepMAC, VNI } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { VtepMAC?: unknown; VNI?: unknown };
  const mac = typeof VtepMAC === 'string' ? unicastMac(VtepMAC) : undefined;
  if (mac === undefined || (VNI !== undefined && !(Number.isInteger(VNI) && (VNI as number) >= 0 && (VNI as number) < 2 ** 24))) return bad;
  return { mac, ...(VNI !== undefined ? { vni: VNI as number } : {}) };
}

/** A unicast MAC in lower-case colon form, or undefined. */
export function unicastMac(text: string): string | undefined {
  const mac = text.trim().toLowerCase().replaceAll('-', ':');
  return macPattern.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00' ? mac : undefined;
}

/**
 * The MAC every node derives for an underlay IP that has no annotated MAC: six bytes of a SHA-256 of the address,
 * made locally administered (bit 0x02 set) and unicast (bit 0x01 clear), so it is the same on every node and
 * across restarts.
 */
export function derivedMac(underlayIP: string): string {
  const h = createHash('sha256').update(`netplane.io/vtep ${canonicalIP(underlayIP)}`).digest();
  h[0] = (h[0]! & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** True when a MAC is valid lower-case text. */
export function isMac(mac: string): boolean {
  return macPattern.test(mac);
}

// CIDR ranges and overlap checks are shared with the proxy (proxy/nftables/model.ts).
export { cidrRange, contains, overlaps };

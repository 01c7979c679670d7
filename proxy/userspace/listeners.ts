// What the userspace proxy listens on, as a pure function of the plan: one listener per Service port, on the bind
// address at the nodePort (external endpoints) or else at the Service port (cluster endpoints); none for a UDP port
// without endpoints, so that the kernel refuses its datagrams.
import { isIPv4, isIPv6 } from 'node:net';
import type { Family, PortPlan, ProxyPlan, Target } from '../plan/types.ts';
import { targetKey } from './picker.ts';

const loopback = ['127.0.0.0/8', '::1/128'];
const sameTargets = (a: readonly Target[], b: readonly Target[]) => a.length === b.length && a.every((t, i) => t.ip === b[i]!.ip && t.port === b[i]!.port);

/** One listener the userspace proxy should have open. Plain data: it is also sent to worker threads. */
export interface ListenerSpec {
  /** The PortPlan's key, e.g. `default/web:http/TCP/v4`. */
  key: string;
  /** `namespace/name` of the Service, for logs. */
  service: string;
  protocol: 'TCP' | 'UDP';
  port: number;
  /** The port is the Service's nodePort (so `endpoints` are its external endpoints). */
  nodePort: boolean;
  endpoints: Target[];
  affinitySeconds: number;
  /**
   * Under externalTrafficPolicy Local at a nodePort, when they differ from `endpoints`: clients from `sources`
   * (CIDRs: loopback, this node's addresses, the pod network) use `endpoints` of the short-cut instead, as if
   * through an outside load balancer (kube-proxy's short-circuit; the plan's shortcutEndpoints).
   */
  shortcut?: { endpoints: Target[]; sources: string[] };
  /**
   * UDP: every serving endpoint of the port (terminating ones and those policy or topology leave out included): a
   * flow to one of them is kept when it stops being chosen, as the kernel modes keep such conntrack entries.
   */
  serving?: Target[];
}

/** A PortPlan that gets no listener, and why. */
export interface SkippedPort {
  key: string;
  service: string;
  protocol: string;
  port: number;
  reason: 'sctp-unsupported' | 'port-taken';
  /** For `port-taken`: the key of the listener that has the port. */
  takenBy?: string;
}

/** An endpoint left out because it is the listener itself: forwarding to it would loop back into the proxy. */
export interface SelfEndpoint {
  key: string;
  service: string;
  protocol: string;
  port: number;
  /** `ip:port` of the endpoint. */
  endpoint: string;
}

/** The listeners a plan asks for, sorted by key, and the ports that cannot have one. */
export interface ListenerSet {
  specs: ListenerSpec[];
  skipped: SkippedPort[];
  /** Endpoints that are the proxy's own listener (only when the bind address is given), sorted by key. */
  loops: SelfEndpoint[];
}

/** An IP address in one spelling (IPv6 compressed, lower case), so that two spellings of an address compare equal. */
function canonicalIP(ip: string): string {
  if (!isIPv6(ip)) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

/**
 * Whether a listener on `host`:`port` would receive a connection or datagram sent to `t`: the same address, or, on a
 * wildcard bind address, any of this node's addresses of the families it takes (`::` takes IPv4 too) and loopback.
 */
export function isSelf(t: Target, port: number, host: string, localAddresses: readonly string[]): boolean {
  if (t.port !== port) return false;
  const ip = canonicalIP(t.ip);
  const wildcard = host === '0.0.0.0' ? 4 : canonicalIP(host) === '::' ? 6 : undefined;
  if (wildcard === undefined) return ip === canonicalIP(host);
  if (wildcard === 4 && !isIPv4(ip)) return false;
  if (ip === '::1' || (isIPv4(ip) && ip.startsWith('127.'))) return true;
  return localAddresses.some((a) => canonicalIP(a) === ip);
}

/**
 * Listeners for `plan` on a bind address of family `family`. A dual-stack Service port has a plan per family but one
 * bind address can take its port once: the plan of the bind address's family is used, else the other one (a
 * userspace proxy can forward across families). SCTP ports and ports another Service port already took (two Services
 * on one port cannot share one address) are skipped. A port goes to the key in `held` (a listener already open
 * keeps its port), else to the first by key. A UDP port without endpoints keeps its claim but gets no listener.
 * `localAddresses` are this node's own (the short-cut's sources, with loopback and the plan's pod network). With
 * `bindAddress`, endpoints that are the listener itself (isSelf) are left out and listed in `loops`: in the kernel
 * modes such a DNAT happens once, but a userspace proxy dialling its own port would accept, dial itself again and
 * so on until it runs out of descriptors or ports (TCP), or pass one datagram round for ever (UDP).
 */
export function listenerSpecs(plan: ProxyPlan, family: Family, held: ReadonlySet<string> = new Set(), localAddresses: readonly string[] = [], bindAddress?: string): ListenerSet {
  const sources = [...loopback, ...localAddresses, ...plan.clusterCIDRs[4], ...plan.clusterCIDRs[6]];
  const chosen = new Map<string, PortPlan>();
  for (const p of plan.ports) {
    const have = chosen.get(p.portKey);
    if (!have || (have.family !== family && p.family === family)) chosen.set(p.portKey, p);
  }
  const specs: ListenerSpec[] = [];
  const skipped: SkippedPort[] = [];
  const loops: SelfEndpoint[] = [];
  const owner = new Map<string, string>();
  const byKey = (a: PortPlan, b: PortPlan) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const ordered = [...chosen.values()].sort((a, b) => Number(held.has(b.key)) - Number(held.has(a.key)) || byKey(a, b));
  for (const p of ordered) {
    const service = `${p.namespace}/${p.name}`;
    const nodePort = p.nodePort !== undefined && p.nodePort > 0;
    const port = nodePort ? p.nodePort! : p.port;
    if (p.protocol === 'SCTP') {
      skipped.push({ key: p.key, service, protocol: p.protocol, port, reason: 'sctp-unsupported' });
      continue;
    }
    const slot = `${p.protocol}/${port}`;
    const takenBy = owner.get(slot);
    if (takenBy !== undefined) {
      skipped.push({ key: p.key, service, protocol: p.protocol, port, reason: 'port-taken', takenBy });
      continue;
    }
    owner.set(slot, p.key);
    const self = (t: Target) => bindAddress !== undefined && isSelf(t, port, bindAddress, localAddresses);
    const notSelf = (t: Target) => !self(t);
    const selfKeys = new Set([...(nodePort ? p.externalEndpoints : p.clusterEndpoints), ...(nodePort && p.externalLocal ? p.shortcutEndpoints : [])].filter(self).map(targetKey));
    for (const endpoint of selfKeys) loops.push({ key: p.key, service, protocol: p.protocol, port, endpoint });
    const endpoints = (nodePort ? p.externalEndpoints : p.clusterEndpoints).filter(notSelf);
    const shortcutAll = p.shortcutEndpoints.filter(notSelf);
    const shortcut = nodePort && p.externalLocal && !sameTargets(shortcutAll, endpoints) ? shortcutAll : undefined;
    // A bound UDP socket swallows datagrams it cannot forward, and the client waits for a time-out; unbound, the
    // kernel answers ICMP port unreachable at once, as the kernel modes' reject does. (TCP listens and resets.)
    if (p.protocol === 'UDP' && endpoints.length === 0 && !shortcut?.length) continue;
    specs.push({
      key: p.key,
      service,
      protocol: p.protocol,
      port,
      nodePort,
      endpoints: endpoints.map((t) => ({ ip: t.ip, port: t.port })),
      affinitySeconds: p.affinitySeconds,
      ...(shortcut ? { shortcut: { endpoints: shortcut.map((t) => ({ ip: t.ip, port: t.port })), sources } } : {}),
      ...(p.protocol === 'UDP' ? { serving: p.servingEndpoints.filter(notSelf).map((t) => ({ ip: t.ip, port: t.port })) } : {}),
    });
  }
  specs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  loops.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { specs, skipped, loops };
}

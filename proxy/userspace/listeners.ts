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

/** An endpoint left out because forwarding to it comes back to the same listener (itself, or through others). */
export interface LoopingEndpoint {
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
  /** Endpoints that lead back to their own listener (only when the bind address is given), sorted by key. */
  loops: LoopingEndpoint[];
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

/** A Service port that gets a listener slot (a protocol and port of its own), with where it forwards. */
interface Claim {
  p: PortPlan;
  service: string;
  protocol: 'TCP' | 'UDP';
  nodePort: boolean;
  port: number;
  /** Every endpoint a client of this listener may be sent to (short-cut ones included). */
  targets: Target[];
}

/**
 * The endpoints (`key` → set of targetKey) that lead back to their own listener through the proxy's listeners on
 * `host`: an endpoint at the listener itself, or at another listener that forwards, maybe through more, to it.
 */
function loopingEndpoints(claims: readonly Claim[], host: string, localAddresses: readonly string[]): Map<string, Set<string>> {
  const bySlot = new Map(claims.map((c) => [`${c.protocol}/${c.port}`, c]));
  // Edges from a listener to the listeners its endpoints are (usually none).
  const edges = new Map<Claim, Array<{ to: Claim; target: string }>>();
  for (const c of claims) {
    for (const t of c.targets) {
      const to = bySlot.get(`${c.protocol}/${t.port}`);
      if (!to || !isSelf(t, to.port, host, localAddresses)) continue;
      const list = edges.get(c) ?? [];
      list.push({ to, target: targetKey(t) });
      edges.set(c, list);
    }
  }
  const reaches = (from: Claim, goal: Claim): boolean => {
    const seen = new Set<Claim>();
    const stack = [from];
    while (stack.length > 0) {
      const c = stack.pop()!;
      if (c === goal) return true;
      if (seen.has(c)) continue;
      seen.add(c);
      for (const e of edges.get(c) ?? []) stack.push(e.to);
    }
    return false;
  };
  const looping = new Map<string, Set<string>>();
  for (const [c, list] of edges) {
    for (const e of list) {
      if (!reaches(e.to, c)) continue;
      const set = looping.get(c.p.key) ?? new Set<string>();
      set.add(e.target);
      looping.set(c.p.key, set);
    }
  }
  return looping;
}

/**
 * Listeners for `plan` on a bind address of family `family`. A dual-stack Service port has a plan per family but one
 * bind address can take its port once: the plan of the bind address's family is used, else the other one (a
 * userspace proxy can forward across families). SCTP ports and ports another Service port already took (two Services
 * on one port cannot share one address) are skipped. A port goes to the key in `held` (a listener already open
 * keeps its port), else to the first by key. A UDP port without endpoints keeps its claim but gets no listener.
 * `localAddresses` are this node's own (the short-cut's sources, with loopback and the plan's pod network). With
 * `bindAddress`, endpoints that lead back to their own listener (the listener itself, or another that forwards to
 * it) are left out and listed in `loops`: in the kernel modes such a DNAT happens once, but a userspace proxy
 * dialling its own port would accept, dial again and so on until it runs out of descriptors or ports (TCP), or pass
 * one datagram round for ever (UDP).
 */
export function listenerSpecs(plan: ProxyPlan, family: Family, held: ReadonlySet<string> = new Set(), localAddresses: readonly string[] = [], bindAddress?: string): ListenerSet {
  const sources = [...loopback, ...localAddresses, ...plan.clusterCIDRs[4], ...plan.clusterCIDRs[6]];
  const chosen = new Map<string, PortPlan>();
  for (const p of plan.ports) {
    const have = chosen.get(p.portKey);
    if (!have || (have.family !== family && p.family === family)) chosen.set(p.portKey, p);
  }
  const skipped: SkippedPort[] = [];
  const claims: Claim[] = [];
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
    const targets = [...(nodePort ? p.externalEndpoints : p.clusterEndpoints), ...(nodePort && p.externalLocal ? p.shortcutEndpoints : [])];
    claims.push({ p, service, protocol: p.protocol, nodePort, port, targets });
  }
  const looping = bindAddress === undefined ? new Map<string, Set<string>>() : loopingEndpoints(claims, bindAddress, localAddresses);
  const specs: ListenerSpec[] = [];
  const loops: LoopingEndpoint[] = [];
  for (const { p, service, protocol, nodePort, port } of claims) {
    const cut = looping.get(p.key);
    for (const endpoint of cut ?? []) loops.push({ key: p.key, service, protocol, port, endpoint });
    const keep = (t: Target) => !cut?.has(targetKey(t));
    const endpoints = (nodePort ? p.externalEndpoints : p.clusterEndpoints).filter(keep);
    const shortcutAll = p.shortcutEndpoints.filter(keep);
    const shortcut = nodePort && p.externalLocal && !sameTargets(shortcutAll, endpoints) ? shortcutAll : undefined;
    // A bound UDP socket swallows datagrams it cannot forward, and the client waits for a time-out; unbound, the
    // kernel answers ICMP port unreachable at once, as the kernel modes' reject does. (TCP listens and resets.)
    if (protocol === 'UDP' && endpoints.length === 0 && !shortcut?.length) continue;
    specs.push({
      key: p.key,
      service,
      protocol,
      port,
      nodePort,
      endpoints: endpoints.map((t) => ({ ip: t.ip, port: t.port })),
      affinitySeconds: p.affinitySeconds,
      ...(shortcut ? { shortcut: { endpoints: shortcut.map((t) => ({ ip: t.ip, port: t.port })), sources } } : {}),
      ...(protocol === 'UDP' ? { serving: p.servingEndpoints.filter(keep).map((t) => ({ ip: t.ip, port: t.port })) } : {}),
    });
  }
  specs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  loops.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) || (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  return { specs, skipped, loops };
}

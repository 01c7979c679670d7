// Stale UDP/SCTP conntrack entries: a datagram flow keeps its NAT binding while packets keep coming, so a client
// sending to a removed endpoint, to an endpoint whose port changed, or to a Service that had no endpoint when the
// flow began (never DNATed) would black-hole. After each sync the UDP and SCTP entries are listed and those to a
// Service address or NodePort that do not point at one of its serving endpoints (address and port) are deleted,
// as kube-proxy's CleanStaleEntries does; this needs no memory of earlier syncs, so it also holds after a restart.
// Entries DNATed for a Service port that left the plan are deleted too (from the previous plan).
import type { Logger } from '../runtime/logger.ts';
import type { CommandRunner } from '../runtime/exec.ts';
import { canonicalIP } from './nftables/model.ts';
import type { Family, PortPlan, ProxyPlan, Target } from './plan/types.ts';

/** The protocols whose flows are cleaned (TCP needs none: a reset ends a connection to a missing endpoint). */
export type DatagramProtocol = 'udp' | 'sctp';

/** One conntrack entry, as far as clean-up needs it. */
export interface ConntrackEntry {
  /** Original destination: the Service address (or node address for a NodePort) and port. */
  origDst: string;
  origPortDst: number;
  /** Reply source: the endpoint after DNAT, or origDst when the flow was not DNATed. */
  replySrc: string;
  replyPortSrc: number;
}

/** One `conntrack -D` filter: the flows to one destination that answer from one (stale) source. */
export interface FlowFilter extends ConntrackEntry {
  family: Family;
  protocol: DatagramProtocol;
}

/** What a plan says about one family and protocol: the endpoints each frontend may point at. */
export interface FrontendIndex {
  /** `address|port` of a cluster, external or load-balancer IP → serving `ip|port`s (empty: none). */
  addresses: Map<string, Set<string>>;
  /** NodePort → serving `ip|port`s. */
  nodePorts: Map<number, Set<string>>;
}

// Addresses in one spelling (conntrack prints IPv6 in RFC 5952 form, as canonicalIP writes it), so that the
// plan's and the kernel's compare.
const ipPort = (ip: string, port: number) => `${canonicalIP(ip)}|${port}`;
const protocolOf = (p: PortPlan): DatagramProtocol | undefined => (p.protocol === 'UDP' ? 'udp' : p.protocol === 'SCTP' ? 'sctp' : undefined);

/** The frontends of a plan's ports of `family` and `protocol`, with their serving endpoints. Pure. */
export function frontendIndex(plan: ProxyPlan, family: Family, protocol: DatagramProtocol): FrontendIndex {
  const index: FrontendIndex = { addresses: new Map(), nodePorts: new Map() };
  for (const p of plan.ports) {
    if (p.family !== family || protocolOf(p) !== protocol) continue;
    const serving = new Set<string>();
    for (const list of [p.servingEndpoints, p.clusterEndpoints, p.externalEndpoints, p.shortcutEndpoints]) {
      for (const t of list as readonly Target[]) serving.add(ipPort(t.ip, t.port));
    }
    for (const ip of [...p.clusterIPs, ...p.externalIPs, ...p.loadBalancerIPs]) index.addresses.set(ipPort(ip, p.port), serving);
    if (p.nodePort !== undefined) index.nodePorts.set(p.nodePort, serving);
  }
  return index;
}

/** The (family, protocol) pairs a sync from `prev` to `next` needs to list: those with a datagram frontend. Pure. */
export function tablesToList(prev: ProxyPlan | undefined, next: ProxyPlan): Array<[Family, DatagramProtocol]> {
  const out = new Map<string, [Family, DatagramProtocol]>();
  for (const p of [...(prev?.ports ?? []), ...next.ports]) {
    const protocol = protocolOf(p);
    if (protocol) out.set(`${p.family}${protocol}`, [p.family, protocol]);
  }
  return [...out.values()].sort();
}

/**
 * The filters deleting the stale entries among `entries` (all of `family` and `protocol`). Pure. An entry is stale
 * when its destination is a frontend of `next` that has serving endpoints and it does not point at one of them
 * (a frontend without any keeps its entries: there is nothing better to send them to), or when its destination
 * was a frontend only in `prev` and it was DNATed. A Service address wins over a NodePort of the same number.
 */
export function staleFlows(prev: ProxyPlan | undefined, next: ProxyPlan, family: Family, protocol: DatagramProtocol, entries: readonly ConntrackEntry[]): FlowFilter[] {
  const now = frontendIndex(next, family, protocol);
  const before = prev ? frontendIndex(prev, family, protocol) : undefined;
  const out = new Map<string, FlowFilter>();
  for (const e of entries) {
    const dst = ipPort(e.origDst, e.origPortDst);
    const src = ipPort(e.replySrc, e.replyPortSrc);
    const serving = now.addresses.get(dst) ?? now.nodePorts.get(e.origPortDst);
    const stale =
      serving !== undefined
        ? serving.size > 0 && !serving.has(src)
        : (before?.addresses.has(dst) || before?.nodePorts.has(e.origPortDst)) === true && src !== dst;
    if (!stale) continue;
    const f: FlowFilter = { family, protocol, origDst: canonicalIP(e.origDst), origPortDst: e.origPortDst, replySrc: canonicalIP(e.replySrc), replyPortSrc: e.replyPortSrc };
    out.set(`${dst} ${src}`, f);
  }
  return [...out.values()];
}

/**
 * Parses `conntrack -L` output: per line the original tuple's `src= dst= sport= dport=`, then the reply tuple's.
 * Lines without two full tuples (another protocol, a summary) are skipped; never throws.
 */
export function parseConntrackList(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const fields: Record<string, string[]> = { src: [], dst: [], sport: [], dport: [] };
    for (const m of line.matchAll(/(?:^|\s)(src|dst|sport|dport)=(\S+)/g)) fields[m[1]!]!.push(m[2]!);
    const { src, dst, sport, dport } = fields as Record<'src' | 'dst' | 'sport' | 'dport', string[]>;
    if (dst.length < 2 || src.length < 2 || sport.length < 2 || dport.length < 2) continue;
    out.push({ origDst: dst[0]!, origPortDst: Number(dport[0]), replySrc: src[1]!, replyPortSrc: Number(sport[1]) });
  }
  return out;
}

/** The conntrack command line listing one family's entries of one protocol. */
export const listArgs = (family: Family, protocol: DatagramProtocol): string[] => ['-L', '-f', family === 6 ? 'ipv6' : 'ipv4', '-p', protocol];

/** The conntrack command line deleting the flows one filter names. */
export function conntrackArgs(f: FlowFilter): string[] {
  return [
    '-D', '-f', f.family === 6 ? 'ipv6' : 'ipv4', '-p', f.protocol,
    '--orig-dst', f.origDst, '--orig-port-dst', String(f.origPortDst),
    '--reply-src', f.replySrc, '--reply-port-src', String(f.replyPortSrc),
  ];
}

const noneMatched = (e: unknown) => /0 flow entries/.test((e as { stderr?: string }).stderr ?? '');

/**
 * Lists the UDP/SCTP entries the plans concern and deletes the stale ones; returns the number of deletions run.
 * Failures are logged, never thrown (the next sync tries again).
 */
export async function cleanStaleFlows(runner: CommandRunner, prev: ProxyPlan | undefined, next: ProxyPlan, log: Logger): Promise<number> {
  let ran = 0;
  for (const [family, protocol] of tablesToList(prev, next)) {
    let entries: ConntrackEntry[];
    try {
      entries = parseConntrackList((await runner.run('conntrack', listArgs(family, protocol))).stdout);
    } catch (e) {
      // An empty table is not an error; anything else (no conntrack, no privilege) skips this table for now.
      if (!noneMatched(e)) log.warn({ err: (e as Error).message, family, protocol }, 'could not list conntrack entries');
      continue;
    }
    ran += await deleteFlows(runner, staleFlows(prev, next, family, protocol, entries), log);
  }
  return ran;
}

/** Runs the deletions; a filter that matches nothing (the flow ended meanwhile) is not an error. Logs, never throws. */
export async function deleteFlows(runner: CommandRunner, filters: readonly FlowFilter[], log: Logger): Promise<number> {
  let ran = 0;
  for (const f of filters) {
    try {
      await runner.run('conntrack', conntrackArgs(f));
      ran++;
    } catch (e) {
      // conntrack exits 1 when no flow matched ("0 flow entries have been deleted").
      if (noneMatched(e)) ran++;
      else log.warn({ err: (e as Error).message, filter: f }, 'could not delete stale conntrack entries');
    }
  }
  return ran;
}

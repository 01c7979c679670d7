// Stale UDP/SCTP conntrack entries: a datagram flow keeps its NAT binding while packets keep coming, so a client
// sending to a removed endpoint (or to a Service that had no endpoint) would black-hole. After each sync the
// flows that point at removed endpoints are deleted, as kube-proxy does.
import type { Logger } from '../runtime/logger.ts';
import type { CommandRunner } from '../runtime/exec.ts';
import type { PortPlan, ProxyPlan } from './plan/types.ts';

/** One `conntrack -D` filter: flows of a protocol to an original destination port, maybe address, maybe DNATed to an IP. */
export interface FlowFilter {
  family: 4 | 6;
  protocol: 'udp' | 'sctp';
  /** Original destination address; absent for NodePort flows (any local address). */
  origDst?: string;
  origPortDst: number;
  /** Only flows DNATed to this endpoint; absent for every flow to the destination. */
  dstNat?: string;
}

const frontends = (p: PortPlan): Array<{ dst?: string; port: number }> => [
  ...[...p.clusterIPs, ...p.externalIPs, ...p.loadBalancerIPs].map((dst) => ({ dst, port: p.port })),
  ...(p.nodePort !== undefined ? [{ port: p.nodePort }] : []),
];
const endpointIPs = (p: PortPlan | undefined) => new Set([...(p?.clusterEndpoints ?? []), ...(p?.externalEndpoints ?? [])].map((t) => t.ip));

/**
 * The flows to delete after going from `prev` to `next` (pure): for each UDP/SCTP port, flows DNATed to an endpoint
 * no longer used, and all flows to a port that had no endpoint and now has one (they were never DNATed).
 */
export function staleFlows(prev: ProxyPlan | undefined, next: ProxyPlan): FlowFilter[] {
  if (!prev) return [];
  const before = new Map(prev.ports.map((p) => [p.key, p]));
  const out: FlowFilter[] = [];
  for (const p of next.ports) {
    if (p.protocol === 'TCP') continue;
    const protocol = p.protocol === 'UDP' ? 'udp' : 'sctp';
    const old = before.get(p.key);
    before.delete(p.key);
    const now = endpointIPs(p);
    const was = endpointIPs(old);
    for (const f of frontends(p)) {
      const base = { family: p.family, protocol, origPortDst: f.port, ...(f.dst ? { origDst: f.dst } : {}) } as const;
      if (old && was.size === 0 && now.size > 0) out.push({ ...base });
      for (const ip of was) if (!now.has(ip)) out.push({ ...base, dstNat: ip });
    }
  }
  // Ports that went away entirely: their flows to any of their old endpoints.
  for (const old of before.values()) {
    if (old.protocol === 'TCP') continue;
    for (const f of frontends(old)) {
      for (const ip of endpointIPs(old)) {
        out.push({ family: old.family, protocol: old.protocol === 'UDP' ? 'udp' : 'sctp', origPortDst: f.port, ...(f.dst ? { origDst: f.dst } : {}), dstNat: ip });
      }
    }
  }
  return out;
}

/** The conntrack command line for one filter. */
export function conntrackArgs(f: FlowFilter): string[] {
  return [
    '-D',
    '-f', f.family === 6 ? 'ipv6' : 'ipv4',
    '-p', f.protocol,
    ...(f.origDst ? ['--orig-dst', f.origDst] : []),
    '--orig-port-dst', String(f.origPortDst),
    ...(f.dstNat ? ['--dst-nat', f.dstNat] : []),
  ];
}

/** Runs the deletions; a filter that matches nothing is not an error. Failures are logged, never thrown. */
export async function deleteFlows(runner: CommandRunner, filters: readonly FlowFilter[], log: Logger): Promise<number> {
  let ran = 0;
  for (const f of filters) {
    try {
      await runner.run('conntrack', conntrackArgs(f));
      ran++;
    } catch (e) {
      // conntrack exits 1 when no flow matched ("0 flow entries have been deleted").
      const stderr = (e as { stderr?: string }).stderr ?? '';
      if (/0 flow entries/.test(stderr)) ran++;
      else log.warn({ err: (e as Error).message, filter: f }, 'could not delete stale conntrack entries');
    }
  }
  return ran;
}

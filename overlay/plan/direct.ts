// --direct-routing, Flannel's VXLAN DirectRouting: which remote pod networks are routed to their node directly
// (as host-gw does) instead of over VXLAN. Flannel asks the kernel for the route to the remote's address and goes
// direct when it has no gateway; netplane decides from what it already reads, the networks of the addresses on the
// underlay interface, so that the planner stays pure. Per pod family, as Flannel does: a remote's IPv4 pods go
// direct when its IPv4 address is on this node's underlay network, its IPv6 pods when its IPv6 address is. Pure.
import { isIPv6 } from 'node:net';
import { cidrRange } from './node.ts';
import type { HostView } from './types.ts';

/** One network this node's underlay interface is attached to. */
interface Network {
  family: 4 | 6;
  lo: bigint;
  hi: bigint;
}

/** What decides whether a remote is on this node's underlay network. */
export interface DirectScope {
  /** The networks of the underlay interface's addresses (IPv6 link-local ones left out: they reach no pod network). */
  networks: Network[];
  /** Every address of this host: a remote claiming one of them is never a gateway. */
  own: Set<string>;
}

/**
 * The scope for direct routes through the interface `underlayIndex`. None while the interface is down: the kernel
 * has taken its networks' routes away (and would refuse a route via a gateway on them), as Flannel's route lookup
 * would find; the nodes go over VXLAN until it is up again.
 */
export function directScope(host: HostView, underlayIndex: number): DirectScope {
  const networks: Network[] = [];
  const up = host.links.find((l) => l.index === underlayIndex)?.up === true;
  for (const a of up ? host.addresses : []) {
    if (a.index !== underlayIndex) continue;
    const ip = a.cidr.split('/')[0]!;
    if (isIPv6(ip) && /^fe[89ab]/i.test(ip)) continue;
    networks.push(cidrRange(a.cidr));
  }
  return { networks, own: new Set(host.addresses.map((a) => a.cidr.split('/')[0]!)) };
}

/** `ip` when it lies in one of the scope's networks and is not this host's own address (the direct route's gateway), else undefined. */
export function directGateway(ip: string | undefined, scope: DirectScope): string | undefined {
  if (ip === undefined || scope.own.has(ip)) return undefined;
  const a = cidrRange(ip);
  return scope.networks.some((n) => n.family === a.family && n.lo <= a.lo && a.lo <= n.hi) ? ip : undefined;
}

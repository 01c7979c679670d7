// The overlay planner: Nodes + this host's interfaces → the VXLAN device this node should have and, for every
// other usable node, the VTEP it is reached through. Pure: no I/O, the same input gives the same plan.
import { isIPv4 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { cidrRange, podCIDRs, underlayAddress, vtepAddress, vtepMac } from './node.ts';
import type { DeviceSpec, HostView, OverlayOptions, OverlayPlan, Problem, Remote } from './types.ts';

/** VXLAN over IPv4 adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14); over IPv6, 70. */
export const vxlanOverhead = { 4: 50, 6: 70 } as const;

/**
 * Plans the overlay. Nodes that cannot be used (no IPv4 podCIDR, no underlay address, a podCIDR, address or MAC
 * that another node already has) are left out with a problem; the first by name keeps a contested value.
 */
export function planOverlay(nodes: readonly Node[], options: OverlayOptions, host: HostView): OverlayPlan {
  const sorted = [...nodes].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const problems: Problem[] = [];
  const self = sorted.find((n) => n.metadata.name === options.nodeName);
  const device = self ? planDevice(self, options, host, problems) : undefined;
  if (!self) problems.push({ node: options.nodeName, reason: 'is not in the cluster view; the overlay waits for it' });

  const taken: Taken = { ranges: [], ips: new Map(), macs: new Map() };
  if (device && self) {
    const own = podCIDRs(self);
    for (const c of [own.v4!, ...(own.v6 ? [own.v6] : [])]) taken.ranges.push(cidrRange(c));
    taken.ips.set(device.local, self.metadata.name);
    taken.macs.set(device.mac, self.metadata.name);
  }
  const remotes: Remote[] = [];
  for (const node of sorted) {
    if (node === self) continue;
    const r = planRemote(node, taken, problems);
    if (r) remotes.push(r);
  }
  const all = sorted.flatMap((n) => remoteFacts(n).ranges.map((r) => r.c));
  return { ...(device ? { device } : {}), remotes, problems, podCIDRs: outermost(all), nodes: sorted.length };
}

function planDevice(self: Node, o: OverlayOptions, host: HostView, problems: Problem[]): DeviceSpec | undefined {
  const name = self.metadata.name;
  const fail = (reason: string) => {
    problems.push({ node: name, reason });
    return undefined;
  };
  const cidrs = podCIDRs(self);
  if (!cidrs.v4) return fail('has no IPv4 podCIDR yet (spec.podCIDR or spec.podCIDRs); the overlay waits for one');

  let local: string | undefined;
  let underlayIndex: number | undefined;
  if (o.iface !== undefined) {
    const link = host.links.find((l) => l.name === o.iface);
    if (!link) return fail(`--iface ${o.iface}: there is no such interface here`);
    const addr = host.addresses.find((a) => a.index === link.index && isIPv4(a.cidr.split('/')[0]!));
    if (!addr) return fail(`--iface ${o.iface}: the interface has no IPv4 address`);
    local = addr.cidr.split('/')[0]!;
    underlayIndex = link.index;
  } else {
    const found = underlayAddress(self, !o.publishes);
    if (found.problem) problems.push({ node: name, reason: found.problem });
    if (!found.ip) return undefined;
    local = found.ip;
    underlayIndex = host.addresses.find((a) => a.cidr.split('/')[0] === local)?.index;
    if (underlayIndex === undefined) return fail(`its underlay address ${local} is on no interface of this host; give --iface or fix the address`);
  }
  const link = host.links.find((l) => l.index === underlayIndex);
  if (!link) return fail(`the interface holding ${local} disappeared`);
  if (link.name === 'lo' || local.startsWith('127.') || local === '::1') {
    return fail(`its underlay address ${local} is on the loopback interface; VXLAN needs an interface that reaches the other nodes (give --iface or a real InternalIP)`);
  }
  if (!isIPv4(local)) return fail(`its underlay address ${local} is IPv6; the overlay runs over an IPv4 underlay`);
  const mac = vtepMac(self, local);
  if (mac.problem) problems.push({ node: name, reason: mac.problem });
  const max = link.mtu - vxlanOverhead[4];
  if (o.mtu !== undefined && o.mtu > max) return fail(`--mtu ${o.mtu} does not fit: the underlay ${link.name} has MTU ${link.mtu}, so at most ${max} is left for VXLAN`);
  const mtu = o.mtu ?? max;
  return {
    name: o.device,
    vni: o.vni,
    port: o.port,
    local,
    underlayIndex: link.index,
    underlay: link.name,
    mtu,
    mac: mac.mac,
    addresses: [`${vtepAddress(cidrs.v4)}/32`, ...(cidrs.v6 ? [`${vtepAddress(cidrs.v6)}/128`] : [])],
  };
}

interface Taken {
  ranges: Array<ReturnType<typeof cidrRange>>;
  ips: Map<string, string>;
  macs: Map<string, string>;
}

/** What a remote node contributes, computed once per Node object (objects in the store are replaced, never changed). */
interface RemoteFacts {
  cidrs: { v4?: string; v6?: string };
  vtep4?: string;
  vtep6?: string;
  ranges: Array<ReturnType<typeof cidrRange> & { c: string }>;
  ip?: string;
  mac?: string;
  /** Non-fatal problems (a malformed annotation that was ignored). */
  notes: string[];
}

const factsCache = new WeakMap<Node, RemoteFacts>();

function remoteFacts(node: Node): RemoteFacts {
  let f = factsCache.get(node);
  if (f) return f;
  const cidrs = podCIDRs(node);
  const found = underlayAddress(node);
  const mac = found.ip !== undefined ? vtepMac(node, found.ip) : undefined;
  f = {
    cidrs,
    ...(cidrs.v4 ? { vtep4: vtepAddress(cidrs.v4) } : {}),
    ...(cidrs.v6 ? { vtep6: vtepAddress(cidrs.v6) } : {}),
    ranges: [cidrs.v4, cidrs.v6].filter((c): c is string => c !== undefined).map((c) => ({ c, ...cidrRange(c) })),
    ...(found.ip !== undefined ? { ip: found.ip } : {}),
    ...(mac ? { mac: mac.mac } : {}),
    notes: [found.problem, mac?.problem].filter((p): p is string => p !== undefined),
  };
  factsCache.set(node, f);
  return f;
}

function planRemote(node: Node, taken: Taken, problems: Problem[]): Remote | undefined {
  const name = node.metadata.name;
  const fail = (reason: string) => {
    problems.push({ node: name, reason });
    return undefined;
  };
  const f = remoteFacts(node);
  const v4 = f.cidrs.v4;
  if (!v4) return fail('has no IPv4 podCIDR yet; its pods are not reachable over the overlay until it has one');
  for (const reason of f.notes) problems.push({ node: name, reason });
  const ip = f.ip;
  if (ip === undefined || f.mac === undefined) return undefined;
  if (!isIPv4(ip)) return fail(`its underlay address ${ip} is IPv6; the overlay runs over an IPv4 underlay`);
  if (taken.ips.has(ip)) return fail(`its underlay address ${ip} is also node ${taken.ips.get(ip)}'s; left out`);
  const clash = f.ranges.find((m) => taken.ranges.some((t) => t.family === m.family && t.lo <= m.hi && m.lo <= t.hi));
  if (clash) return fail(`its podCIDR ${clash.c} overlaps another node's; left out`);
  if (taken.macs.has(f.mac)) return fail(`its VTEP MAC ${f.mac} is also node ${taken.macs.get(f.mac)}'s; left out`);
  taken.ranges.push(...f.ranges);
  taken.ips.set(ip, name);
  taken.macs.set(f.mac, name);
  const v6 = f.cidrs.v6;
  return {
    node: name,
    underlayIP: ip,
    vtepMAC: f.mac,
    vtep4: f.vtep4!,
    podCIDR4: v4,
    ...(v6 ? { vtep6: f.vtep6!, podCIDR6: v6 } : {}),
  };
}

/** CIDRs without duplicates or prefixes inside another one, sorted by family and address: O(n log n). */
function outermost(cidrs: readonly string[]): string[] {
  const ranges = [...new Set(cidrs)].map((c) => ({ c, ...cidrRange(c) }));
  ranges.sort((a, b) => a.family - b.family || (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : a.hi > b.hi ? -1 : a.hi < b.hi ? 1 : 0));
  const out: typeof ranges = [];
  for (const r of ranges) {
    const last = out.at(-1);
    if (last && last.family === r.family && r.hi <= last.hi) continue;
    out.push(r);
  }
  return out.map((r) => r.c);
}

// The overlay planner: Nodes + this host's interfaces → the VXLAN device this node should have and, for every
// other usable node, the VTEP it is reached through. Pure: no I/O, the same input gives the same plan.
import { isIPv4, isIPv6 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { planAnnouncement } from './announce.ts';
import { planDevice6, remoteVxlan6, type Taken6 } from './device6.ts';
import { directGateway, directScope, type DirectScope } from './direct.ts';
import { cidrRange, podCIDRs, underlayAddress, unusableUnderlay, vtepAddress, vtepMac } from './node.ts';
import { pickUnderlay, sourceProblem } from './underlay.ts';
import type { DeviceSpec, HostView, OverlayOptions, OverlayPlan, Problem, Remote } from './types.ts';

/** VXLAN over IPv4 adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14); over IPv6, 70. */
export const vxlanOverhead = { 4: 50, 6: 70 } as const;

/**
 * Plans the overlay. Nodes that cannot be used (no podCIDR, no usable underlay address of this node's underlay
 * family, a podCIDR, address or MAC that another node already has, a podCIDR that overlaps this host's own addresses or lies
 * outside --cluster-cidr) are left out with a problem. A contested value goes to the oldest Node, then the first by
 * name (claimOrder), the same on every node: a Node made later never takes over one in use. A
 * node of the previous plan whose object becomes unusable (no podCIDR, no address, a malformed address or MAC
 * annotation) keeps its last good entries, with a problem. The underlay is IPv4 or IPv6, as this node's own address is; pods may be IPv4, IPv6 or both.
 * With `directRouting`, each pod family of a remote whose address of that family is on a network of the underlay
 * interface is routed to that address directly (Remote.direct4, direct6) instead of over VXLAN.
 */
export function planOverlay(nodes: readonly Node[], options: OverlayOptions, host: HostView, history: PlanHistory = {}): OverlayPlan {
  const sorted = [...nodes].sort((a, b) => byName(a.metadata.name, b.metadata.name));
  const problems: Problem[] = [];
  const self = sorted.find((n) => n.metadata.name === options.nodeName);
  const device = self ? planDevice(self, options, host, problems, history.device) : undefined;
  const device6 = self && device ? planDevice6(self, device, options, host, problems) : undefined;
  if (!self) problems.push({ node: options.nodeName, reason: 'is not in the cluster view; the overlay waits for it' });

  const taken: Taken = { ranges: [], ips: new Map(), macs: new Map() };
  if (device && self) {
    const own = podCIDRs(self);
    for (const c of [own.v4, own.v6]) if (c) taken.ranges.push({ c, node: self.metadata.name, ...cidrRange(c) });
    taken.ips.set(device.local, self.metadata.name);
    taken.macs.set(device.mac, self.metadata.name);
  }
  const taken6: Taken6 | undefined = device6 && self ? { ips: new Map([[device6.local, self.metadata.name]]), macs: new Map([[device6.mac, self.metadata.name]]) } : undefined;
  // The underlay family: that of this node's device, else (no device yet) of its address.
  const ownIP = device?.local ?? (self ? underlayAddress(self, options.publishes ? 'none' : 'own').ip : undefined);
  const family = ownIP !== undefined && isIPv6(ownIP) ? 6 : 4;
  const fence = fenceOf(options, host);
  const scope = options.directRouting && device ? directScope(host, device.underlayIndex) : undefined;
  const remotes: Remote[] = [];
  const previous = new Map((history.remotes ?? []).map((r) => [r.node, r]));
  for (const node of claimOrder(sorted, self)) {
    const prev = previous.get(node.metadata.name);
    const kept = prev && brokenObject(node, family, prev);
    const r = kept ? keepRemote(node, family, prev, kept, taken, fence, problems) : planRemote(node, family, options.vni, taken, fence, problems, scope);
    if (kept && r?.vxlan6 && taken6) {
      if (taken6.ips.has(r.vxlan6.underlayIP) || taken6.macs.has(r.vxlan6.vtepMAC)) delete r.vxlan6;
      else {
        taken6.ips.set(r.vxlan6.underlayIP, r.node);
        taken6.macs.set(r.vxlan6.vtepMAC, r.node);
      }
    } else if (!kept && r && taken6 && r.podCIDR6 && !r.direct6) {
      const vxlan6 = remoteVxlan6(node, options.publishes === true, options.vni, taken6, problems);
      if (vxlan6) r.vxlan6 = vxlan6;
    }
    if (r) {
      remotes.push(r);
    }
  }
  remotes.sort((a, b) => byName(a.node, b.node));
  // Only nodes in use define the pod networks: a node left out (0.0.0.0/0, the underlay's network) changes nothing.
  const all = [...(self ? cidrFacts(self).ranges.map((r) => r.c) : []), ...remotes.flatMap((r) => [r.podCIDR4, r.podCIDR6].filter((c): c is string => c !== undefined))];
  const announced = device && self ? planAnnouncement(self, device, host, device6, options.publicIP) : undefined;
  const own = device && self ? podCIDRs(self) : {};
  const ownPodCIDRs = [own.v4, own.v6].filter((c): c is string => c !== undefined);
  return { ...(device ? { device } : {}), ...(device6 ? { device6 } : {}), ...(announced ? { self: announced } : {}), remotes, problems, podCIDRs: outermost(all), ownPodCIDRs, nodes: sorted.length };
}

function planDevice(self: Node, o: OverlayOptions, host: HostView, problems: Problem[], prev: DeviceSpec | undefined): DeviceSpec | undefined {
  const name = self.metadata.name;
  const fail = (reason: string) => {
    problems.push({ node: name, reason });
    return undefined;
  };
  const cidrs = podCIDRs(self);
  if (!cidrs.v4 && !cidrs.v6) return fail('has no podCIDR yet (spec.podCIDR or spec.podCIDRs); the overlay waits for one');

  let local: string | undefined;
  let underlayIndex: number | undefined;
  if ((o.ifaces?.length ?? 0) > 0 || (o.ifaceRegex?.length ?? 0) > 0 || o.ifaceCanReach !== undefined) {
    const found = pickUnderlay(host, o.ifaces ?? [], o.ifaceRegex ?? [], o.ifaceCanReach);
    if ('problem' in found) return fail(found.problem);
    local = found.addr;
    underlayIndex = found.index;
  } else {
    const found = underlayAddress(self, o.publishes ? 'none' : 'own');
    if (found.problem) problems.push({ node: name, reason: found.problem });
    if (!found.ip) return undefined;
    local = found.ip;
    // --public-ip of this family held here chooses the underlay, as Flannel looks the interface up by it.
    const flagged = o.publicIP?.[isIPv6(local) ? 6 : 4];
    const own = flagged !== undefined ? host.addresses.find((a) => a.cidr.split('/')[0] === flagged && sourceProblem(a) === undefined) : undefined;
    if (own && flagged !== undefined) local = flagged;
    const held = own ?? host.addresses.find((a) => a.cidr.split('/')[0] === local);
    if (held === undefined) return fail(`its underlay address ${local} is on no interface of this host; give --iface or fix the address`);
    const problem = sourceProblem(held);
    if (problem) return fail(`its underlay address ${local} ${problem}; the overlay waits for it to be usable`);
    underlayIndex = held.index;
  }
  const link = host.links.find((l) => l.index === underlayIndex);
  if (!link) return fail(`the interface holding ${local} disappeared`);
  if (link.name === 'lo' || local.startsWith('127.') || local === '::1') {
    return fail(`its underlay address ${local} is on the loopback interface; VXLAN needs an interface that reaches the other nodes (give --iface or a real InternalIP)`);
  }
  // Without a published MAC (from manifests) every other node derives this one's from the address it reads for it
  // (an overwrite first, else the Node's address), which need not be the VXLAN source (--public-ip, --iface, NAT):
  // the device takes the MAC derived from that address, or the frames sent to it carry one it drops.
  const mac = vtepMac(self, o.publishes ? local : (underlayAddress(self, 'peer', isIPv6(local) ? 6 : 4).ip ?? local));
  if (mac.problem && prev?.local === local) {
    // A MAC annotation turned malformed: the device keeps the MAC the other nodes have (they keep it too).
    problems.push({ node: name, reason: `${mac.problem.replace(/; using (a MAC|one) derived from .*$/, '')}; the device keeps its MAC ${prev.mac}` });
    mac.mac = prev.mac;
  } else if (mac.problem) problems.push({ node: name, reason: mac.problem });
  const max = link.mtu - vxlanOverhead[isIPv6(local) ? 6 : 4];
  // Too large an --mtu (the underlay's lowered since, say) is cut to what fits, never left standing: a pod packet
  // then gets "fragmentation needed" from this node instead of being lost on the underlay, and programming goes on.
  if (o.mtu !== undefined && o.mtu > max) problems.push({ node: name, reason: `--mtu ${o.mtu} does not fit: the underlay ${link.name} has MTU ${link.mtu}, so at most ${max} is left for VXLAN; using ${max}` });
  const mtu = Math.min(o.mtu ?? max, max);
  return {
    name: o.device,
    vni: o.vni,
    port: o.port,
    local,
    underlayIndex: link.index,
    underlay: link.name,
    mtu,
    mac: mac.mac,
    addresses: [...(cidrs.v4 ? [`${vtepAddress(cidrs.v4)}/32`] : []), ...(cidrs.v6 ? [`${vtepAddress(cidrs.v6)}/128`] : [])],
  };
}

/** What the planner knows besides the Nodes and the host, so that bad input changes nothing that works. */
export interface PlanHistory {
  /** The remotes of the previous plan: they keep their last good entries when their object becomes unusable. */
  remotes?: readonly Remote[];
  /** This node's device in the previous plan: it keeps its MAC when a MAC annotation turns malformed. */
  device?: DeviceSpec;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The remotes in the order they claim podCIDRs, addresses and MACs: the oldest Node first (metadata.creationTimestamp;
 * a Node without one counts as oldest, as Go's zero time), then by name. Only what every node reads of the Nodes
 * decides, never what one agent programmed before, so that every node gives a contested value to the same Node: a
 * Node made later (a newcomer, a stale object of a reinstalled host) never takes one from a Node in use.
 */
function claimOrder(sorted: readonly Node[], self: Node | undefined): Node[] {
  const created = (n: Node) => (n.metadata.creationTimestamp === undefined ? 0 : Date.parse(n.metadata.creationTimestamp));
  return sorted.filter((n) => n !== self).sort((a, b) => created(a) - created(b) || byName(a.metadata.name, b.metadata.name));
}

/**
 * Why a node of the previous plan can no longer be read (so that it keeps its last good entries), or undefined: no
 * podCIDR, no underlay address of the underlay's family, or an address or MAC annotation that is malformed (as
 * Flannel drops such a Node update and keeps the node's lease).
 */
function brokenObject(node: Node, family: 4 | 6, prev: Remote): string | undefined {
  const c = cidrFacts(node).cidrs;
  if (!c.v4 && !c.v6) return 'it has no podCIDR';
  const u = underlayFacts(node, family);
  if (u.ip === undefined) return `it has no IPv${family} underlay address`;
  if (u.badIP) return 'its address annotation is malformed';
  if (u.badMac && u.ip === prev.underlayIP) return 'its MAC annotation is malformed';
  return undefined;
}

/** A node of the previous plan whose object became unusable: its previous remote, if nothing has taken its values since. */
function keepRemote(node: Node, family: 4 | 6, prev: Remote, why: string, taken: Taken, fence: Fence, problems: Problem[]): Remote | undefined {
  const name = node.metadata.name;
  for (const reason of underlayFacts(node, family).notes) problems.push({ node: name, reason });
  const cidrs = { ...(prev.podCIDR4 ? { v4: prev.podCIDR4 } : {}), ...(prev.podCIDR6 ? { v6: prev.podCIDR6 } : {}) };
  const c: CidrFacts = { cidrs, ranges: [cidrs.v4, cidrs.v6].filter((x): x is string => x !== undefined).map((x) => ({ c: x, ...cidrRange(x) })) };
  const refused = claim(name, c, prev.underlayIP, prev.vtepMAC, taken, fence);
  if (refused) {
    problems.push({ node: name, reason: `${why}, and its last good entries cannot stay: ${refused}` });
    return undefined;
  }
  problems.push({ node: name, reason: `${why}; its last good entries stay (underlay ${prev.underlayIP}, VTEP MAC ${prev.vtepMAC}${[cidrs.v4, cidrs.v6].filter(Boolean).map((x) => `, podCIDR ${x}`).join('')}) until it is fixed or deleted` });
  return { ...prev };
}

/** Takes a remote's podCIDRs, address and MAC, or says why it cannot have them (another node has one; the fence). */
function claim(name: string, c: CidrFacts, ip: string, mac: string, taken: Taken, fence: Fence): string | undefined {
  if (taken.ips.has(ip)) return `its underlay address ${ip} is also node ${taken.ips.get(ip)}'s; left out`;
  for (const m of c.ranges) {
    const t = taken.ranges.find((x) => x.family === m.family && x.lo <= m.hi && m.lo <= x.hi);
    if (t) return `its podCIDR ${m.c} overlaps node ${t.node}'s ${t.c}; left out`;
  }
  const outside = fenced(c, fence);
  if (outside) return outside;
  if (taken.macs.has(mac)) return `its VTEP MAC ${mac} is also node ${taken.macs.get(mac)}'s; left out`;
  taken.ranges.push(...c.ranges.map((m) => ({ ...m, node: name })));
  taken.ips.set(ip, name);
  taken.macs.set(mac, name);
  return undefined;
}

interface Taken {
  ranges: Array<ReturnType<typeof cidrRange> & { c: string; node: string }>;
  ips: Map<string, string>;
  macs: Map<string, string>;
}

/** A node's pod networks and VTEP addresses, computed once per Node object (store objects are replaced, never changed). */
interface CidrFacts {
  cidrs: { v4?: string; v6?: string };
  vtep4?: string;
  vtep6?: string;
  ranges: Array<ReturnType<typeof cidrRange> & { c: string }>;
}

/** A remote node's underlay address of one family and its VTEP MAC, with non-fatal problems (an ignored annotation). */
interface UnderlayFacts {
  ip?: string;
  mac?: string;
  /** The VNI Flannel's backend data names, when the MAC came from it. */
  vni?: number;
  /** An address annotation is malformed (ip is from status.addresses). */
  badIP?: boolean;
  /** A MAC annotation is malformed (mac is derived from ip). */
  badMac?: boolean;
  notes: string[];
}

const cidrCache = new WeakMap<Node, CidrFacts>();
const underlayCache = { 4: new WeakMap<Node, UnderlayFacts>(), 6: new WeakMap<Node, UnderlayFacts>() };

function cidrFacts(node: Node): CidrFacts {
  let f = cidrCache.get(node);
  if (f) return f;
  const cidrs = podCIDRs(node);
  f = {
    cidrs,
    ...(cidrs.v4 ? { vtep4: vtepAddress(cidrs.v4) } : {}),
    ...(cidrs.v6 ? { vtep6: vtepAddress(cidrs.v6) } : {}),
    ranges: [cidrs.v4, cidrs.v6].filter((c): c is string => c !== undefined).map((c) => ({ c, ...cidrRange(c) })),
  };
  cidrCache.set(node, f);
  return f;
}

function underlayFacts(node: Node, family: 4 | 6): UnderlayFacts {
  let f = underlayCache[family].get(node);
  if (f) return f;
  const found = underlayAddress(node, 'peer', family);
  const mac = found.ip !== undefined ? vtepMac(node, found.ip) : undefined;
  f = {
    ...(found.ip !== undefined ? { ip: found.ip } : {}),
    ...(mac ? { mac: mac.mac } : {}),
    ...(mac?.vni !== undefined ? { vni: mac.vni } : {}),
    ...(found.ip !== undefined && found.problem !== undefined ? { badIP: true } : {}),
    ...(mac?.problem !== undefined ? { badMac: true } : {}),
    notes: [found.problem, mac?.problem].filter((p): p is string => p !== undefined),
  };
  underlayCache[family].set(node, f);
  return f;
}

/** Where remote podCIDRs may not go (this host's own networks) and, with --cluster-cidr, where they must. */
interface Fence {
  host: Array<ReturnType<typeof cidrRange> & { text: string; device: string }>;
  cluster: Array<ReturnType<typeof cidrRange> & { c: string }>;
}

function fenceOf(o: OverlayOptions, host: HostView): Fence {
  const names = new Map(host.links.map((l) => [l.index, l.name]));
  // The overlay device's own addresses are this node's VTEPs (its podCIDR's, checked as a node's) or stale ones
  // it will delete: they fence nothing.
  const own = host.addresses
    .filter((a) => names.get(a.index) !== o.device && names.get(a.index) !== o.ipv6Device?.name)
    .map((a) => ({ text: a.cidr, device: names.get(a.index) ?? `if${a.index}`, ...cidrRange(a.cidr) }));
  return { host: own, cluster: (o.clusterCIDRs ?? []).map((c) => ({ c, ...cidrRange(c) })) };
}

/** Why a remote's pod networks cannot be routed to it, or undefined: they cover this host's networks or leave the cluster's. */
function fenced(c: CidrFacts, fence: Fence): string | undefined {
  for (const m of c.ranges) {
    // A route to it would take over (or shadow part of) a network this host is attached to: its underlay, a bridge.
    const h = fence.host.find((t) => t.family === m.family && t.lo <= m.hi && m.lo <= t.hi);
    if (h) return `its podCIDR ${m.c} overlaps this host's address ${h.text} on ${h.device}; left out`;
    const mine = fence.cluster.filter((t) => t.family === m.family);
    // Only a family --cluster-cidr names is fenced, as Flannel ignores subnets outside its Network.
    if (mine.length > 0 && !mine.some((t) => t.lo <= m.lo && m.hi <= t.hi)) {
      return `its podCIDR ${m.c} is outside --cluster-cidr ${mine.map((t) => t.c).join(',')}; left out`;
    }
  }
  return undefined;
}

function planRemote(node: Node, family: 4 | 6, vni: number, taken: Taken, fence: Fence, problems: Problem[], scope: DirectScope | undefined): Remote | undefined {
  const name = node.metadata.name;
  const fail = (reason: string) => {
    problems.push({ node: name, reason });
    return undefined;
  };
  const c = cidrFacts(node);
  const { v4, v6 } = c.cidrs;
  if (!v4 && !v6) return fail('has no podCIDR yet; its pods are not reachable over the overlay until it has one');
  const u = underlayFacts(node, family);
  for (const reason of u.notes) problems.push({ node: name, reason });
  const ip = u.ip;
  if (ip === undefined || u.mac === undefined) return undefined;
  if (u.vni !== undefined && u.vni !== vni) return fail(`its Flannel backend data names VNI ${u.vni}, not this overlay's ${vni} (--vni): its VXLAN packets would not be taken; left out`);
  const unusable = unusableUnderlay(ip);
  if (unusable) return fail(`its underlay address ${ip} ${unusable}: VXLAN packets sent there would not reach it; left out`);
  const refused = claim(name, c, ip, u.mac, taken, fence);
  if (refused) return fail(refused);
  return {
    node: name,
    underlayIP: ip,
    vtepMAC: u.mac,
    ...(v4 ? { vtep4: c.vtep4!, podCIDR4: v4 } : {}),
    ...(v6 ? { vtep6: c.vtep6!, podCIDR6: v6 } : {}),
    ...(scope ? directGateways(node, family, ip, c.cidrs, scope) : {}),
  };
}

/**
 * A remote's direct-route gateways, per pod family: its address of that family (the underlay address for the
 * underlay's family, else its other InternalIP, ExternalIP or public-ip annotation of that family) when it lies on
 * this node's underlay network.
 */
function directGateways(node: Node, family: 4 | 6, ip: string, cidrs: CidrFacts['cidrs'], scope: DirectScope): { direct4?: string; direct6?: string } {
  const address = (f: 4 | 6): string | undefined => {
    if (f === family) return ip;
    const other = underlayFacts(node, f).ip;
    return other !== undefined && unusableUnderlay(other) === undefined ? other : undefined;
  };
  const direct4 = cidrs.v4 ? directGateway(address(4), scope) : undefined;
  const direct6 = cidrs.v6 ? directGateway(address(6), scope) : undefined;
  return { ...(direct4 ? { direct4 } : {}), ...(direct6 ? { direct6 } : {}) };
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

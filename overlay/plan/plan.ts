// The overlay planner: Nodes + this host's interfaces → the VXLAN device this node should have and, for every
// other usable node, the VTEP it is reached through. Pure: no I/O, the same input gives the same plan.
import { isIPv4 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { normalizeCIDRs } from '../../proxy/nftables/model.ts';
import { overlaps, podCIDRs, underlayAddress, vtepAddress, vtepMac } from './node.ts';
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

  const taken = { cidrs: [] as string[], ips: new Map<string, string>(), macs: new Map<string, string>() };
  if (device && self) {
    const own = podCIDRs(self);
    taken.cidrs.push(own.v4!, ...(own.v6 ? [own.v6] : []));
    taken.ips.set(device.local, self.metadata.name);
    taken.macs.set(device.mac, self.metadata.name);
  }
  const remotes: Remote[] = [];
  for (const node of sorted) {
    if (node === self) continue;
    const r = planRemote(node, taken, problems);
    if (r) remotes.push(r);
  }
  const all = sorted.flatMap((n) => Object.values(podCIDRs(n)).filter((c): c is string => c !== undefined));
  return { ...(device ? { device } : {}), remotes, problems, podCIDRs: normalizeCIDRs(all), nodes: sorted.length };
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
  const mtu = o.mtu ?? link.mtu - vxlanOverhead[4];
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
  cidrs: string[];
  ips: Map<string, string>;
  macs: Map<string, string>;
}

function planRemote(node: Node, taken: Taken, problems: Problem[]): Remote | undefined {
  const name = node.metadata.name;
  const fail = (reason: string) => {
    problems.push({ node: name, reason });
    return undefined;
  };
  const cidrs = podCIDRs(node);
  if (!cidrs.v4) return fail('has no IPv4 podCIDR yet; its pods are not reachable over the overlay until it has one');
  const found = underlayAddress(node);
  if (found.problem) problems.push({ node: name, reason: found.problem });
  if (!found.ip) return undefined;
  const ip = found.ip;
  if (!isIPv4(ip)) return fail(`its underlay address ${ip} is IPv6; the overlay runs over an IPv4 underlay`);
  if (taken.ips.has(ip)) return fail(`its underlay address ${ip} is also node ${taken.ips.get(ip)}'s; left out`);
  const mine = [cidrs.v4, ...(cidrs.v6 ? [cidrs.v6] : [])];
  const clash = mine.find((c) => taken.cidrs.some((t) => overlaps(t, c)));
  if (clash) return fail(`its podCIDR ${clash} overlaps another node's; left out`);
  const mac = vtepMac(node, ip);
  if (mac.problem) problems.push({ node: name, reason: mac.problem });
  if (taken.macs.has(mac.mac)) return fail(`its VTEP MAC ${mac.mac} is also node ${taken.macs.get(mac.mac)}'s; left out`);
  taken.cidrs.push(...mine);
  taken.ips.set(ip, name);
  taken.macs.set(mac.mac, name);
  return {
    node: name,
    underlayIP: ip,
    vtepMAC: mac.mac,
    vtep4: vtepAddress(cidrs.v4),
    podCIDR4: cidrs.v4,
    ...(cidrs.v6 ? { vtep6: vtepAddress(cidrs.v6), podCIDR6: cidrs.v6 } : {}),
  };
}

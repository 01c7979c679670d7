// --direct-routing in the planner and the differ, as tables: which remotes (per pod family) are routed directly
// from this host's underlay networks, and the operations that switch a remote between VXLAN and a direct route.
import { describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import type { LinkState } from '../../overlay/kernel/types.ts';
import { diffOverlay, opText, programmedNodes, recordOp, viewCounts } from '../../overlay/plan/diff.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import { emptyView, type DeviceView, type HostView, type OverlayOptions, type OverlayPlan } from '../../overlay/plan/types.ts';
import { clusterNode, host1, node, options1 } from './fixtures.ts';

const direct: OverlayOptions = { ...options1, directRouting: true };
const mac = (i: number) => derivedMac(`192.168.60.${i}`);

/** eth0 (index 2) with 192.168.60.1/24, fd00:60::1/64 and a link-local address; eth1 (index 3) with 10.0.0.1/24. */
const hostDual: HostView = {
  links: [...host1.links, { index: 3, name: 'eth1', kind: 'veth', mac: '02:00:00:00:00:03', mtu: 1500, up: true }],
  addresses: [...host1.addresses, { index: 2, cidr: 'fe80::1/64' }, { index: 2, cidr: 'fd00:60::1/64' }, { index: 3, cidr: '10.0.0.1/24' }],
};
const withAddresses = (h: HostView, ...more: Array<{ index: number; cidr: string }>): HostView => ({ links: h.links, addresses: [...h.addresses, ...more] });
/** host1 with its underlay address as a /32: no network of its own. */
const host32: HostView = { links: host1.links, addresses: [{ index: 1, cidr: '127.0.0.1/8' }, { index: 2, cidr: '192.168.60.1/32' }] };
/** An IPv6-only underlay: eth0 fd00:60::1/64. */
const host6: HostView = { links: host1.links, addresses: [{ index: 1, cidr: '::1/128' }, { index: 2, cidr: 'fe80::1/64' }, { index: 2, cidr: 'fd00:60::1/64' }] };

const dual = (i: number, extra: Parameters<typeof node>[1] = {}) => node(`node${i}`, { podCIDRs: [`10.244.${i}.0/24`, `fd00:244:${i}::/64`], ip: `192.168.60.${i}`, ...extra });

/** Each remote as `name v4 <direct gateway|vxlan> [v6 <direct gateway|vxlan>]`, then the problems. */
function routing(plan: OverlayPlan): string[] {
  return [
    ...plan.remotes.map((r) => [r.node, ...(r.podCIDR4 ? [`v4 ${r.direct4 ?? 'vxlan'}`] : []), ...(r.podCIDR6 ? [`v6 ${r.direct6 ?? 'vxlan'}`] : [])].join(' ')),
    ...plan.problems.map((p) => `problem ${p.node}: ${p.reason}`),
  ];
}

describe('planOverlay --direct-routing: which remotes are on this node\'s underlay network', () => {
  const rows: Array<[string, Node[], OverlayOptions, HostView, string[]]> = [
    ['off (the default): every remote over VXLAN, also on the same network', [clusterNode(1), clusterNode(2)], options1, host1, ['node2 v4 vxlan']],
    ['on: a remote on the underlay network is routed to its address', [clusterNode(1), clusterNode(2)], direct, host1, ['node2 v4 192.168.60.2']],
    ['on: a remote on another network (behind a router) stays on VXLAN', [clusterNode(1), clusterNode(2), clusterNode(3, { ip: '192.168.61.3' })], direct, host1, ['node2 v4 192.168.60.2', 'node3 v4 vxlan']],
    ['a second network of the underlay interface counts', [clusterNode(1), clusterNode(3, { ip: '192.168.61.3' })], direct, withAddresses(host1, { index: 2, cidr: '192.168.61.1/24' }), ['node3 v4 192.168.61.3']],
    ['a network of another interface does not', [clusterNode(1), clusterNode(5, { ip: '10.0.0.5' })], direct, hostDual, ['node5 v4 vxlan']],
    ['an underlay address without a network (/32) has no neighbours to route to', [clusterNode(1), clusterNode(2)], direct, host32, ['node2 v4 vxlan']],
    ["the address that counts is the one VXLAN would use (an annotated public IP, as Flannel's PublicIP)", [clusterNode(1), clusterNode(2, { annotations: { 'netplane.io/public-ip': '192.168.61.2' } })], direct, host1, ['node2 v4 vxlan']],
    ['dual-stack pods over IPv4: each family by its own address (IPv6 from its ExternalIP)', [dual(1), dual(2, { externalIP: 'fd00:60::2' })], direct, hostDual, ['node2 v4 192.168.60.2 v6 fd00:60::2']],
    ['dual-stack pods, a remote without an IPv6 address: IPv6 pods over VXLAN', [dual(1), dual(2)], direct, hostDual, ['node2 v4 192.168.60.2 v6 vxlan']],
    ['dual-stack pods, a remote off the IPv4 network but on the IPv6 one', [dual(1), dual(3, { ip: '192.168.61.3', externalIP: 'fd00:60::3' })], direct, hostDual, ['node3 v4 vxlan v6 fd00:60::3']],
    ['a remote whose IPv6 address is link-local: never a gateway', [dual(1), dual(2, { externalIP: 'fe80::2' })], direct, hostDual, ['node2 v4 192.168.60.2 v6 vxlan']],
    ["a remote claiming this host's own IPv6 address: never a gateway", [dual(1), dual(2, { externalIP: 'fd00:60::1' })], direct, hostDual, ['node2 v4 192.168.60.2 v6 vxlan']],
    [
      'an IPv6 underlay: IPv6 pods direct, IPv4 pods over VXLAN (no IPv4 network here)',
      [dual(1, { ip: 'fd00:60::1' }), dual(2, { ip: 'fd00:60::2' })], direct, host6, ['node2 v4 vxlan v6 fd00:60::2'],
    ],
    ['--iface eth1: the networks of eth1 count, not those of eth0', [clusterNode(1), clusterNode(2), clusterNode(5, { ip: '10.0.0.5' })], { ...direct, ifaces: ['eth1'] }, hostDual, ['node2 v4 vxlan', 'node5 v4 10.0.0.5']],
    ['a remote left out stays out', [clusterNode(1), clusterNode(2, { podCIDRs: ['10.244.1.0/24'] })], direct, host1, ["problem node2: its podCIDR 10.244.1.0/24 overlaps node node1's 10.244.1.0/24; left out"]],
    [
      'the underlay interface down (the kernel took its networks\' routes away): over VXLAN until it is up',
      [clusterNode(1), clusterNode(2)], direct, { links: host1.links.map((l) => (l.name === 'eth0' ? { ...l, up: false } : l)), addresses: host1.addresses }, ['node2 v4 vxlan'],
    ],
  ];
  it.each(rows)('%s', (_name, nodes, options, host, want) => {
    expect(routing(planOverlay(nodes, options, host))).toEqual(want);
  });

  it('keeps the MTU of VXLAN, as Flannel: a pod may reach other nodes either way', () => {
    expect(planOverlay([clusterNode(1), clusterNode(2)], direct, host1).device?.mtu).toBe(1450);
  });
});

const device: LinkState = {
  index: 9, name: 'netplane.1', kind: 'vxlan', mac: mac(1), mtu: 1450, up: true,
  vxlan: { vni: 1, port: 8472, local: '192.168.60.1', underlayIndex: 2, learning: false },
};

/** A view of node1's kernel: remotes `vxlan` programmed over VXLAN, remotes `routed` with direct routes through eth0. */
function programmed(vxlan: number[], routed: number[], edit: (v: DeviceView) => void = () => {}): DeviceView {
  const v = emptyView();
  v.link = { ...device, vxlan: { ...device.vxlan! } };
  v.addresses.add('10.244.1.0/32');
  for (const i of vxlan) {
    v.neighbours.set(`10.244.${i}.0`, { mac: mac(i), permanent: true });
    v.fdb.set(`${mac(i)} 192.168.60.${i}`, { mac: mac(i), dst: `192.168.60.${i}` });
    v.routes.set(`10.244.${i}.0/24`, { gateway: `10.244.${i}.0`, onlink: true });
  }
  for (const i of routed) v.direct.set(`10.244.${i}.0/24`, { gateway: `192.168.60.${i}`, index: 2 });
  edit(v);
  return v;
}

const plan = (options: OverlayOptions, ...nodes: Node[]): OverlayPlan => planOverlay(nodes, options, host1);
const phases = (p: OverlayPlan, v: DeviceView) => diffOverlay(p, v).phases.map((ph) => ph.map(opText));
const n = (i: number, extra: Parameters<typeof clusterNode>[1] = {}) => clusterNode(i, extra);

describe('diffOverlay --direct-routing', () => {
  const rows: Array<[string, OverlayPlan, DeviceView, string[][]]> = [
    ['an empty kernel: the device and its address, then only direct routes (no neighbour or FDB entry)', plan(direct, n(1), n(2)), emptyView(), [
      [`link create netplane.1 vni 1 port 8472 local 192.168.60.1 dev eth0 mtu 1450 mac ${mac(1)} nolearning`, 'link set up true'],
      ['address add 10.244.1.0/32'],
      ['direct route add 10.244.2.0/24 via 192.168.60.2 dev eth0'],
    ]],
    ['the kernel already right: nothing', plan(direct, n(1), n(2), n(3)), programmed([], [2, 3]), []],
    ['turned on over VXLAN entries: their routes go first, then their neighbour and FDB entries, then the direct routes come', plan(direct, n(1), n(2), n(3)), programmed([2, 3], []), [
      ['route delete 10.244.2.0/24 via 10.244.2.0 onlink', 'route delete 10.244.3.0/24 via 10.244.3.0 onlink'],
      [`neighbour delete 10.244.2.0 lladdr ${mac(2)}`, `neighbour delete 10.244.3.0 lladdr ${mac(3)}`, `fdb delete ${mac(2)} dst 192.168.60.2`, `fdb delete ${mac(3)} dst 192.168.60.3`],
      ['direct route add 10.244.2.0/24 via 192.168.60.2 dev eth0', 'direct route add 10.244.3.0/24 via 192.168.60.3 dev eth0'],
    ]],
    ['turned off: the direct routes go first, then the VXLAN entries come', plan(options1, n(1), n(2)), programmed([], [2]), [
      ['direct route delete 10.244.2.0/24 via 192.168.60.2 dev eth0'],
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`, `fdb replace ${mac(2)} dst 192.168.60.2`],
      ['route add 10.244.2.0/24 via 10.244.2.0 onlink'],
    ]],
    ['a node moved off the network: its direct route goes, VXLAN entries to its new address come', plan(direct, n(1), n(2), n(3, { ip: '192.168.61.3' })), programmed([], [2, 3]), [
      ['direct route delete 10.244.3.0/24 via 192.168.60.3 dev eth0'],
      [`neighbour replace 10.244.3.0 lladdr ${derivedMac('192.168.61.3')}`, `fdb replace ${derivedMac('192.168.61.3')} dst 192.168.61.3`],
      ['route add 10.244.3.0/24 via 10.244.3.0 onlink'],
    ]],
    ['a node moved onto the network: its VXLAN entries go, with the FDB entry to its old address', plan(direct, n(1), n(3, { ip: '192.168.60.13', annotations: { 'netplane.io/vtep-mac': mac(3) } })), programmed([3], []), [
      ['route delete 10.244.3.0/24 via 10.244.3.0 onlink'],
      [`neighbour delete 10.244.3.0 lladdr ${mac(3)}`, `fdb delete ${mac(3)} dst 192.168.60.3`],
      ['direct route add 10.244.3.0/24 via 192.168.60.13 dev eth0'],
    ]],
    ['a node gone: only its direct route goes', plan(direct, n(1), n(2)), programmed([], [2, 3]), [['direct route delete 10.244.3.0/24 via 192.168.60.3 dev eth0']]],
    ['a direct route left over with the flag off and the node gone: deleted', plan(options1, n(1)), programmed([], [3]), [['direct route delete 10.244.3.0/24 via 192.168.60.3 dev eth0']]],
    ['a direct route through another interface (the underlay changed): deleted, then added through eth0', plan(direct, n(1), n(2)), programmed([], [], (v) => v.direct.set('10.244.2.0/24', { gateway: '192.168.60.2', index: 7 })), [
      ['direct route delete 10.244.2.0/24 via 192.168.60.2 dev if7'],
      ['direct route add 10.244.2.0/24 via 192.168.60.2 dev eth0'],
    ]],
    ['the device made again (learning on): the direct routes are on eth0 and stay', plan(direct, n(1), n(2)), programmed([], [2], (v) => (v.link!.vxlan!.learning = true)), [
      ['link delete', `link create netplane.1 vni 1 port 8472 local 192.168.60.1 dev eth0 mtu 1450 mac ${mac(1)} nolearning`, 'link set up true'],
      ['address add 10.244.1.0/32'],
    ]],
  ];
  it.each(rows)('%s', (_name, p, v, want) => {
    expect(phases(p, v)).toEqual(want);
  });

  it('a dual-stack remote routed directly over IPv4 keeps its FDB entry for its IPv6 pods over VXLAN', () => {
    const p = planOverlay([dual(1), dual(2)], direct, hostDual);
    const v = programmed([], [], (x) => x.addresses.add('fd00:244:1::/128'));
    expect(phases(p, v)).toEqual([
      [`neighbour replace fd00:244:2:: lladdr ${mac(2)}`, `fdb replace ${mac(2)} dst 192.168.60.2`],
      ['route add fd00:244:2::/64 via fd00:244:2:: onlink', 'direct route add 10.244.2.0/24 via 192.168.60.2 dev eth0'],
    ]);
    for (const op of diffOverlay(p, v).phases.flat()) recordOp(v, op);
    expect(diffOverlay(p, v).phases).toEqual([]);
    expect(programmedNodes(p, v)).toBe(2);
    expect(viewCounts(v)).toEqual({ address: 2, neighbour: 1, fdb: 1, route: 1, direct: 1 });
  });

  it('counts a directly routed remote as programmed only with its direct route, to its address, through the underlay', () => {
    const p = plan(direct, n(1), n(2), n(3));
    expect(programmedNodes(p, programmed([], [2, 3]))).toBe(3);
    expect(programmedNodes(p, programmed([2, 3], []))).toBe(1);
    expect(programmedNodes(p, programmed([], [2, 3], (v) => v.direct.set('10.244.3.0/24', { gateway: '192.168.60.3', index: 7 })))).toBe(2);
    expect(programmedNodes(p, programmed([], [2, 3], (v) => v.direct.set('10.244.3.0/24', { gateway: '192.168.60.33', index: 2 })))).toBe(2);
  });

  it('recording a link delete or create keeps the direct routes in the view', () => {
    const v = programmed([2], [3]);
    recordOp(v, { kind: 'link', op: 'delete' });
    expect([...v.direct.keys()]).toEqual(['10.244.3.0/24']);
    recordOp(v, { kind: 'link', op: 'create', spec: planOverlay([n(1)], direct, host1).device! }, device);
    expect([...v.direct.keys()]).toEqual(['10.244.3.0/24']);
    expect(v.routes.size).toBe(0);
  });
});

// The overlay differ: a plan against a view of the kernel → operations, phase by phase, as text.
import { describe, expect, it } from 'vitest';
import type { LinkState } from '../../overlay/kernel/types.ts';
import { diffOverlay, opText, programmedNodes, recordOp } from '../../overlay/plan/diff.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import { emptyView, type DeviceView, type OverlayPlan } from '../../overlay/plan/types.ts';
import { clusterNode, host1, options1 } from './fixtures.ts';

const mac = (i: number) => derivedMac(`192.168.60.${i}`);
const device: LinkState = {
  index: 9, name: 'netplane.1', kind: 'vxlan', mac: mac(1), mtu: 1450, up: true,
  vxlan: { vni: 1, port: 8472, local: '192.168.60.1', underlayIndex: 2, learning: false },
};

/** A view of a kernel programmed for node1 with the given remotes (numbers); `edit` changes it further. */
function programmed(remotes: number[], edit: (v: DeviceView) => void = () => {}): DeviceView {
  const v = emptyView();
  v.link = { ...device, vxlan: { ...device.vxlan! } };
  v.addresses.add('10.244.1.0/32');
  for (const i of remotes) {
    v.neighbours.set(`10.244.${i}.0`, { mac: mac(i), permanent: true });
    v.fdb.set(`${mac(i)} 192.168.60.${i}`, { mac: mac(i), dst: `192.168.60.${i}` });
    v.routes.set(`10.244.${i}.0/24`, { gateway: `10.244.${i}.0`, onlink: true });
  }
  edit(v);
  return v;
}

const plan = (...nodes: Parameters<typeof clusterNode>[]): OverlayPlan => planOverlay(nodes.map((n) => clusterNode(...n)), options1, host1);
const phases = (p: OverlayPlan, v: DeviceView) => diffOverlay(p, v).phases.map((ph) => ph.map(opText));

describe('diffOverlay', () => {
  const rows: Array<[string, OverlayPlan, DeviceView, string[][]]> = [
    ['an empty kernel: the device, then its address, then neighbour and FDB entries, then routes', plan([1], [2]), emptyView(), [
      [`link create netplane.1 vni 1 port 8472 local 192.168.60.1 dev eth0 mtu 1450 mac ${mac(1)} nolearning`, 'link set up true'],
      ['address add 10.244.1.0/32'],
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`, `fdb replace ${mac(2)} dst 192.168.60.2`],
      ['route add 10.244.2.0/24 via 10.244.2.0 onlink'],
    ]],
    ['the kernel already right: nothing', plan([1], [2], [3]), programmed([2, 3]), []],
    ['a node gone: its three entries go, route first', plan([1], [2]), programmed([2, 3]), [
      ['route delete 10.244.3.0/24 via 10.244.3.0 onlink'],
      [`neighbour delete 10.244.3.0 lladdr ${mac(3)}`, `fdb delete ${mac(3)} dst 192.168.60.3`],
    ]],
    ['a node whose address changed (annotated MAC kept): its old FDB entry goes', plan([1], [3, { ip: '192.168.60.13', annotations: { 'netplane.io/vtep-mac': mac(3) } }]), programmed([3]), [
      [`fdb delete ${mac(3)} dst 192.168.60.3`, `fdb replace ${mac(3)} dst 192.168.60.13`],
    ]],
    ['a node whose address changed (derived MAC changes with it): neighbour replaced, old MAC entry removed', plan([1], [3, { ip: '192.168.60.13' }]), programmed([3]), [
      [`fdb delete ${mac(3)} dst 192.168.60.3`, `neighbour replace 10.244.3.0 lladdr ${derivedMac('192.168.60.13')}`, `fdb replace ${derivedMac('192.168.60.13')} dst 192.168.60.13`],
    ]],
    ['a route of ours with another gateway or without onlink: deleted, then added (never replaced)', plan([1], [2]), programmed([2], (v) => v.routes.set('10.244.2.0/24', { gateway: '10.244.2.1', onlink: false })), [
      ['route delete 10.244.2.0/24 via 10.244.2.1'],
      ['route add 10.244.2.0/24 via 10.244.2.0 onlink'],
    ]],
    ["a kernel-made neighbour entry: made permanent when wanted, left alone when not", plan([1], [2]), programmed([2], (v) => {
      v.neighbours.set('10.244.2.0', { mac: mac(2), permanent: false });
      v.neighbours.set('10.244.7.0', { mac: '00:00:00:00:00:00', permanent: false });
    }), [
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`],
    ]],
    ['a stray address: removed', plan([1]), programmed([], (v) => v.addresses.add('10.244.9.0/32')), [['address delete 10.244.9.0/32']]],
    ["this node's podCIDR changed: the new VTEP address goes on before the old one comes off, the entries stay", plan([1, { podCIDRs: ['10.244.31.0/24'] }], [2]), programmed([2]), [
      ['address add 10.244.31.0/32'],
      ['address delete 10.244.1.0/32'],
    ]],
    ['MTU, MAC and up flag drifted: one link change', plan([1]), programmed([], (v) => Object.assign(v.link!, { mtu: 1500, mac: '0a:00:00:00:00:01', up: false })), [
      [`link set mtu 1450 mac ${mac(1)} up true`],
    ]],
    ["a new device MAC: the kernel flushes the device's neighbours, so every one is added again", plan([1], [2], [3]), programmed([2, 3], (v) => (v.link!.mac = '0a:00:00:00:00:01')), [
      [`link set mac ${mac(1)}`],
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`, `neighbour replace 10.244.3.0 lladdr ${mac(3)}`],
    ]],
    ['other VXLAN attributes (learning on): the device is made again with every entry', plan([1], [2]), programmed([2], (v) => (v.link!.vxlan!.learning = true)), [
      ['link delete', `link create netplane.1 vni 1 port 8472 local 192.168.60.1 dev eth0 mtu 1450 mac ${mac(1)} nolearning`, 'link set up true'],
      ['address add 10.244.1.0/32'],
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`, `fdb replace ${mac(2)} dst 192.168.60.2`],
      ['route add 10.244.2.0/24 via 10.244.2.0 onlink'],
    ]],
    ['this node cannot have a device: nothing changes, the last state stays', plan([2], [3]), programmed([2, 4]), []],
  ];
  it.each(rows)('%s', (_name, p, v, want) => {
    expect(phases(p, v)).toEqual(want);
  });

  it('dual-stack remotes get IPv6 neighbour and route entries over the same FDB entry', () => {
    const p = plan([1, { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] }], [2, { podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'] }]);
    expect(phases(p, programmed([]))).toEqual([
      ['address add fd00:244:1::/128'],
      [`neighbour replace 10.244.2.0 lladdr ${mac(2)}`, `neighbour replace fd00:244:2:: lladdr ${mac(2)}`, `fdb replace ${mac(2)} dst 192.168.60.2`],
      ['route add 10.244.2.0/24 via 10.244.2.0 onlink', 'route add fd00:244:2::/64 via fd00:244:2:: onlink'],
    ]);
  });

  it("records the kernel's flush when the device's last IPv4 address goes: IPv4 routes and ARP entries, not IPv6 ones", () => {
    const v = programmed([2, 3], (x) => {
      x.addresses.add('fd00:244:1::/128');
      x.neighbours.set('fd00:244:2::', { mac: mac(2), permanent: true });
      x.routes.set('fd00:244:2::/64', { gateway: 'fd00:244:2::', onlink: true });
    });
    recordOp(v, { kind: 'address', op: 'add', cidr: '10.244.31.0/32' });
    recordOp(v, { kind: 'address', op: 'delete', cidr: '10.244.1.0/32' });
    expect(v.routes.size).toBe(3);
    recordOp(v, { kind: 'address', op: 'delete', cidr: '10.244.31.0/32' });
    expect([...v.routes.keys(), ...v.neighbours.keys()]).toEqual(['fd00:244:2::/64', 'fd00:244:2::']);
    expect(v.fdb.size).toBe(2);
  });

  it('counts as programmed only what the view holds: the device up with its addresses, then each complete remote', () => {
    const p = plan([1], [2], [3]);
    expect(programmedNodes(p, programmed([2, 3]))).toBe(3);
    expect(programmedNodes(p, programmed([2]))).toBe(2);
    expect(programmedNodes(p, programmed([2, 3], (v) => v.routes.delete('10.244.3.0/24')))).toBe(2);
    expect(programmedNodes(p, programmed([2, 3], (v) => (v.link!.up = false)))).toBe(0);
    expect(programmedNodes(p, programmed([2, 3], (v) => v.addresses.clear()))).toBe(0);
    expect(programmedNodes(p, emptyView())).toBe(0);
  });

  it('recording every operation of a diff makes the view what the plan wants', () => {
    const p = plan([1], [2], [3, { ip: '192.168.60.13' }], [5]);
    const v = programmed([2, 3, 4]);
    for (const op of diffOverlay(p, v).phases.flat()) recordOp(v, op);
    expect(diffOverlay(p, v).phases).toEqual([]);
    expect([...v.fdb.keys()].sort()).toEqual([`${mac(2)} 192.168.60.2`, `${derivedMac('192.168.60.13')} 192.168.60.13`, `${mac(5)} 192.168.60.5`].sort());
  });
});

describe('diffOverlay with keepStale (part of the cluster could never be read)', () => {
  const keep = (p: OverlayPlan, v: DeviceView) => diffOverlay(p, v, true).phases.map((ph) => ph.map(opText));
  it('leaves the entries no remote wants, and still adds and changes the wanted ones', () => {
    // node3 is not in the view; node2 moved to another address (its MAC with it: the old FDB entry, whose MAC no
    // remote has, stays too); node4 is new.
    const v = programmed([2, 3]);
    expect(keep(plan([1], [2, { ip: '192.168.60.22' }], [4]), v)).toEqual([
      [`neighbour replace 10.244.2.0 lladdr ${derivedMac('192.168.60.22')}`, `neighbour replace 10.244.4.0 lladdr ${mac(4)}`, `fdb replace ${derivedMac('192.168.60.22')} dst 192.168.60.22`, `fdb replace ${mac(4)} dst 192.168.60.4`],
      ['route add 10.244.4.0/24 via 10.244.4.0 onlink'],
    ]);
    // Without it node3's entries go.
    expect(phases(plan([1], [2]), v).flat().sort()).toEqual([`neighbour delete 10.244.3.0 lladdr ${mac(3)}`, `fdb delete ${mac(3)} dst 192.168.60.3`, 'route delete 10.244.3.0/24 via 10.244.3.0 onlink'].sort());
  });
});

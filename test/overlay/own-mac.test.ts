// From manifests nothing publishes a node's VTEP MAC: the MAC node1 gives its own device(s) must be the one node2
// derives for it, whatever address node1 sends from (--public-ip, --iface) and whatever address node2 reads for it
// (Flannel's overwrite annotations, netplane.io/public-ip). Planned on both nodes and compared, as a table.
import { describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { devicePlans } from '../../overlay/plan/device6.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import type { HostView, OverlayOptions } from '../../overlay/plan/types.ts';
import { node, options1, type NodeSpec } from './fixtures.ts';

/** Node i with an IPv4 pod network, or dual-stack pods with `dual`; its addresses as `extra` says. */
const nodeI = (i: number, extra: NodeSpec, dual = false): Node =>
  node(`node${i}`, { podCIDRs: [`10.244.${i}.0/24`, ...(dual ? [`fd00:244:${i}::/64`] : [])], ...extra });

/** A host with loopback and eth0 holding `cidrs`. */
const host = (...cidrs: string[]): HostView => ({
  links: [
    { index: 1, name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true },
    { index: 2, name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', mtu: 1500, up: true },
  ],
  addresses: [{ index: 1, cidr: '127.0.0.1/8' }, ...cidrs.map((cidr) => ({ index: 2, cidr }))],
});

const overwrite = 'flannel.alpha.coreos.com/public-ip-overwrite';
const overwrite6 = 'flannel.alpha.coreos.com/public-ipv6-overwrite';
const v6 = { ipv6Device: { name: 'netplane-v6.1', auto: true } } as const;

interface Row {
  node1: NodeSpec;
  host1: string[];
  options?: Partial<OverlayOptions>;
  /** Dual-stack pods, node2's address fd00:60::2 too. */
  dual?: boolean;
  /** node2's underlay address (192.168.60.2 by default). */
  ip2?: string;
  /** The address node2 sends node1's VXLAN packets to, whose derived MAC node1's device must have. */
  reached: string;
  /** The same for the IPv6 device. */
  reached6?: string;
}

describe("from manifests: this node's device has the MAC the other nodes derive for it", () => {
  it.each<[string, Row]>([
    ['the InternalIP, also the source', { node1: { ip: '192.168.60.1' }, host1: ['192.168.60.1/24'], reached: '192.168.60.1' }],
    ["Flannel's public-ip-overwrite (NAT): the source stays the InternalIP", { node1: { ip: '192.168.60.1', annotations: { [overwrite]: '203.0.113.1' } }, host1: ['192.168.60.1/24'], reached: '203.0.113.1' }],
    ['the overwrite held here too', { node1: { ip: '192.168.60.1', annotations: { [overwrite]: '192.168.60.201' } }, host1: ['192.168.60.1/24', '192.168.60.201/24'], reached: '192.168.60.201' }],
    ['netplane.io/public-ip held here: also the source', { node1: { ip: '192.168.60.1', annotations: { 'netplane.io/public-ip': '192.168.60.201' } }, host1: ['192.168.60.1/24', '192.168.60.201/24'], reached: '192.168.60.201' }],
    ['--public-ip, held here, is the source; the others read the InternalIP', { node1: { ip: '192.168.60.1' }, host1: ['192.168.60.1/24', '192.168.60.201/24'], options: { publicIP: { 4: '192.168.60.201' } }, reached: '192.168.60.1' }],
    ['--iface names another address than the InternalIP', { node1: { ip: '192.168.60.1' }, host1: ['192.168.60.1/24', '192.168.60.201/24'], options: { ifaces: ['192.168.60.201'] }, reached: '192.168.60.1' }],
    ['public-ipv6-overwrite over an IPv6 underlay', { node1: { ip: 'fd00:60::1', annotations: { [overwrite6]: '2001:db8::1' } }, host1: ['fd00:60::1/64'], ip2: 'fd00:60::2', reached: '2001:db8::1' }],
    [
      'the IPv6 device (--ipv6-device auto): public-ipv6-overwrite',
      { node1: { ip: '192.168.60.1', externalIP: 'fd00:60::1', annotations: { [overwrite6]: '2001:db8::1' } }, host1: ['192.168.60.1/24', 'fd00:60::1/64'], options: v6, dual: true, reached: '192.168.60.1', reached6: '2001:db8::1' },
    ],
    [
      'the IPv6 device: netplane.io/public-ipv6 names another address than its source',
      { node1: { ip: '192.168.60.1', externalIP: 'fd00:60::1', annotations: { 'netplane.io/public-ipv6': 'fd00:60::21' } }, host1: ['192.168.60.1/24', 'fd00:60::1/64'], options: v6, dual: true, reached: '192.168.60.1', reached6: 'fd00:60::21' },
    ],
  ])('%s', (_name, row) => {
    const ip2 = row.ip2 ?? '192.168.60.2';
    const nodes = [nodeI(1, row.node1, row.dual), nodeI(2, { ip: ip2, ...(row.dual ? { externalIP: 'fd00:60::2' } : {}) }, row.dual)];
    const mine = planOverlay(nodes, { ...options1, ...row.options }, host(...row.host1));
    const theirs = planOverlay(nodes, { ...options1, nodeName: 'node2', ...(row.dual ? v6 : {}) }, host(row.ip2 ? `${ip2}/64` : `${ip2}/24`, ...(row.dual ? ['fd00:60::2/64'] : [])));
    expect(mine.problems).toEqual([]);
    const seen = devicePlans(theirs);
    const remote = seen.main.remotes.find((r) => r.node === 'node1');
    expect({ ip: remote?.underlayIP, mac: remote?.vtepMAC }).toEqual({ ip: row.reached, mac: derivedMac(row.reached) });
    expect(mine.device?.mac).toBe(derivedMac(row.reached));
    if (row.reached6 !== undefined) {
      const remote6 = seen.v6?.remotes.find((r) => r.node === 'node1');
      expect({ ip: remote6?.underlayIP, mac: remote6?.vtepMAC }).toEqual({ ip: row.reached6, mac: derivedMac(row.reached6) });
      expect(mine.device6?.mac).toBe(derivedMac(row.reached6));
    }
  });

  it('in kubernetes mode the MAC is published, and derived from the source address', () => {
    const self = nodeI(1, { ip: '192.168.60.1', annotations: { [overwrite]: '203.0.113.1' } });
    const plan = planOverlay([self], { ...options1, publishes: true }, host('192.168.60.1/24'));
    expect(plan.device?.mac).toBe(derivedMac('192.168.60.1'));
    expect(plan.self).toMatchObject({ mac: derivedMac('192.168.60.1'), ip: '203.0.113.1' });
  });
});

// A restarted agent takes what its last run programmed from the kernel for its first plan, so that a Node broken
// while the agent was down keeps its entries: the chains of entries read back, and what does not count as one.
import { describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import { remotesFromKernel } from '../../overlay/plan/recover.ts';
import { emptyView, type DeviceView } from '../../overlay/plan/types.ts';
import { clusterNode, host1, node, options1 } from './fixtures.ts';

const mac = (i: number) => derivedMac(`192.168.60.${i}`);

/** The device view of node1 with the entries of node i for each i given (as netplane programs them). */
function viewWith(...nodes: number[]): DeviceView {
  const v = emptyView();
  for (const i of nodes) {
    v.neighbours.set(`10.244.${i}.0`, { mac: mac(i), permanent: true });
    v.fdb.set(`${mac(i)} 192.168.60.${i}`, { mac: mac(i), dst: `192.168.60.${i}` });
    v.routes.set(`10.244.${i}.0/24`, { gateway: `10.244.${i}.0`, onlink: true });
  }
  return v;
}

const entry = (i: number) => ({ node: `node${i}`, underlayIP: `192.168.60.${i}`, vtepMAC: mac(i), vtep4: `10.244.${i}.0`, podCIDR4: `10.244.${i}.0/24` });

describe('remotesFromKernel', () => {
  it('finds a node by its podCIDR (its addresses gone) and by its address (its podCIDR gone)', () => {
    const nodes = [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] }), node('node3', { ip: '192.168.60.3' })];
    expect(remotesFromKernel(nodes, 'node1', viewWith(2, 3))).toEqual([entry(2), entry(3)]);
  });

  it('dual-stack: both routes must lead to the same VTEP; otherwise nothing is taken', () => {
    const v = viewWith(2);
    v.neighbours.set('fd00:244:2::', { mac: mac(2), permanent: true });
    v.routes.set('fd00:244:2::/64', { gateway: 'fd00:244:2::', onlink: true });
    const n2 = node('node2', { podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'] });
    expect(remotesFromKernel([n2], 'node1', v)).toEqual([{ ...entry(2), vtep6: 'fd00:244:2::', podCIDR6: 'fd00:244:2::/64' }]);
    v.neighbours.set('fd00:244:2::', { mac: mac(9), permanent: true });
    v.fdb.set(`${mac(9)} 192.168.60.9`, { mac: mac(9), dst: '192.168.60.9' });
    expect(remotesFromKernel([n2], 'node1', v)).toEqual([]);
  });

  it.each<[string, (v: DeviceView) => void]>([
    ['a MAC with two FDB destinations', (v) => v.fdb.set(`${mac(2)} 192.168.60.99`, { mac: mac(2), dst: '192.168.60.99' })],
    ['a neighbour entry that is not permanent', (v) => v.neighbours.set('10.244.2.0', { mac: mac(2), permanent: false })],
    ['a route without onlink', (v) => v.routes.set('10.244.2.0/24', { gateway: '10.244.2.0', onlink: false })],
    ['an FDB entry with a port of its own (not netplane\'s)', (v) => {
      v.fdb.clear();
      v.fdb.set(`${mac(2)} 192.168.60.2 port 4789`, { mac: mac(2), dst: '192.168.60.2' });
    }],
  ])('takes nothing from an incomplete or foreign chain: %s', (_name, spoil) => {
    const v = viewWith(2);
    spoil(v);
    expect(remotesFromKernel([clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] })], 'node1', v)).toEqual([]);
  });

  it('takes nothing for a node whose recovered podCIDR or address another Node names, nor for this node itself', () => {
    const nodes = [clusterNode(1), node('node3', { ip: '192.168.60.3' }), clusterNode(4, { podCIDRs: ['10.244.3.0/24'] })];
    expect(remotesFromKernel(nodes, 'node1', viewWith(1, 3))).toEqual([]);
    // node4's podCIDR leads to node3's entries, whose address node3 still has.
    expect(remotesFromKernel([nodes[0]!, nodes[2]!], 'node1', viewWith(1, 3)).map((r) => r.node)).toEqual(['node4']);
  });
});

describe('the first plan after a restart', () => {
  it('keeps the entries of a Node that lost its addresses while the agent was down; a working Node is planned from its object', () => {
    const nodes = [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] }), clusterNode(3, { ip: '192.168.60.33' })];
    const plan = planOverlay(nodes, options1, host1, { remotes: remotesFromKernel(nodes, 'node1', viewWith(2, 3)) });
    expect(plan.remotes.map((r) => `${r.node} ${r.underlayIP} ${r.vtepMAC} ${r.podCIDR4}`)).toEqual([
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      `node3 192.168.60.33 ${derivedMac('192.168.60.33')} 10.244.3.0/24`,
    ]);
    expect(plan.problems.map((p) => `${p.node}: ${p.reason}`)).toContain(`node2: it has no IPv4 underlay address; its last good entries stay (underlay 192.168.60.2, VTEP MAC ${mac(2)}, podCIDR 10.244.2.0/24) until it is fixed or deleted`);
  });
});

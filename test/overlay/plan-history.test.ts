// Bad Nodes change nothing that works: a Node made later never takes a contested podCIDR, address or MAC from an
// older one (decided from the Nodes alone, the same on every node), and a node whose object becomes unusable keeps
// the last good entries the planner programmed before.
import { describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import type { OverlayPlan } from '../../overlay/plan/types.ts';
import { clusterNode, host1, node, options1 } from './fixtures.ts';

const mac = (i: number) => derivedMac(`192.168.60.${i}`);

/** The plan's remotes and problems as lines. */
function summary(plan: OverlayPlan): string[] {
  return [...plan.remotes.map((r) => `${r.node} ${r.underlayIP} ${r.vtepMAC} ${r.podCIDR4}`), ...plan.problems.map((p) => `problem ${p.node}: ${p.reason}`)];
}

/** Plans `before`, then `after` with the first plan as history. */
function replan(before: Node[], after: Node[]): OverlayPlan {
  const first = planOverlay(before, options1, host1);
  return planOverlay(after, options1, host1, { remotes: first.remotes });
}

const old = '2020-01-01T00:00:00Z';
const later = '2024-01-01T00:00:00Z';
const working = [clusterNode(1, { created: old }), clusterNode(2, { created: old }), clusterNode(3, { created: old })];

describe('planOverlay: a Node made later does not take over an older one', () => {
  it.each<[string, Node, string[]]>([
    ["node0 with node3's podCIDR", node('node0', { podCIDRs: ['10.244.3.0/24'], ip: '192.168.60.50', created: later }), [
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      `node3 192.168.60.3 ${mac(3)} 10.244.3.0/24`,
      "problem node0: its podCIDR 10.244.3.0/24 overlaps node node3's 10.244.3.0/24; left out",
    ]],
    ["node0 with node3's underlay address", node('node0', { podCIDRs: ['10.244.50.0/24'], ip: '192.168.60.3', created: later }), [
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      `node3 192.168.60.3 ${mac(3)} 10.244.3.0/24`,
      "problem node0: its underlay address 192.168.60.3 is also node node3's; left out",
    ]],
    ["node0 with node3's VTEP MAC", node('node0', { podCIDRs: ['10.244.50.0/24'], ip: '192.168.60.50', annotations: { 'netplane.io/vtep-mac': mac(3) }, created: later }), [
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      `node3 192.168.60.3 ${mac(3)} 10.244.3.0/24`,
      `problem node0: its VTEP MAC ${mac(3)} is also node node3's; left out`,
    ]],
  ])('%s: the older node keeps its entries, the later one is left out naming it', (_name, newcomer, want) => {
    expect(summary(replan(working, [...working, newcomer]))).toEqual(want);
    // What this agent programmed before does not decide: a restarted agent, or one whose plan differs, agrees.
    expect(summary(planOverlay([...working, newcomer], options1, host1))).toEqual(want);
  });

  it('decides from the Nodes alone: an older Node takes a value back from the one this agent programmed', () => {
    // This agent had programmed node0 (alone with 10.244.3.0/24); node3, older, appears with it: every node gives it to node3.
    const newcomer = node('node0', { podCIDRs: ['10.244.3.0/24'], ip: '192.168.60.50', created: later });
    const plan = replan([clusterNode(1, { created: old }), newcomer], [...working, newcomer]);
    expect(summary(plan).at(-1)).toBe("problem node0: its podCIDR 10.244.3.0/24 overlaps node node3's 10.244.3.0/24; left out");
  });

  it('Nodes of one age (manifests without timestamps): the first by name, on every node alike', () => {
    const plan = replan([clusterNode(1)], [clusterNode(1), clusterNode(3), node('node0', { podCIDRs: ['10.244.3.0/24'], ip: '192.168.60.50' })]);
    expect(summary(plan)).toEqual([`node0 192.168.60.50 ${derivedMac('192.168.60.50')} 10.244.3.0/24`, "problem node3: its podCIDR 10.244.3.0/24 overlaps node node0's 10.244.3.0/24; left out"]);
  });
});

describe('planOverlay: a node whose object becomes unusable keeps its last good entries', () => {
  const flannel = (data: string) => ({ 'flannel.alpha.coreos.com/backend-data': data });
  const good = clusterNode(2, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:02' } });
  it.each<[string, Node, Node, string[]]>([
    ['its addresses gone', clusterNode(2), node('node2', { podCIDRs: ['10.244.2.0/24'] }), [
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      "problem node2: has no IPv4 underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv4",
      `problem node2: it has no IPv4 underlay address; its last good entries stay (underlay 192.168.60.2, VTEP MAC ${mac(2)}, podCIDR 10.244.2.0/24) until it is fixed or deleted`,
    ]],
    ['its podCIDR gone', clusterNode(2), node('node2', { ip: '192.168.60.2' }), [
      `node2 192.168.60.2 ${mac(2)} 10.244.2.0/24`,
      `problem node2: it has no podCIDR; its last good entries stay (underlay 192.168.60.2, VTEP MAC ${mac(2)}, podCIDR 10.244.2.0/24) until it is fixed or deleted`,
    ]],
    ['an invalid netplane.io/vtep-mac', good, clusterNode(2, { annotations: { 'netplane.io/vtep-mac': 'zz' } }), [
      'node2 192.168.60.2 0a:00:00:00:00:02 10.244.2.0/24',
      `problem node2: annotation netplane.io/vtep-mac "zz" is not a unicast MAC such as 0a:58:0a:f4:01:00; using one derived from 192.168.60.2`,
      'problem node2: its MAC annotation is malformed; its last good entries stay (underlay 192.168.60.2, VTEP MAC 0a:00:00:00:00:02, podCIDR 10.244.2.0/24) until it is fixed or deleted',
    ]],
    ["a malformed Flannel backend-data", clusterNode(2, { annotations: flannel('{"VNI":1,"VtepMAC":"2e:f7:d3:70:96:48"}') }), clusterNode(2, { annotations: flannel('{"VtepMAC":') }), [
      'node2 192.168.60.2 2e:f7:d3:70:96:48 10.244.2.0/24',
      'problem node2: annotation flannel.alpha.coreos.com/backend-data "{\\"VtepMAC\\":" is not Flannel\'s {"VNI":N,"VtepMAC":"..."}; using a MAC derived from 192.168.60.2',
      'problem node2: its MAC annotation is malformed; its last good entries stay (underlay 192.168.60.2, VTEP MAC 2e:f7:d3:70:96:48, podCIDR 10.244.2.0/24) until it is fixed or deleted',
    ]],
    ['a malformed public-ip annotation', clusterNode(2, { annotations: { 'netplane.io/public-ip': '192.168.60.22' } }), clusterNode(2, { annotations: { 'netplane.io/public-ip': 'nope' } }), [
      `node2 192.168.60.22 ${derivedMac('192.168.60.22')} 10.244.2.0/24`,
      'problem node2: annotation netplane.io/public-ip "nope" is not an IP address; using status.addresses',
      `problem node2: its address annotation is malformed; its last good entries stay (underlay 192.168.60.22, VTEP MAC ${derivedMac('192.168.60.22')}, podCIDR 10.244.2.0/24) until it is fixed or deleted`,
    ]],
  ])('%s', (_name, before, after, want) => {
    const plan = replan([clusterNode(1), before], [clusterNode(1), after]);
    expect(summary(plan)).toEqual(want);
    // Kept for as long as it stays unusable: the kept remote is the next plan's history.
    expect(summary(planOverlay([clusterNode(1), after], options1, host1, { remotes: plan.remotes }))).toEqual(want);
  });

  it('a valid change is taken, deletion removes it, and a node never seen usable stays out', () => {
    expect(summary(replan([clusterNode(1), clusterNode(2)], [clusterNode(1), clusterNode(2, { ip: '192.168.60.20' })]))).toEqual([`node2 192.168.60.20 ${derivedMac('192.168.60.20')} 10.244.2.0/24`]);
    expect(summary(replan([clusterNode(1), clusterNode(2)], [clusterNode(1)]))).toEqual([]);
    expect(summary(replan([clusterNode(1)], [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] })]))).toEqual([
      "problem node2: has no IPv4 underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv4",
    ]);
  });

  it('a kept node loses its entries to no Node made later', () => {
    const plan = replan([clusterNode(1), clusterNode(2, { created: old })], [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'], created: old }), node('node0', { podCIDRs: ['10.244.2.0/24'], ip: '192.168.60.50', created: later })]);
    expect(plan.remotes.map((r) => r.node)).toEqual(['node2']);
    expect(plan.problems.at(-1)?.reason).toBe("its podCIDR 10.244.2.0/24 overlaps node node2's 10.244.2.0/24; left out");
  });
});

describe('planOverlay: this node keeps its device MAC when its MAC annotation turns malformed', () => {
  it('keeps the previous MAC (as the other nodes do), and takes a derived one with no previous device', () => {
    const first = planOverlay([clusterNode(1, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:01' } })], options1, host1);
    expect(first.device?.mac).toBe('0a:00:00:00:00:01');
    const bad = [clusterNode(1, { annotations: { 'netplane.io/vtep-mac': 'zz' } })];
    const plan = planOverlay(bad, options1, host1, { remotes: [], ...(first.device ? { device: first.device } : {}) });
    expect(plan.device?.mac).toBe('0a:00:00:00:00:01');
    expect(plan.problems.map((p) => p.reason)).toEqual(['annotation netplane.io/vtep-mac "zz" is not a unicast MAC such as 0a:58:0a:f4:01:00; the device keeps its MAC 0a:00:00:00:00:01']);
    expect(planOverlay(bad, options1, host1).device?.mac).toBe(mac(1));
  });
});

// --iface-can-reach, Flannel's: the underlay is the interface of this host's route to an address, with the source
// address the kernel picks for it (`ip route get`). node1's Node names its management address 10.99.0.1 (on mgmt0, one end of
// a veth pair that reaches nothing) as InternalIP, and Flannel's public-ip-overwrite 192.168.60.1 for the other nodes; by
// default node1 would send its VXLAN packets out of mgmt0. With --iface-can-reach 192.168.60.2 it sends them from
// eth0 at 192.168.60.1, and pod11 reaches pod21. An address it has no route to leaves it waiting, with the reason.
// (A route change moving the underlay: iface-can-reach-route.test.ts.)
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24, mgmt0 10.99.0.1/24 ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 192.168.60.2/24                     ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OverlayTopology, TestNode } from './topology.ts';
import { twoNodesWithMgmt, vxlanDevice } from './two-nodes.ts';

describe('netplane overlay --iface-can-reach', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodesWithMgmt('s23creach'));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('takes the interface and source of the route to the address', async () => {
    await t.startAgent(node1, ['--resync-period', '1h', '--iface-can-reach', '192.168.60.2']);
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '192.168.60.1', link: 'eth0' });
    expect(await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);
  });

  it('waits, saying why, when no route reaches the address', async () => {
    await t.stopAgent(node1);
    const noRoute = (l: Record<string, unknown>) => /--iface-can-reach 203\.0\.113\.9: this host has no route to it/.test(String(l.msg));
    const a = await t.startAgent(node1, ['--resync-period', '1h', '--iface-can-reach', '203.0.113.9'], noRoute);
    expect(a.logs.some(noRoute)).toBe(true);
  });
});

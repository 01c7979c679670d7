// --iface-can-reach follows the route to its address while the agent runs: a route change alone — no address or
// interface change, and the resync an hour away — chooses the underlay again within about the host debounce, and
// the VXLAN device moves to the new interface with its entries. node1 (the set-up of iface-can-reach.test.ts) starts
// with its default route via eth0, so the route to 203.0.113.9 leaves from eth0 at 192.168.60.1; the default route
// is then moved to mgmt0 (the device follows to 10.99.0.1), and a more specific route to 203.0.113.0/24 via eth0
// is added (the device comes back, and pod11 reaches pod21 again over it).
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24, mgmt0 10.99.0.1/24 ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 192.168.60.2/24                     ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import type { OverlayTopology, TestNode } from './topology.ts';
import { twoNodesWithMgmt, vxlanDevice } from './two-nodes.ts';

/** How long the device may take to follow a route change: the 100 ms debounce and one sync, with room for a loaded machine. */
const boundMs = 3000;

describe('netplane overlay --iface-can-reach follows a route change', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodesWithMgmt('s24dreach'));
    await t.lab.exec(node1.ns, 'ip', ['route', 'add', 'default', 'via', '192.168.60.254', 'dev', 'eth0']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('moves the device to the interface of the new route, and back', async () => {
    await t.startAgent(node1, ['--resync-period', '1h', '--iface-can-reach', '203.0.113.9']);
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '192.168.60.1', link: 'eth0' });
    expect(await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);

    const on = (local: string, link: string) => async () => {
      const dev = await vxlanDevice(t, node1.ns).catch(() => undefined);
      return dev?.local === local && dev.link === link;
    };
    await t.lab.exec(node1.ns, 'ip', ['route', 'replace', 'default', 'via', '10.99.0.254', 'dev', 'mgmt0']);
    await waitFor('the device to move to mgmt0 after the default route did', on('10.99.0.1', 'mgmt0'), boundMs, 20);

    await t.lab.exec(node1.ns, 'ip', ['route', 'add', '203.0.113.0/24', 'via', '192.168.60.254', 'dev', 'eth0']);
    await waitFor('the device to move back to eth0 after a more specific route through it', on('192.168.60.1', 'eth0'), boundMs, 20);
    expect(await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);
  }, 30_000);
});

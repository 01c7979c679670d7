// An interface renamed to the name --iface asks for becomes the underlay at once, not at the next resync (an hour
// here): node1 starts with --iface uplink while its underlay interface is still called eth0, so it has no underlay;
// eth0 is then renamed uplink, and node1's VXLAN entries for node2 appear and pod11 reaches pod21.
//
//   underlay: br0 ─┬─ node1 eth0 → uplink 192.168.60.1/24 ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0          192.168.60.2/24 ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { overlayEntries } from './entries.ts';
import type { OverlayTopology, TestNode } from './topology.ts';
import { twoNodes } from './two-nodes.ts';

const vxlan = [`fdb ${derivedMac('192.168.60.2')} 192.168.60.2`, `neigh 10.244.2.0 ${derivedMac('192.168.60.2')}`, 'route 10.244.2.0/24 via 10.244.2.0'].sort();

describe('netplane overlay follows an interface renamed to the name --iface gives', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodes('ovl8'));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('has no underlay while no interface is called uplink, and programs over it once eth0 is renamed so', async () => {
    const noUnderlay = (l: Record<string, unknown>) => l.level === 40 && /^node node1 --iface uplink: /.test(String(l.msg));
    const a = await t.startAgent(node1, ['--resync-period', '1h', '--iface', 'uplink'], noUnderlay);
    expect(a.logs.filter(noUnderlay)).toHaveLength(1);
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([]);
    const ip = (args: string[]) => t.lab.exec(node1.ns, 'ip', args);
    await ip(['link', 'set', 'eth0', 'down']);
    await ip(['link', 'set', 'eth0', 'name', 'uplink']);
    await ip(['link', 'set', 'uplink', 'up']);
    await waitFor("node1's VXLAN entries for node2", async () => JSON.stringify(await overlayEntries(t.lab, node1.ns)) === JSON.stringify(vxlan), 3000, 20);
    await t.lab.exec(node1.pods[0]!.ns, 'ping', ['-c', '1', '-W', '2', node2.pods[0]!.ip]);
    expect(a.logs).toContainEqual(expect.objectContaining({ level: 30, node: 'node1', msg: expect.stringMatching(/^node node1 has no problem any more \(it had: --iface uplink: /) }));
  });
});

// --public-ip, Flannel's, in the kernel: without --iface, an interface holding the address is the underlay and the
// address the VXLAN source, as Flannel looks the interface up by it. node1's eth0 holds 192.168.60.1 (its Node's
// InternalIP) and 192.168.60.201, which its Node names for the other nodes (Flannel's public-ip-overwrite); with
// --public-ip 192.168.60.201 node1's device sends from it, with the MAC the other nodes derive from it, and pod11
// and pod21 reach each other both ways. (What the flag announces on the Node is tested in component.test.ts.)
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24, 192.168.60.201/24 ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 192.168.60.2/24                    ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import type { OverlayTopology, TestNode } from './topology.ts';
import { twoNodes, vxlanDevice } from './two-nodes.ts';

describe('netplane overlay --public-ip', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodes('s23cpub', {
      async prepare({ t, node1 }) {
        await t.lab.exec(node1.ns, 'ip', ['addr', 'add', '192.168.60.201/24', 'dev', 'eth0']);
      },
      nodes: ({ node1, node2 }) => [
        { name: 'node1', ip: node1.ip, podCIDR: node1.podCIDR, annotations: { 'flannel.alpha.coreos.com/public-ip-overwrite': '192.168.60.201' } },
        { name: 'node2', ip: node2.ip, podCIDR: node2.podCIDR },
      ],
    }));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('sends from the interface holding it, and pods reach each other', async () => {
    await t.startAgent(node1, ['--resync-period', '1h', '--public-ip', '192.168.60.201']);
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ address: derivedMac('192.168.60.201'), local: '192.168.60.201' });
    expect(await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);
    expect(await t.probe(node2.pods[0]!.ns, 'tcp', node1.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod11' })]);
  });
});

// --mtu larger than a lowered underlay carries: the device's MTU is cut to the underlay's less 50, with a warning,
// and programming goes on (it used to stop: no device was planned, so the device kept an MTU the underlay could
// not carry and a node added meanwhile got no entries). Once the underlay's MTU is back, the device has --mtu again.
// node1 runs with --mtu 1400 on a 1500 underlay; eth0 goes down to 1400, node3 joins, eth0 goes back to 1500.
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

describe('netplane overlay --mtu above what the underlay carries', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  const mtus = async () => {
    const links = JSON.parse(await t.sh(node1.ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string; mtu: number }>;
    return Object.fromEntries(links.filter((l) => /^(eth0|netplane)/.test(l.ifname)).map((l) => [l.ifname, l.mtu]));
  };

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1, false, 4, `s23cmtu${randomBytes(2).toString('hex')}`);
    node1 = t.nodes[0]!;
    await t.writeNodes(t.nodes.slice(0, 2));
    await t.startAgent(node1, ['--mtu', '1400', '--resync-period', '1h']);
    await t.startAgent(t.nodes[1]!, ['--resync-period', '1h']);
    // node3 is not in the manifests yet: it has nothing to sync until it joins.
    await t.startAgent(t.nodes[2]!, ['--resync-period', '1h'], (l) => l.msg === 'overlay running');
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('cuts the device to the lowered underlay with a warning, programs a node that joins, and goes back to --mtu', async () => {
    expect(await mtus()).toEqual({ eth0: 1500, 'netplane.1': 1400 });
    await t.lab.exec(node1.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
    await waitFor('the device to be cut to 1350', async () => isDeepStrictEqual(await mtus(), { eth0: 1400, 'netplane.1': 1350 }), 3000);
    const warned = t.agents.get('node1')!.logs.find((l) => /--mtu 1400 does not fit: the underlay eth0 has MTU 1400, so at most 1350 is left for VXLAN; using 1350/.test(String(l.msg)));
    expect(warned?.level).toBe(40);
    await t.writeNodes();
    const pod31 = t.nodes[2]!.pods[0]!;
    await waitFor('pod11 to reach pod31', async () => (await t.probe(node1.pods[0]!.ns, 'tcp', pod31.ip))[0]?.ok, 10_000, 200);
    await t.lab.exec(node1.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1500']);
    await waitFor('the device back at --mtu', async () => isDeepStrictEqual(await mtus(), { eth0: 1500, 'netplane.1': 1400 }), 3000);
  });
});

// netplane overlay in the kernel around its device: this node's podCIDR (so its VTEP address) changing while it
// runs and while it is down, with a resync far away so that nothing but the change itself can make it right; and a
// leftover flannel.1 holding the VNI and port. Real packets between two nodes; every namespace is removed at the end.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onLogLines } from '../../lab/log-lines.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const slow = ['--resync-period', '5m'];

describe("netplane overlay in the kernel: this node's VTEP address, and a leftover flannel.1", () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;
  const metric = async (n: TestNode, line: string) => {
    const text = await t.sh(n.ns, 'curl', ['-sf', 'http://127.0.0.1:10247/metrics']);
    return Number(text.split('\n').find((l) => l.startsWith(`${line} `))?.split(' ')[1]);
  };
  const routes = async (n: TestNode) => (await t.sh(n.ns, 'ip', ['route', 'show', 'dev', 'netplane.1'])).trim().split('\n').filter(Boolean);
  const arp = async (n: TestNode) => (await t.sh(n.ns, 'ip', ['neigh', 'show', 'dev', 'netplane.1', 'nud', 'permanent'])).trim().split('\n').filter(Boolean);
  const nodes = (podCIDR1: string) => [{ ...node(1), podCIDR: podCIDR1 }, node(2)];

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1);
    await t.writeNodes();
    await Promise.all(t.nodes.map((n) => t.startAgent(n, slow)));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('a new podCIDR of this node: the other nodes stay routed, reached at once from the new VTEP address', async () => {
    const [n1, n2] = [node(1), node(2)];
    expect(await routes(n1)).toEqual(['10.244.2.0/24 via 10.244.2.0 proto static onlink']);
    await t.writeNodes(nodes('10.244.31.0/24'));
    await waitFor("node1's new VTEP address", async () => (await t.sh(n1.ns, 'ip', ['addr', 'show', 'dev', 'netplane.1'])).includes('inet 10.244.31.0/32'), 5000);
    await waitFor("node2's route to node1's new podCIDR", async () => (await routes(n2)).includes('10.244.31.0/24 via 10.244.31.0 proto static onlink'), 5000);
    expect(await routes(n1)).toEqual(['10.244.2.0/24 via 10.244.2.0 proto static onlink']);
    expect(await arp(n1)).toEqual([expect.stringMatching(/^10\.244\.2\.0 lladdr \S+ PERMANENT$/)]);
    expect(await t.probe(n1.ns, 'tcp', n2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21', seenAs: '10.244.31.0' })]);
    expect(await metric(n1, 'netplane_overlay_entries{kind="route"}')).toBe(1);
    expect(await metric(n1, 'netplane_overlay_nodes{state="usable"}')).toBe(2);
  });

  it('restarted after its podCIDR changed while it was down: routed right after its first sync', async () => {
    const [n1, n2] = [node(1), node(2)];
    expect(await routes(n1)).toEqual(['10.244.2.0/24 via 10.244.2.0 proto static onlink']);
    await t.stopAgent(n1);
    await t.writeNodes(nodes('10.244.41.0/24'));
    await waitFor("node2's route to 10.244.41.0/24", async () => (await routes(n2)).includes('10.244.41.0/24 via 10.244.41.0 proto static onlink'), 5000);
    await t.startAgent(n1, slow);
    expect(await routes(n1)).toEqual(['10.244.2.0/24 via 10.244.2.0 proto static onlink']);
    expect(await t.probe(n1.ns, 'tcp', n2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21', seenAs: '10.244.41.0' })]);
    // Back to the podCIDR its pod is in, while it runs.
    await t.writeNodes();
    await waitFor("node1's first VTEP address again", async () => (await t.sh(n1.ns, 'ip', ['addr', 'show', 'dev', 'netplane.1'])).includes('inet 10.244.1.0/32'), 5000);
    await waitFor("node2's route back to 10.244.1.0/24", async () => (await routes(n2)).includes('10.244.1.0/24 via 10.244.1.0 proto static onlink'), 5000);
    expect(await t.probe(n1.pods[0]!.ns, 'tcp', n2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21', seenAs: n1.pods[0]!.ip })]);
  });

  it('a leftover flannel.1 on the VNI and port: an error naming it and what to do, no node usable, then programmed once it is gone', async () => {
    const n2 = node(2);
    await t.stopAgent(n2);
    await t.lab.exec(n2.ns, 'ip', ['link', 'del', 'netplane.1']);
    await t.lab.exec(n2.ns, 'ip', ['link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'local', n2.ip, 'dev', 'eth0', 'nolearning']);
    const proc = t.lab.spawn(n2.ns, process.execPath, [bin, 'overlay', '--manifests', t.dir, '--node-name', n2.name, '--cluster-cidr', '10.244.0.0/16', '--admin', '127.0.0.1:10247']);
    const logs: Array<Record<string, unknown>> = [];
    onLogLines(proc.stdout!, (r) => logs.push(r));
    await waitFor('the failure', () => logs.some((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync'), 15_000);
    const failure = logs.find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync')!;
    expect(failure.errors).toEqual([expect.stringMatching(/cannot create netplane\.1: device flannel\.1 already has VXLAN VNI 1 on port 8472, .*ip link delete flannel\.1/)]);
    await waitFor('the admin server', async () => !Number.isNaN(await metric(n2, 'netplane_overlay_nodes{state="usable"}').catch(() => NaN)), 5000);
    expect(await metric(n2, 'netplane_overlay_nodes{state="usable"}')).toBe(0);
    expect(await metric(n2, 'netplane_overlay_nodes{state="unprogrammed"}')).toBe(2);
    await t.lab.exec(n2.ns, 'ip', ['link', 'del', 'flannel.1']);
    await waitFor('the retry to program it', () => logs.some((l) => l.msg === 'overlay synced'), 10_000);
    expect(await metric(n2, 'netplane_overlay_nodes{state="usable"}')).toBe(2);
    expect(await t.probe(n2.pods[0]!.ns, 'tcp', node(1).pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod11' })]);
  });
});

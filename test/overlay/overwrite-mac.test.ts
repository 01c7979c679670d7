// From manifests nothing publishes a node's VTEP MAC: every node derives it from the address it reads for that node.
// So a node must give its own device the MAC derived from that address — Flannel's public-ip-overwrite when set, else
// its Node's address — not from its VXLAN source, or the others' frames to it carry a MAC its device drops. node1's
// eth0 holds 192.168.60.1 (its Node's InternalIP, the source) and 192.168.60.201 (its overwrite, where the others
// send); node3's Node names 192.168.60.3 while `--public-ip 192.168.60.203` makes that the source. Pods of all three
// nodes reach each other both ways.
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24, 192.168.60.201/24 ── cni0 ── pod11 10.244.1.11
//                  ├─ node2 eth0 192.168.60.2/24                    ── cni0 ── pod21 10.244.2.11
//                  └─ node3 eth0 192.168.60.3/24, 192.168.60.203/24 ── cni0 ── pod31 10.244.3.11
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

describe('netplane overlay from manifests: a node reached at another address than its VXLAN source', () => {
  let t: OverlayTopology;
  let nodes: TestNode[];
  const run = ['--resync-period', '1h'];

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1, false, 4, `s23eow${randomBytes(2).toString('hex')}`);
    nodes = t.nodes;
    await t.lab.exec(nodes[0]!.ns, 'ip', ['addr', 'add', '192.168.60.201/24', 'dev', 'eth0']);
    await t.lab.exec(nodes[2]!.ns, 'ip', ['addr', 'add', '192.168.60.203/24', 'dev', 'eth0']);
    await t.writeNodes(nodes.map((n, i) => ({ name: n.name, ip: n.ip, podCIDR: n.podCIDR, ...(i === 0 ? { annotations: { 'flannel.alpha.coreos.com/public-ip-overwrite': '192.168.60.201' } } : {}) })));
    await t.startAgent(nodes[0]!, run);
    await t.startAgent(nodes[1]!, run);
    await t.startAgent(nodes[2]!, [...run, '--public-ip', '192.168.60.203']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  const device = async (n: TestNode) => {
    const [dev] = JSON.parse(await t.sh(n.ns, 'ip', ['-j', '-d', 'link', 'show', 'netplane.1'])) as Array<{ address: string; linkinfo: { info_data: { local?: string } } }>;
    return { mac: dev!.address, local: dev!.linkinfo.info_data.local };
  };

  it('gives each device the MAC the other nodes derive for it, and keeps the source the interface address', async () => {
    expect(await device(nodes[0]!)).toEqual({ mac: derivedMac('192.168.60.201'), local: '192.168.60.1' });
    expect(await device(nodes[1]!)).toEqual({ mac: derivedMac('192.168.60.2'), local: '192.168.60.2' });
    expect(await device(nodes[2]!)).toEqual({ mac: derivedMac('192.168.60.3'), local: '192.168.60.203' });
    const fdb = await t.sh(nodes[1]!.ns, 'bridge', ['fdb', 'show', 'dev', 'netplane.1']);
    expect(fdb).toContain(`${derivedMac('192.168.60.201')} dst 192.168.60.201 self permanent`);
    expect(fdb).toContain(`${derivedMac('192.168.60.3')} dst 192.168.60.3 self permanent`);
  });

  it.each([
    [1, 2],
    [2, 1],
    [1, 3],
    [3, 1],
    [2, 3],
    [3, 2],
  ])('pod%i1 reaches pod%i1', async (from, to) => {
    const res = await t.probe(nodes[from - 1]!.pods[0]!.ns, 'tcp', nodes[to - 1]!.pods[0]!.ip);
    expect(res).toEqual([expect.objectContaining({ ok: true, name: `pod${to}1` })]);
  });
});

// netplane overlay keeps what works when the Nodes turn bad, tested in the kernel with real packets: a new Node
// with a working node's podCIDR or address is left out (the working node keeps its entries), and a working node
// whose object loses its addresses or gets a malformed MAC annotation keeps its last good entries. Three nodes on an
// underlay bridge, one pod each; scenarios run in order on one network.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { overlayEntries } from './entries.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

/** A Node document: name, podCIDR, addresses and annotations as given (none left out, nothing added). */
interface Doc {
  name: string;
  podCIDR?: string;
  ips?: string[];
  annotations?: Record<string, string>;
  /** metadata.creationTimestamp: of two Nodes that claim one value, the older keeps it. */
  created?: string;
}

/** node i's entries on another node, as overlayEntries prints them. */
const entriesOf = (i: number, mac = derivedMac(`192.168.60.${i}`)) => [`fdb ${mac} 192.168.60.${i}`, `neigh 10.244.${i}.0 ${mac}`, `route 10.244.${i}.0/24 via 10.244.${i}.0`];

describe('netplane overlay keeps what works when Nodes turn bad', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node3: TestNode;
  const working: Doc[] = [1, 2, 3].map((i) => ({ name: `node${i}`, podCIDR: `10.244.${i}.0/24`, ips: [`192.168.60.${i}`], created: '2020-01-01T00:00:00Z' }));

  async function write(docs: Doc[], file = 'nodes.yaml'): Promise<void> {
    const text = docs.map((d) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: d.name, ...(d.annotations ? { annotations: d.annotations } : {}), ...(d.created ? { creationTimestamp: d.created } : {}) },
        spec: d.podCIDR ? { podCIDR: d.podCIDR } : {},
        status: { addresses: (d.ips ?? []).map((address) => ({ type: 'InternalIP', address })) },
      }),
    );
    await writeFile(join(t.dir, file), text.join('\n---\n'));
  }

  /** Waits for a warning on node1's agent whose message includes `text`. */
  const warned = (text: string) => waitFor(`node1 to warn "${text}"`, () => t.agents.get('node1')!.logs.some((l) => l.level === 40 && String(l.msg).includes(text)), 5000, 10);
  const ping = (from: TestNode, to: TestNode) => t.lab.exec(from.pods[0]!.ns, 'ping', ['-c', '1', '-W', '1', to.pods[0]!.ip]);

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1, false, 4, `s20i${randomBytes(3).toString('hex')}`);
    [node1, , node3] = t.nodes as [TestNode, TestNode, TestNode];
    await write(working);
    await Promise.all(t.nodes.map((n) => t.startAgent(n, ['--resync-period', '1h'])));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it.each<[string, Doc, string]>([
    ["node0 with node3's podCIDR", { name: 'node0', podCIDR: '10.244.3.0/24', ips: ['192.168.60.50'], created: '2024-01-01T00:00:00Z' }, "node node0 its podCIDR 10.244.3.0/24 overlaps node node3's 10.244.3.0/24; left out"],
    ["node0 with node3's underlay address", { name: 'node0', podCIDR: '10.244.50.0/24', ips: ['192.168.60.3'], created: '2024-01-01T00:00:00Z' }, "node node0 its underlay address 192.168.60.3 is also node node3's; left out"],
  ])('%s (made later) is left out with a warning naming both; node3 keeps its entries', async (_name, newcomer, warning) => {
    await write([...working, newcomer]);
    await warned(warning);
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await ping(node1, node3);
    await write(working);
  });

  it('node3 rewritten without addresses keeps its entries on node1 until it is fixed', async () => {
    await write([working[0]!, working[1]!, { name: 'node3', podCIDR: '10.244.3.0/24' }]);
    await warned('node node3 it has no IPv4 underlay address; its last good entries stay (underlay 192.168.60.3');
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await ping(node1, node3);
    await write(working);
    await waitFor("node1 to say node3's problem is gone", () => t.agents.get('node1')!.logs.some((l) => String(l.msg).startsWith('node node3 has no problem any more')), 5000, 10);
  });

  it.each<[string, Doc]>([
    ['its addresses', { name: 'node3', podCIDR: '10.244.3.0/24', created: '2020-01-01T00:00:00Z' }],
    ['its podCIDR', { name: 'node3', ips: ['192.168.60.3'], created: '2020-01-01T00:00:00Z' }],
  ])("node3 that lost %s while node1's agent was down keeps its entries on node1 after the restart (read back from the kernel)", async (_what, broken) => {
    await t.stopAgent(node1);
    await write([working[0]!, working[1]!, broken]);
    const agent = await t.startAgent(node1, ['--resync-period', '1h'], (l) => l.msg === 'overlay synced');
    expect(agent.logs.some((l) => l.level === 40 && String(l.msg).includes('its last good entries stay (underlay 192.168.60.3'))).toBe(true);
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await ping(node1, node3);
    await write(working);
    await waitFor("node1 to say node3's problem is gone", () => agent.logs.some((l) => String(l.msg).startsWith('node node3 has no problem any more')), 5000, 10);
  });

  it('node3 with an invalid netplane.io/vtep-mac keeps its last good MAC', async () => {
    const annotated = { ...working[2]!, annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:03' } };
    await write([working[0]!, working[1]!, annotated]);
    await waitFor("node1's entries for node3 to use the annotated MAC", async () => (await overlayEntries(t.lab, node1.ns)).includes('neigh 10.244.3.0 0a:00:00:00:00:03'), 5000, 10);
    // node3 itself must use it too, or nothing arrives.
    await write([working[0]!, working[1]!, { ...annotated, annotations: { 'netplane.io/vtep-mac': 'not-a-mac' } }]);
    await warned("node node3 its MAC annotation is malformed; its last good entries stay");
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3, '0a:00:00:00:00:03')].sort());
    // node3's own device keeps that MAC too: the pods still reach each other.
    expect(await t.sh(node3.ns, 'ip', ['link', 'show', 'netplane.1'])).toContain('link/ether 0a:00:00:00:00:03');
    await ping(node1, node3);
    await write(working);
    await waitFor("node1's entries for node3 to use the derived MAC again", async () => JSON.stringify(await overlayEntries(t.lab, node1.ns)) === JSON.stringify([...entriesOf(2), ...entriesOf(3)].sort()), 5000, 10);
    await ping(node1, node3);
  });

  it('never deletes an interface of another kind named by --device: says so, is not ready, retries, and makes the device once the name is free', async () => {
    await t.stopAgent(node3);
    await t.lab.exec(node3.ns, 'ip', ['link', 'add', 'victim3', 'type', 'veth', 'peer', 'name', 'victim3p']);
    await t.lab.exec(node3.ns, 'ip', ['addr', 'add', '172.31.3.1/24', 'dev', 'victim3']);
    // Another VNI: the stopped agent's netplane.1 (VNI 1) stays.
    const taken = 'the device name victim3 is taken by a veth device, which netplane does not delete';
    const agent = await t.startAgent(node3, ['--device', 'victim3', '--vni', '3', '--resync-period', '1s'], (l) => l.level === 50 && String(l.msg).startsWith(taken));
    const readyz = () => t.lab.exec(node3.ns, 'curl', ['-s', '-w', ' %{http_code}', 'http://127.0.0.1:10247/readyz']).then((r) => r.stdout);
    expect(await readyz()).toMatch(new RegExp(`${taken}.* 503$`, 's'));
    // Retried (a second failed sync), still running, the veth and its address untouched.
    await waitFor('a retry', () => agent.logs.filter((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync').length >= 2, 5000, 10);
    expect(agent.proc.exitCode).toBeNull();
    expect(await t.sh(node3.ns, 'ip', ['-d', 'addr', 'show', 'victim3'])).toMatch(/veth[\s\S]*inet 172\.31\.3\.1\/24/);
    // Said once, not at every retry.
    expect(agent.logs.filter((l) => String(l.msg).startsWith(taken))).toHaveLength(1);
    await t.lab.exec(node3.ns, 'ip', ['link', 'delete', 'victim3']);
    await waitFor('the VXLAN device victim3', async () => (await t.sh(node3.ns, 'ip', ['-d', 'link', 'show', 'victim3']).catch(() => '')).includes('vxlan id 3'), 5000, 20);
    await waitFor('/readyz to pass', async () => (await readyz()).endsWith(' 200'), 5000, 20);
    await t.stopAgent(node3);
    await t.lab.exec(node3.ns, 'ip', ['link', 'delete', 'victim3']);
    await t.startAgent(node3, ['--resync-period', '1h']);
    await ping(node1, node3);
  });

  it('after a restart, a Node in a manifest file rejected since it was first seen keeps its entries until every file is read', async () => {
    await write(working.slice(0, 2));
    await write([working[2]!], 'node3.yaml');
    await new Promise((r) => setTimeout(r, 500));
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await write([{ ...working[2]!, podCIDR: '10.244.3.0/33' }], 'node3.yaml');
    await waitFor('node1 to reject node3.yaml', () => t.agents.get('node1')!.logs.some((l) => Number(l.level) >= 40 && String(l.msg).includes('node3.yaml')), 5000, 10);
    await t.stopAgent(node1);
    const agent = await t.startAgent(node1, ['--resync-period', '1h'], (l) => l.msg === 'overlay synced');
    expect(agent.logs.find((l) => String(l.msg).startsWith('the overlay removes no entries of nodes that are not in the view'))?.msg).toMatch(/node3\.yaml/);
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await ping(node1, node3);
    const metrics = (await t.lab.exec(node1.ns, 'curl', ['-s', 'http://127.0.0.1:10247/metrics'])).stdout;
    expect(metrics).toMatch(/^netplane_overlay_unread_sources 1$/m);
    // The file read at last (now naming another node): node3's entries are stale and go.
    await write([{ name: 'node4', podCIDR: '10.244.4.0/24', ips: ['192.168.60.4'] }], 'node3.yaml');
    await waitFor("node1 to remove node3's entries", async () => JSON.stringify(await overlayEntries(t.lab, node1.ns)) === JSON.stringify([...entriesOf(2), ...entriesOf(4)].sort()), 5000, 20);
    expect(agent.logs.some((l) => l.msg === 'every manifest file has been read: entries of nodes that are not in the view are removed again')).toBe(true);
  });

  it('a never-read file removed instead of fixed: the entries of its node go at once, not at the next resync', async () => {
    await write(working.slice(0, 2));
    await write([working[2]!], 'node3.yaml');
    await waitFor("node1 to program node3's entries", async () => JSON.stringify(await overlayEntries(t.lab, node1.ns)) === JSON.stringify([...entriesOf(2), ...entriesOf(3)].sort()), 5000, 20);
    await write([{ ...working[2]!, podCIDR: '10.244.3.0/33' }], 'node3.yaml');
    await t.stopAgent(node1);
    await t.startAgent(node1, ['--resync-period', '1h'], (l) => l.msg === 'overlay synced');
    expect(await overlayEntries(t.lab, node1.ns)).toEqual([...entriesOf(2), ...entriesOf(3)].sort());
    await rm(join(t.dir, 'node3.yaml'));
    await waitFor("node1 to remove node3's entries", async () => JSON.stringify(await overlayEntries(t.lab, node1.ns)) === JSON.stringify(entriesOf(2).sort()), 5000, 20);
    await write(working);
  });

  it('a route to a podCIDR with the same gateway but another metric is removed (as soon as it is seen, and when the node goes)', async () => {
    const routes = async () => (await t.sh(node1.ns, 'ip', ['route', 'show', '10.244.2.0/24'])).trim().split('\n').filter(Boolean);
    await t.lab.exec(node1.ns, 'ip', ['route', 'add', '10.244.2.0/24', 'via', '10.244.2.0', 'dev', 'netplane.1', 'onlink', 'metric', '100', 'proto', 'static']);
    // Seen at once (the entry watch), not at the next resync (1 h): only the agent's route stays.
    await waitFor('the metric-100 route to go', async () => (await routes()).length === 1, 5000, 20);
    expect(await routes()).toEqual(['10.244.2.0/24 via 10.244.2.0 dev netplane.1 proto static onlink']);
    // Added again, and node2 deleted in the same moment: neither route stays.
    await t.lab.exec(node1.ns, 'ip', ['route', 'add', '10.244.2.0/24', 'via', '10.244.2.0', 'dev', 'netplane.1', 'onlink', 'metric', '100', 'proto', 'static']);
    await write([working[0]!, working[2]!]);
    await waitFor('no route to node2', async () => (await routes()).length === 0, 5000, 20);
    await write(working);
    await waitFor('the route to node2', async () => (await routes()).length === 1, 5000, 20);
    expect(await routes()).toEqual(['10.244.2.0/24 via 10.244.2.0 dev netplane.1 proto static onlink']);
  });
});

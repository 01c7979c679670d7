// The overlay agent against the in-memory kernel: start-up reconciliation, Node changes, restarts, batching,
// failures and retries, and the masquerade and publishing hooks. Kernel state is asserted as sorted text dumps.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent } from '../../overlay/agent.ts';
import { FakeKernel, type KernelMethod } from '../../overlay/kernel/fake.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import type { SelfVtep } from '../../overlay/plan/types.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';
import { clusterNode, options1 } from './fixtures.ts';

const mac = (i: number) => derivedMac(`192.168.60.${i}`);
const reads = new Set<KernelMethod>(['link', 'links', 'addresses', 'neighbours', 'fdb', 'routes', 'routesByProtocol']);

/** The dump lines of node1's overlay device for the given remotes (numbers), sorted as dump() sorts them. */
function expected(remotes: number[]): string[] {
  return [
    'addr netplane.1 10.244.1.0/32',
    `link netplane.1 vxlan vni 1 port 8472 local 192.168.60.1 dev eth0 nolearning mtu 1450 up mac ${mac(1)}`,
    ...remotes.flatMap((i) => [
      `neigh netplane.1 10.244.${i}.0 lladdr ${mac(i)} permanent`,
      `fdb netplane.1 ${mac(i)} dst 192.168.60.${i} self permanent`,
      `route 10.244.${i}.0/24 via 10.244.${i}.0 dev netplane.1 onlink`,
    ]),
  ].sort();
}
/** The kernel's lines about the overlay device, without its IPv6 link-local address. */
const lines = (k: FakeKernel) => k.dump().split('\n').filter((l) => l.includes('netplane.1') && !l.includes(' fe80:'));

function host(): FakeKernel {
  return new FakeKernel([
    { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', up: true, addresses: ['192.168.60.1/24'] },
  ]);
}

interface Rig {
  agent: OverlayAgent;
  store: Store;
  kernel: FakeKernel;
  registry: Registry;
  records: Array<Record<string, unknown>>;
  masq: string[][];
  selves: SelfVtep[];
}

const agents: OverlayAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

interface Extra {
  clusterCIDRs?: string[];
  failMasquerade?: number;
  resyncPeriodMs?: number;
  retryBaseMs?: number;
  /** Wait for the first sync to have run, not for it to have succeeded (retries may be pending). */
  noSettle?: boolean;
  /** --direct-routing. */
  directRouting?: boolean;
}

async function start(nodes: Node[], kernel = host(), extra: Extra = {}): Promise<Rig> {
  const store = new Store(['Node']);
  store.apply(nodes.map((object) => ({ kind: 'Node' as const, object })));
  store.markSynced('Node');
  const registry = new Registry();
  const { log, records } = captureLogger();
  const masq: string[][] = [];
  const selves: SelfVtep[] = [];
  let failMasquerade = extra.failMasquerade ?? 0;
  const agent = new OverlayAgent({
    kernel,
    store,
    overlay: { ...options1, directRouting: extra.directRouting ?? false },
    clusterCIDRs: extra.clusterCIDRs ?? ['10.244.0.0/16'],
    masquerade: {
      async sync(cidrs, _vxlan, force) {
        if (failMasquerade-- > 0) throw new Error('nft: no');
        // Like Masquerade: nft runs only for new rules or a full sync.
        if (!force && JSON.stringify(masq.at(-1)) === JSON.stringify(cidrs)) return false;
        masq.push([...cidrs]);
        return true;
      },
    },
    metrics: registerOverlayMetrics(registry),
    log,
    resyncPeriodMs: extra.resyncPeriodMs ?? 60_000,
    retryBaseMs: extra.retryBaseMs ?? 2,
    onSelf: (s) => selves.push(s),
  });
  agents.push(agent);
  agent.start();
  if (extra.noSettle) await waitFor('the first sync', () => records.some((l) => Number(l.level) >= 30 && /overlay synced|programming the overlay failed/.test(String(l.msg))));
  else await agent.settled();
  return { agent, store, kernel, registry, records, masq, selves };
}

async function metric(r: Rig, name: string): Promise<string[]> {
  return (await r.registry.metrics()).split('\n').filter((l) => l.startsWith(name));
}

const put = (r: Rig, ...nodes: Node[]) => r.store.apply(nodes.map((object) => ({ kind: 'Node' as const, object })));
const remove = (r: Rig, ...names: string[]) => r.store.apply(names.map((key) => ({ kind: 'Node' as const, key, object: undefined })));
const mutations = (k: FakeKernel) => k.calls.filter((c) => !reads.has(c));

describe('OverlayAgent', () => {
  it('creates the device and programs a neighbour, an FDB entry and a route for every other node', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)]);
    expect(lines(r.kernel)).toEqual(expected([2, 3]));
    expect(r.masq).toEqual([['10.244.0.0/16']]);
    expect(r.selves).toEqual([{ mac: mac(1), ip: '192.168.60.1', ip4: '192.168.60.1' }]);
    expect(await metric(r, 'netplane_overlay_entries')).toEqual(expect.arrayContaining(['netplane_overlay_entries{kind="fdb"} 2', 'netplane_overlay_entries{kind="route"} 2']));
    expect(await metric(r, 'netplane_overlay_nodes')).toEqual(expect.arrayContaining(['netplane_overlay_nodes{state="usable"} 3']));
  });

  it('follows Node changes: a node added, a node removed, a node whose address changed', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)]);
    put(r, clusterNode(4));
    remove(r, 'node2');
    await r.agent.settled();
    expect(lines(r.kernel)).toEqual(expected([3, 4]));
    put(r, clusterNode(3, { ip: '192.168.60.13', annotations: { 'netplane.io/vtep-mac': mac(3) } }));
    await r.agent.settled();
    const fdb = lines(r.kernel).filter((l) => l.startsWith('fdb'));
    expect(fdb).toEqual([`fdb netplane.1 ${mac(3)} dst 192.168.60.13 self permanent`, `fdb netplane.1 ${mac(4)} dst 192.168.60.4 self permanent`].sort());
    expect((await metric(r, 'netplane_overlay_programming_duration_seconds_count'))[0]).toBe('netplane_overlay_programming_duration_seconds_count 3');
  });

  it('at start reconciles with the kernel: entries of vanished nodes go, missing ones come, nothing is duplicated', async () => {
    const kernel = host();
    const first = await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel);
    await first.agent.stop();
    const before = kernel.calls.length;
    // Restarted with the same cluster: only reads.
    await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel);
    expect(mutations({ calls: kernel.calls.slice(before) } as FakeKernel)).toEqual([]);
    // Restarted after node2 went away and node5 came: exactly the difference.
    const again = kernel.calls.length;
    const r = await start([clusterNode(1), clusterNode(3), clusterNode(5)], kernel);
    expect(lines(kernel)).toEqual(expected([3, 5]));
    expect(mutations({ calls: kernel.calls.slice(again) } as FakeKernel).sort()).toEqual(
      ['deleteFdb', 'deleteNeighbour', 'deleteRoute', 'replaceFdb', 'replaceNeighbour', 'addRoute'].sort(),
    );
    expect(r.selves[0]?.mac).toBe(mac(1));
  });

  it('programs a /32 and a /128 podCIDR as routes of that length, without a failure', async () => {
    const r = await start([clusterNode(1, { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] }), clusterNode(5, { podCIDRs: ['10.244.5.0/32', 'fd00:244:7::/128'] })]);
    expect(lines(r.kernel).filter((l) => l.startsWith('route'))).toEqual([
      'route 10.244.5.0/32 via 10.244.5.0 dev netplane.1 onlink',
      'route fd00:244:7::/128 via fd00:244:7:: dev netplane.1 onlink',
    ]);
    expect(r.records.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(r.agent.health()).toEqual({ ok: true });
  });

  it('batches the Nodes of one event-loop turn into one sync: 200 nodes, 600 entries', async () => {
    const r = await start([clusterNode(1)]);
    const syncs = () => r.records.filter((l) => l.msg === 'overlay synced').length;
    const n = syncs();
    put(r, ...Array.from({ length: 200 }, (_, i) => clusterNode(i + 2)));
    await r.agent.settled();
    expect(syncs()).toBe(n + 1);
    const d = lines(r.kernel);
    expect(d.filter((l) => /^(neigh|fdb|route) /.test(l))).toHaveLength(600);
    expect(r.records.at(-1)).toMatchObject({ operations: 600, remotes: 200, seenMs: expect.any(Number) });
  });

  it('keeps what works when an operation fails, counts the error, and retries with a full sync', async () => {
    const kernel = host();
    kernel.failNext('addRoute', 'EIO');
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel);
    await r.agent.settled();
    expect(lines(kernel)).toEqual(expected([2, 3]));
    expect(await metric(r, 'netplane_overlay_programming_errors_total')).toContain('netplane_overlay_programming_errors_total{kind="route"} 1');
    const failure = r.records.find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync');
    expect(failure).toMatchObject({ level: 50, failed: 1 });
    expect(r.records.filter((l) => l.msg === 'overlay synced').at(-1)).toMatchObject({ full: true });
  });

  describe("one node's entry that the kernel refuses every time (another device's route to its podCIDR)", () => {
    /** A host whose eth0 already routes 10.244.5.0/24 (a static route someone added): node5's route is refused. */
    async function taken(): Promise<FakeKernel> {
      const kernel = host();
      const eth0 = (await kernel.link('eth0'))!.index;
      await kernel.addRoute({ dst: '10.244.5.0/24', gateway: '192.168.60.254', index: eth0, onlink: false });
      return kernel;
    }
    const foreign = 'route 10.244.5.0/24 via 192.168.60.254 dev eth0';

    it('programs the other nodes, names the node, never takes the route over, and leaves it when the node goes', async () => {
      const r = await start([clusterNode(1), clusterNode(2), clusterNode(5)], await taken(), { retryBaseMs: 60_000, noSettle: true });
      await waitFor('node2 programmed', () => lines(r.kernel).includes('route 10.244.2.0/24 via 10.244.2.0 dev netplane.1 onlink'));
      expect(r.kernel.dump()).toContain(foreign);
      const failure = r.records.find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync');
      expect(failure).toMatchObject({ failed: 1, errors: [expect.stringMatching(/^route add 10\.244\.5\.0\/24 via 10\.244\.5\.0 onlink \(node node5\): addRoute 10\.244\.5\.0\/24: EEXIST/)] });
      remove(r, 'node5');
      await waitFor("node5's neighbour and FDB entries removed", () => !lines(r.kernel).some((l) => l.includes('10.244.5.0') || l.includes(mac(5))));
      expect(r.kernel.dump()).toContain(foreign);
      expect(lines(r.kernel)).toEqual(expected([2]));
    });

    it('does not hold back a Node change until the retry: it is programmed at once', async () => {
      // The retry after the failure is a minute away.
      const r = await start([clusterNode(1), clusterNode(5)], await taken(), { retryBaseMs: 60_000, noSettle: true });
      const t0 = performance.now();
      put(r, clusterNode(3));
      await waitFor("node3's route", () => lines(r.kernel).includes('route 10.244.3.0/24 via 10.244.3.0 dev netplane.1 onlink'), 2000);
      expect(performance.now() - t0).toBeLessThan(1000);
      // And a removal too, while the retry still waits.
      remove(r, 'node3');
      await waitFor("node3's entries removed", () => !lines(r.kernel).some((l) => l.includes('10.244.3.0')), 2000);
      expect(performance.now() - t0).toBeLessThan(2000);
    });

    it('keeps the agent healthy past two resync periods, where a failing nft is not', async () => {
      const r = await start([clusterNode(1), clusterNode(2), clusterNode(5)], await taken(), { resyncPeriodMs: 20, noSettle: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(r.agent.health()).toEqual({ ok: true });
      expect(lines(r.kernel)).toEqual(expect.arrayContaining(expected([2])));
      const nft = await start([clusterNode(1), clusterNode(2)], host(), { resyncPeriodMs: 20, failMasquerade: 1000, noSettle: true });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(nft.agent.health()).toMatchObject({ ok: false, reason: expect.stringMatching(/^programming the overlay has failed for/) });
    });
  });

  it('retries when reading the kernel fails, and when nft fails', async () => {
    const kernel = host();
    kernel.failNext('links', 'EPERM', 2);
    const r = await start([clusterNode(1), clusterNode(2)], kernel, { failMasquerade: 1 });
    await r.agent.settled();
    expect(lines(kernel)).toEqual(expected([2]));
    const errors = await metric(r, 'netplane_overlay_programming_errors_total');
    expect(errors).toEqual(expect.arrayContaining(['netplane_overlay_programming_errors_total{kind="read"} 2', 'netplane_overlay_programming_errors_total{kind="nftables"} 1']));
    expect(r.masq).toEqual([['10.244.0.0/16']]);
    expect(r.agent.health()).toEqual({ ok: true });
  });

  it('says that privileges are missing when the kernel answers EPERM', async () => {
    const kernel = host();
    kernel.failNext('createVxlan', 'EPERM');
    const r = await start([clusterNode(1), clusterNode(2)], kernel);
    await r.agent.settled();
    expect(r.records).toContainEqual(expect.objectContaining({ level: 50, hint: 'the overlay needs root or CAP_NET_ADMIN' }));
    expect(lines(kernel)).toEqual(expected([2]));
  });

  it('changes nothing while this node cannot have a device, and programs once it can', async () => {
    const self = clusterNode(1, { podCIDRs: [] });
    const r = await start([self, clusterNode(2)]);
    expect(mutations(r.kernel)).toEqual([]);
    expect(r.masq).toEqual([]);
    expect(r.records).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/^node node1 has no podCIDR yet/) }));
    put(r, clusterNode(1));
    await r.agent.settled();
    expect(lines(r.kernel)).toEqual(expected([2]));
    // The warning has its counterpart once the problem is gone.
    expect(r.records).toContainEqual(expect.objectContaining({ level: 30, node: 'node1', msg: expect.stringMatching(/^node node1 has no problem any more \(it had: has no podCIDR yet/) }));
  });

  it('says nothing of a node with a problem that is deleted: its problem went with it', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3, { podCIDRs: [] })]);
    expect(r.records).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/^node node3 has no podCIDR yet/) }));
    remove(r, 'node3');
    await r.agent.settled();
    expect(r.agent.lastPlan?.problems).toEqual([]);
    expect(r.records.filter((l) => /no problem any more/.test(String(l.msg)))).toEqual([]);
  });

  it('masquerades the pod networks of the known nodes when no cluster CIDR is given', async () => {
    const r = await start([clusterNode(1), clusterNode(2)], host(), { clusterCIDRs: [] });
    put(r, clusterNode(3));
    await r.agent.settled();
    expect(r.masq).toEqual([['10.244.1.0/24', '10.244.2.0/24'], ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']]);
  });

  it('without a cluster CIDR, a node left out does not change the masqueraded networks (0.0.0.0/0 would end masquerading)', async () => {
    const r = await start([clusterNode(1), clusterNode(2)], host(), { clusterCIDRs: [] });
    put(r, clusterNode(7, { podCIDRs: ['0.0.0.0/0'] }), clusterNode(4, { podCIDRs: ['192.168.60.0/24'] }));
    await r.agent.settled();
    expect(r.masq).toEqual([['10.244.1.0/24', '10.244.2.0/24']]);
    expect(r.agent.lastPlan?.problems.map((p) => p.node)).toEqual(['node4', 'node7']);
  });

  it('a full resync repairs what someone else changed: a deleted entry, a downed device, a stray FDB entry', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)]);
    const dev = (await r.kernel.link('netplane.1'))!;
    await r.kernel.deleteFdb({ index: dev.index, mac: mac(2), dst: '192.168.60.2', permanent: true });
    await r.kernel.replaceFdb({ index: dev.index, mac: '0a:00:00:00:00:99', dst: '192.168.60.99', permanent: true });
    await r.kernel.setLink(dev.index, { up: false });
    r.agent.resync();
    await r.agent.settled();
    expect(lines(r.kernel)).toEqual(expected([2, 3]));
  });

  it('makes the device again when its VXLAN attributes differ, keeping its MAC', async () => {
    const kernel = host();
    await kernel.createVxlan({ name: 'netplane.1', vni: 1, port: 4789, local: '192.168.60.1', underlayIndex: 2, learning: true, mtu: 1450, mac: mac(1) });
    const r = await start([clusterNode(1), clusterNode(2)], kernel);
    expect(lines(r.kernel)).toEqual(expected([2]));
  });
});

describe('OverlayAgent --direct-routing', () => {
  /** The routes through eth0, as dump() prints them. */
  const eth0Routes = (k: FakeKernel) => k.dump().split('\n').filter((l) => l.startsWith('route ') && l.includes(' dev eth0'));
  const directLine = (i: number) => `route 10.244.${i}.0/24 via 192.168.60.${i} dev eth0 proto 110`;
  const foreign = 'route 10.99.0.0/16 via 192.168.60.254 dev eth0';
  const device = expected([]);

  it('at start removes the direct routes of nodes gone, keeps working ones untouched, and leaves routes of others', async () => {
    const kernel = host();
    const eth0 = (await kernel.link('eth0'))!.index;
    for (const i of [2, 9]) await kernel.addRoute({ dst: `10.244.${i}.0/24`, gateway: `192.168.60.${i}`, index: eth0, onlink: false, protocol: 110 });
    await kernel.addRoute({ dst: '10.99.0.0/16', gateway: '192.168.60.254', index: eth0, onlink: false });
    const before = kernel.calls.length;
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel, { directRouting: true });
    expect(eth0Routes(kernel)).toEqual([foreign, directLine(2), directLine(3)].sort());
    // No neighbour, FDB entry or route on the device for a node routed directly.
    expect(lines(kernel)).toEqual(device);
    expect(mutations({ calls: kernel.calls.slice(before) } as FakeKernel).sort()).toEqual(['createVxlan', 'setLink', 'addAddress', 'deleteRoute', 'addRoute'].sort());
    expect(await metric(r, 'netplane_overlay_entries{kind="direct"}')).toEqual(['netplane_overlay_entries{kind="direct"} 2']);
    expect(await metric(r, 'netplane_overlay_nodes{state="usable"}')).toEqual(['netplane_overlay_nodes{state="usable"} 3']);
  });

  it('restarted without the flag, moves every node back to VXLAN and leaves no direct route; with it again, back', async () => {
    const kernel = host();
    const eth0 = (await kernel.link('eth0'))!.index;
    await kernel.addRoute({ dst: '10.99.0.0/16', gateway: '192.168.60.254', index: eth0, onlink: false });
    const nodes = [clusterNode(1), clusterNode(2), clusterNode(3)];
    await (await start(nodes, kernel, { directRouting: true })).agent.stop();
    expect(eth0Routes(kernel)).toEqual([foreign, directLine(2), directLine(3)].sort());
    await (await start(nodes, kernel)).agent.stop();
    expect(eth0Routes(kernel)).toEqual([foreign]);
    expect(lines(kernel)).toEqual(expected([2, 3]));
    await start(nodes, kernel, { directRouting: true });
    expect(eth0Routes(kernel)).toEqual([foreign, directLine(2), directLine(3)].sort());
    expect(lines(kernel)).toEqual(device);
  });

  it('follows a node that moves off the underlay network and back, leaving nothing of the other way behind', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)], host(), { directRouting: true });
    put(r, clusterNode(3, { ip: '192.168.61.3' }));
    await r.agent.settled();
    const moved = derivedMac('192.168.61.3');
    expect(eth0Routes(r.kernel)).toEqual([directLine(2)]);
    expect(lines(r.kernel)).toEqual([
      ...device,
      `neigh netplane.1 10.244.3.0 lladdr ${moved} permanent`,
      `fdb netplane.1 ${moved} dst 192.168.61.3 self permanent`,
      'route 10.244.3.0/24 via 10.244.3.0 dev netplane.1 onlink',
    ].sort());
    put(r, clusterNode(3));
    await r.agent.settled();
    expect(eth0Routes(r.kernel)).toEqual([directLine(2), directLine(3)]);
    expect(lines(r.kernel)).toEqual(device);
  });

  it("a direct route the kernel refuses (someone's route to that podCIDR) is logged with the node, never taken over, and the others are programmed", async () => {
    const kernel = host();
    const eth0 = (await kernel.link('eth0'))!.index;
    await kernel.addRoute({ dst: '10.244.3.0/24', gateway: '192.168.60.254', index: eth0, onlink: false });
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel, { directRouting: true, retryBaseMs: 60_000, noSettle: true });
    await waitFor("node2's direct route", () => eth0Routes(kernel).includes(directLine(2)));
    expect(eth0Routes(kernel)).toContain('route 10.244.3.0/24 via 192.168.60.254 dev eth0');
    const failure = r.records.find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync');
    expect(failure).toMatchObject({ failed: 1, errors: [expect.stringMatching(/^direct route add 10\.244\.3\.0\/24 via 192\.168\.60\.3 dev eth0 \(node node3\): addRoute 10\.244\.3\.0\/24: EEXIST/)] });
    expect(await metric(r, 'netplane_overlay_nodes{state="unprogrammed"}')).toEqual(['netplane_overlay_nodes{state="unprogrammed"} 1']);
    expect(r.agent.health()).toEqual({ ok: true });
  });
});

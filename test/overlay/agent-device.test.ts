// The overlay agent against the in-memory kernel, around the device itself: this node's VTEP address changing
// (the kernel drops the device's IPv4 routes and ARP entries with its last IPv4 address), a device of another
// name holding the VNI (a leftover flannel.1), what the nodes gauge reports, and the forward-accept hook.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent, type ForwardSync } from '../../overlay/agent.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { diffOverlay } from '../../overlay/plan/diff.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import { emptyView } from '../../overlay/plan/types.ts';
import { applyChanges, readHost, VniInUseError } from '../../overlay/program.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';
import { clusterNode, options1 } from './fixtures.ts';

const mac = (i: number) => derivedMac(`192.168.60.${i}`);
const dual = (i: number, own?: string) => clusterNode(i, { podCIDRs: [own ?? `10.244.${i}.0/24`, `fd00:244:${i}::/64`] });
/** The kernel's lines about the overlay device, without its IPv6 link-local address. */
const lines = (k: FakeKernel) => k.dump().split('\n').filter((l) => l.includes('netplane.1') && !l.includes(' fe80:'));
const entries = (k: FakeKernel) => lines(k).filter((l) => /^(neigh|route) /.test(l));

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
}

const agents: OverlayAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

async function start(nodes: Node[], kernel = host(), extra: { forward?: ForwardSync; resyncPeriodMs?: number; settle?: boolean } = {}): Promise<Rig> {
  const store = new Store(['Node']);
  store.apply(nodes.map((object) => ({ kind: 'Node' as const, object })));
  store.markSynced('Node');
  const registry = new Registry();
  const { log, records } = captureLogger();
  const agent = new OverlayAgent({
    kernel, store, overlay: options1, clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/32'], metrics: registerOverlayMetrics(registry), log,
    // A resync far away: what a sync leaves must be right without one.
    resyncPeriodMs: extra.resyncPeriodMs ?? 600_000, retryBaseMs: 2,
    ...(extra.forward ? { forward: extra.forward } : {}),
  });
  agents.push(agent);
  agent.start();
  if (extra.settle !== false) await agent.settled();
  else await waitFor('the first sync', () => records.some((l) => /overlay synced|programming the overlay failed/.test(String(l.msg))));
  return { agent, store, kernel, registry, records };
}

async function gauge(r: Rig, line: string): Promise<number | undefined> {
  const m = (await r.registry.metrics()).split('\n').find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.split(' ')[1]);
}

const put = (r: Rig, ...nodes: Node[]) => r.store.apply(nodes.map((object) => ({ kind: 'Node' as const, object })));

describe("OverlayAgent: this node's VTEP address changes", () => {
  it('keeps every remote entry in the kernel when its podCIDR changes, and the view says what the kernel holds', async () => {
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)]);
    const before = entries(r.kernel);
    put(r, clusterNode(1, { podCIDRs: ['10.244.31.0/24'] }));
    await r.agent.settled();
    expect(lines(r.kernel)).toContain('addr netplane.1 10.244.31.0/32');
    expect(lines(r.kernel)).not.toContain('addr netplane.1 10.244.1.0/32');
    expect(entries(r.kernel)).toEqual(before);
    expect(await gauge(r, 'netplane_overlay_entries{kind="route"}')).toBe(2);
    expect(await gauge(r, 'netplane_overlay_nodes{state="usable"}')).toBe(3);
  });

  it('at start, after the podCIDR changed while it was down, leaves every remote entry programmed', async () => {
    const kernel = host();
    const first = await start([clusterNode(1), clusterNode(2)], kernel);
    await first.agent.stop();
    const r = await start([clusterNode(1, { podCIDRs: ['10.244.31.0/24'] }), clusterNode(2)], kernel);
    expect(entries(kernel)).toEqual([`neigh netplane.1 10.244.2.0 lladdr ${mac(2)} permanent`, 'route 10.244.2.0/24 via 10.244.2.0 dev netplane.1 onlink']);
    expect(await gauge(r, 'netplane_overlay_nodes{state="usable"}')).toBe(2);
  });

  it('puts back, in the same sync, the IPv4 entries the kernel drops with the last IPv4 address (its IPv4 podCIDR gone)', async () => {
    const r = await start([dual(1), dual(2)]);
    const before = entries(r.kernel);
    expect(before).toHaveLength(4);
    put(r, clusterNode(1, { podCIDRs: ['fd00:244:1::/64'] }));
    await r.agent.settled();
    expect(lines(r.kernel).filter((l) => l.startsWith('addr'))).toEqual(['addr netplane.1 fd00:244:1::/128']);
    expect(entries(r.kernel)).toEqual(before);
    expect(await gauge(r, 'netplane_overlay_entries{kind="route"}')).toBe(2);
    expect(await gauge(r, 'netplane_overlay_entries{kind="neighbour"}')).toBe(2);
  });
});

describe('OverlayAgent: a device of another name has the VNI and port (a leftover flannel.1)', () => {
  async function withFlannel(): Promise<FakeKernel> {
    const kernel = host();
    await kernel.createVxlan({ name: 'flannel.1', vni: 1, port: 8472, local: '192.168.60.1', underlayIndex: 2, learning: false, mtu: 1450, mac: '0a:00:00:00:00:f1' });
    return kernel;
  }

  it('fails with VniInUseError naming the device', async () => {
    const kernel = await withFlannel();
    const plan = planOverlay([clusterNode(1), clusterNode(2)], options1, await readHost(kernel));
    const result = await applyChanges(kernel, emptyView(), diffOverlay(plan, emptyView()));
    const error = result.failed[0]?.error;
    expect(error).toBeInstanceOf(VniInUseError);
    expect(error).toMatchObject({ code: 'NETPLANE_OVERLAY_VNI_IN_USE', device: 'flannel.1' });
    expect((error as Error).cause).toMatchObject({ errno: 'EEXIST' });
  });

  it('logs what to do, reports no node usable while nothing is programmed, and programs once the device is gone', async () => {
    const kernel = await withFlannel();
    const r = await start([clusterNode(1), clusterNode(2), clusterNode(3)], kernel, { settle: false });
    const failure = r.records.find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync');
    expect(failure).toMatchObject({ errors: [expect.stringMatching(/cannot create netplane\.1: device flannel\.1 already has VXLAN VNI 1 on port 8472.*ip link delete flannel\.1/)] });
    expect(await gauge(r, 'netplane_overlay_nodes{state="usable"}')).toBe(0);
    expect(await gauge(r, 'netplane_overlay_nodes{state="unprogrammed"}')).toBe(3);
    await kernel.deleteLink((await kernel.link('flannel.1'))!.index);
    await waitFor('the device', async () => (await gauge(r, 'netplane_overlay_nodes{state="usable"}')) === 3, 3000);
    expect(await gauge(r, 'netplane_overlay_nodes{state="unprogrammed"}')).toBe(0);
  });

  it("counts a node whose route the kernel refuses as unprogrammed, not usable", async () => {
    const kernel = host();
    kernel.failNext('addRoute', 'EIO', 1000);
    const r = await start([clusterNode(1), clusterNode(2)], kernel, { settle: false });
    expect(await gauge(r, 'netplane_overlay_nodes{state="usable"}')).toBe(1);
    expect(await gauge(r, 'netplane_overlay_nodes{state="unprogrammed"}')).toBe(1);
  });
});

describe('OverlayAgent: the forward-accept rules', () => {
  it('keeps them in step with the pod networks (a full sync forces a check), and a failure counts as iptables', async () => {
    const calls: Array<[string[], boolean]> = [];
    let fail = 0;
    const forward: ForwardSync = {
      async sync(cidrs, force = false) {
        calls.push([[...cidrs], force]);
        if (fail-- > 0) throw new Error('iptables-nft-restore: no');
        return calls.length === 1;
      },
    };
    const r = await start([clusterNode(1), clusterNode(2)], host(), { forward });
    expect(calls).toEqual([[['10.244.0.0/16', 'fd00:244::/32'], true]]);
    expect(r.records.find((l) => l.msg === 'overlay synced')).toMatchObject({ forward: true });
    fail = 1;
    r.agent.resync();
    await r.agent.settled();
    expect(await gauge(r, 'netplane_overlay_programming_errors_total{kind="iptables"}')).toBe(1);
    expect(calls.at(-1)).toEqual([['10.244.0.0/16', 'fd00:244::/32'], true]);
  });
});

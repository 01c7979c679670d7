// The overlay agent following this host's address changes, against the in-memory kernel and a hand-driven address
// watch: which announcements lead to a sync (one per burst, after the debounce), which are skipped, and how a
// node on a newly joined network goes direct (--direct-routing) without waiting for the resync.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent } from '../../overlay/agent.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import type { AddressChange } from '../../overlay/kernel/watch.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { captureLogger } from '../helpers/wait.ts';
import { clusterNode, node, options1 } from './fixtures.ts';

const debounceMs = 30;
const agents: OverlayAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

/** node1 on eth0 192.168.60.1/24 with node2 on 192.168.61.2 (another network), --direct-routing, a resync an hour away. */
async function start(watch: 'works' | 'refused' = 'works') {
  const kernel = new FakeKernel([
    { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', up: true, addresses: ['192.168.60.1/24'] },
  ]);
  const store = new Store(['Node']);
  store.apply([clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'], ip: '192.168.61.2' })].map((object) => ({ kind: 'Node' as const, object })));
  store.markSynced('Node');
  const { log, records } = captureLogger();
  const listeners: Array<(c: AddressChange) => void> = [];
  let closed = 0;
  const agent = new OverlayAgent({
    kernel,
    store,
    overlay: { ...options1, directRouting: true },
    clusterCIDRs: ['10.244.0.0/16'],
    metrics: registerOverlayMetrics(new Registry()),
    log,
    resyncPeriodMs: 3_600_000,
    hostDebounceMs: debounceMs,
    watchAddresses(onChange) {
      if (watch === 'refused') throw new Error('watch addresses: EPERM');
      listeners.push(onChange);
      return { close: () => void closed++ };
    },
  });
  agents.push(agent);
  agent.start();
  await agent.settled();
  const eth0 = (await kernel.link('eth0'))!.index;
  const device = (await kernel.link('netplane.1'))!.index;
  /** How many times the host's addresses were read so far (once per sync that reads the host). */
  const hostReads = () => kernel.calls.filter((c) => c === 'addresses').length;
  const announce = (c: AddressChange) => listeners.forEach((l) => l(c));
  /** Waits past the debounce and for the sync it may have started. */
  const quiet = async () => {
    await new Promise((r) => setTimeout(r, debounceMs * 3));
    await agent.settled();
  };
  const toNode2 = () => kernel.dump().split('\n').filter((l) => l.includes('10.244.2.0/24') || l.includes('192.168.61.2'));
  return { kernel, agent, records, eth0, device, hostReads, announce, quiet, toNode2, closed: () => closed };
}

describe("the overlay agent follows this host's address changes", () => {
  it('a node on a network eth0 joins goes direct after one sync, and back to VXLAN when eth0 leaves it', async () => {
    const r = await start();
    expect(r.toNode2().some((l) => l.includes('dev netplane.1'))).toBe(true);
    await r.kernel.addAddress({ index: r.eth0, cidr: '192.168.61.1/24' });
    const reads = r.hostReads();
    // A burst (the address, then its flags changing) is one sync.
    for (let i = 0; i < 3; i++) r.announce({ index: r.eth0, cidr: '192.168.61.1/24', added: true });
    await r.quiet();
    expect(r.hostReads()).toBe(reads + 1);
    expect(r.toNode2()).toEqual(['route 10.244.2.0/24 via 192.168.61.2 dev eth0 proto 110']);

    await r.kernel.deleteAddress({ index: r.eth0, cidr: '192.168.61.1/24' });
    r.announce({ index: r.eth0, cidr: '192.168.61.1/24', added: false });
    await r.quiet();
    expect(r.toNode2().some((l) => l.includes('proto 110'))).toBe(false);
    expect(r.toNode2().some((l) => l.startsWith('route 10.244.2.0/24 via 10.244.2.0 dev netplane.1'))).toBe(true);
  });

  const rows: Array<[what: string, change: (r: Awaited<ReturnType<typeof start>>) => AddressChange, syncs: number]> = [
    ['an address on eth0', (r) => ({ index: r.eth0, cidr: '192.168.99.1/24', added: true }), 1],
    ['an address on the VXLAN device (netplane\'s own)', (r) => ({ index: r.device, cidr: '10.244.1.0/32', added: true }), 0],
    ['an IPv6 link-local address (every new interface gets one)', () => ({ index: 42, cidr: 'fe80::1/64', added: true }), 0],
    ['a global IPv6 address on eth0', (r) => ({ index: r.eth0, cidr: 'fd00:60::1/64', added: true }), 1],
    ['announcements lost (ENOBUFS)', () => ({ index: undefined, cidr: undefined, added: false }), 1],
  ];
  for (const [what, change, syncs] of rows) {
    it(`${what}: ${syncs} host read${syncs === 1 ? '' : 's'}`, async () => {
      const r = await start();
      const reads = r.hostReads();
      r.announce(change(r));
      await r.quiet();
      expect(r.hostReads()).toBe(reads + syncs);
    });
  }

  it('a watch the kernel refuses is logged; the agent programs all the same', async () => {
    const r = await start('refused');
    expect(r.records.find((l) => l.level === 40)).toMatchObject({ msg: "cannot follow this host's address changes; they are seen at the next resync", err: 'watch addresses: EPERM' });
    expect(r.toNode2().length).toBeGreaterThan(0);
  });

  it('stop() closes the watch and a late announcement starts nothing', async () => {
    const r = await start();
    await r.agent.stop();
    expect(r.closed()).toBe(1);
    const reads = r.hostReads();
    r.announce({ index: r.eth0, cidr: '192.168.61.1/24', added: true });
    await r.quiet();
    expect(r.hostReads()).toBe(reads);
  });
});

// The overlay agent following this host's address and interface changes, against the in-memory kernel and
// hand-driven watches: which announcements lead to a sync (one per burst, after the debounce), which are skipped,
// how a node on a newly joined network goes direct (--direct-routing) without waiting for the resync, and how what
// the kernel drops when an interface goes down or is deleted is put back.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent } from '../../overlay/agent.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import type { AddressChange, LinkChange, LinkSeen } from '../../overlay/kernel/watch.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { captureLogger } from '../helpers/wait.ts';
import { clusterNode, node, options1 } from './fixtures.ts';

const debounceMs = 30;
const agents: OverlayAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

/**
 * node1 on eth0 192.168.60.1/24 with node2 on `node2IP` (default 192.168.61.2, another network), --direct-routing, a
 * resync an hour away.
 */
async function start(watch: 'works' | 'refused' = 'works', node2IP = '192.168.61.2') {
  const kernel = new FakeKernel([
    { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', up: true, addresses: ['192.168.60.1/24'] },
  ]);
  const store = new Store(['Node']);
  store.apply([clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'], ip: node2IP })].map((object) => ({ kind: 'Node' as const, object })));
  store.markSynced('Node');
  const { log, records } = captureLogger();
  const listeners: Array<(c: AddressChange) => void> = [];
  const linkListeners: Array<(c: LinkChange) => void> = [];
  let closed = 0;
  // The masquerade step, last in a sync, waits for `hold` while it is set: a sync can be kept running.
  let hold: Promise<void> | undefined;
  const agent = new OverlayAgent({
    kernel,
    store,
    overlay: { ...options1, directRouting: true },
    clusterCIDRs: ['10.244.0.0/16'],
    metrics: registerOverlayMetrics(new Registry()),
    log,
    resyncPeriodMs: 3_600_000,
    hostDebounceMs: debounceMs,
    masquerade: { sync: async () => (await hold, false) },
    watchAddresses(onChange) {
      if (watch === 'refused') throw new Error('watch addresses: EPERM');
      listeners.push(onChange);
      return { close: () => void closed++ };
    },
    watchLinks(onChange) {
      if (watch === 'refused') throw new Error('watch links: EPERM');
      linkListeners.push(onChange);
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
  const announceLink = (c: LinkChange) => linkListeners.forEach((l) => l(c));
  /** How many full syncs ran so far (each reads netplane's direct routes, which no other sync does). */
  const fullSyncs = () => kernel.calls.filter((c) => c === 'routesByProtocol').length;
  /** Waits past the debounce and for the sync it may have started. */
  const quiet = async () => {
    await new Promise((r) => setTimeout(r, debounceMs * 3));
    await agent.settled();
  };
  const toNode2 = () => kernel.dump().split('\n').filter((l) => l.includes('10.244.2.0/24') || l.includes('192.168.61.2'));
  /** Keeps the next sync running (in its masquerade step) until the returned function is called. */
  const holdSyncs = () => {
    const { promise, resolve } = Promise.withResolvers<void>();
    hold = promise;
    return () => {
      hold = undefined;
      resolve();
    };
  };
  return { kernel, agent, records, eth0, device, hostReads, fullSyncs, announce, announceLink, quiet, toNode2, holdSyncs, closed: () => closed };
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

  // Each sync that reads the host lists its interfaces once; a full sync reads the kernel's entries too.
  const rows: Array<[what: string, change: (r: Awaited<ReturnType<typeof start>>) => AddressChange, syncs: number, full: number]> = [
    ['an address added to eth0', (r) => ({ index: r.eth0, cidr: '192.168.99.1/24', added: true }), 1, 0],
    ['an address removed from eth0 (the kernel may delete the routes through it)', (r) => ({ index: r.eth0, cidr: '192.168.99.1/24', added: false }), 1, 1],
    ['an address on the VXLAN device (netplane\'s own)', (r) => ({ index: r.device, cidr: '10.244.1.0/32', added: true }), 0, 0],
    ['an IPv6 link-local address (every new interface gets one)', () => ({ index: 42, cidr: 'fe80::1/64', added: true }), 0, 0],
    ['a global IPv6 address on eth0', (r) => ({ index: r.eth0, cidr: 'fd00:60::1/64', added: true }), 1, 0],
    ['announcements lost (ENOBUFS)', () => ({ index: undefined, cidr: undefined, added: false }), 1, 1],
  ];
  for (const [what, change, syncs, full] of rows) {
    it(`${what}: ${syncs} sync${syncs === 1 ? '' : 's'}, ${full} full`, async () => {
      const r = await start();
      const count = () => r.kernel.calls.filter((c) => c === 'links').length;
      const [before, fullBefore] = [count(), r.fullSyncs()];
      r.announce(change(r));
      await r.quiet();
      expect([count() - before, r.fullSyncs() - fullBefore]).toEqual([syncs, full]);
    });
  }

  it('a watch the kernel refuses is logged; the agent programs all the same', async () => {
    const r = await start('refused');
    expect(r.records.filter((l) => l.level === 40)).toMatchObject([
      { msg: "cannot follow this host's address changes; they are seen at the next resync", err: 'watch addresses: EPERM' },
      { msg: "cannot follow this host's interface changes; they are seen at the next resync", err: 'watch links: EPERM' },
    ]);
    expect(r.toNode2().length).toBeGreaterThan(0);
  });

  it('stop() closes the watches and a late announcement starts nothing', async () => {
    const r = await start();
    await r.agent.stop();
    expect(r.closed()).toBe(2);
    const reads = r.hostReads();
    r.announce({ index: r.eth0, cidr: '192.168.61.1/24', added: true });
    r.announceLink(down(r.eth0));
    await r.quiet();
    expect(r.hostReads()).toBe(reads);
  });
});

/** How the watch announces an interface: as it is now, and as it was when last announced (undefined: first seen). */
const upState: LinkSeen = { name: 'eth0', up: true, lowerUp: true, operstate: 6, mtu: 1500 };
const downState: LinkSeen = { name: 'eth0', up: false, lowerUp: false, operstate: 2, mtu: 1500 };
const down = (index: number, name = 'eth0'): LinkChange => ({ index, deleted: false, now: { ...downState, name }, before: { ...upState, name } });
const upAgain = (index: number, name = 'eth0'): LinkChange => ({ index, deleted: false, now: { ...upState, name }, before: { ...downState, name } });

describe("the overlay agent follows this host's interface changes", () => {
  it('eth0 taken down and up (the kernel deletes the direct route through it and puts none back): one full sync puts it back', async () => {
    const r = await start('works', '192.168.60.2');
    const routed = ['route 10.244.2.0/24 via 192.168.60.2 dev eth0 proto 110'];
    expect(r.toNode2()).toEqual(routed);
    const full = r.fullSyncs();
    await r.kernel.setLink(r.eth0, { up: false });
    await r.kernel.setLink(r.eth0, { up: true });
    expect(r.toNode2()).toEqual([]);
    r.announceLink(down(r.eth0));
    r.announceLink(upAgain(r.eth0));
    await r.quiet();
    expect(r.fullSyncs()).toBe(full + 1);
    expect(r.toNode2()).toEqual(routed);
  });

  it('eth0 down for a while: node2 over VXLAN meanwhile and nothing fails; direct again once up', async () => {
    const r = await start('works', '192.168.60.2');
    await r.kernel.setLink(r.eth0, { up: false });
    r.announceLink(down(r.eth0));
    await r.quiet();
    expect(r.toNode2().some((l) => l.startsWith('route 10.244.2.0/24 via 10.244.2.0 dev netplane.1'))).toBe(true);
    expect(r.toNode2().some((l) => l.includes('proto 110'))).toBe(false);
    await r.kernel.setLink(r.eth0, { up: true });
    r.announceLink(upAgain(r.eth0));
    await r.quiet();
    expect(r.toNode2()).toEqual(['route 10.244.2.0/24 via 192.168.60.2 dev eth0 proto 110']);
    expect(r.records.filter((l) => Number(l.level) >= 40)).toEqual([]);
  });

  it('an interface change while a full sync runs (after it read the kernel) gets a full sync of its own', async () => {
    const r = await start('works', '192.168.60.2');
    const release = r.holdSyncs();
    r.agent.resync();
    await new Promise((resolve) => setTimeout(resolve, debounceMs));
    // The running sync has read the kernel and programmed the route; now the kernel drops it.
    await r.kernel.setLink(r.eth0, { up: false });
    await r.kernel.setLink(r.eth0, { up: true });
    r.announceLink(down(r.eth0));
    r.announceLink(upAgain(r.eth0));
    await new Promise((resolve) => setTimeout(resolve, debounceMs * 2));
    release();
    await r.quiet();
    expect(r.toNode2()).toEqual(['route 10.244.2.0/24 via 192.168.60.2 dev eth0 proto 110']);
  });

  it('the VXLAN device deleted by hand is made again with its entries', async () => {
    const r = await start();
    const before = r.kernel.dump();
    await r.kernel.deleteLink(r.device);
    r.announceLink({ index: r.device, deleted: true, now: { ...downState, name: 'netplane.1' }, before: { ...upState, name: 'netplane.1' } });
    await r.quiet();
    // The same lines: the device has a new index, which the dump does not show.
    expect(r.kernel.dump()).toBe(before);
  });

  const rows: Array<[what: string, change: (r: Awaited<ReturnType<typeof start>>) => LinkChange, full: number]> = [
    ['eth0 taken down', (r) => down(r.eth0), 1],
    ['eth0 first announced (as it is)', (r) => ({ index: r.eth0, deleted: false, now: upState, before: undefined }), 1],
    ['eth0 deleted', (r) => ({ index: r.eth0, deleted: true, now: upState, before: upState }), 1],
    ["a pod's veth appearing", () => ({ index: 42, deleted: false, now: { ...upState, name: 'veth1' }, before: undefined }), 0],
    ["a pod's veth going down", () => down(42, 'veth1'), 0],
    ["a pod's veth deleted", () => ({ index: 42, deleted: true, now: { ...downState, name: 'veth1' }, before: downState }), 0],
    ["the VXLAN device set up (the agent's own work)", (r) => upAgain(r.device, 'netplane.1'), 0],
    ['the VXLAN device losing its carrier while up', (r) => ({ index: r.device, deleted: false, now: { ...upState, name: 'netplane.1', lowerUp: false }, before: { ...upState, name: 'netplane.1' } }), 0],
    ["the VXLAN device's MTU changed", (r) => ({ index: r.device, deleted: false, now: { ...upState, name: 'netplane.1', mtu: 1300 }, before: { ...upState, name: 'netplane.1', mtu: 1450 } }), 1],
    ['the VXLAN device taken down', (r) => down(r.device, 'netplane.1'), 1],
    ['the VXLAN device deleted', (r) => ({ index: r.device, deleted: true, now: { ...downState, name: 'netplane.1' }, before: upState }), 1],
    ['announcements lost (ENOBUFS)', () => ({ index: undefined, deleted: false, now: undefined, before: undefined }), 1],
  ];
  for (const [what, change, full] of rows) {
    it(`${what}: ${full} full sync${full === 1 ? '' : 's'}`, async () => {
      const r = await start();
      const before = r.fullSyncs();
      r.announceLink(change(r));
      await r.quiet();
      expect(r.fullSyncs()).toBe(before + full);
    });
  }

  it('a burst of interface and address changes is one sync; a full sync that repairs nothing logs nothing', async () => {
    const r = await start();
    // Every sync that reads the host lists its interfaces once.
    const syncs = () => r.kernel.calls.filter((c) => c === 'links').length;
    const [full, before] = [r.fullSyncs(), syncs()];
    const logged = r.records.length;
    for (let i = 0; i < 5; i++) r.announceLink(down(r.eth0));
    r.announce({ index: r.eth0, cidr: '192.168.99.1/24', added: true });
    await r.quiet();
    expect([r.fullSyncs() - full, syncs() - before]).toEqual([1, 1]);
    expect(r.records.slice(logged).filter((l) => l.msg === 'overlay synced')).toEqual([]);
  });
});

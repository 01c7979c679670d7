// The overlay agent with --iface-can-reach following route changes, against the in-memory kernel and a hand-driven
// entry watch: a route change towards the address (the default route moved to another interface) chooses the
// underlay again after the debounce and moves the VXLAN device, and so does a blackhole route or a rule (the entry
// watch is asked for those only with the flag); a route elsewhere, or any route without the flag, starts nothing.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent } from '../../overlay/agent.ts';
import type { EntryChange, EntryWatchOptions } from '../../overlay/kernel/entry-watch.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { captureLogger } from '../helpers/wait.ts';
import { clusterNode, options1 } from './fixtures.ts';

const debounceMs = 30;
const agents: OverlayAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

/** node1 with eth0 192.168.60.1/24 and eth1 192.168.61.1/24, the default route via 192.168.60.254 on eth0 (unless `noDefault`). */
async function start(canReach: string | undefined, noDefault = false) {
  const kernel = new FakeKernel([
    { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', kind: 'veth', up: true, addresses: ['192.168.60.1/24'] },
    { name: 'eth1', kind: 'veth', up: true, addresses: ['192.168.61.1/24'] },
  ]);
  const eth0 = (await kernel.link('eth0'))!.index;
  const eth1 = (await kernel.link('eth1'))!.index;
  if (!noDefault) await kernel.addRoute({ dst: '0.0.0.0/0', gateway: '192.168.60.254', index: eth0, onlink: false });
  const store = new Store(['Node']);
  store.apply([clusterNode(1), clusterNode(2)].map((object) => ({ kind: 'Node' as const, object })));
  store.markSynced('Node');
  const listeners: Array<(c: EntryChange) => void> = [];
  const watchOptions: Array<EntryWatchOptions | undefined> = [];
  const agent = new OverlayAgent({
    kernel,
    store,
    overlay: { ...options1, ...(canReach !== undefined ? { ifaceCanReach: canReach } : {}) },
    clusterCIDRs: ['10.244.0.0/16'],
    metrics: registerOverlayMetrics(new Registry()),
    log: captureLogger().log,
    resyncPeriodMs: 3_600_000,
    hostDebounceMs: debounceMs,
    watchEntries(onChange, options) {
      listeners.push(onChange);
      watchOptions.push(options);
      return { close: () => {} };
    },
  });
  agents.push(agent);
  agent.start();
  await agent.settled();
  /** Moves the default route to eth1 in the kernel and announces the two route changes, as the kernel does. */
  const moveDefault = async () => {
    await kernel.deleteRoute({ dst: '0.0.0.0/0', gateway: '192.168.60.254', index: eth0, onlink: false });
    await kernel.addRoute({ dst: '0.0.0.0/0', gateway: '192.168.61.254', index: eth1, onlink: false });
    announce({ kind: 'route', index: eth0, dst: '0.0.0.0/0', gateway: '192.168.60.254', protocol: 4, deleted: true });
    announce({ kind: 'route', index: eth1, dst: '0.0.0.0/0', gateway: '192.168.61.254', protocol: 4, deleted: false });
  };
  const announce = (c: EntryChange) => listeners.forEach((l) => l(c));
  /** The VXLAN device's line of the kernel's dump. */
  const device = () => kernel.dump().split('\n').find((l) => l.includes('netplane.1') && l.includes(' vni '));
  /** How many times the host was read (each sync that reads it lists the interfaces once). */
  const hostReads = () => kernel.calls.filter((c) => c === 'links').length;
  const quiet = async () => {
    await new Promise((r) => setTimeout(r, debounceMs * 3));
    await agent.settled();
  };
  return { agent, kernel, device, moveDefault, announce, hostReads, quiet, eth1, watchOptions };
}

describe('the overlay agent with --iface-can-reach follows route changes', () => {
  it('the default route moved to eth1: one sync after the burst moves the device onto eth1, source 192.168.61.1', async () => {
    const r = await start('203.0.113.9');
    expect(r.device()).toMatch(/local 192\.168\.60\.1 dev eth0 /);
    const reads = r.hostReads();
    await r.moveDefault();
    await r.quiet();
    expect(r.hostReads()).toBe(reads + 1);
    expect(r.device()).toMatch(/local 192\.168\.61\.1 dev eth1 /);
  });

  it('waiting for a route to the address: a default route added ends the wait at once', async () => {
    const r = await start('203.0.113.9', true);
    expect(r.device()).toBeUndefined();
    await r.kernel.addRoute({ dst: '0.0.0.0/0', gateway: '192.168.61.254', index: r.eth1, onlink: false });
    r.announce({ kind: 'route', index: r.eth1, dst: '0.0.0.0/0', gateway: '192.168.61.254', protocol: 4, deleted: false });
    await r.quiet();
    expect(r.device()).toMatch(/local 192\.168\.61\.1 dev eth1 /);
  });

  it('asks the entry watch for other routes and rules only with the flag', async () => {
    expect((await start('203.0.113.9')).watchOptions).toEqual([{ lookups: true }]);
    expect((await start(undefined)).watchOptions).toEqual([{ lookups: false }]);
  });

  it('a blackhole route to the address announced: the host is read again (the in-memory kernel still routes it: the device stays)', async () => {
    const r = await start('203.0.113.9');
    const reads = r.hostReads();
    r.announce({ kind: 'other-route', dst: '203.0.113.0/24', table: 254, type: 6, deleted: false });
    r.announce({ kind: 'rule', family: 2, deleted: false });
    await r.quiet();
    expect(r.hostReads()).toBe(reads + 1);
    expect(r.device()).toMatch(/local 192\.168\.60\.1 dev eth0 /);
  });

  const rows: Array<[what: string, canReach: string | undefined, change: (eth1: number) => EntryChange]> = [
    ['a route to another network, with the flag', '203.0.113.9', (eth1) => ({ kind: 'route', index: eth1, dst: '198.51.100.0/24', gateway: '192.168.61.254', protocol: 4, deleted: false })],
    ['an IPv6 default route, the address IPv4', '203.0.113.9', (eth1) => ({ kind: 'route', index: eth1, dst: '::/0', gateway: 'fe80::1', protocol: 4, deleted: false })],
    ['a default route, without the flag', undefined, (eth1) => ({ kind: 'route', index: eth1, dst: '0.0.0.0/0', gateway: '192.168.61.254', protocol: 4, deleted: false })],
    ['a blackhole route to another network, with the flag', '203.0.113.9', () => ({ kind: 'other-route', dst: '198.51.100.0/24', table: 254, type: 6, deleted: false })],
    ['an IPv6 rule, the address IPv4', '203.0.113.9', () => ({ kind: 'rule', family: 10, deleted: false })],
  ];
  it.each(rows)('%s: no sync', async (_what, canReach, change) => {
    const r = await start(canReach);
    const reads = r.hostReads();
    r.announce(change(r.eth1));
    await r.quiet();
    expect(r.hostReads()).toBe(reads);
  });
});

// The userspace proxy's UDP flows across Service ports, and the datagrams it drops (found by an audit: the flow cap
// was per port only, so many UDP Service ports together held any number of sockets and ephemeral ports, and no
// dropped datagram was counted anywhere).
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerProxyMetrics } from '../../../proxy/metrics.ts';
import type { UdpDropReason } from '../../../proxy/userspace/flow-budget.ts';
import { UserspaceBackend } from '../../../proxy/userspace/backend.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { waitFor } from '../../helpers/wait.ts';
import { plan, portPlan } from './plans.ts';
import { freePort, udpAsk, udpEndpoint } from './servers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function udpClient(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/** A userspace backend with `options`, recording evictions and drops. */
function backendOf(options: { udpMaxFlows?: number; udpMaxFlowsTotal?: number }) {
  const drops: UdpDropReason[] = [];
  let evictions = 0;
  const backend = new UserspaceBackend({ log: silentLogger(), udpIdleMs: 30_000, ...options, onUdpDrop: (r) => drops.push(r), onUdpEviction: () => evictions++ });
  cleanups.push(() => backend.close());
  return { backend, drops, evictions: () => evictions };
}

describe('userspace UDP flows over every Service port', () => {
  it('--udp-max-flows-total caps flows across ports: a port at the cap gives up its own oldest flow, a port with none refuses and counts the drop', async () => {
    const ep = await udpEndpoint('a');
    cleanups.push(() => ep.close());
    const { backend, drops, evictions } = backendOf({ udpMaxFlows: 100, udpMaxFlowsTotal: 4 });
    const [one, two] = [64910, 64911];
    await backend.sync(plan(portPlan({ name: 'one', protocol: 'UDP', port: one, clusterEndpoints: [ep.target] }), portPlan({ name: 'two', protocol: 'UDP', port: two, clusterEndpoints: [ep.target] })), { full: true });
    const clients = await Promise.all(Array.from({ length: 6 }, () => udpClient()));
    for (let i = 0; i < 4; i++) expect(await udpAsk(clients[i]!, one, `q${i}`)).toBe(`a q${i}`);
    // Four flows in all: port two has none to give up, so its new client is refused (before: answered, a fifth flow).
    await expect(udpAsk(clients[4]!, two, 'refused', 500)).rejects.toThrow('no UDP reply');
    expect(drops).toEqual(['flow_limit']);
    // Port one's new client takes the place of its least recently used flow, as at the per-port cap.
    expect(await udpAsk(clients[5]!, one, 'fresh')).toBe('a fresh');
    expect(evictions()).toBe(1);
    // A flow closed gives its place back: port two serves once port one's flows are gone.
    await backend.sync(plan(portPlan({ name: 'two', protocol: 'UDP', port: two, clusterEndpoints: [ep.target] })), { full: false });
    expect(await udpAsk(clients[4]!, two, 'now')).toBe('a now');
    expect(drops).toEqual(['flow_limit']);
  });

  it('counts datagrams an endpoint refuses (ICMP port unreachable) and those waiting on a connect that fails', async () => {
    // A port nobody listens on: the kernel answers port unreachable, which the connected flow socket reports.
    const closed = await udpEndpoint('gone');
    await closed.close();
    const { backend, drops } = backendOf({});
    const port = 64912;
    await backend.sync(plan(portPlan({ name: 'dead', protocol: 'UDP', port, clusterEndpoints: [closed.target] })), { full: true });
    const c = await udpClient();
    await expect(udpAsk(c, port, 'x', 300)).rejects.toThrow('no UDP reply');
    expect(drops).toEqual(['endpoint_unreachable']);
    // connect() to the broadcast address fails (EACCES): the datagram that waited for it is lost.
    await backend.sync(plan(portPlan({ name: 'dead', protocol: 'UDP', port, clusterEndpoints: [{ ip: '255.255.255.255', port: 9 }] })), { full: false });
    await expect(udpAsk(await udpClient(), port, 'y', 300)).rejects.toThrow('no UDP reply');
    expect(drops).toEqual(['endpoint_unreachable', 'endpoint_unreachable']);
  });

  // Datagrams a new flow holds until its socket is connected are counted when the flow ends first (found by an
  // audit: they were lost uncounted). A bind failing for want of descriptors is how that happens; a cap evicting a
  // flow cannot come between its first datagram and its connect, which Node completes before the next datagram.
  it('counts the datagram a flow held when its socket cannot be bound (EMFILE), once, and serves again after', async () => {
    const script = fileURLToPath(new URL('./udp-fd-exhaustion.ts', import.meta.url));
    const { stdout } = await promisify(execFile)('prlimit', ['--nofile=256:256', process.execPath, script]);
    const r = JSON.parse(stdout) as { lost: string; after: string; dropped: string[] };
    expect(r.lost).toBe('no UDP reply');
    expect(r.after).toBe('a after');
    const counts = [['flow_limit', 0], ['no_endpoint', 0], ['endpoint_unreachable', 1], ['queue_full', 0], ['send_failed', 0]];
    expect(r.dropped).toEqual(counts.map(([reason, n]) => `netplane_proxy_udp_datagrams_dropped_total{reason="${reason}"} ${n}`));
  });

  it('a burst of new clients at --udp-max-flows-total: every flow given up passed its datagram on first, none is lost uncounted', async () => {
    let got = 0;
    const ep = await udpEndpoint('a');
    ep.socket.on('message', () => got++);
    cleanups.push(() => ep.close());
    const { backend, drops, evictions } = backendOf({ udpMaxFlowsTotal: 2 });
    const port = await freePort();
    await backend.sync(plan(portPlan({ name: 'burst', protocol: 'UDP', port, clusterEndpoints: [ep.target] })), { full: true });
    // 100 one-byte datagrams fit in the default socket receive buffers (about 200 kB, some 770 bytes each).
    const clients = await Promise.all(Array.from({ length: 100 }, () => udpClient()));
    for (const c of clients) c.send('x', port, '127.0.0.1');
    await waitFor('every datagram passed on or counted', () => got + drops.length === clients.length, 5000).catch(() => {});
    expect({ got, drops, evictions: evictions() }).toEqual({ got: 100, drops: [], evictions: 98 });
  });

  it('exposes netplane_proxy_udp_datagrams_dropped_total with every reason at 0 in userspace mode only', async () => {
    const registry = new Registry();
    const m = registerProxyMetrics(registry, 'userspace');
    m.udpDatagramsDropped.inc({ reason: 'flow_limit' });
    const text = await registry.metrics();
    expect(text).toMatch(/# HELP netplane_proxy_udp_datagrams_dropped_total userspace mode: UDP datagrams dropped/);
    for (const [reason, n] of [['flow_limit', 1], ['no_endpoint', 0], ['endpoint_unreachable', 0], ['queue_full', 0], ['send_failed', 0]] as const) {
      expect(text).toContain(`netplane_proxy_udp_datagrams_dropped_total{reason="${reason}"} ${n}\n`);
    }
    const kernel = new Registry();
    registerProxyMetrics(kernel, 'nftables');
    expect(await kernel.metrics()).not.toMatch(/netplane_proxy_udp_datagrams_dropped_total\{/);
  });
});

// netplane dns forwarding over TCP only (`--upstream tcp://ADDR`, CoreDNS `forward . ADDR { force_tcp }`, as
// NodeLocal DNSCache asks the cluster's DNS) to a real server, Unbound, behind a relay that carries TCP only and
// counts its connections, queried with dig: kept-open connections shared and expired, several for concurrent
// queries, and a Corefile whose stub domain says force_tcp.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { relay, startUnbound, type DotServer, type Relay } from './forward/dot-upstream.ts';
import { digAddresses as dig, metricValue, startDns, type DnsProcess } from './process.ts';

/** Unbound answering plain DNS, 192.0.2.7 for every name under test. */
let unbound: DotServer;
const running: Array<DnsProcess | Relay> = [];

async function serve(args: string[]): Promise<{ dns: DnsProcess; port: number }> {
  const dns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', ...args]);
  running.push(dns);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  return { dns, port };
}

/** A relay in front of Unbound: TCP only, so nothing reaches Unbound over UDP through its port. */
async function tcpOnly(): Promise<Relay> {
  const r = await relay(unbound.port);
  running.push(r);
  return r;
}

const stopAll = async () => {
  for (const r of running.splice(0).reverse()) await ('proc' in r ? r.stop() : r.close());
};

beforeAll(async () => {
  unbound = await startUnbound(undefined, '192.0.2.7');
}, 30_000);

afterAll(async () => {
  await stopAll();
  await unbound?.stop();
});

describe('a tcp:// upstream', () => {
  afterEach(stopAll);

  it('is asked over TCP only, on one kept-open connection for queries one after another', async () => {
    const counted = await tcpOnly();
    // The same port asked over UDP: nothing listens for UDP there, so those answers come from TCP alone.
    const control = await serve(['--upstream', `127.0.0.1:${counted.port}`]);
    expect((await dig(control.port, 'udp.test')).status).toBe('SERVFAIL');
    expect(counted.accepted()).toBe(0);

    const { dns, port } = await serve(['--upstream', `tcp://127.0.0.1:${counted.port}`]);
    for (const n of ['a.test', 'b.test', 'c.test', 'd.test', 'e.test']) {
      const r = await dig(port, n);
      expect(`${r.status} ${r.addresses.join()}`, `${r.raw}\n${dns.logs()}`).toBe('NOERROR 192.0.2.7');
    }
    // The loop check at start asks too, on the same connection.
    expect(counted.accepted()).toBe(1);
    expect(counted.open()).toBe(1);
    const to = `to="127.0.0.1:${counted.port}"`;
    expect(await metricValue(dns, 'coredns_proxy_conn_cache_misses_total', `${to},proto="tcp"`)).toBe(1);
    expect(await metricValue(dns, 'coredns_proxy_conn_cache_hits_total', `${to},proto="tcp"`)).toBeGreaterThanOrEqual(4);
    expect(await metricValue(dns, 'coredns_forward_responses_total', `${to},rcode="NOERROR"`)).toBe(5);
  });

  it('concurrent queries open more connections, 16 at most, each answer matched to its query', async () => {
    const counted = await tcpOnly();
    const { dns, port } = await serve(['--upstream', `tcp://127.0.0.1:${counted.port}`, '--cache-size', '0']);
    const names = Array.from({ length: 40 }, (_, i) => `n${i}.many.test`);
    // Ports below Linux's ephemeral range, one per dig (see e2e-dot.test.ts).
    const base = 20_000 + Math.floor(Math.random() * 9_900);
    const results = await Promise.all(names.map((n, i) => dig(port, n, base + i)));
    expect(results.map((r) => `${r.status} ${r.addresses.join()}`), dns.logs()).toEqual(names.map(() => 'NOERROR 192.0.2.7'));
    expect(counted.accepted()).toBeGreaterThanOrEqual(1);
    expect(counted.accepted()).toBeLessThanOrEqual(16);
  });

  it('closes a connection unused for --upstream-expire, and opens a new one for the next query', async () => {
    const counted = await tcpOnly();
    const { port } = await serve(['--upstream', `tcp://127.0.0.1:${counted.port}`, '--upstream-expire', '1s']);
    await waitFor('no connection open', () => counted.open() === 0, 5000);
    const before = counted.accepted();
    expect((await dig(port, 'one.test')).status).toBe('NOERROR');
    expect(counted.accepted()).toBe(before + 1);
    const opened = performance.now();
    await waitFor('the idle connection closed', () => counted.open() === 0, 5000);
    expect(performance.now() - opened).toBeGreaterThan(800);
    expect(counted.closedBy().at(-1)).toBe('client');
    expect((await dig(port, 'two.test')).status).toBe('NOERROR');
    expect(counted.accepted()).toBe(before + 2);
  });

  it('an upstream that stops listening: SERVFAIL at once, not a hang; answers again once it is back', async () => {
    const counted = await tcpOnly();
    const { port } = await serve(['--upstream', `tcp://127.0.0.1:${counted.port}`, '--cache-size', '0']);
    expect((await dig(port, 'up.test')).status).toBe('NOERROR');
    await counted.close();
    const started = performance.now();
    expect((await dig(port, 'down.test')).status).toBe('SERVFAIL');
    expect(performance.now() - started).toBeLessThan(3000);
    const back = await relay(unbound.port, counted.port);
    running.push(back);
    let i = 0;
    await waitFor('answered again', async () => (await dig(port, `back${i++}.test`)).status === 'NOERROR', 10_000);
  });
});

describe('a Corefile with force_tcp', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-force-tcp-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  afterEach(stopAll);

  it("asks a stub domain's upstream over TCP only, as NodeLocal DNSCache's Corefile asks the cluster's DNS", async () => {
    const counted = await tcpOnly();
    const conf = join(dir, 'Corefile');
    await writeFile(conf, `test:53 {\n  errors\n  cache 30\n  forward . 127.0.0.1:${counted.port} {\n    force_tcp\n  }\n}\n.:53 {\n  forward . 127.0.0.1:9\n}\n`);
    const { dns, port } = await serve(['--conf', conf]);
    const r = await dig(port, 'stub.test');
    expect(`${r.status} ${r.addresses.join()}`, `${r.raw}\n${dns.logs()}`).toBe('NOERROR 192.0.2.7');
    expect(counted.accepted()).toBe(1);
  });
});

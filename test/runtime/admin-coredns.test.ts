// CoreDNS's health endpoints on the admin server (runtime/admin.ts): /health (its health plugin: 200 "OK" while the
// process serves) and /ready (its ready plugin: 200 "OK", or 503 naming what is not ready), asked with curl as a
// kubelet probe asks; an address given `only` one of them serves nothing else; then `netplane dns --health --ready`
// as CoreDNS's :8080 and :8181, through a lame-duck period.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../cluster/store.ts';
import { AdminServer } from '../../runtime/admin.ts';
import { parseHostPort } from '../../runtime/flags.ts';
import { createRegistry } from '../../runtime/metrics.ts';
import { dig, silentUpstream, startDns, type DnsProcess } from '../dns/process.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);

/** GETs a URL with curl: the status and body (status 0 when curl could not connect). */
async function curl(port: number, path: string): Promise<{ status: number; body: string }> {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '2', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`]);
    const i = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
  } catch {
    return { status: 0, body: '' };
  }
}

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function admin(store: Store): Promise<{ admin: AdminServer; port: number }> {
  const a = new AdminServer(createRegistry('test', '0.0.0-test'), store);
  cleanup.push(() => a.close());
  const { port } = await a.listen(parseHostPort('127.0.0.1:0'));
  return { admin: a, port };
}

describe('AdminServer /health and /ready', () => {
  it('answers /health 200 OK whatever the view and the checks, as CoreDNS', async () => {
    const store = new Store(['Service']);
    const { admin: a, port } = await admin(store);
    a.addHealthCheck('sync', () => ({ ok: false, reason: 'stuck' }));
    expect(await curl(port, '/health')).toEqual({ status: 200, body: 'OK' });
    expect((await curl(port, '/healthz')).status).toBe(503);
  });

  it('answers /ready 503 naming what is not ready, then 200 OK, as /readyz decides', async () => {
    const store = new Store(['Service']);
    const { admin: a, port } = await admin(store);
    let listening = false;
    let upstreams = false;
    a.addReadinessCheck('upstreams', () => (upstreams ? { ok: true } : { ok: false, reason: 'loop' }));
    a.addReadinessCheck('listeners', () => (listening ? { ok: true } : { ok: false, reason: 'not listening yet' }));
    const steps: Array<[string, () => void, { status: number; body: string }]> = [
      ['nothing ready', () => {}, { status: 503, body: 'cluster,listeners,upstreams' }],
      ['the view loaded', () => store.markSynced('Service'), { status: 503, body: 'listeners,upstreams' }],
      ['listening', () => (listening = true), { status: 503, body: 'upstreams' }],
      ['upstreams found', () => (upstreams = true), { status: 200, body: 'OK' }],
      ['the view stale: still ready', () => store.markStale(true, 'gone'), { status: 200, body: 'OK' }],
      ['lame duck', () => (listening = false), { status: 503, body: 'listeners' }],
    ];
    for (const [what, step, want] of steps) {
      step();
      expect(await curl(port, '/ready'), what).toEqual(want);
      expect((await curl(port, '/readyz')).status, what).toBe(want.status);
    }
  });

  it('serves only the one path on an address given `only`, and every path on the admin address', async () => {
    const store = new Store(['Service']);
    store.markSynced('Service');
    const { admin: a, port } = await admin(store);
    const health = (await a.listen(parseHostPort('127.0.0.1:0'), '/health')).port;
    const ready = (await a.listen(parseHostPort('127.0.0.1:0'), '/ready')).port;
    const cases: Array<[number, string, number]> = [
      [health, '/health', 200],
      [health, '/ready', 404],
      [health, '/metrics', 404],
      [health, '/readyz', 404],
      [ready, '/ready', 200],
      [ready, '/health', 404],
      [ready, '/metrics', 404],
      [port, '/health', 200],
      [port, '/ready', 200],
      [port, '/metrics', 200],
    ];
    for (const [p, path, status] of cases) expect((await curl(p, path)).status, `${p === health ? 'health' : p === ready ? 'ready' : 'admin'} ${path}`).toBe(status);
    await a.close();
    for (const p of [port, health, ready]) expect((await curl(p, '/health')).status).toBe(0);
  });
});

describe('netplane dns --health --ready', () => {
  async function start(args: string[]): Promise<DnsProcess> {
    const dns = await startDns(args);
    cleanup.push(() => dns.stop());
    return dns;
  }

  it("serves CoreDNS's probes on their own addresses, /ready failing and /health answering through the lame-duck period", async () => {
    const [port, health, ready] = [await freePort(), await freePort(), await freePort()];
    const up = await silentUpstream();
    cleanup.push(() => void up.socket.close());
    const dns = await start(['--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${up.port}`, '--health', `127.0.0.1:${health}`, '--ready', `127.0.0.1:${ready}`, '--lameduck', '2s']);
    await waitFor('ready', async () => (await curl(ready, '/ready')).status === 200, 15_000);
    expect(await curl(ready, '/ready')).toEqual({ status: 200, body: 'OK' });
    expect(await curl(health, '/health')).toEqual({ status: 200, body: 'OK' });
    expect((await curl(health, '/metrics')).status).toBe(404);
    expect(await dns.admin('/ready')).toEqual({ status: 200, body: 'OK' });
    dns.proc.kill('SIGTERM');
    await waitFor('lame duck', async () => (await curl(ready, '/ready')).status === 503, 1500);
    expect(await curl(ready, '/ready')).toEqual({ status: 503, body: 'listeners' });
    expect(await curl(health, '/health')).toEqual({ status: 200, body: 'OK' });
    expect((await dig(port, 'web.default.svc.cluster.local')).status).toBe('NOERROR');
    expect(await dns.exited).toBe(0);
    expect((await curl(health, '/health')).status).toBe(0);
  }, 30_000);

  it('exits 1 naming the address when --health cannot be bound', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => taken.close(r)));
    const busy = (taken.address() as { port: number }).port;
    const dns = await start(['--listen', `127.0.0.1:${await freePort()}`, '--upstream', '127.0.0.1:9', '--health', `127.0.0.1:${busy}`]);
    expect(await dns.exited).toBe(1);
    expect(dns.logs()).toContain(`cannot serve /health on 127.0.0.1:${busy}: listen EADDRINUSE`);
  }, 20_000);

  it('refuses a --ready that is no ADDR:PORT (exit 2)', async () => {
    const dns = await start(['--ready', '8181']);
    expect(await dns.exited).toBe(2);
    expect(dns.logs()).toContain('--ready "8181": must be ADDR:PORT');
  }, 20_000);
});

// netplane dns at the ends of its life: the lame-duck period after SIGTERM, and a forwarding loop found at start.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { a, startUpstream } from './forward/fake-upstream.ts';
import { dig, silentUpstream, startDns, type DnsProcess } from './process.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function running(args: string[], port?: number): Promise<{ dns: DnsProcess; port: number }> {
  port ??= await freePort();
  const dns = await startDns(['--listen', `127.0.0.1:${port}`, ...args]);
  cleanup.push(() => dns.stop());
  await waitFor('dns answering', async () => (await dig(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000);
  return { dns, port };
}

const web = { status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'] };

describe('netplane dns shutting down', () => {
  it('on SIGTERM fails /readyz at once, keeps answering for --lameduck, then exits', async () => {
    const up = await silentUpstream();
    cleanup.push(() => void up.socket.close());
    const { dns, port } = await running(['--upstream', `127.0.0.1:${up.port}`, '--lameduck', '2s']);
    await waitFor('ready', async () => (await dns.admin('/readyz')).status === 200, 10_000);
    const signalled = Date.now();
    dns.proc.kill('SIGTERM');
    // The signal reaches the process's event loop on its own turn: a request already on its way can be answered
    // before it (CI once saw 200 right after the kill). "At once" is within a small part of the lame-duck period.
    let ready = await dns.admin('/readyz');
    while (ready.status !== 503 && Date.now() - signalled < 500) ready = await dns.admin('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).waiting).toMatchObject([{ check: 'listeners', reason: expect.stringContaining('shutting down') }]);
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(web);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(web);
    expect(await dns.exited).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(1900);
    expect((await dig(port, 'web.default.svc.cluster.local')).status).toBeUndefined();
  }, 30_000);
});

describe('netplane dns forwarding to itself', () => {
  it('finds the loop at start, says which upstream loops, stops using it and fails readiness when none is left', async () => {
    const port = await freePort();
    const { dns } = await running(['--upstream', `127.0.0.1:${port}`], port);
    await waitFor('the loop logged', () => dns.logs().includes('DNS forwarding loop'), 10_000);
    expect(dns.logs()).toMatch(new RegExp(`"level":50.*"upstream":"127\\.0\\.0\\.1:${port}".*DNS forwarding loop: upstream 127\\.0\\.0\\.1:${port}`));
    const ready = await dns.admin('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).waiting).toEqual([{ check: 'upstreams', reason: `every upstream of . (127.0.0.1:${port}) forwards back to this server` }]);
    // Nothing goes round: an external name fails at once, cluster names are answered.
    const started = Date.now();
    expect((await dig(port, 'www.example.org')).status).toBe('SERVFAIL');
    expect(Date.now() - started).toBeLessThan(900);
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(web);
  }, 30_000);

  it('keeps forwarding through the upstreams that do not loop', async () => {
    const good = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.8', 60)] }));
    cleanup.push(() => good.close());
    const port = await freePort();
    const { dns } = await running(['--upstream', `127.0.0.1:${port}`, '--upstream', good.hostPort.text], port);
    await waitFor('the loop logged', () => dns.logs().includes(`DNS forwarding loop: upstream 127.0.0.1:${port}`), 10_000);
    await waitFor('ready', async () => (await dns.admin('/readyz')).status === 200, 10_000);
    expect(await dig(port, 'www.example.org')).toEqual({ status: 'NOERROR', answer: ['www.example.org. IN A 192.0.2.8'] });
    expect(dns.logs()).not.toContain(`DNS forwarding loop: upstream ${good.hostPort.text}`);
  }, 30_000);
});

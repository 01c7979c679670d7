import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Counter } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { Store } from '../../cluster/store.ts';
import { AdminServer } from '../../runtime/admin.ts';
import { parseHostPort } from '../../runtime/flags.ts';
import { createRegistry, registerStoreMetrics } from '../../runtime/metrics.ts';
import { sampleCluster } from '../fixtures/objects.ts';

const run = promisify(execFile);

describe('AdminServer', () => {
  let admin: AdminServer | undefined;
  afterEach(async () => {
    await admin?.close();
    admin = undefined;
  });

  async function serve(store: Store) {
    const registry = createRegistry('test', '0.0.0-test');
    registerStoreMetrics(registry, store);
    new Counter({ name: 'netplane_test_things_total', help: 'Things a component counted.', registers: [registry] }).inc(3);
    admin = new AdminServer(registry, store);
    const { port } = await admin.listen(parseHostPort('127.0.0.1:0'));
    return (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
  }

  it("serves a component's own pages beside the fixed ones, which it cannot take", async () => {
    const store = new Store(['Service']);
    const get = await serve(store);
    admin!.addPage('/proxyMode', () => 'nftables');
    expect(() => admin!.addPage('/livez', () => 'taken')).toThrow("the admin server's /livez cannot be replaced");
    const mode = await get('/proxyMode');
    expect([mode.status, mode.headers.get('content-type'), await mode.text()]).toEqual([200, 'text/plain', 'nftables']);
    expect(await (await get('/livez')).text()).toBe('ok\n');
    const missing = await get('/nope');
    expect([missing.status, await missing.text()]).toEqual([404, 'not found; try /metrics, /healthz, /livez, /readyz, /health, /ready or /proxyMode\n']);
  });

  it('is not ready until the first full view is loaded, then ready and reporting staleness', async () => {
    const store = new Store(['Service']);
    const get = await serve(store);
    let res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, synced: false });
    expect((await get('/livez')).status).toBe(200);

    store.markStale(false);
    store.markSynced('Service');
    res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ready: true, stale: false });

    // An outage after the first view keeps the process ready (it serves the last view) and says it is stale.
    store.markStale(true, 'Service: connect ECONNREFUSED');
    res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ready: true, stale: true, staleReason: 'Service: connect ECONNREFUSED' });
  });

  it('stays unready while a readiness check the component added fails, and says which', async () => {
    const store = new Store(['Service']);
    store.markStale(false);
    store.markSynced('Service');
    const get = await serve(store);
    let listening = false;
    admin!.addReadinessCheck('listeners', () => (listening ? { ok: true } : { ok: false, reason: 'not listening yet' }));
    let res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, synced: true, waiting: [{ check: 'listeners', reason: 'not listening yet' }] });
    listening = true;
    res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).not.toHaveProperty('waiting');
  });

  it('turns /healthz 503 with the failing check while a check fails; /livez stays up', async () => {
    const get = await serve(new Store());
    let failing = false;
    admin!.addHealthCheck('sync', () => (failing ? { ok: false, reason: 'a change has waited 61 s' } : { ok: true }));
    expect((await get('/healthz')).status).toBe(200);
    failing = true;
    const res = await get('/healthz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ healthy: false, failing: [{ check: 'sync', reason: 'a change has waited 61 s' }] });
    expect((await get('/livez')).status).toBe(200);
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    const get = await serve(new Store());
    expect((await get('/nope')).status).toBe(404);
    const port = new URL((await get('/livez')).url).port;
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { method });
      // RFC 9110 15.5.6: a 405 carries Allow.
      expect([res.status, res.headers.get('allow')], method).toEqual([405, 'GET, HEAD']);
    }
  });

  it('serves /metrics that promtool accepts, with process, view and component metrics', async () => {
    const store = new Store();
    store.apply(sampleCluster().flatMap((r) => parseObject(r)));
    const get = await serve(store);
    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('netplane_cluster_objects{kind="Service"} 4');
    expect(text).toContain('netplane_build_info{component="test",version="0.0.0-test"} 1');
    expect(text).toContain('netplane_test_things_total 3');
    const dir = await mkdtemp(join(tmpdir(), 'netplane-metrics-'));
    try {
      await writeFile(join(dir, 'metrics.txt'), text);
      // promtool reads the exposition from stdin and exits non-zero on any problem (lint included).
      const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < ${join(dir, 'metrics.txt')}`]);
      expect(stdout + stderr).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// The collection before a process first says it is ready (runtime/startup-gc.ts): a real `netplane dns` started as
// the image starts it (node --expose-gc) reports what it freed; without the flag it does nothing; readiness waits
// for it, and it waits for every other check.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../../runtime/admin.ts';
import { createRegistry } from '../../runtime/metrics.ts';
import { collectBeforeReady, collectStartupGarbage, startupGcCheck } from '../../runtime/startup-gc.ts';
import { Store } from '../../cluster/store.ts';
import { freePort } from '../helpers/ports.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-startup-gc-'));
  // 2,000 Services with their slices, in files small enough to be parsed on the main thread.
  for (let f = 0; f < 20; f++) {
    const items = Array.from({ length: 100 }, (_, j) => {
      const i = f * 100 + j;
      const ip = (p: string, n: number) => `${p}.${n >> 8}.${n & 255}`;
      return [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' }, spec: { clusterIP: ip('10.96', i + 1), ports: [{ name: 'http', port: 80 }] } },
        { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${i}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': `s${i}` } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: [ip('10.244', i + 1)] }] },
      ];
    }).flat();
    await writeFile(join(dir, `s${f}.json`), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Starts dns with `nodeFlags` until /readyz answers 200 and a second has passed; returns its log lines. */
async function logsOfStart(nodeFlags: string[]): Promise<Array<Record<string, unknown>>> {
  const admin = await freePort();
  const proc = spawn(process.execPath, [...nodeFlags, bin, 'dns', '--manifests', dir, '--node-name', 'n1', '--listen', `127.0.0.1:${await freePort()}`, `--admin=127.0.0.1:${admin}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    await waitFor('dns ready', async () => (await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined))?.status === 200, 20_000, 50);
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    proc.kill('SIGKILL');
    await exited;
  }
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const collected = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.msg === 'collected the garbage of loading the first view');

describe('the collection after the first load', () => {
  it('with gc exposed, runs once after the first full view and frees heap', async () => {
    const logs = await logsOfStart(['--expose-gc']);
    const lines = collected(logs);
    expect(lines).toHaveLength(1);
    const [before, after] = lines[0]!.heapUsedMiB as [number, number];
    expect(after).toBeLessThan(before);
    const order = logs.map((l) => l.msg);
    expect(order.indexOf('first full view loaded')).toBeLessThan(order.indexOf('collected the garbage of loading the first view'));
  });

  it('without gc exposed, does nothing', async () => {
    expect(collected(await logsOfStart([]))).toEqual([]);
  });

  it('waits for the view and every other readiness check, collects once, then lets /readyz pass', async () => {
    const store = new Store(['Service']);
    const admin = new AdminServer(createRegistry('test', '0.0.0-test'), store);
    let synced = false;
    admin.addReadinessCheck('first-sync', () => (synced ? { ok: true } : { ok: false, reason: 'not yet' }));
    const calls: unknown[] = [];
    const stop = collectBeforeReady(admin, captureLogger().log, (o) => calls.push(o), 5);
    try {
      const pause = () => new Promise((r) => setTimeout(r, 40));
      await pause();
      expect(calls).toEqual([]);
      store.markSynced('Service');
      await pause();
      expect(calls).toEqual([]);
      expect(admin.readyExcept(startupGcCheck)).toBe(false);
      synced = true;
      expect(admin.readyExcept(startupGcCheck)).toBe(true);
      expect(admin.readyExcept('first-sync')).toBe(false);
      await waitFor('the collection', () => calls.length === 1);
      await pause();
      expect(calls).toHaveLength(1);
      expect(admin.readyExcept('none')).toBe(true);
    } finally {
      stop();
    }
  });

  it('asks V8 for its last-resort collection, which gives the freed pages back', () => {
    const calls: unknown[] = [];
    const { log, records } = captureLogger();
    expect(collectStartupGarbage(log, (o) => calls.push(o))).toBe(true);
    expect(calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    expect(records.map((r) => r.msg)).toEqual(['collected the garbage of loading the first view']);
    expect(collectStartupGarbage(log, undefined)).toBe(false);
  });
});

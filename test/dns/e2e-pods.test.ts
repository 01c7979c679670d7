// `netplane dns --pods verified` as users run it, queried with dig: from a manifest directory holding Pods (edits
// followed, a replayed answer not outliving its Pod), and from the test API server (Pods listed and watched, finished
// Pods gone, and Pods forbidden by RBAC costing only the pod names); with --pods insecure no Pod is ever asked of the
// API server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TestApiServer } from '../apiserver/server.ts';
import { service } from '../fixtures/objects.ts';
import { pod } from '../fixtures/pods.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { dig } from './process.ts';
import { aQuery, udpExchange } from './server/helpers.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const running = (ip: string) => ({ phase: 'Running', podIP: ip, podIPs: [{ ip }] });
const yaml = (objects: object[]) => objects.map((o) => JSON.stringify(o)).join('\n---\n');

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Starts `netplane dns` with these flags on a free port; resolves once it answers the cluster zone. */
async function start(args: string[]): Promise<{ port: number; proc: ChildProcess; logs: () => string; admin: (path: string) => Promise<{ status: number; body: string }> }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [bin, 'dns', '--admin', '127.0.0.1:0', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--lameduck', '0s', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise((r) => proc.once('exit', r));
  cleanup.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  await waitFor('dns answering', async () => (await dig(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000);
  const adminPort = /"admin":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1];
  const admin = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
    return { status: res.status, body: await res.text() };
  };
  return { port, proc, logs: () => out, admin };
}

const answer = async (port: number, name: string, type = 'A') => {
  const r = await dig(port, name, type);
  return `${r.status} ${r.answer.join(' | ')}`.trim();
};

describe('netplane dns --pods verified from a manifest directory', () => {
  it('answers a pod name only while a Pod of that namespace has that address, following edits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'netplane-pods-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'web.yaml'), JSON.stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] })));
    const pods = [pod('a', 'shop', running('10.244.1.5')), pod('done', 'shop', { phase: 'Failed', podIP: '10.244.1.6' })];
    await writeFile(join(dir, 'pods.yaml'), yaml(pods));
    const { port } = await start(['--manifests', dir, '--pods', 'verified']);
    const rows: Array<[string, string]> = [
      ['10-244-1-5.shop.pod.cluster.local', 'NOERROR 10-244-1-5.shop.pod.cluster.local. IN A 10.244.1.5'],
      ['10-244-1-5.default.pod.cluster.local', 'NXDOMAIN'],
      ['10-244-1-6.shop.pod.cluster.local', 'NXDOMAIN'],
      ['10-244-1-7.shop.pod.cluster.local', 'NXDOMAIN'],
      ['shop.pod.cluster.local', 'NOERROR'],
    ];
    for (const [name, want] of rows) expect(await answer(port, name), name).toBe(want);

    // The same query bytes (dig's differ: a new cookie each time) get the first answer replayed; once the Pod is
    // gone, the replay must be too. The rcode is the low 4 bits of byte 3.
    const raw = (id: number) => udpExchange(port, aQuery('10-244-1-5.shop.pod.cluster.local', id)).then((r) => r[3]! & 0x0f);
    expect([await raw(1), await raw(2)]).toEqual([0, 0]);
    await writeFile(join(dir, 'pods.yaml'), yaml([pod('b', 'shop', running('10.244.1.7'))]));
    await waitFor('the new Pod answers', async () => (await answer(port, '10-244-1-7.shop.pod.cluster.local')).startsWith('NOERROR'), 10_000);
    expect(await raw(3)).toBe(3);
    expect(await answer(port, '10-244-1-5.shop.pod.cluster.local')).toBe('NXDOMAIN');
  }, 30_000);
});

describe('netplane dns --pods on the Kubernetes API', () => {
  async function api(): Promise<TestApiServer> {
    const s = await TestApiServer.start();
    cleanup.push(() => s.close());
    s.apply(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    s.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    return s;
  }

  it('verified: lists and watches Pods; a Pod that comes answers, one that finishes does not', async () => {
    const s = await api();
    s.apply(pod('a', 'shop', running('10.244.1.5')));
    const { port } = await start(['--kubeconfig', await s.kubeconfigPath(), '--pods', 'verified']);
    expect(await answer(port, '10-244-1-5.shop.pod.cluster.local')).toBe('NOERROR 10-244-1-5.shop.pod.cluster.local. IN A 10.244.1.5');
    expect(await answer(port, '10-244-1-8.shop.pod.cluster.local')).toBe('NXDOMAIN');
    s.apply(pod('b', 'shop', running('10.244.1.8')));
    await waitFor('the new Pod answers', async () => (await answer(port, '10-244-1-8.shop.pod.cluster.local')).startsWith('NOERROR'), 10_000);
    s.apply(pod('a', 'shop', { phase: 'Succeeded', podIP: '10.244.1.5' }));
    await waitFor('the finished Pod is gone', async () => (await answer(port, '10-244-1-5.shop.pod.cluster.local')) === 'NXDOMAIN', 10_000);
    expect(s.requests.some((r) => r.path === '/api/v1/pods' && r.query.watch === 'true')).toBe(true);
  }, 30_000);

  it('verified without the pods RBAC rule: Services answer and it is ready; pod names SERVFAIL, the log names the rule; answered once allowed', async () => {
    const s = await api();
    s.apply(pod('a', 'shop', running('10.244.1.5')));
    s.forbid('pods');
    // start() waits for web.default.svc to answer NOERROR: the Services do not wait for the Pods.
    const { port, logs, admin } = await start(['--kubeconfig', await s.kubeconfigPath(), '--pods', 'verified']);
    const readyz = JSON.parse((await admin('/readyz')).body) as Record<string, unknown>;
    expect(readyz).toMatchObject({ ready: true, synced: true, stale: true, staleReason: expect.stringContaining('the ServiceAccount needs list and watch on pods') });
    const rows: Array<[string, string]> = [
      ['10-244-1-5.shop.pod.cluster.local', 'SERVFAIL'],
      ['10-244-1-7.shop.pod.cluster.local', 'SERVFAIL'],
      ['10-244-1-5.nowhere.pod.cluster.local', 'NXDOMAIN'],
      ['web.default.svc.cluster.local', 'NOERROR web.default.svc.cluster.local. IN A 10.96.0.10'],
    ];
    for (const [name, want] of rows) expect(await answer(port, name), name).toBe(want);
    const line = logs().split('\n').find((l) => l.includes('"level":50') && l.includes('"kind":"Pod"'));
    expect(line && JSON.parse(line)).toMatchObject({ msg: 'the API server forbids reading Pod: the ServiceAccount needs list and watch on pods (see deploy/rbac.yaml); retrying' });
    expect(logs()).toMatch(/"stillListing":\["Pod"\].*"msg":"first full view loaded"/);

    s.allow('pods');
    await waitFor('the Pod answers', async () => (await answer(port, '10-244-1-5.shop.pod.cluster.local')).startsWith('NOERROR'), 15_000);
    expect(await answer(port, '10-244-1-7.shop.pod.cluster.local')).toBe('NXDOMAIN');
  }, 40_000);

  it('insecure: answers any address and asks the API server for no Pod', async () => {
    const s = await api();
    const { port } = await start(['--kubeconfig', await s.kubeconfigPath(), '--pods', 'insecure']);
    expect(await answer(port, '10-244-1-5.shop.pod.cluster.local')).toBe('NOERROR 10-244-1-5.shop.pod.cluster.local. IN A 10.244.1.5');
    expect(s.requests.filter((r) => r.path.includes('pods'))).toEqual([]);
  }, 30_000);
});

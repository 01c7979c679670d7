// The image's compile cache (bin/warm-compile-cache.ts, NODE_COMPILE_CACHE in the Dockerfile): after warming, a
// component started as the image starts it strips no TypeScript itself — every module, worker threads' included,
// comes from the cache — so Node never loads its stripper. Node's own trace of the cache (NODE_DEBUG_NATIVE) is
// the witness: it names each file it had to strip.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modulesToWarm, shippedFolders } from '../../bin/warm-compile-cache.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/netplane.ts');
const warm = join(root, 'bin/warm-compile-cache.ts');
const isRoot = process.getuid?.() === 0;
/** The node flags of the image's entry point (ENTRYPOINT in the Dockerfile), with which it also warms the cache. */
const imageFlags = (JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))![1]!) as string[]).slice(1, -1);

let dir = '';
let cache = '';

/** Node's trace lines for the .ts files it had to strip (cache misses) and took from the cache (hits). */
function traced(out: string): { stripped: string[]; cached: string[] } {
  const file = (re: RegExp) => [...out.matchAll(re)].map((m) => m[1]!.replace(/^file:\/\//, ''));
  return {
    stripped: file(/no transpile cache for \w+TypeScript (\S+)/g),
    cached: file(/retrieving transpile cache for \w+TypeScript (\S+)\.\.\.success/g),
  };
}

/** Runs `netplane ARGS` with the warmed cache until its /readyz answers 200, then stops it; returns its output. */
async function runUntilReady(args: string[], admin: number, prefix: string[] = []): Promise<string> {
  const cmd = [...prefix, process.execPath, ...imageFlags, bin, ...args, `--admin=127.0.0.1:${admin}`];
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    env: { ...process.env, NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    await waitFor(`netplane ${args[0]} ready`, async () => {
      if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${out.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      return r?.status === 200;
    }, 20_000, 50);
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-compile-cache-'));
  cache = join(dir, 'cache');
  // Over 32 KiB, so the manifests are parsed on the parser thread (cluster/manifests/parser.ts).
  const services = Array.from({ length: 300 }, (_, i) => `apiVersion: v1
kind: Service
metadata: {name: svc-${i}, namespace: default, labels: {app: demo, tier: backend, index: "${i}"}}
spec: {clusterIP: 10.96.${i >> 8}.${(i & 255) + 1}, ports: [{name: http, port: 80, targetPort: 8080}]}
`).join('---\n');
  await writeFile(join(dir, 'services.yaml'), services);
  execFileSync(process.execPath, [...imageFlags, warm], { env: { ...process.env, NODE_COMPILE_CACHE: cache }, stdio: 'pipe' });
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the warmed compile cache', () => {
  it('lists every module of the folders the image ships', () => {
    const files = modulesToWarm();
    expect(files).toContain(join(root, 'dns/server/udp.ts'));
    expect(files).toContain(join(root, 'proxy/userspace/worker.ts'));
    expect(files).not.toContain(bin);
    expect(files.filter((f) => !shippedFolders.some((s) => f.startsWith(join(root, s) + '/')))).toEqual([]);
  });

  it('starts dns, with the manifest parser thread, without stripping a file', async () => {
    const out = await runUntilReady(['dns', '--manifests', dir, '--node-name', 'n1', '--listen', `127.0.0.1:${await freePort()}`], await freePort());
    const { stripped, cached } = traced(out);
    expect(stripped).toEqual([]);
    expect(cached).toContain(join(root, 'cluster/manifests/parser-worker.ts'));
    expect(cached).toContain(join(root, 'dns/server/udp.ts'));
  });

  it('starts the userspace proxy, with its worker threads, without stripping a file', async () => {
    const out = await runUntilReady(['proxy', '--manifests', dir, '--node-name', 'n1', '--mode', 'userspace', '--userspace-threads', '2', '--bind-address', '127.0.0.1'], await freePort());
    const { stripped, cached } = traced(out);
    expect(stripped).toEqual([]);
    expect(cached).toContain(join(root, 'proxy/userspace/worker.ts'));
  });

  it('starts ingress without stripping a file', async () => {
    const out = await runUntilReady(['ingress', '--manifests', dir, '--node-name', 'n1', `--http=127.0.0.1:${await freePort()}`, `--https=127.0.0.1:${await freePort()}`], await freePort());
    const { stripped, cached } = traced(out);
    expect(stripped).toEqual([]);
    expect(cached).toContain(join(root, 'ingress/server/gateway.ts'));
  });

  it.runIf(isRoot)('runs overlay --cleanup, with its netlink kernel layer, without stripping a file', () => {
    const ns = `npcc${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, ...imageFlags, bin, 'overlay', '--cleanup'], {
        env: { ...process.env, NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      expect(r.status, r.stderr).toBe(0);
      const { stripped, cached } = traced(r.stdout + r.stderr);
      expect(stripped).toEqual([]);
      expect(cached).toContain(join(root, 'overlay/kernel/netlink.ts'));
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
  });

  it('is not used by a process whose V8 flags differ from those it was warmed with (Node keys it by them)', () => {
    const r = spawnSync(process.execPath, [bin, '--version'], {
      env: { ...process.env, NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    expect(r.status).toBe(0);
    expect(traced(r.stdout + r.stderr).stripped).toContain(join(root, 'dns/component.ts'));
  });

  it('without the cache, the same start strips every module itself (the trace is a witness)', () => {
    const r = spawnSync(process.execPath, [bin, '--version'], {
      env: { ...process.env, NODE_COMPILE_CACHE: join(dir, 'empty'), NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    expect(r.status).toBe(0);
    expect(traced(r.stdout + r.stderr).stripped).toContain(join(root, 'dns/component.ts'));
  });
});

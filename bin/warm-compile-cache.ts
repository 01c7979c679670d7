#!/usr/bin/env node
// Fills Node's compile cache ($NODE_COMPILE_CACHE) for the container image, so that the processes it runs start
// from the type-stripped text and V8 code of every module instead of loading Node's TypeScript stripper (amaro,
// a WebAssembly build of swc) and stripping each file again: about 25 MiB less resident memory per process and
// half the start-up time. The sources stay the .ts files; the cache is only consulted, by file name and content
// hash, so an edited file is simply stripped again.
//
// Node keeps one cache directory per user ID and per set of V8 flags that change compiled code (--expose-gc does,
// --max-semi-space-size does not), so the image warms it for each user its processes run as, with the flags its
// entry point gives node, which this script passes on to the processes that load the modules:
//   node [FLAGS] bin/warm-compile-cache.ts [UID...]   (as root; no UID: only the current user)
// Every module of the shipped folders is loaded once. The entry point runs as `netplane --version`; worker-thread
// modules are imported outside a worker, where they stop at their first use of the parent port, after compiling.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The folders the Dockerfile copies into the image (test/deploy/image.test.ts holds the two lists together). */
export const shippedFolders = ['bin', 'cluster', 'runtime', 'proxy', 'dns', 'ingress', 'overlay'] as const;

const root = fileURLToPath(new URL('../', import.meta.url));
const self = fileURLToPath(import.meta.url);
const entry = join(root, 'bin/netplane.ts');

/** Every .ts file under the shipped folders that exist here, entry point and this script left out. */
export function modulesToWarm(base: string = root): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const f of shippedFolders) if (existsSync(join(base, f))) walk(join(base, f));
  return out.filter((p) => p !== join(base, 'bin/netplane.ts') && p !== join(base, 'bin/warm-compile-cache.ts')).sort();
}

function fail(message: string): never {
  process.stderr.write(`warm-compile-cache: ${message}\n`);
  process.exit(1);
}

/** In the process of one user: loads every module, so that Node writes their cache entries at exit. */
async function load(): Promise<void> {
  const run = spawnSync(process.execPath, [...process.execArgv, entry, '--version'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (run.status !== 0) fail(`${entry} --version exited with ${run.status ?? run.signal}`);
  for (const file of modulesToWarm()) {
    try {
      await import(pathToFileURL(file).href);
    } catch (e) {
      // A worker module has no parent port here; it was compiled (and its cache entry made) before it ran.
      if (!/worker/.test(file)) fail(`${file}: ${(e as Error).message}`);
    }
  }
}

async function main(): Promise<void> {
  const dir = process.env.NODE_COMPILE_CACHE;
  if (!dir) fail('NODE_COMPILE_CACHE is not set: it names the directory to fill');
  if (process.argv[2] === '--load') return load();
  const uids = process.argv.slice(2).map((a) => {
    if (!/^\d+$/.test(a)) fail(`"${a}" is not a user ID`);
    return Number(a);
  });
  const own = process.getuid?.() ?? 0;
  if (uids.some((u) => u !== own) && own !== 0) fail('warming the cache for other users needs root');
  mkdirSync(dir, { recursive: true });
  // Node makes a subdirectory per user ID under it; each user must be able to create its own.
  if (uids.length > 0) chmodSync(dir, 0o1777);
  try {
    for (const uid of uids.length > 0 ? uids : [own]) {
      const r = spawnSync(process.execPath, [...process.execArgv, self, '--load'], { stdio: 'inherit', uid, gid: uid === own ? process.getgid?.() : uid });
      if (r.status !== 0) fail(`warming for user ${uid} exited with ${r.status ?? r.signal ?? r.error?.message}`);
    }
  } finally {
    if (uids.length > 0) chmodSync(dir, 0o755);
  }
}

if (process.argv[1] === self) await main();

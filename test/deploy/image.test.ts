// The image runs bin/netplane.ts: every module it loads at start must be in a folder the Dockerfile copies, and the
// runtime packages it imports must be dependencies (the image installs with --omit=dev).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedFolders } from '../../bin/warm-compile-cache.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Files reached from `entry` through static relative imports (dynamic `import()` is left out: it loads on demand). */
function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s(?!type\s)[^;]*?from\s+'([^']+)'/gms)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(join(root, 'bin/netplane.ts'));
  return { files, packages };
}

describe('the container image', () => {
  const { files, packages } = staticGraph(join(root, 'bin/netplane.ts'));
  const copied = [...readFileSync(join(root, 'Dockerfile'), 'utf8').matchAll(/^COPY\s+(\S+)\s+\.\/\S+$/gm)].map((m) => m[1]!);

  it('copies every folder whose modules bin/netplane.ts loads at start', () => {
    const folders = new Set([...files].map((f) => relative(root, f).split('/')[0]!));
    expect([...folders].filter((f) => !copied.includes(f))).toEqual([]);
    expect(folders.size).toBeGreaterThan(5);
  });

  it('warms the compile cache for every folder it copies, after copying them', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect([...shippedFolders].sort()).toEqual([...copied].filter((c) => !c.startsWith('package')).sort());
    const warm = dockerfile.search(/^RUN node .*bin\/warm-compile-cache\.ts/m);
    expect(warm).toBeGreaterThan(dockerfile.indexOf('ENV NODE_COMPILE_CACHE='));
    expect(warm).toBeGreaterThan(dockerfile.lastIndexOf('\nCOPY '));
    // Node keys the cache by the V8 flags that change code: the warm-up runs with the entry point's node flags.
    const warmFlags = /^RUN node ((?:--\S+ )*)bin\/warm-compile-cache\.ts/m.exec(dockerfile)![1]!.trim().split(' ').filter(Boolean);
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(warmFlags).toEqual(entry.slice(1, -1));
  });

  it("links the anchors' programs at their manifests' paths to bin/anchor, which starts node as the entry point does", () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const linked = [...dockerfile.matchAll(/ln -s \/app\/bin\/anchor (\S+)/g)].map((m) => m[1]!);
    expect(linked.sort()).toEqual(['/coredns', '/nginx-ingress-controller', '/node-cache', '/opt/bin/flanneld', '/usr/local/bin/kube-proxy']);
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    const exec = /^exec node ((?:--\S+ )*)"\$here\/netplane\.ts"/m.exec(readFileSync(join(root, 'bin/anchor'), 'utf8'));
    expect(exec?.[1]?.trim().split(' ')).toEqual(entry.slice(1, -1));
  });

  it("gives ingress-nginx's preStop hook, /wait-shutdown, a script that returns at once with success", () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/ln -s \/app\/bin\/wait-shutdown \/wait-shutdown\b/);
    const r = spawnSync(join(root, 'bin/wait-shutdown'), [], { encoding: 'utf8', timeout: 5000 });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
  });

  it('installs every package those modules import (dependencies, not devDependencies)', () => {
    const deps = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
    expect([...packages].filter((p) => !deps.includes(p))).toEqual([]);
    expect(packages.size).toBeGreaterThan(3);
  });
});

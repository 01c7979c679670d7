// The manifests source against what real directories do: files that do not parse, renames into subdirectories, a
// directory deleted and made again, broken files renamed, writers that truncate first, symlink loops. Each edit
// must arrive through the file-system watches within a second: the periodic rescan is set far beyond the tests.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { Store } from '../../cluster/store.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const svc = (name: string, ip: string, port = 80) => `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec: { clusterIP: ${ip}, ports: [{ port: ${port} }] }
`;
const clusterIP = (store: Store, name: string) => store.get('Service', `default/${name}`)?.spec.clusterIPs[0];
const port = (store: Store, name: string) => store.get('Service', `default/${name}`)?.spec.ports[0]?.port;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ManifestsSource faults', () => {
  let root: string;
  let dir: string;
  let source: ManifestsSource | undefined;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'netplane-faults-'));
    dir = join(root, 'm');
    await mkdir(dir);
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(root, { recursive: true, force: true });
  });

  async function start(options: { emptyGraceMs?: number } = {}) {
    const { log, records } = captureLogger();
    const store = new Store();
    source = new ManifestsSource(dir, { log, debounceMs: 20, rescanMs: 60_000, ...options });
    await source.start(store);
    return { store, records };
  }

  /** Replaces a file the way editors and `sed -i` do: write a temporary file, rename it over the old one. */
  async function replace(path: string, text: string) {
    await writeFile(`${path}.tmp~`, text);
    await rename(`${path}.tmp~`, path);
  }

  it('reports a file with an unresolved alias or an alias bomb, keeps its last good objects, and applies every other file', async () => {
    await writeFile(join(dir, 'alias.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  a: *nope\n');
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.15'));
    await writeFile(join(dir, 'kept.yaml'), svc('kept', '10.96.2.16'));
    const { store, records } = await start();
    // At start: the bad file is named, the others are in the view.
    expect(clusterIP(store, 'top')).toBe('10.96.2.15');
    expect(store.status).toMatchObject({ synced: true, stale: false });
    expect(source!.problems()).toEqual([{ file: 'alias.yaml', document: 1, reason: expect.stringMatching(/Unresolved alias.*nope/) }]);

    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.50'));
    await writeFile(join(dir, 'new.yaml'), svc('newsvc', '10.96.3.1'));
    await writeFile(join(dir, 'kept.yaml'), `${svc('kept', '10.96.2.16')}---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);
    await waitFor('the other files', () => clusterIP(store, 'top') === '10.96.2.50' && clusterIP(store, 'newsvc'), 1000);
    await waitFor('the bomb reported', () => source!.problems().some((p) => p.file === 'kept.yaml'), 1000);
    expect(source!.problems()).toContainEqual({ file: 'kept.yaml', document: 2, reason: expect.stringMatching(/Excessive alias count/) });
    expect(clusterIP(store, 'kept')).toBe('10.96.2.16');
    expect(records.some((r) => /rescan failed/.test(String(r.msg)))).toBe(false);
  });

  it('applies edits within a second to a file replaced by rename in a subdirectory, and in a subdirectory moved in later', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'f.yaml'), svc('f', '10.96.0.1', 1000));
    const { store } = await start();
    // `sed -i` writes a new file and renames it over the old one; Node's recursive watch lost the sixth edit here.
    for (let p = 1001; p <= 1008; p++) {
      await promisify(execFile)('sed', ['-i', `s/port: ${p - 1}/port: ${p}/`, join(dir, 'sub', 'f.yaml')]);
      await waitFor(`sub/f.yaml at port ${p}`, () => port(store, 'f') === p, 1000);
      await sleep(300);
    }
    await mkdir(join(root, 'later', 'deeper'), { recursive: true });
    await writeFile(join(root, 'later', 'deeper', 'g.yaml'), svc('g', '10.96.0.2', 2000));
    await rename(join(root, 'later'), join(dir, 'later'));
    await waitFor('the moved-in directory', () => port(store, 'g') === 2000, 1000);
    for (let p = 2001; p <= 2003; p++) {
      await replace(join(dir, 'later', 'deeper', 'g.yaml'), svc('g', '10.96.0.2', p));
      await waitFor(`later/deeper/g.yaml at port ${p}`, () => port(store, 'g') === p, 1000);
    }
  });

  it('marks the view stale while the directory is gone, and applies edits within a second once it is made again', async () => {
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.15'));
    const { store } = await start();
    await rm(dir, { recursive: true });
    await waitFor('stale', () => store.status.stale, 1000);
    expect(store.status.staleReason).toMatch(/no such directory/);
    expect(clusterIP(store, 'top')).toBe('10.96.2.15');

    await mkdir(dir);
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.20'));
    await waitFor('the new directory', () => clusterIP(store, 'top') === '10.96.2.20' && !store.status.stale, 1000);
    for (const ip of ['10.96.2.21', '10.96.2.22']) {
      await replace(join(dir, 'top.yaml'), svc('top', ip));
      await waitFor(`edit to ${ip}`, () => clusterIP(store, 'top') === ip, 1000);
    }
    // A whole new version of the directory renamed into place (a deploy's atomic swap).
    await mkdir(join(root, 'm.new'));
    await writeFile(join(root, 'm.new', 'top.yaml'), svc('top', '10.96.2.30'));
    await rename(dir, join(root, 'm.old'));
    await rename(join(root, 'm.new'), dir);
    await waitFor('the swapped directory', () => clusterIP(store, 'top') === '10.96.2.30', 1000);
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.31'));
    await waitFor('an edit in the swapped directory', () => clusterIP(store, 'top') === '10.96.2.31', 1000);
    // Deleted and made again at once (`rm -rf m; cp -a m.bak m`): the new directory often gets the old inode number.
    await rm(dir, { recursive: true });
    await mkdir(dir);
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.40'));
    await waitFor('the re-made directory', () => clusterIP(store, 'top') === '10.96.2.40', 1000);
    for (const ip of ['10.96.2.41', '10.96.2.42']) {
      await replace(join(dir, 'top.yaml'), svc('top', ip));
      await waitFor(`edit to ${ip}`, () => clusterIP(store, 'top') === ip, 1000);
    }
  });

  it('keeps the last good objects of a broken file that is renamed, under its new name', async () => {
    await writeFile(join(dir, 'svc.yaml'), `${svc('a', '10.96.1.1')}---\n${svc('b', '10.96.1.2')}`);
    const { store } = await start();
    await writeFile(join(dir, 'svc.yaml'), `${svc('a', '10.96.1.1')}---\n${svc('b', '10.96.1.2', 99999)}`);
    await waitFor('the rejection', () => source!.problems().length === 1, 1000);
    await mkdir(join(dir, 'moved'));
    await rename(join(dir, 'svc.yaml'), join(dir, 'moved', 'svc2.yaml'));
    await waitFor('the problem under the new name', () => source!.problems()[0]?.file === join('moved', 'svc2.yaml'), 1000);
    await source!.rescan();
    expect([clusterIP(store, 'a'), clusterIP(store, 'b')]).toEqual(['10.96.1.1', '10.96.1.2']);
    expect(source!.problems()).toEqual([{ file: join('moved', 'svc2.yaml'), document: 2, reason: expect.stringMatching(/port/) }]);
    // Fixed under its new name, it applies; deleted, its objects go.
    await writeFile(join(dir, 'moved', 'svc2.yaml'), `${svc('a', '10.96.1.1')}---\n${svc('b', '10.96.1.2', 81)}`);
    await waitFor('the fix', () => port(store, 'b') === 81, 1000);
    await unlink(join(dir, 'moved', 'svc2.yaml'));
    await waitFor('the deletion', () => !store.get('Service', 'default/a') && !store.get('Service', 'default/b'), 1000);
  });

  it('keeps the objects of a file truncated and then written slowly (a shell > redirect)', async () => {
    await writeFile(join(dir, 'svc3.yaml'), svc('c', '10.96.1.3'));
    await writeFile(join(root, 'svc3.copy'), svc('c', '10.96.1.3', 8080));
    const { store } = await start();
    const seen: Array<number | undefined> = [];
    const poll = setInterval(() => seen.push(port(store, 'c')), 10);
    try {
      await promisify(execFile)('sh', ['-c', `(sleep 0.5; cat "$1") > "$2"`, 'sh', join(root, 'svc3.copy'), join(dir, 'svc3.yaml')]);
      await waitFor('the new content', () => port(store, 'c') === 8080, 1000);
    } finally {
      clearInterval(poll);
    }
    expect(seen.length).toBeGreaterThan(20);
    expect(seen.filter((p) => p === undefined)).toEqual([]);
  });

  it('removes the objects of a file that stays empty after the grace period, and of a deleted file at once', async () => {
    await writeFile(join(dir, 'a.yaml'), svc('a', '10.96.1.1'));
    await writeFile(join(dir, 'b.yaml'), svc('b', '10.96.1.2'));
    const { store } = await start({ emptyGraceMs: 300 });
    const t0 = Date.now();
    await writeFile(join(dir, 'a.yaml'), '');
    await unlink(join(dir, 'b.yaml'));
    await waitFor('the deleted file', () => !store.get('Service', 'default/b'), 1000);
    expect(store.get('Service', 'default/a')).toBeDefined();
    await waitFor('the empty file', () => !store.get('Service', 'default/a'), 1000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    // A file that is empty from the start holds nothing and waits for nothing.
    await writeFile(join(dir, 'a.yaml'), svc('a', '10.96.1.1'));
    await waitFor('content again', () => store.get('Service', 'default/a'), 1000);
  });

  it('reads a directory reached again through a symlink loop once, with one warning', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'top.yaml'), svc('top', '10.96.2.15'));
    await writeFile(join(dir, 'sub', 'f.yaml'), svc('f', '10.96.0.1'));
    await symlink('.', join(dir, 'loop'));
    await symlink('..', join(dir, 'sub', 'up'));
    const { store, records } = await start();
    await source!.rescan();
    await source!.rescan();
    expect(store.count('Service')).toBe(2);
    const loops = records.filter((r) => r.level === 40 && /read already/.test(String(r.msg)));
    expect(loops.map((r) => r.path).sort()).toEqual(['loop', join('sub', 'up')]);
    expect(records.some((r) => r.level === 40 && /is defined in/.test(String(r.msg)))).toBe(false);
    expect(source!.problems()).toEqual([]);
  });

  it('keeps the objects of a subdirectory it cannot read, and names it', async () => {
    if (process.getuid?.() === 0) return; // root reads any directory whatever its mode
    const { chmod } = await import('node:fs/promises');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'f.yaml'), svc('f', '10.96.0.1'));
    const { store } = await start();
    await chmod(join(dir, 'sub'), 0o000);
    try {
      await source!.rescan();
      expect(store.get('Service', 'default/f')).toBeDefined();
      expect(source!.problems()).toEqual([{ file: `sub/`, reason: expect.stringMatching(/EACCES/) }]);
    } finally {
      await chmod(join(dir, 'sub'), 0o755);
    }
  });

  it('fails to start, rather than start empty and ready, when the directory cannot be listed', async () => {
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory');
    const { log } = captureLogger();
    const store = new Store();
    await expect(new ManifestsSource(dir, { log }).start(store)).rejects.toMatchObject({ code: 'NETPLANE_MANIFEST_DIRECTORY' });
    expect(store.status.synced).toBe(false);
    await sleep(10);
  });
});

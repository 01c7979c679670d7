// The manifests source: a directory of YAML/JSON files, rescanned on change, where a bad file keeps its last
// good version and never stops the other files from applying.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Logger } from '../../runtime/logger.ts';
import type { AnyObject, Kind } from '../model/index.ts';
import type { ClusterSource } from '../source.ts';
import type { Store, StoreWrite } from '../store.ts';
import { diffDesired, mergeFiles, type Desired } from './merge.ts';
import { parseManifestText, type ManifestProblem } from './parse.ts';

/** The directory given to `--manifests` cannot be read. */
export class ManifestDirectoryError extends Error {
  override readonly name = 'ManifestDirectoryError';
  readonly code = 'NETPLANE_MANIFEST_DIRECTORY';
}

/** Options of the manifests source. */
export interface ManifestsOptions {
  log: Logger;
  /** Quiet time after a change before rescanning, so an editor's write-rename-chmod is seen once. */
  debounceMs?: number;
  /** A full rescan at this interval catches changes that file-system events miss (bind mounts, symlink swaps). */
  rescanMs?: number;
}

interface FileState {
  fingerprint: string;
  hash: string;
  /** The objects of the last version that parsed and validated; empty if none ever did. */
  objects: readonly AnyObject[];
  problem?: ManifestProblem;
}

const manifestFile = /\.(ya?ml|json)$/i;

/** Reads Kubernetes objects from every `*.yaml`, `*.yml` and `*.json` file under a directory and watches it. */
export class ManifestsSource implements ClusterSource {
  readonly name = 'manifests';
  readonly dir: string;
  #log: Logger;
  #debounceMs: number;
  #rescanMs: number;
  #files = new Map<string, FileState>();
  #applied: Desired = new Map();
  #store?: Store;
  #watchers: FSWatcher[] = [];
  #unwant?: () => void;
  /** Whether the first scan is in the store (before it, wanted objects are offered when it ends). */
  #loaded = false;
  #timer?: NodeJS.Timeout;
  #interval?: NodeJS.Timeout;
  #chain: Promise<void> = Promise.resolve();
  #queued = false;
  #stopped = false;

  constructor(dir: string, options: ManifestsOptions) {
    this.dir = dir;
    this.#log = options.log;
    this.#debounceMs = options.debounceMs ?? 50;
    this.#rescanMs = options.rescanMs ?? 2000;
  }

  /** Files that currently fail to parse or validate, with the document and the reason. */
  problems(): ManifestProblem[] {
    return [...this.#files.values()].flatMap((f) => (f.problem ? [f.problem] : []));
  }

  async start(store: Store): Promise<void> {
    const info = await stat(this.dir).catch((e: NodeJS.ErrnoException) => {
      throw new ManifestDirectoryError(`--manifests ${this.dir}: ${e.code === 'ENOENT' ? 'no such directory' : e.message}`, { cause: e });
    });
    if (!info.isDirectory()) throw new ManifestDirectoryError(`--manifests ${this.dir}: not a directory`);
    this.#store = store;
    this.#unwant = store.onWanted((kind, keys) => this.#offer(kind, keys));
    await this.#enqueue();
    store.markStale(false);
    for (const kind of store.kinds) store.markSynced(kind);
    this.#loaded = true;
    for (const kind of store.byReference) this.#offer(kind, store.wanted(kind)!);
    try {
      // Node's recursive watch on Linux misses a file replaced by rename (editors, `kubectl cp`, and the ConfigMap
      // volume's `..data` symlink swap); a plain watch of the top directory sees those, as inotify reports the move.
      for (const recursive of [true, false]) {
        const w = watch(this.dir, { recursive }, () => this.#schedule());
        w.on('error', (e) => this.#log.warn({ err: e }, 'manifest directory watch failed; relying on periodic rescans'));
        this.#watchers.push(w);
      }
    } catch (e) {
      this.#log.warn({ err: e }, 'cannot watch the manifest directory; relying on periodic rescans');
    }
    this.#interval = setInterval(() => this.#schedule(), this.#rescanMs);
    this.#interval.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwant?.();
    for (const w of this.#watchers) w.close();
    clearTimeout(this.#timer);
    clearInterval(this.#interval);
    await this.#chain;
  }

  /** Rescans now and resolves when the store reflects the directory; for tests and `SIGHUP`. */
  rescan(): Promise<void> {
    return this.#enqueue();
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#enqueue(), this.#debounceMs);
  }

  /** Runs scans one at a time; a request made while one is queued joins it. */
  #enqueue(): Promise<void> {
    if (!this.#queued) {
      this.#queued = true;
      this.#chain = this.#chain.then(async () => {
        this.#queued = false;
        try {
          await this.#scan();
        } catch (e) {
          this.#log.error({ err: e }, 'manifest rescan failed; keeping the last view');
        }
      });
    }
    return this.#chain;
  }

  async #scan(): Promise<void> {
    let paths: string[];
    try {
      paths = await listFiles(this.dir);
    } catch (e) {
      // The whole directory vanishing (an unmounted volume) is not a request to delete everything.
      this.#log.error({ err: e, dir: this.dir }, 'cannot read the manifest directory; keeping the last view');
      return;
    }
    let changed = false;
    const seen = new Set(paths);
    for (const path of this.#files.keys()) {
      if (!seen.has(path)) {
        this.#files.delete(path);
        changed = true;
        this.#log.info({ file: this.#rel(path) }, 'manifest file removed');
      }
    }
    for (const path of paths) changed = (await this.#load(path)) || changed;
    if (changed) this.#publish();
  }

  /** Loads one file if it changed; returns whether its objects changed. */
  async #load(path: string): Promise<boolean> {
    const prev = this.#files.get(path);
    let fingerprint: string;
    let text: string;
    try {
      const st = await stat(path);
      fingerprint = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (prev && prev.fingerprint === fingerprint) return false;
      text = await readFile(path, 'utf8');
    } catch (e) {
      // Gone between listing and reading: the next scan sees it missing.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (prev && prev.hash === hash) {
      this.#files.set(path, { ...prev, fingerprint });
      return false;
    }
    const file = this.#rel(path);
    const parsed = parseManifestText(file, text);
    if (!parsed.ok) {
      this.#files.set(path, { fingerprint, hash, objects: prev?.objects ?? [], problem: parsed.problem });
      this.#log.error(
        { file, document: parsed.problem.document, reason: parsed.problem.reason },
        `manifest ${file}${parsed.problem.document ? ` document ${parsed.problem.document}` : ''} rejected: ${parsed.problem.reason}; keeping its last good version`,
      );
      return false;
    }
    this.#files.set(path, { fingerprint, hash, objects: parsed.objects });
    if (prev?.problem) this.#log.info({ file }, 'manifest file is valid again');
    return true;
  }

  #publish(): void {
    const byFile = new Map([...this.#files].map(([path, f]) => [this.#rel(path), f.objects]));
    const { desired, conflicts } = mergeFiles(byFile);
    for (const c of conflicts) this.#log.warn(c, `${c.id} is defined in ${c.kept} and ${c.ignored}; using ${c.kept}`);
    const writes = diffDesired(this.#applied, desired);
    this.#applied = desired;
    if (writes.length > 0) this.#store?.apply(writes);
  }

  /**
   * Gives the store the objects it now wants of a by-reference kind. The directory is read whole, so a wanted
   * object that is not in it is known absent: every key counts as read.
   */
  #offer(kind: Kind, keys: ReadonlySet<string>): void {
    const store = this.#store!;
    if (!this.#loaded) return;
    const writes: StoreWrite[] = [];
    for (const key of keys) {
      const found = this.#applied.get(`${kind}|${key}`);
      if (found) writes.push(found.object);
    }
    if (writes.length > 0) store.apply(writes);
    for (const key of keys) store.markLoaded(kind, key);
  }

  #rel(path: string): string {
    return relative(this.dir, path) || path;
  }
}

/** Every manifest file under dir, skipping hidden entries (editor swap files, Kubernetes' `..data` links). */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const st = await stat(path).catch(() => undefined);
      isDir = st?.isDirectory() ?? false;
      isFile = st?.isFile() ?? false;
    }
    if (isDir) out.push(...(await listFiles(path)));
    else if (isFile && manifestFile.test(entry.name)) out.push(path);
  }
  return out.sort();
}

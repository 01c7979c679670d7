// The manifests source: a directory of YAML/JSON files, rescanned on change, where a bad file keeps its last
// good version and never stops the other files from applying.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import type { Logger } from '../../runtime/logger.ts';
import type { AnyObject, Kind } from '../model/index.ts';
import type { ClusterSource } from '../source.ts';
import type { Store, StoreWrite } from '../store.ts';
import { listManifests, readManifest, type Listing } from './files.ts';
import { diffDesired, mergeFiles, type Desired } from './merge.ts';
import type { ManifestProblem, ParsedFile } from './parse.ts';
import { ManifestParser, ParserThreadError, type ManifestParserOptions } from './parser.ts';
import { TreeWatch } from './watch.ts';

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
  /**
   * How long a file that turned empty (0 bytes) keeps the objects it had: a writer that truncates first (a shell
   * `>` redirect) leaves it empty for a moment. A file deleted is gone at once.
   */
  emptyGraceMs?: number;
  /**
   * Files larger than this are refused (logged, their last good version kept) without being read: YAML parses at
   * about a second per MiB here, and one document (a List) takes some 70 times its size in memory while it parses.
   * Default 16 MiB. The total is not limited: a refused file keeps its last version anyway, so a total limit would
   * bound nothing, only make one file's fate depend on the others' sizes.
   */
  maxFileBytes?: number;
  /** Options of the parser thread. */
  parser?: ManifestParserOptions;
  /**
   * After the parser thread died on a file (out of memory, most likely), the same content is parsed again only after
   * this long, then twice as long each time up to 5 minutes, not on every rescan; a changed file at once. Default 10 s.
   */
  parserRetryMs?: number;
}

const maxParserRetryMs = 5 * 60_000;

/** The default limit on the size of one manifest file. */
export const defaultMaxFileBytes = 16 * 1024 * 1024;

interface FileState {
  fingerprint: string;
  hash: string;
  /** The objects of the last version that parsed and validated; empty if none ever did. */
  objects: readonly AnyObject[];
  problem?: ManifestProblem;
  /** No version of the file has ever been read (it was rejected from the start): the view lacks whatever it holds. */
  neverRead?: true;
  /** When the file was found empty while it still had objects; they go once it has stayed empty emptyGraceMs (performance.now() ms). */
  emptySince?: number;
  /** The parser thread died on this content: when it is tried again (performance.now() ms), and the wait that set it. */
  retryAt?: number;
  retryMs?: number;
}

/** Reads Kubernetes objects from every `*.yaml`, `*.yml` and `*.json` file under a directory and watches it. */
export class ManifestsSource implements ClusterSource {
  readonly name = 'manifests';
  readonly #neverReadListeners = new Set<() => void>();
  #lastNeverRead = '';
  readonly dir: string;
  #log: Logger;
  #debounceMs: number;
  #rescanMs: number;
  #emptyGraceMs: number;
  #maxFileBytes: number;
  #parser: ManifestParser;
  #parserRetryMs: number;
  #files = new Map<string, FileState>();
  #applied: Desired = new Map();
  #store?: Store;
  #tree?: TreeWatch;
  #unwant?: () => void;
  /** Whether the first scan is in the store (before it, wanted objects are offered when it ends). */
  #loaded = false;
  /** Why the directory cannot be read now, while it cannot. */
  #lost?: string;
  /** Subdirectories that cannot be read, and symlinks that lead to a directory read already, as last reported. */
  #unreadable: Listing['unreadable'] = [];
  #repeats = new Set<string>();
  #timer?: NodeJS.Timeout;
  #timers = new Set<NodeJS.Timeout>();
  #interval?: NodeJS.Timeout;
  #chain: Promise<void> = Promise.resolve();
  #queued = false;
  /** The queued scan is to wait for the files parsing on the thread (rescan()). */
  #complete = false;
  /**
   * Files parsing on the thread, by path, and their outcomes not yet taken by a scan: a scan does not wait for a
   * large file (seconds per MiB), so that the other files' changes apply meanwhile; the outcome is taken by the scan
   * it schedules, if the file still has that content.
   */
  #parsing = new Map<string, { hash: string; done: Promise<void> }>();
  #parsed = new Map<string, { hash: string; outcome: ParsedFile | ParserThreadError }>();
  #stopped = false;

  constructor(dir: string, options: ManifestsOptions) {
    this.dir = dir;
    this.#log = options.log;
    this.#debounceMs = options.debounceMs ?? 50;
    this.#rescanMs = options.rescanMs ?? 2000;
    this.#emptyGraceMs = options.emptyGraceMs ?? 1000;
    this.#maxFileBytes = options.maxFileBytes ?? defaultMaxFileBytes;
    this.#parser = new ManifestParser(options.parser);
    this.#parserRetryMs = options.parserRetryMs ?? 10_000;
  }

  /** Files (and subdirectories) that currently fail to read, parse or validate, with the document and the reason. */
  problems(): ManifestProblem[] {
    const files = [...this.#files.values()].flatMap((f) => (f.problem ? [f.problem] : []));
    return [...files, ...this.#unreadable.map((u) => ({ file: `${this.#rel(u.path)}${sep}`, reason: u.reason }))];
  }

  /**
   * Files rejected since they were first seen, with the reason: the view lacks whatever they hold (a file rejected
   * later keeps its last good version instead). A process that starts on a broken file knows no last good version.
   */
  onNeverReadChange(listener: () => void): () => void {
    this.#neverReadListeners.add(listener);
    return () => this.#neverReadListeners.delete(listener);
  }

  neverRead(): string[] {
    return [...this.#files.values()].flatMap((f) => (f.neverRead && f.problem ? [`${f.problem.file}${f.problem.document ? ` document ${f.problem.document}` : ''} (${f.problem.reason})`] : []));
  }

  /** Loads every file once; rejects with ManifestDirectoryError when the directory cannot be read. */
  async start(store: Store): Promise<void> {
    const info = await stat(this.dir).catch((e: NodeJS.ErrnoException) => {
      throw new ManifestDirectoryError(`--manifests ${this.dir}: ${e.code === 'ENOENT' ? 'no such directory' : e.message}`, { cause: e });
    });
    if (!info.isDirectory()) throw new ManifestDirectoryError(`--manifests ${this.dir}: not a directory`);
    this.#store = store;
    this.#unwant = store.onWanted((kind, keys) => this.#offer(kind, keys));
    this.#tree = new TreeWatch(this.dir, () => this.#schedule(), this.#log);
    // The first scan's failure is start's failure: an unreadable directory must not look like an empty cluster.
    const first = this.#chain.then(() => this.#scan(true, true));
    this.#chain = first.catch(() => undefined);
    try {
      await first;
    } catch (e) {
      await this.stop();
      throw e;
    }
    store.markStale(false);
    for (const kind of store.kinds) store.markSynced(kind);
    this.#loaded = true;
    for (const kind of store.byReference) this.#offer(kind, store.wanted(kind)!);
    this.#interval = setInterval(() => this.#schedule(), this.#rescanMs);
    this.#interval.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwant?.();
    this.#tree?.close();
    clearTimeout(this.#timer);
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#interval);
    // A large file being parsed is given up rather than waited for.
    await this.#parser.close();
    await this.#chain;
  }

  /** Rescans now and resolves when the store reflects the directory, large files included; for tests. */
  rescan(): Promise<void> {
    return this.#enqueue(true);
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#enqueue(), this.#debounceMs);
  }

  /** Runs scans one at a time; a request made while one is queued joins it. */
  #enqueue(complete = false): Promise<void> {
    this.#complete ||= complete;
    if (!this.#queued) {
      this.#queued = true;
      this.#chain = this.#chain.then(async () => {
        this.#queued = false;
        const whole = this.#complete;
        this.#complete = false;
        try {
          await this.#scan(false, whole);
        } catch (e) {
          this.#log.error({ err: e }, 'manifest rescan failed; keeping the last view');
        }
      });
    }
    return this.#chain;
  }

  /** Scans; `complete`: then waits for the files parsing on the thread and takes their outcomes (start, rescan()). */
  async #scan(first = false, complete = false): Promise<void> {
    await this.#scanOnce(first);
    while (complete && !this.#stopped && this.#parsing.size > 0) {
      await Promise.all([...this.#parsing.values()].map((p) => p.done));
      await this.#scanOnce(false);
    }
  }

  async #scanOnce(first: boolean): Promise<void> {
    if (this.#stopped) return;
    let listing: Listing;
    try {
      listing = await listManifests(this.dir);
    } catch (e) {
      const reason = `--manifests ${this.dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`;
      if (first) throw new ManifestDirectoryError(reason, { cause: e });
      // Watches of a directory that is gone are dead; the parent's watch sees it come back.
      await this.#tree?.sync([]);
      this.#cutOff(reason, e);
      return;
    }
    if (this.#lost !== undefined) {
      this.#lost = undefined;
      this.#log.info({ dir: this.dir }, 'the manifest directory can be read again');
      this.#store?.markStale(false);
    }
    // A directory watched for the first time may have got files between its listing and its watch: look again.
    if (await this.#tree?.sync(listing.dirs)) this.#schedule();
    this.#report(listing);
    const listed = new Set(listing.files);
    const hidden = (path: string) => listing.unreadable.some((u) => path.startsWith(u.path + sep));
    // Files gone in this scan, by content: one listed under another name is the same file renamed.
    const gone = new Map<string, FileState>();
    let changed = false;
    // A parse of a file no longer listed is given up (its outcome is dropped when it comes).
    for (const path of [...this.#parsing.keys(), ...this.#parsed.keys()]) {
      if (listed.has(path)) continue;
      this.#parsing.delete(path);
      this.#parsed.delete(path);
    }
    for (const [path, f] of this.#files) {
      if (listed.has(path) || hidden(path)) continue;
      this.#files.delete(path);
      if (f.hash !== '') gone.set(f.hash, f);
      changed ||= f.objects.length > 0;
      this.#log.info({ file: this.#rel(path) }, 'manifest file removed');
    }
    for (const path of listing.files) {
      try {
        changed = (await this.#load(path, gone)) || changed;
      } catch (e) {
        if (this.#stopped) return;
        // Nothing in one file may stop the others from applying.
        this.#reject(path, this.#files.get(path), { fingerprint: '', hash: '' }, { file: this.#rel(path), reason: (e as Error).message });
      }
    }
    if (changed) this.#publish();
    // A file that was never read changes no object when it is removed, so nothing else would tell the components.
    const unread = this.neverRead().join('\n');
    if (unread !== this.#lastNeverRead) {
      this.#lastNeverRead = unread;
      for (const l of this.#neverReadListeners) l();
    }
  }

  /** The directory cannot be read: the view is kept, marked stale (an unmounted volume is no request to delete). */
  #cutOff(reason: string, err: unknown): void {
    if (this.#lost !== reason) this.#log.error({ err, dir: this.dir }, `${reason}; keeping the last view, marked stale`);
    this.#lost = reason;
    this.#store?.markStale(true, reason);
  }

  /** Logs unreadable subdirectories and symlink loops when they appear, not on every rescan. */
  #report(listing: Listing): void {
    const before = new Set(this.#unreadable.map((u) => `${u.path}\n${u.reason}`));
    for (const u of listing.unreadable) {
      if (!before.has(`${u.path}\n${u.reason}`)) this.#log.error({ dir: this.#rel(u.path), reason: u.reason }, `cannot read ${this.#rel(u.path)}: ${u.reason}; keeping what its files held`);
    }
    this.#unreadable = listing.unreadable;
    const repeats = new Set(listing.repeats.map((r) => r.path));
    for (const r of listing.repeats) {
      if (!this.#repeats.has(r.path)) this.#log.warn({ path: this.#rel(r.path), target: r.real }, `${this.#rel(r.path)} leads to ${r.real}, which is read already; reading it once`);
    }
    this.#repeats = repeats;
  }

  /** Loads one file if it changed; returns whether its objects changed. */
  async #load(path: string, gone: ReadonlyMap<string, FileState>): Promise<boolean> {
    const prev = this.#files.get(path);
    const file = this.#rel(path);
    // Due to be parsed again after the parser thread died on it: read even if unchanged.
    const retry = prev?.retryAt !== undefined && performance.now() >= prev.retryAt;
    let read;
    try {
      read = await readManifest(path, this.#maxFileBytes, retry ? undefined : prev?.fingerprint);
    } catch (e) {
      // Gone between listing and reading: the next scan sees it missing.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      return this.#reject(path, prev, { fingerprint: '', hash: '' }, { file, reason: (e as Error).message });
    }
    const { fingerprint, bytes } = read;
    if (prev && prev.fingerprint === fingerprint && !retry) return this.#emptyLongEnough(path, prev);
    if (bytes === undefined) {
      const reason = `${mib(read.size)} is over the limit of ${mib(this.#maxFileBytes)} for one manifest file`;
      return this.#reject(path, prev, { fingerprint, hash: '' }, { file, reason });
    }
    const hash = createHash('sha256').update(bytes).digest('hex');
    // A file renamed (its content gone from another path in this scan): it is what it was, not parsed again. A large
    // file would otherwise lose its objects while its copy parses on the thread.
    const renamed = prev ? undefined : gone.get(hash);
    if (renamed !== undefined) return this.#renamed(path, renamed, fingerprint);
    if (prev && prev.hash === hash && !retry) {
      const same = { ...prev, fingerprint };
      this.#files.set(path, same);
      return this.#emptyLongEnough(path, same);
    }
    if (bytes.length === 0 && prev && prev.objects.length > 0) {
      // New content (none): a retry due for the old content is dropped with it.
      const { retryAt: _at, retryMs: _ms, ...kept } = prev;
      this.#files.set(path, { ...kept, fingerprint, hash, emptySince: performance.now() });
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#schedule();
      }, this.#emptyGraceMs);
      t.unref();
      this.#timers.add(t);
      this.#log.debug({ file }, `manifest ${file} is empty; keeping its objects for ${this.#emptyGraceMs} ms unless it gets content`);
      return false;
    }
    // Only the kinds the store keeps are validated: a bad Pod must not cost the proxy the Services beside it. The
    // store is fixed for the source's life, so a file's cached result stays right.
    const outcome = await this.#parse(path, file, hash, bytes);
    // On the thread still: the last good version stays until its outcome comes.
    if (outcome === undefined) return false;
    if (this.#stopped) return false;
    if (outcome instanceof ParserThreadError) {
      // Parsing this content again would most likely kill the next thread too: not before a wait that doubles.
      const retryMs = prev?.hash === hash && prev.retryMs !== undefined ? Math.min(maxParserRetryMs, prev.retryMs * 2) : this.#parserRetryMs;
      this.#reject(path, prev, { fingerprint, hash }, { file, reason: outcome.message });
      this.#files.set(path, { ...this.#files.get(path)!, retryAt: performance.now() + retryMs, retryMs });
      return false;
    }
    const parsed = outcome;
    if (this.#stopped) return false;
    if (!parsed.ok) return this.#reject(path, prev, { fingerprint, hash }, parsed.problem);
    this.#files.set(path, { fingerprint, hash, objects: parsed.objects });
    if (prev?.problem) this.#log.info({ file }, 'manifest file is valid again');
    return true;
  }

  /**
   * The outcome of parsing this content: at once for a small file; for a large one, the outcome the thread gave if it
   * is in, else undefined, the parse started (when not already running for this content) and a scan scheduled for
   * when it ends.
   */
  async #parse(path: string, file: string, hash: string, bytes: Uint8Array): Promise<ParsedFile | ParserThreadError | undefined> {
    const kinds = this.#store!.kinds;
    if (this.#parser.inline(bytes.length)) return this.#parser.parse(file, bytes, kinds);
    const done = this.#parsed.get(path);
    if (done !== undefined) {
      this.#parsed.delete(path);
      if (done.hash === hash) return done.outcome;
    }
    if (this.#parsing.get(path)?.hash === hash) return undefined;
    const entry: { hash: string; done: Promise<void> } = { hash, done: Promise.resolve() };
    entry.done = this.#parser.parse(file, bytes, kinds).then(
      (outcome): void => this.#parseEnded(path, entry, outcome),
      (e: unknown): void => this.#parseEnded(path, entry, e instanceof ParserThreadError ? e : new ParserThreadError(`the manifest parser failed: ${String(e)}`)),
    );
    this.#parsing.set(path, entry);
    return undefined;
  }

  #parseEnded(path: string, entry: { hash: string }, outcome: ParsedFile | ParserThreadError): void {
    // Given up (the file went), or superseded by a parse of newer content.
    if (this.#parsing.get(path) !== entry) return;
    this.#parsing.delete(path);
    this.#parsed.set(path, { hash: entry.hash, outcome });
    this.#schedule();
  }

  /** Takes over the state of a file renamed to `path` in this scan; returns whether objects changed (they did: they moved). */
  #renamed(path: string, from: FileState, fingerprint: string): boolean {
    const file = this.#rel(path);
    const problem = from.problem && { ...from.problem, file };
    this.#files.set(path, { ...from, fingerprint, ...(problem ? { problem } : {}) });
    if (problem) this.#log.info({ file, from: from.problem?.file }, `manifest ${from.problem?.file} was renamed to ${file}; keeping its last good version`);
    else this.#log.debug({ file }, `manifest ${file} holds what a file removed in this scan held: taken as renamed, not parsed again`);
    return true;
  }

  /**
   * Records a file that cannot be used, keeping its last good objects (a renamed file's are taken over before it is
   * parsed: #renamed). Returns false: the file's objects did not change.
   */
  #reject(path: string, prev: FileState | undefined, version: { fingerprint: string; hash: string }, problem: ManifestProblem): boolean {
    const neverRead = prev === undefined || prev.neverRead === true;
    this.#files.set(path, { ...version, objects: prev?.objects ?? [], problem, ...(neverRead ? { neverRead } : {}) });
    const doc = problem.document ? ` document ${problem.document}` : '';
    const keeping = neverRead ? 'no version of it has been read, so nothing it holds is in the view until it is fixed' : 'keeping its last good version';
    const message = `manifest ${problem.file}${doc} rejected: ${problem.reason}; ${keeping}`;
    const again = prev?.problem?.reason === problem.reason && prev.problem.document === problem.document;
    (again ? this.#log.debug : this.#log.error).call(this.#log, { file: problem.file, document: problem.document, reason: problem.reason }, message);
    return false;
  }

  /** Drops the objects of a file that has stayed empty for the grace period; returns whether it did. */
  #emptyLongEnough(path: string, f: FileState): boolean {
    if (f.emptySince === undefined || performance.now() - f.emptySince < this.#emptyGraceMs) return false;
    this.#files.set(path, { fingerprint: f.fingerprint, hash: f.hash, objects: [] });
    this.#log.info({ file: this.#rel(path) }, `manifest ${this.#rel(path)} stayed empty; its objects are removed`);
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

/** A size for a log line: MiB with two decimals, and the exact bytes. */
function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(2).replace(/\.?0+$/, '')} MiB (${bytes} bytes)`;
}

// The --default-certificate files, followed: when they change, the new pair is served from the next handshake, so a
// renewed certificate (cert-manager renewing a Secret mounted as a volume, or any tool replacing the files) needs no
// restart. Changes are seen by fs.watch on the files' directories — a Secret volume swaps its `..data` symlink, which
// a watch on the files themselves would miss — and by a look every 10 s for what a watch misses (a file behind a
// symlink into another directory, file systems without events, a watch that failed). A pair that cannot be served
// (half written, key and certificate of different versions, unreadable) keeps the certificate served now: it is
// looked at again a second later, reported only if it is still so (once per content), and read again at every change
// and every look until the files hold a good pair.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../runtime/logger.ts';
import { BadCertificateError } from './errors.ts';
import { filePartNames, readCertificateFiles } from './flag.ts';
import { isKeyPair, loadKeyPair, validityProblem, type KeyPair, type KeyPairProblem, type PartNames } from './keypair.ts';

/** Where a new default pair goes: Certificates.setDefault. */
export interface DefaultCertificateSink {
  setDefault(pems: { cert: string; key: string }, names: PartNames): KeyPair | KeyPairProblem;
}

/** Options of DefaultCertificateFiles. */
export interface DefaultCertificateFilesOptions {
  certPath: string;
  keyPath: string;
  log: Logger;
  /** Time between looks at the files without a change event; default 10 s. */
  intervalMs?: number;
  /** Time from a change event to the look, so that files replaced one after the other are read together; default 200 ms. */
  settleMs?: number;
  /** Time before a second look at a pair that cannot be served, before it is reported; default 1 s. */
  retryMs?: number;
  /** Watch the directories for changes (default true); without it only the periodic look sees them. */
  watch?: boolean;
  /** What the pair is and the flag that names its files, for the log: default the default certificate's. */
  role?: { what: string; flag: string };
}

const defaultRole = { what: 'default TLS certificate', flag: '--default-certificate' };

const hashOf = (pems: { cert: string; key: string }) => createHash('sha256').update(pems.cert).update('\0').update(pems.key).digest('hex');

/** The --default-certificate files: read once at start (load), then followed (follow) until close. */
export class DefaultCertificateFiles {
  readonly #o: DefaultCertificateFilesOptions;
  readonly #names: PartNames;
  /** Hash of the content served. */
  #served = '';
  /** Content (hash, or an unreadable file's reason) that cannot be served, seen once and not reported yet. */
  #pending: string | undefined;
  /** Content that cannot be served, reported. */
  #reported: string | undefined;
  #sink: DefaultCertificateSink | undefined;
  readonly #watchers = new Map<string, FSWatcher>();
  #timer: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #closed = false;
  /** Told true while the files hold a pair that cannot be served (the previous one is kept), false once they do not. */
  onProblem?: (problem: boolean) => void;

  constructor(options: DefaultCertificateFilesOptions) {
    this.#o = options;
    this.#names = filePartNames(options.certPath, options.keyPath);
  }

  /**
   * Reads the files for the start: the pair as they hold it, checked. Throws BadCertificateError (one sentence naming
   * the file at fault) when they do not hold a usable pair.
   */
  load(): { cert: string; key: string } {
    const pems = readCertificateFiles(this.#o.certPath, this.#o.keyPath);
    const pair = loadKeyPair(pems.cert, pems.key, this.#names);
    if (!isKeyPair(pair)) throw new BadCertificateError(`The ${pair.reason}.`);
    this.#served = hashOf(pems);
    return { cert: pair.cert, key: pair.key };
  }

  /** Follows the files from now on, handing each new usable pair to `sink`. */
  follow(sink: DefaultCertificateSink): void {
    this.#sink = sink;
    this.#arm();
    this.#interval = setInterval(() => {
      this.#arm();
      this.check();
    }, this.#o.intervalMs ?? 10_000).unref();
  }

  /** Stops following the files. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#interval);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  /** Looks at the files now: serves a new usable pair, reports one that is not (after a second look). */
  check(): void {
    if (this.#closed || this.#sink === undefined) return;
    const { log, certPath, keyPath } = this.#o;
    let pems: { cert: string; key: string } | undefined;
    let content: string;
    let reason = '';
    try {
      pems = readCertificateFiles(certPath, keyPath);
      content = hashOf(pems);
    } catch (e) {
      reason = (e as Error).message.replace(/^Cannot/, 'cannot').replace(/\.$/, '');
      content = `unreadable: ${reason}`;
    }
    if (content === this.#served) return this.#good();
    if (content === this.#reported) return;
    const result: KeyPair | KeyPairProblem = pems ? this.#sink.setDefault(pems, this.#names) : { reason };
    if (isKeyPair(result)) {
      this.#served = content;
      const fields = { cert: certPath, subject: result.subject, notAfter: result.notAfter.toISOString() };
      const invalid = validityProblem(result, new Date());
      const { what } = this.#o.role ?? defaultRole;
      if (invalid) log.warn({ ...fields, reason: invalid }, `${what} replaced from its files; it is not valid now, served anyway`);
      else log.info(fields, `${what} replaced from its files`);
      return this.#good();
    }
    if (this.#pending !== content) {
      // Files are often written one after the other: look again before calling the pair bad.
      this.#pending = content;
      return this.#schedule(this.#o.retryMs ?? 1000);
    }
    this.#pending = undefined;
    this.#reported = content;
    const { what, flag } = this.#o.role ?? defaultRole;
    log.warn({ cert: certPath, key: keyPath, reason: result.reason }, `${flag} files not usable: ${result.reason}; keeping the ${what} served now`);
    this.onProblem?.(true);
  }

  /** The files hold the pair served: a problem reported before is over. */
  #good(): void {
    this.#pending = undefined;
    if (this.#reported === undefined) return;
    this.#reported = undefined;
    this.onProblem?.(false);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.check(), ms).unref();
  }

  /** Watches each file's directory that is not watched yet; a directory that cannot be watched is left to the periodic look. */
  #arm(): void {
    if (this.#o.watch === false || this.#closed) return;
    for (const dir of new Set([dirname(this.#o.certPath), dirname(this.#o.keyPath)])) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule(this.#o.settleMs ?? 200));
        w.on('error', (err) => {
          this.#o.log.debug({ dir, err: err.message }, `watching the directory of the ${(this.#o.role ?? defaultRole).what} failed; looking every interval`);
          w.close();
          this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, w);
      } catch (err) {
        this.#o.log.debug({ dir, err: (err as Error).message }, `cannot watch the directory of the ${(this.#o.role ?? defaultRole).what}; looking every interval`);
      }
    }
  }
}

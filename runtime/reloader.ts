// Reading a component's configuration file again on a timer, and applying it when what it says changed: CoreDNS's
// reload plugin for netplane dns's Corefile, and netplane proxy's KubeProxyConfiguration (kube-proxy exits when its
// file changes; netplane restarts in place). One read at a time; a file that cannot be used is reported once.
import { isDeepStrictEqual } from 'node:util';

/** How often the file is read again: every INTERVAL, moved by up to half the JITTER either way (CoreDNS's `reload [INTERVAL] [JITTER]`). */
export interface ReloadEvery {
  intervalMs: number;
  jitterMs: number;
}

/** The wait before the next read: INTERVAL moved by up to half the JITTER either way. */
export function nextDelay(every: ReloadEvery, random: () => number = Math.random): number {
  return Math.round(every.intervalMs + (random() - 0.5) * every.jitterMs);
}

/** What a Reloader reads and applies with. */
export interface ReloaderOptions {
  /** How often to read, from the running flags; false: stop reading (a Corefile that dropped `reload`). */
  every(): ReloadEvery | false;
  /** The fingerprint of what runs (as read at start). */
  fingerprint: string | undefined;
  /** Reads the file again: its settings merged with the command line, and its fingerprint. Throws UsageError. */
  reread(): Promise<{ fingerprint: string | undefined }>;
  /** Applies what was read. Throws when it cannot; what ran keeps running. */
  apply(read: { fingerprint: string | undefined }): Promise<void>;
  /** A read or apply failed (not called again for the same message until something else happened). */
  failed(e: Error): void;
  /** What was read is now running. */
  applied(fingerprint: string | undefined): void;
  random?: () => number;
}

/** Reads a configuration file again on a timer and applies it when it changed; one read at a time. */
export class Reloader {
  readonly #o: ReloaderOptions;
  #running: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastFailure: string | undefined;

  constructor(o: ReloaderOptions) {
    this.#o = o;
    this.#running = o.fingerprint;
  }

  /** Starts the timer (when the running flags ask for reloads). */
  start(): void {
    this.#schedule();
  }

  /** Reads once now: whether something new was applied. */
  async check(): Promise<boolean> {
    let read: { fingerprint: string | undefined };
    try {
      read = await this.#o.reread();
    } catch (e) {
      this.#fail(e as Error);
      return false;
    }
    if (read.fingerprint !== undefined && read.fingerprint === this.#running) {
      this.#lastFailure = undefined;
      return false;
    }
    // As CoreDNS: the same text is not tried again, whether it applied or not.
    this.#running = read.fingerprint;
    try {
      await this.#o.apply(read);
    } catch (e) {
      this.#fail(e as Error);
      return false;
    }
    this.#lastFailure = undefined;
    this.#o.applied(read.fingerprint);
    return true;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #fail(e: Error): void {
    if (e.message === this.#lastFailure) return;
    this.#lastFailure = e.message;
    this.#o.failed(e);
  }

  #schedule(): void {
    const every = this.#o.every();
    if (this.#stopped || every === false) return;
    this.#timer = setTimeout(() => {
      void this.check().finally(() => this.#schedule());
    }, nextDelay(every, this.#o.random));
    this.#timer.unref();
  }
}

/**
 * Replaces this process by a new run of the same command line (execve: the same PID, stdio and environment), so that
 * a changed configuration file is read from the start. What the process programmed in the kernel stays, and the new
 * run reconciles with it. Throws when it cannot.
 */
export function restartInPlace(): never {
  if (process.execve === undefined) throw new Error('this Node.js cannot replace its process (process.execve)');
  return process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

/** The flags whose values differ between two parsed command lines, deeply compared, in name order (pure). */
export function changedFlags(running: Record<string, unknown>, next: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(running), ...Object.keys(next)])].filter((k) => !isDeepStrictEqual(running[k], next[k])).sort();
}

// Password checks for basic auth, in worker threads. A bcrypt or SHA-crypt check costs 10 to 300 ms of CPU in
// JavaScript (unixcrypt computes SHA-crypt in one go; bcryptjs yields only every 100 ms), and any anonymous client
// can ask for one with a wrong password: on the gateway's own event loop a few such requests a second would stall
// every route. Here they wait their turn in a bounded queue while the gateway keeps serving.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HtpasswdEntry } from './htpasswd.ts';
import type { VerifyAnswer, VerifyJob } from './verify-worker.ts';

/** A check refused because `maxQueued` checks are already waiting (the requester answers 503). */
export class VerifyBusyError extends Error {
  override readonly name = 'VerifyBusyError';
  readonly code = 'NETPLANE_INGRESS_AUTH_VERIFY_BUSY';
}

/** A worker that failed or stopped while it held a check. */
export class VerifyWorkerError extends Error {
  override readonly name = 'VerifyWorkerError';
  readonly code = 'NETPLANE_INGRESS_AUTH_VERIFY_WORKER';
}

/** Sizes of a VerifyPool. */
export interface VerifyPoolOptions {
  /** Worker threads, started as needed: by default one less than the CPUs, 1 to 4. */
  size?: number;
  /** Checks that may wait for a worker; more are refused with VerifyBusyError. Default 256. */
  maxQueued?: number;
}

interface Pending {
  job: VerifyJob;
  resolve: (ok: boolean) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy?: Pending;
}

const workerUrl = new URL('./verify-worker.ts', import.meta.url);

/** Worker threads that check passwords against htpasswd hashes; the threads do not keep the process alive. */
export class VerifyPool {
  readonly #size: number;
  readonly #maxQueued: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: VerifyPoolOptions = {}) {
    this.#size = options.size ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    this.#maxQueued = options.maxQueued ?? 256;
  }

  /** Checks waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Whether `password` matches the entry's hash (false for any mismatch); rejects with VerifyBusyError when too
   * many checks wait, with VerifyWorkerError when the worker fails, and after close().
   */
  verify(password: string, entry: Pick<HtpasswdEntry, 'hash' | 'scheme'>): Promise<boolean> {
    if (this.#closed) return Promise.reject(new VerifyWorkerError('the password check pool is closed'));
    const idle = this.#slots.find((s) => s.busy === undefined) ?? (this.#slots.length < this.#size ? this.#start() : undefined);
    if (idle === undefined && this.#queue.length >= this.#maxQueued) {
      return Promise.reject(new VerifyBusyError(`${this.#queue.length} password checks are already waiting`));
    }
    return new Promise<boolean>((resolve, reject) => {
      const pending: Pending = { job: { id: this.#nextId++, password, hash: entry.hash, scheme: entry.scheme }, resolve, reject };
      if (idle !== undefined) this.#run(idle, pending);
      else this.#queue.push(pending);
    });
  }

  /** Stops the workers; checks under way or waiting are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    const gone = new VerifyWorkerError('the password check pool is closed');
    for (const p of this.#queue.splice(0)) p.reject(gone);
    await Promise.all(this.#slots.splice(0).map((s) => (s.busy?.reject(gone), s.worker.terminate())));
  }

  #start(): Slot {
    const worker = new Worker(workerUrl);
    worker.unref();
    const slot: Slot = { worker };
    worker.on('message', (answer: VerifyAnswer) => {
      const p = slot.busy;
      if (p === undefined || p.job.id !== answer.id) return;
      slot.busy = undefined;
      p.resolve(answer.ok === true);
      this.#next(slot);
    });
    const fail = (e: Error) => {
      const i = this.#slots.indexOf(slot);
      if (i < 0) return;
      this.#slots.splice(i, 1);
      slot.busy?.reject(new VerifyWorkerError('a password check worker failed', { cause: e }));
      slot.busy = undefined;
      // A waiting check gets a new worker in its place.
      const waiting = this.#queue.shift();
      if (waiting !== undefined && !this.#closed) this.#run(this.#start(), waiting);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  // A worker keeps the process alive only while it holds a check.
  #run(slot: Slot, p: Pending): void {
    slot.busy = p;
    slot.worker.ref();
    slot.worker.postMessage(p.job);
  }

  #next(slot: Slot): void {
    const p = this.#queue.shift();
    if (p !== undefined) this.#run(slot, p);
    else slot.worker.unref();
  }
}

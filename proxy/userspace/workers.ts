// The worker threads of the userspace proxy (`threads > 1`), seen from the main thread: each gets the desired list
// of shared TCP listeners after every sync. They are helpers: the main thread's own listener is the one that
// decides whether a port is open, so a worker that fails only costs throughput, never a Service.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../runtime/logger.ts';
import type { ListenerSpec } from './listeners.ts';

/** What every worker is started with. */
export interface WorkerSettings {
  host: string;
  connectTimeoutMs: number;
  nativeRelay: boolean;
}

/** Main thread → worker. */
export type WorkerRequest = { kind: 'apply'; id: number; specs: ListenerSpec[] } | { kind: 'close'; id: number };

/** Worker → main thread. */
export type WorkerReply =
  | { kind: 'done'; id: number; failures: Array<{ key: string; error: string }> }
  | { kind: 'error'; key: string; error: string };

interface Pending {
  resolve: (failures: Array<{ key: string; error: string }>) => void;
}

/** A set of worker threads mirroring the shared TCP listeners. */
export class TcpWorkerPool {
  readonly #log: Logger;
  readonly #workers = new Set<Worker>();
  readonly #pending = new Map<Worker, Map<number, Pending>>();
  #seq = 0;

  /** Starts `count` worker threads. */
  constructor(count: number, settings: WorkerSettings, log: Logger) {
    this.#log = log;
    for (let i = 0; i < count; i++) {
      const w = new Worker(new URL('./worker.ts', import.meta.url), { workerData: settings, name: `netplane-proxy-${i + 1}` });
      this.#workers.add(w);
      this.#pending.set(w, new Map());
      w.on('message', (m: WorkerReply) => {
        if (m.kind === 'error') {
          this.#log.warn({ thread: i + 1, key: m.key, err: m.error }, 'a userspace proxy listener failed in a worker thread');
          return;
        }
        const p = this.#pending.get(w)?.get(m.id);
        this.#pending.get(w)?.delete(m.id);
        p?.resolve(m.failures);
      });
      w.on('error', (err) => this.#log.error({ thread: i + 1, err: err.message }, 'a userspace proxy worker thread failed; the main thread keeps serving'));
      w.on('exit', () => {
        this.#workers.delete(w);
        for (const p of this.#pending.get(w)?.values() ?? []) p.resolve([]);
        this.#pending.delete(w);
      });
    }
  }

  /** Worker threads running. */
  get size(): number {
    return this.#workers.size;
  }

  /** Makes every worker hold exactly `specs`; logs what a worker could not open. */
  async apply(specs: ListenerSpec[]): Promise<void> {
    const results = await Promise.all([...this.#workers].map((w) => this.#request(w, { kind: 'apply', id: ++this.#seq, specs })));
    for (const failures of results) {
      for (const f of failures) this.#log.warn({ key: f.key, err: f.error }, 'a worker thread could not share a userspace proxy listener; the main thread serves it alone');
    }
  }

  /** Closes every worker's listeners and connections, and stops the threads. */
  async close(): Promise<void> {
    const workers = [...this.#workers];
    await Promise.all(workers.map((w) => this.#request(w, { kind: 'close', id: ++this.#seq })));
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #request(w: Worker, req: WorkerRequest): Promise<Array<{ key: string; error: string }>> {
    return new Promise((resolve) => {
      const pending = this.#pending.get(w);
      if (!pending) return resolve([]); // exited
      pending.set(req.id, { resolve });
      w.postMessage(req);
    });
  }
}

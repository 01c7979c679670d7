// Keeps status.loadBalancer.ingress of every served Ingress equal to the published addresses, while this gateway
// leads: compares what the API holds (watched) with what it should hold, and writes only the Ingresses that differ,
// ten at a time, each failure retried with its own backoff. ingress-nginx looks every 60 s; this also looks soon
// after any change of the Ingresses, their classes, the published Service or the statuses themselves.
import type { Store } from '../../cluster/store.ts';
import type { Logger } from '../../runtime/logger.ts';
import { addressText, publishedAddresses, sameAddresses, type LoadBalancerAddress, type PublishSource } from './addresses.ts';

/** The status of every Ingress in the API, as a watch sees it. */
export interface StatusObserver {
  /** Starts watching; `onChange` runs after the first full list and after every change. */
  start(onChange: () => void): void;
  /** Stops watching; what was seen stays readable. */
  stop(): Promise<void>;
  /** Whether every Ingress has been listed once since start. */
  readonly synced: boolean;
  /** The addresses in an Ingress's status (namespace/name), normalized; undefined when the API has no such Ingress. */
  get(key: string): LoadBalancerAddress[] | undefined;
  /** Takes a write's result as seen until the watch brings it, so it is not written again meanwhile. */
  wrote(key: string, addresses: LoadBalancerAddress[]): void;
}

/** Writes an Ingress's status.loadBalancer.ingress; rejects with an error whose `status` is 404 when the Ingress is gone. */
export type WriteStatus = (namespace: string, name: string, addresses: LoadBalancerAddress[]) => Promise<void>;

/** Counts writes for the status metrics. */
export type CountWrite = (result: 'ok' | 'error') => void;

/** What the status sync needs. */
export interface StatusSyncOptions {
  store: Store;
  /** The Ingresses the gateway serves now (namespace/name): of its class, and not taken out of service. */
  served: () => Iterable<string>;
  /** Whether `served` reflects a complete view of the cluster. */
  ready: () => boolean;
  publish: PublishSource;
  observer: StatusObserver;
  write: WriteStatus;
  log: Logger;
  countWrite?: CountWrite;
  /** Look again this often even when nothing changed (ingress-nginx: every 60 s). */
  resyncMs?: number;
  /** Changes within this time are looked at together. */
  debounceMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** The served Ingresses whose status in the API differs from `desired`; those the API does not have are left out. */
export function statusWrites(served: Iterable<string>, desired: readonly LoadBalancerAddress[], observed: (key: string) => LoadBalancerAddress[] | undefined): string[] {
  const out: string[] = [];
  for (const key of served) {
    const current = observed(key);
    if (current !== undefined && !sameAddresses(current, desired)) out.push(key);
  }
  return out.sort();
}

/** Writes that may run at once (ingress-nginx's pool size). */
const concurrency = 10;

/** Writes Ingress status while started; `clear` empties it at shutdown. */
export class StatusSync {
  readonly #o: StatusSyncOptions;
  readonly #debounceMs: number;
  #active = false;
  #timer: NodeJS.Timeout | undefined;
  #resync: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #unsubscribe: Array<() => void> = [];
  /** Failed writes by Ingress key: how many in a row, and when the next may be tried (performance.now() ms). */
  #failures = new Map<string, { count: number; retryAt: number }>();
  /** The problem with the published addresses last logged (empty when none). */
  #problem = '';

  constructor(options: StatusSyncOptions) {
    this.#o = options;
    this.#debounceMs = options.debounceMs ?? 250;
  }

  /** Starts watching statuses and writing those that differ. */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    const { store, publish, observer } = this.#o;
    const service = 'service' in publish ? publish.service : undefined;
    this.#unsubscribe.push(
      store.subscribe((changes) => {
        if (changes.some((c) => c.kind === 'Ingress' || c.kind === 'IngressClass' || (c.kind === 'Service' && c.key === service))) this.#schedule();
      }),
      store.onStatus(() => this.#schedule()),
    );
    observer.start(() => this.#schedule());
    this.#resync = setInterval(() => this.#schedule(0), this.#o.resyncMs ?? 60_000);
    this.#resync.unref();
    this.#schedule();
  }

  /** Stops writing and watching; a write under way finishes first. */
  async stop(): Promise<void> {
    this.#active = false;
    for (const u of this.#unsubscribe.splice(0)) u();
    clearTimeout(this.#timer);
    clearInterval(this.#resync);
    clearTimeout(this.#retry);
    this.#timer = undefined;
    this.#failures.clear();
    await this.#o.observer.stop();
    await this.#running;
  }

  /**
   * Empties the status of every served Ingress that shows an address, as ingress-nginx does when its last replica
   * stops; one attempt each (shutdown does not wait for backoff). Resolves with how many were emptied.
   */
  async clear(): Promise<number> {
    const { observer, served } = this.#o;
    const keys = [...served()].filter((k) => (observer.get(k)?.length ?? 0) > 0).sort();
    let done = 0;
    await this.#writeAll(keys, [], (ok) => ok && done++);
    return done;
  }

  #schedule(ms = this.#debounceMs): void {
    if (!this.#active) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer && ms > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#sync().finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.#schedule();
        }
      });
    }, ms);
  }

  async #sync(): Promise<void> {
    const { store, observer, log } = this.#o;
    if (!this.#active || !this.#o.ready() || !observer.synced) return;
    const published = publishedAddresses(this.#o.publish, (key) => store.get('Service', key));
    if ('problem' in published) {
      if (this.#problem !== published.problem) log.warn({ reason: published.problem }, `Ingress status is not written: ${published.problem}`);
      this.#problem = published.problem;
      return;
    }
    if (this.#problem !== '') log.info({ addresses: addressText(published.addresses) }, 'Ingress status can be written again');
    this.#problem = '';
    const now = performance.now();
    const due: string[] = [];
    const differ = statusWrites(this.#o.served(), published.addresses, (k) => observer.get(k));
    // Failures of Ingresses that no longer need a write are forgotten.
    for (const key of this.#failures.keys()) if (!differ.includes(key)) this.#failures.delete(key);
    for (const key of differ) if ((this.#failures.get(key)?.retryAt ?? 0) <= now) due.push(key);
    await this.#writeAll(due, published.addresses, () => undefined);
    this.#armRetry();
  }

  /** Looks again when the earliest failed write may be retried. */
  #armRetry(): void {
    clearTimeout(this.#retry);
    let next = Infinity;
    for (const f of this.#failures.values()) next = Math.min(next, f.retryAt);
    if (next === Infinity || !this.#active) return;
    this.#retry = setTimeout(() => this.#schedule(0), Math.max(0, next - performance.now()));
  }

  /** Writes `addresses` to each key, `concurrency` at a time; `done` hears each outcome. */
  async #writeAll(keys: readonly string[], addresses: LoadBalancerAddress[], done: (ok: boolean) => void): Promise<void> {
    const queue = [...keys];
    const worker = async () => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) done(await this.#writeOne(key, addresses));
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
  }

  async #writeOne(key: string, addresses: LoadBalancerAddress[]): Promise<boolean> {
    const { observer, log } = this.#o;
    const [namespace, name] = key.split('/') as [string, string];
    const before = observer.get(key) ?? [];
    try {
      await this.#o.write(namespace, name, addresses);
      observer.wrote(key, addresses);
      this.#failures.delete(key);
      this.#o.countWrite?.('ok');
      log.info({ ingress: key, from: addressText(before), to: addressText(addresses) }, `updated the status of Ingress ${key}`);
      return true;
    } catch (e) {
      this.#o.countWrite?.('error');
      // The Ingress was deleted meanwhile: the watch drops it; nothing to retry.
      if ((e as { status?: unknown }).status === 404) return false;
      const count = (this.#failures.get(key)?.count ?? 0) + 1;
      const base = this.#o.retryBaseMs ?? 1000;
      const delay = Math.min(this.#o.retryMaxMs ?? 60_000, base * 2 ** (count - 1)) * (0.8 + Math.random() * 0.4);
      this.#failures.set(key, { count, retryAt: performance.now() + delay });
      const write = count === 1 ? log.warn.bind(log) : log.debug.bind(log);
      write({ ingress: key, err: (e as Error).message, failures: count, retryInMs: Math.round(delay) }, `cannot write the status of Ingress ${key}; trying again`);
      return false;
    }
  }
}

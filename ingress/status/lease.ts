// Leader election over one coordination.k8s.io Lease, as client-go's leaderelection does it (the client library for
// Node has none): a candidate takes the Lease when it is free or its holder has not renewed it for the lease
// duration (timed by this process's clock, from when it saw the record change, so clocks need not agree); the
// leader renews it every retry period and steps down when it could not renew within the renew deadline. Every
// write carries the resourceVersion read, so of two candidates only one wins.
import type { Logger } from '../../runtime/logger.ts';

/** A Lease as the elector reads and writes it; times are RFC 3339 with microseconds, as the API's MicroTime. */
export interface LeaseRecord {
  holder: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  transitions: number;
  /** The object's resourceVersion; sent back on update so a concurrent write fails. */
  resourceVersion?: string;
}

/** The Lease's home in the API. `update` and `create` reject with LeaseConflictError when another writer came first. */
export interface LeaseStore {
  /** The Lease, or undefined when there is none. */
  get(): Promise<LeaseRecord | undefined>;
  create(record: LeaseRecord): Promise<LeaseRecord>;
  update(record: LeaseRecord): Promise<LeaseRecord>;
  /** Where the Lease is, for logs: `namespace/name`. */
  readonly name: string;
}

/** Another candidate wrote the Lease first (HTTP 409): this round is lost, not an error. */
export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
  readonly code = 'NETPLANE_LEASE_CONFLICT';
}

/** Options of the elector. */
export interface ElectorOptions {
  lease: LeaseStore;
  /** This candidate's name in holderIdentity; unique among candidates. */
  identity: string;
  /** How long a holder that stopped renewing keeps the Lease (client-go LeaseDuration; ingress-nginx --election-ttl). */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it steps down; below leaseDurationMs. */
  renewDeadlineMs: number;
  /** Time between attempts, to take or renew. */
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Wall clock (ms since the epoch) for the renewTime and acquireTime written to the Lease; Date.now by default. */
  now?: () => number;
  /**
   * Monotonic clock (ms) for what is measured here: how long a holder's record has gone unchanged, the renew
   * deadline, waits. client-go measures these on Go's monotonic reading, so a wall-clock step neither ends nor
   * prolongs a lease; performance.now() by default.
   */
  clock?: () => number;
}

/** The Lease time format of the API (MicroTime): RFC 3339 with exactly six fraction digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** Runs for leadership until stopped; `leading` says whether this candidate holds the Lease now. */
export class LeaderElector {
  readonly #o: ElectorOptions;
  readonly #now: () => number;
  readonly #clock: () => number;
  #leading = false;
  #stopped = true;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** The record last read and when it was first seen with that content, by the monotonic clock. */
  #observed: { record: LeaseRecord; key: string; at: number } | undefined;
  #lastRenew = 0;
  #failing = false;

  constructor(options: ElectorOptions) {
    if (!(options.leaseDurationMs > options.renewDeadlineMs && options.renewDeadlineMs > options.retryPeriodMs * 1.2)) {
      throw new RangeError('lease duration must exceed the renew deadline, which must exceed 1.2 retry periods');
    }
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Whether this candidate leads now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** The holder seen last (empty when the Lease is free or was never read). */
  get holder(): string {
    return this.#observed?.record.holder ?? '';
  }

  /** Starts trying to take the Lease, then to keep it. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /**
   * Stops running. A leader steps down first (onStoppedLeading) and, with `release`, frees the Lease at once
   * (holder emptied, as client-go's ReleaseOnCancel) so another candidate takes it at its next attempt instead of
   * after the lease duration. Never rejects.
   */
  async stop(options: { release: boolean }): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    if (!this.#leading) return;
    this.#stepDown();
    if (!options.release) return;
    try {
      const current = await this.#o.lease.get();
      if (current?.holder !== this.#o.identity) return;
      const now = this.#now();
      await this.#o.lease.update({ ...current, holder: '', leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) });
      this.#o.log.info({ lease: this.#o.lease.name }, 'released the leader Lease');
    } catch (e) {
      this.#o.log.warn({ lease: this.#o.lease.name, err: (e as Error).message }, 'could not release the leader Lease; another gateway takes it when it expires');
    }
  }

  /** After stop: waits up to `ms` for another candidate to hold the Lease; its identity once one does. Never rejects. */
  async otherHolder(ms: number): Promise<string | undefined> {
    const deadline = this.#clock() + ms;
    for (;;) {
      const record = await this.#o.lease.get().catch(() => undefined);
      if (record && record.holder !== '' && record.holder !== this.#o.identity) return record.holder;
      if (this.#clock() >= deadline) return undefined;
      await new Promise((r) => setTimeout(r, Math.min(this.#o.retryPeriodMs / 2, Math.max(0, deadline - this.#clock()))));
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#round().finally(() => {
        this.#running = undefined;
        // client-go waits a jittered period between a candidate's attempts, so candidates do not move in step.
        this.#schedule(this.#o.retryPeriodMs * (this.#leading ? 1 : 1 + Math.random() * 0.2));
      });
    }, ms);
  }

  async #round(): Promise<void> {
    let ok = false;
    let timer: NodeJS.Timeout | undefined;
    // A request that hangs must not keep a leader believing it still leads: the round ends and the deadline counts.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the API server did not answer in time')), this.#o.renewDeadlineMs / 2);
    });
    try {
      const attempt = this.#tryAcquireOrRenew();
      attempt.catch(() => undefined);
      ok = await Promise.race([attempt, timeout]);
      if (this.#failing) this.#o.log.info({ lease: this.#o.lease.name }, 'the leader Lease can be read and written again');
      this.#failing = false;
    } catch (e) {
      if (!this.#failing) this.#o.log.warn({ lease: this.#o.lease.name, err: (e as Error).message }, 'cannot read or write the leader Lease; trying again');
      this.#failing = true;
    } finally {
      clearTimeout(timer);
    }
    if (this.#stopped && !this.#leading) return;
    const now = this.#clock();
    if (ok) {
      this.#lastRenew = now;
      if (!this.#leading) {
        this.#leading = true;
        this.#o.log.info({ lease: this.#o.lease.name, identity: this.#o.identity }, 'became the leader: this gateway writes Ingress status');
        this.#o.onStartedLeading();
      }
    } else if (this.#leading && (this.holder !== this.#o.identity || now - this.#lastRenew > this.#o.renewDeadlineMs)) {
      this.#o.log.warn({ lease: this.#o.lease.name, holder: this.holder }, 'lost the leader Lease: this gateway stops writing Ingress status');
      this.#stepDown();
    }
  }

  /** One attempt; true when this candidate holds the Lease afterwards. Rejects on API errors other than conflicts. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const { lease, identity } = this.#o;
    const now = this.#now();
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    const current = await lease.get();
    if (current === undefined) {
      const record: LeaseRecord = { holder: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), transitions: 0 };
      return this.#write(() => lease.create(record));
    }
    const key = `${current.holder}|${current.renewTime ?? ''}|${current.leaseDurationSeconds}|${current.transitions}`;
    // Expiry is judged by how long this candidate has seen the record unchanged (client-go's observedTime), never
    // by the holder's renewTime: another node's wall clock, and a clock step, must not decide it.
    const seen = this.#clock();
    if (this.#observed?.key !== key) this.#observed = { record: current, key, at: seen };
    const held = current.holder !== '' && current.holder !== identity;
    if (held && this.#observed.at + current.leaseDurationSeconds * 1000 > seen) return false;
    const mine = current.holder === identity;
    const record: LeaseRecord = {
      ...current,
      holder: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: mine ? current.acquireTime : microTime(now),
      renewTime: microTime(now),
      transitions: mine ? current.transitions : current.transitions + 1,
    };
    return this.#write(() => lease.update(record));
  }

  async #write(write: () => Promise<LeaseRecord>): Promise<boolean> {
    try {
      const written = await write();
      this.#observed = { record: written, key: '', at: this.#clock() };
      return true;
    } catch (e) {
      if (e instanceof LeaseConflictError) return false;
      throw e;
    }
  }

  #stepDown(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#o.onStoppedLeading();
  }
}

// Per-client-IP limits of one Ingress, as ingress-nginx sets them: `limit_req ... burst=rate×multiplier nodelay` for
// rps and rpm (each its own bucket), `limit_conn` for in-flight requests.
//
// Each rate is a leaky bucket in integer arithmetic: a request adds `unit` to the bucket's level, which drains by
// `drainPerMs` every millisecond; a request is allowed while the level stays within (burst + 1) × unit. With
// unit = 60 000, rps r drains r × 60 per ms and rpm r drains r per ms, both exact integers. As in nginx, a request is
// counted only when every bucket allows it, and `burst` requests may come at once on top of the one the rate allows.
import { isDeepStrictEqual } from 'node:util';
import type { RateLimitPolicy } from '../routes/types.ts';
import { ClientBudget, type ClientRecord, ClientTable, defaultMaxClients, type Drained } from './client-table.ts';

/** A limit that is not a positive integer, or a burst multiplier that is not a whole number. */
export class RateLimitPolicyError extends Error {
  override readonly name = 'RateLimitPolicyError';
  readonly code = 'NETPLANE_INGRESS_RATE_LIMIT_POLICY';
}

/** The default cap on clients tracked per Ingress. */
export { defaultMaxClients };

const unit = 60_000;

interface Bucket {
  drainPerMs: number;
  capacity: number;
}

/** Bounds on the memory of limiters: clients per Ingress, and the budget all limiters of the gateway share. */
export interface LimiterOptions {
  maxClients?: number;
  budget?: ClientBudget;
}

/** The outcome of RateLimiter.take(). */
export type TakeResult = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const allowed: TakeResult = { allowed: true };
const noop = (): void => {};

/**
 * Per-client-IP request-rate and concurrency limits of one Ingress; memory bounded by maxClients and by the shared
 * budget even under an IP flood (client-table.ts: forgetting a client only ever lets it through sooner).
 */
export class RateLimiter {
  readonly #rps: Bucket | undefined;
  readonly #rpm: Bucket | undefined;
  readonly #connections: number | undefined;
  readonly #clients: ClientTable;
  readonly #drained: Drained;

  /**
   * Throws RateLimitPolicyError when a limit is not a positive integer or the burst multiplier is not a whole number
   * (0: no burst, one request per 1/rate, as ingress-nginx writes `burst=0`); ClientBoundError for a bad maxClients.
   * Without a budget the limiter has one of its own, of the default size.
   */
  constructor(policy: RateLimitPolicy, options: LimiterOptions = {}) {
    if (!Number.isSafeInteger(policy.burstMultiplier) || policy.burstMultiplier < 0) {
      throw new RateLimitPolicyError(`rate limit burstMultiplier ${policy.burstMultiplier} is not allowed: it must be a whole number`);
    }
    this.#rps = policy.rps === undefined ? undefined : bucket('rps', policy.rps, policy.rps * 60, policy.burstMultiplier);
    this.#rpm = policy.rpm === undefined ? undefined : bucket('rpm', policy.rpm, policy.rpm, policy.burstMultiplier);
    if (policy.connections !== undefined) positive('connections', policy.connections);
    this.#connections = policy.connections;
    this.#clients = new ClientTable(options.budget ?? new ClientBudget(), options.maxClients ?? defaultMaxClients);
    this.#drained = (c, now) => this.#idle(c, now);
  }

  /** Clients currently tracked. */
  get size(): number {
    return this.#clients.size;
  }

  /** Counts one request of `ip` at `now` (ms, monotonic) if both rate buckets allow it; otherwise says when to retry. */
  take(ip: string, now: number = monotonicMs()): TakeResult {
    const rps = this.#rps;
    const rpm = this.#rpm;
    if (!rps && !rpm) return allowed;
    const c = this.#clients.get(ip, now, this.#drained);
    const elapsed = Math.max(0, now - c.at);
    const rpsLevel = rps ? drained(c.rps, rps, elapsed) + unit : 0;
    const rpmLevel = rpm ? drained(c.rpm, rpm, elapsed) + unit : 0;
    let waitMs = 0;
    if (rps && rpsLevel > rps.capacity) waitMs = Math.max(waitMs, Math.ceil((rpsLevel - rps.capacity) / rps.drainPerMs));
    if (rpm && rpmLevel > rpm.capacity) waitMs = Math.max(waitMs, Math.ceil((rpmLevel - rpm.capacity) / rpm.drainPerMs));
    if (waitMs > 0) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    c.rps = rpsLevel;
    c.rpm = rpmLevel;
    c.at = now;
    return allowed;
  }

  /** Starts an in-flight request of `ip`: a release function (idempotent), or undefined when `ip` is at the limit. */
  acquire(ip: string): (() => void) | undefined {
    const max = this.#connections;
    if (max === undefined) return noop;
    const c = this.#clients.get(ip, monotonicMs(), this.#drained);
    if (c.inFlight >= max) return undefined;
    if (c.inFlight++ === 0) this.#clients.busy(c);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--c.inFlight === 0) c.table.idle(c);
    };
  }

  /** Forgets clients whose buckets have drained empty and who have nothing in flight. */
  prune(now: number = monotonicMs()): void {
    this.#clients.prune(now, this.#drained);
  }

  /** Forgets every client (the limiter is replaced or its Ingress gone); releases of requests in flight still work. */
  close(): void {
    this.#clients.close();
  }

  #idle(c: ClientRecord, now: number): boolean {
    if (c.inFlight > 0) return false;
    const elapsed = Math.max(0, now - c.at);
    return (!this.#rps || drained(c.rps, this.#rps, elapsed) === 0) && (!this.#rpm || drained(c.rpm, this.#rpm, elapsed) === 0);
  }
}

/** One RateLimiter per Ingress, kept while its policy is deep-equal; all of them share one ClientBudget. */
export class RateLimiters {
  readonly #limiters = new Map<string, { policy: RateLimitPolicy; limiter: RateLimiter }>();
  readonly #options: { maxClients?: number; budget: ClientBudget };

  /** Throws ClientBoundError for a bound (maxClients per Ingress, maxTrackedClients in all) that is not a positive integer. */
  constructor(options: { maxClients?: number; maxTrackedClients?: number } = {}) {
    this.#options = { maxClients: options.maxClients, budget: new ClientBudget(options.maxTrackedClients) };
  }

  /** The clients tracked by all limiters, and how many were forgotten to keep the bounds. */
  get budget(): Pick<ClientBudget, 'max' | 'size' | 'evictions'> {
    return this.#options.budget;
  }

  /** The limiter of `ingress` (`namespace/name`); throws RateLimitPolicyError for a policy with bad limits. */
  get(ingress: string, policy: RateLimitPolicy): RateLimiter {
    const cached = this.#limiters.get(ingress);
    if (cached && (cached.policy === policy || isDeepStrictEqual(cached.policy, policy))) return cached.limiter;
    const limiter = new RateLimiter(policy, this.#options);
    cached?.limiter.close();
    this.#limiters.set(ingress, { policy, limiter });
    return limiter;
  }

  /** Forgets the limiters of Ingresses not in `ingresses`. */
  retain(ingresses: ReadonlySet<string>): void {
    for (const [ingress, { limiter }] of this.#limiters) {
      if (ingresses.has(ingress)) continue;
      limiter.close();
      this.#limiters.delete(ingress);
    }
  }

  /** Prunes every limiter (see RateLimiter.prune). */
  prune(now: number = monotonicMs()): void {
    for (const { limiter } of this.#limiters.values()) limiter.prune(now);
  }
}

function bucket(name: string, rate: number, drainPerMs: number, burstMultiplier: number): Bucket {
  positive(name, rate);
  return { drainPerMs, capacity: (rate * burstMultiplier + 1) * unit };
}

function drained(level: number, b: Bucket, elapsedMs: number): number {
  // Compared before multiplying, so a long idle time cannot overflow the safe-integer range.
  return elapsedMs >= Math.ceil(level / b.drainPerMs) ? 0 : level - elapsedMs * b.drainPerMs;
}

function positive(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RateLimitPolicyError(`rate limit ${name} ${value} is not allowed: it must be a positive integer`);
  }
}

function monotonicMs(): number {
  return Math.floor(performance.now());
}

// Per-client-IP limits of one Ingress, as ingress-nginx sets them: `limit_req ... burst=rate×multiplier nodelay` for
// rps and rpm (each its own bucket), `limit_conn` for in-flight requests.
//
// Each rate is a leaky bucket in integer arithmetic: a request adds `unit` to the bucket's level, which drains by
// `drainPerMs` every millisecond; a request is allowed while the level stays within (burst + 1) × unit. With
// unit = 60 000, rps r drains r × 60 per ms and rpm r drains r per ms, both exact integers. As in nginx, a request is
// counted only when every bucket allows it, and `burst` requests may come at once on top of the one the rate allows.
import { isDeepStrictEqual } from 'node:util';
import type { RateLimitPolicy } from '../routes/types.ts';

/** A limit that is not a positive integer, or a burst multiplier that is not a whole number. */
export class RateLimitPolicyError extends Error {
  override readonly name = 'RateLimitPolicyError';
  readonly code = 'NETPLANE_INGRESS_RATE_LIMIT_POLICY';
}

/** The default cap on clients tracked per Ingress. */
export const defaultMaxClients = 100_000;

const unit = 60_000;

interface Bucket {
  drainPerMs: number;
  capacity: number;
}

interface Client {
  /** Levels of the rps and rpm buckets as of `at` (0 when that limit is unset). */
  rps: number;
  rpm: number;
  at: number;
  inFlight: number;
}

/** The outcome of RateLimiter.take(). */
export type TakeResult = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const allowed: TakeResult = { allowed: true };
const noop = (): void => {};

/** Per-client-IP request-rate and concurrency limits of one Ingress; memory bounded by maxClients even under an IP flood. */
export class RateLimiter {
  readonly #rps: Bucket | undefined;
  readonly #rpm: Bucket | undefined;
  readonly #connections: number | undefined;
  readonly #maxClients: number;
  /** In least-recently-used order: a client is moved to the end on every use. */
  readonly #clients = new Map<string, Client>();

  /**
   * Throws RateLimitPolicyError when a limit is not a positive integer or the burst multiplier is not a whole number
   * (0: no burst, one request per 1/rate, as ingress-nginx writes `burst=0`).
   */
  constructor(policy: RateLimitPolicy, options: { maxClients?: number } = {}) {
    if (!Number.isSafeInteger(policy.burstMultiplier) || policy.burstMultiplier < 0) {
      throw new RateLimitPolicyError(`rate limit burstMultiplier ${policy.burstMultiplier} is not allowed: it must be a whole number`);
    }
    this.#rps = policy.rps === undefined ? undefined : bucket('rps', policy.rps, policy.rps * 60, policy.burstMultiplier);
    this.#rpm = policy.rpm === undefined ? undefined : bucket('rpm', policy.rpm, policy.rpm, policy.burstMultiplier);
    if (policy.connections !== undefined) positive('connections', policy.connections);
    this.#connections = policy.connections;
    this.#maxClients = options.maxClients ?? defaultMaxClients;
    positive('maxClients', this.#maxClients);
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
    const c = this.#client(ip, now);
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
    const c = this.#client(ip, monotonicMs());
    if (c.inFlight >= max) return undefined;
    c.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      c.inFlight--;
    };
  }

  /** Forgets clients whose buckets have drained empty and who have nothing in flight. */
  prune(now: number = monotonicMs()): void {
    for (const [ip, c] of this.#clients) if (this.#idle(c, now)) this.#clients.delete(ip);
  }

  #idle(c: Client, now: number): boolean {
    if (c.inFlight > 0) return false;
    const elapsed = Math.max(0, now - c.at);
    return (!this.#rps || drained(c.rps, this.#rps, elapsed) === 0) && (!this.#rpm || drained(c.rpm, this.#rpm, elapsed) === 0);
  }

  #client(ip: string, now: number): Client {
    let c = this.#clients.get(ip);
    if (c) {
      this.#clients.delete(ip);
    } else {
      c = { rps: 0, rpm: 0, at: now, inFlight: 0 };
      if (this.#clients.size >= this.#maxClients) this.#evict(now);
    }
    this.#clients.set(ip, c);
    return c;
  }

  // Full: drop an idle client among the least recently used few; failing that, the least recently used one
  // (bounded work per call, whatever the flood). An evicted client's release functions still work on its old
  // record; if it comes back it starts afresh, so under such a flood its limits are forgotten, as nginx forgets
  // the oldest nodes of a full zone.
  #evict(now: number): void {
    let looked = 0;
    for (const [ip, c] of this.#clients) {
      if (this.#idle(c, now)) {
        this.#clients.delete(ip);
        return;
      }
      if (++looked >= 8) break;
    }
    const oldest = this.#clients.keys().next();
    if (!oldest.done) this.#clients.delete(oldest.value);
  }
}

/** One RateLimiter per Ingress, kept while its policy is deep-equal. */
export class RateLimiters {
  readonly #limiters = new Map<string, { policy: RateLimitPolicy; limiter: RateLimiter }>();
  readonly #options: { maxClients?: number };

  constructor(options: { maxClients?: number } = {}) {
    this.#options = options;
  }

  /** The limiter of `ingress` (`namespace/name`); throws RateLimitPolicyError for a policy with bad limits. */
  get(ingress: string, policy: RateLimitPolicy): RateLimiter {
    const cached = this.#limiters.get(ingress);
    if (cached && (cached.policy === policy || isDeepStrictEqual(cached.policy, policy))) return cached.limiter;
    const limiter = new RateLimiter(policy, this.#options);
    this.#limiters.set(ingress, { policy, limiter });
    return limiter;
  }

  /** Forgets the limiters of Ingresses not in `ingresses`. */
  retain(ingresses: ReadonlySet<string>): void {
    for (const ingress of this.#limiters.keys()) if (!ingresses.has(ingress)) this.#limiters.delete(ingress);
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

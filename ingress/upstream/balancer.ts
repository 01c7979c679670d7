// Endpoint choice: round robin, least request as the power of two random choices on in-flight counts
// (Mitzenmacher; what Envoy's LEAST_REQUEST and ingress-nginx's `ewma` approximate), and consistent hashing of a
// request key (ingress-nginx's upstream-hash-by, hash-ring.ts). Pure: no clocks, no I/O.
import { HashRing } from './hash-ring.ts';

/** Anything with an in-flight request count. */
export interface Loaded {
  readonly inFlight: number;
}

/** Round robin over a list that may change between picks; skips items `accept` refuses. */
export class RoundRobin {
  #next: number;

  /** `start`: the index of the first pick (random in production so replicas do not all begin with the same endpoint). */
  constructor(start = 0) {
    this.#next = start;
  }

  /**
   * The next acceptable item after the previous pick; undefined when the list is empty or none is acceptable.
   * `advance` false leaves the position alone (a retry should not shift the rotation of other requests).
   */
  pick<T>(items: readonly T[], accept?: (item: T) => boolean, advance = true): T | undefined {
    const n = items.length;
    if (n === 0) return undefined;
    let next = this.#next;
    for (let tried = 0; tried < n; tried++) {
      const i = next % n;
      next = i + 1;
      const item = items[i] as T;
      if (accept === undefined || accept(item)) {
        if (advance) this.#next = next;
        return item;
      }
    }
    return undefined;
  }
}

/**
 * Least request by two random choices: picks two distinct acceptable items at random and returns the one with fewer
 * requests in flight (the first drawn on a tie). `random` returns [0, 1) like Math.random.
 */
export function pickLeastRequest<T extends Loaded>(items: readonly T[], accept?: (item: T) => boolean, random: () => number = Math.random): T | undefined {
  let pool: readonly T[] = items;
  if (accept !== undefined) {
    // Rare path (retries, ejected endpoints): filter once.
    const kept: T[] = [];
    for (const item of items) if (accept(item)) kept.push(item);
    pool = kept;
  }
  const n = pool.length;
  if (n <= 1) return pool[0];
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = pool[i] as T;
  const b = pool[j] as T;
  return b.inFlight < a.inFlight ? b : a;
}

/** Anything named by an address, as an endpoint is by `ip:port`. */
export interface Addressed {
  readonly address: string;
}

// One ring per endpoint list: a backend replaces its list when its endpoints change, so a new list is a new ring.
const rings = new WeakMap<readonly Addressed[], HashRing<Addressed>>();

/**
 * The item `key` hashes to on the consistent hash ring of `items` (placed by address), or when `accept` refuses it
 * (ejected, or already tried), the next on the ring it takes; undefined when none is acceptable. The ring is built on
 * the first pick from a list and kept while the list lives.
 */
export function pickByHash<T extends Addressed>(items: readonly T[], key: string, accept?: (item: T) => boolean): T | undefined {
  let ring = rings.get(items) as HashRing<T> | undefined;
  if (ring === undefined) {
    ring = new HashRing(items, (item) => item.address);
    rings.set(items, ring as HashRing<Addressed>);
  }
  return ring.find(key, accept);
}

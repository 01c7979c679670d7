// Endpoint choice: round robin, least request as the power of two random choices on in-flight counts
// (Mitzenmacher; what Envoy's LEAST_REQUEST and ingress-nginx's `ewma` approximate), and consistent hashing of a
// request key (ingress-nginx's upstream-hash-by, hash-ring.ts) onto one endpoint, or onto a subset of them and then
// one of those at random (upstream-hash-by-subset). Pure: no clocks, no I/O.
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

/** The subsets of one endpoint list for one subset size, and the ring that places them. */
interface Subsets<T> {
  ring: HashRing<number>;
  sets: readonly (readonly T[])[];
}

// One set of subsets per endpoint list and size, kept while the list lives (as the rings above).
const subsetRings = new WeakMap<readonly Addressed[], Map<number, Subsets<Addressed>>>();

/**
 * ingress-nginx's chashsubset (upstream-hash-by-subset): the items, in address order, cut into ceil(n / size)
 * subsets of `size` consecutive items, the last one filled up with items from the start again (so with fewer items
 * than `size`, some stand twice in the one subset); subsets `set1`, `set2` ... are placed on a consistent hash ring.
 */
export function buildSubsets<T extends Addressed>(items: readonly T[], size: number): Subsets<T> {
  const sorted = [...items].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const count = Math.ceil(sorted.length / size);
  const sets: T[][] = [];
  for (let s = 0, k = 0; s < count; s++) {
    const set: T[] = [];
    for (let i = 0; i < size; i++, k++) set.push(sorted[k % sorted.length] as T);
    sets.push(set);
  }
  return { ring: new HashRing(sets.map((_, i) => i), (i) => `set${i + 1}`), sets };
}

/**
 * The subset `key` hashes to (see buildSubsets), and in it an item at random, as ingress-nginx's chashsubset picks
 * one (an item standing twice in the subset is twice as likely); items `accept` refuses (ejected, or already tried)
 * are left out, and a subset with none left passes the key on to the next subset on the ring. Undefined when none is
 * acceptable. `random` returns [0, 1) like Math.random.
 */
export function pickBySubset<T extends Addressed>(items: readonly T[], key: string, size: number, accept?: (item: T) => boolean, random: () => number = Math.random): T | undefined {
  let bySize = subsetRings.get(items);
  if (bySize === undefined) subsetRings.set(items, (bySize = new Map()));
  let subsets = bySize.get(size) as Subsets<T> | undefined;
  if (subsets === undefined) {
    subsets = buildSubsets(items, size);
    bySize.set(size, subsets as Subsets<Addressed>);
  }
  const { ring, sets } = subsets;
  const usable = accept === undefined ? undefined : (i: number) => sets[i]!.some(accept);
  const found = ring.find(key, usable);
  if (found === undefined) return undefined;
  const pool = accept === undefined ? sets[found]! : sets[found]!.filter(accept);
  return pool[Math.floor(random() * pool.length)];
}

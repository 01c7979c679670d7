// A consistent hash ring, the ketama scheme ingress-nginx's upstream-hash-by uses (lua-resty-chash, 160 points per
// endpoint): each item stands at `points` places on a 32-bit circle, at the hashes of its name and a counter, and a
// key belongs to the first point at or after the key's hash. Adding or removing one of N items moves only the keys
// of the arcs it takes or gives up, about 1/N of them; the other keys keep their item. Pure: no I/O, no clock.

/** Points per item, as lua-resty-chash places them. */
export const defaultPoints = 160;

/**
 * A 32-bit hash of `text`: FNV-1a over its UTF-16 code units, then MurmurHash3's finaliser so that names and keys
 * that differ in one character land far apart on the circle.
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// 2^20: the item index packed under each point's hash in one float64 (2^32 × 2^20 < 2^53, exact).
const indexSpan = 0x100000;

/** A ring of items, built once per item list; `find` is a binary search. */
export class HashRing<T> {
  readonly #items: readonly T[];
  readonly #hashes: Uint32Array;
  readonly #owners: Uint32Array;

  /** Places every item at `points` points, by `name` (an endpoint's `ip:port`); at most 2^20 items. */
  constructor(items: readonly T[], name: (item: T) => string, points = defaultPoints) {
    if (items.length > indexSpan) throw new RangeError(`a hash ring holds at most ${indexSpan} items, not ${items.length}`);
    this.#items = items;
    const packed = new Float64Array(items.length * points);
    let n = 0;
    items.forEach((item, index) => {
      const base = name(item);
      for (let p = 0; p < points; p++) packed[n++] = hash32(`${base}-${p}`) * indexSpan + index;
    });
    // A typed array sorts by value: by hash, and on equal hashes by item index, so the ring does not depend on order.
    packed.sort();
    this.#hashes = new Uint32Array(n);
    this.#owners = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const v = packed[i]!;
      const owner = v % indexSpan;
      this.#owners[i] = owner;
      this.#hashes[i] = (v - owner) / indexSpan;
    }
  }

  /** Number of items on the ring. */
  get size(): number {
    return this.#items.length;
  }

  /**
   * The item `key` belongs to; when `accept` refuses it, the next item clockwise that `accept` takes (so the keys of
   * an item left out spread over its neighbours, and come back when it returns). Undefined when the ring is empty
   * or `accept` refuses every item.
   */
  find(key: string, accept?: (item: T) => boolean): T | undefined {
    const n = this.#hashes.length;
    if (n === 0) return undefined;
    const h = hash32(key);
    // The first point at or after h, wrapping to the first point of the circle.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === n ? 0 : lo;
    const first = this.#items[this.#owners[start]!] as T;
    if (accept === undefined || accept(first)) return first;
    const refused = new Set<number>([this.#owners[start]!]);
    for (let step = 1; step < n && refused.size < this.#items.length; step++) {
      const owner = this.#owners[(start + step) % n]!;
      if (refused.has(owner)) continue;
      const item = this.#items[owner] as T;
      if (accept(item)) return item;
      refused.add(owner);
    }
    return undefined;
  }
}

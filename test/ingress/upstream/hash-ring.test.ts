// The consistent hash ring behind upstream-hash-by: a key always lands on the same endpoint, keys spread evenly,
// removing or adding one of N endpoints moves only about 1/N of the keys (and only those of that endpoint), and an
// endpoint left out (ejected, already tried) hands its keys to its neighbours on the ring, not to one of them.
import { describe, expect, it } from 'vitest';
import { HashRing, hash32 } from '../../../ingress/upstream/hash-ring.ts';
import { pickByHash } from '../../../ingress/upstream/balancer.ts';

const endpoints = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `10.244.${(from + i) >> 8}.${(from + i) & 255}:8080`);
const ringOf = (items: readonly string[]) => new HashRing(items, (x) => x);
// Keys as users hash by: request URIs and client addresses.
const keys = Array.from({ length: 20_000 }, (_, i) => (i % 2 === 0 ? `/items/${i}?page=${i % 7}` : `192.168.${(i >> 8) & 255}.${i & 255}`));

/** How many of `keys` each item gets. */
function shares(ring: HashRing<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keys) {
    const item = ring.find(k)!;
    counts.set(item, (counts.get(item) ?? 0) + 1);
  }
  return counts;
}

describe('HashRing', () => {
  it('sends a key to the same item every time, whatever order the items came in', () => {
    const items = endpoints(7);
    const ring = ringOf(items);
    const shuffled = ringOf([...items].reverse());
    for (const k of keys.slice(0, 2000)) {
      const item = ring.find(k);
      expect(ring.find(k)).toBe(item);
      expect(shuffled.find(k)).toBe(item);
    }
  });

  it.each([2, 3, 10, 30])('spreads keys evenly over %i items (each within 25%% of its share)', (n) => {
    const counts = shares(ringOf(endpoints(n)));
    expect(counts.size).toBe(n);
    for (const c of counts.values()) expect(Math.abs(c / (keys.length / n) - 1)).toBeLessThan(0.25);
  });

  it.each([3, 5, 10, 20])('moves only the keys of the item removed from %i, about 1/N of them', (n) => {
    const items = endpoints(n);
    const before = ringOf(items);
    const gone = items[n >> 1]!;
    const after = ringOf(items.filter((x) => x !== gone));
    let moved = 0;
    for (const k of keys) {
      const was = before.find(k);
      if (was === gone) moved++;
      else expect(after.find(k)).toBe(was);
    }
    expect(moved / keys.length).toBeGreaterThan(0.6 / n);
    expect(moved / keys.length).toBeLessThan(1.4 / n);
  });

  it.each([3, 10])('moves only keys to the item added to %i, about 1/(N+1) of them', (n) => {
    const items = endpoints(n);
    const before = ringOf(items);
    const added = endpoints(1, 500)[0]!;
    const after = ringOf([...items, added]);
    let moved = 0;
    for (const k of keys) {
      const now = after.find(k);
      if (now === added) moved++;
      else expect(now).toBe(before.find(k));
    }
    expect(moved / keys.length).toBeGreaterThan(0.6 / (n + 1));
    expect(moved / keys.length).toBeLessThan(1.4 / (n + 1));
  });

  it('hands the keys of a refused item to the next items on the ring, and keeps every other key where it was', () => {
    const items = endpoints(5);
    const ring = ringOf(items);
    const out = items[2]!;
    const takers = new Set<string>();
    for (const k of keys) {
      const home = ring.find(k)!;
      const got = ring.find(k, (x) => x !== out)!;
      if (home === out) takers.add(got);
      else expect(got).toBe(home);
    }
    expect(takers.has(out)).toBe(false);
    // Spread over its neighbours, not all on one.
    expect(takers.size).toBeGreaterThan(1);
  });

  it('skips every refused item and gives undefined when none is left', () => {
    const items = endpoints(4);
    const ring = ringOf(items);
    for (const k of keys.slice(0, 200)) {
      expect(ring.find(k, (x) => x === items[3])).toBe(items[3]);
      expect(ring.find(k, () => false)).toBeUndefined();
    }
    expect(ringOf([]).find('/')).toBeUndefined();
  });

  it('hashes the same text the same way on every run (replicas agree)', () => {
    expect([hash32(''), hash32('/a'), hash32('/b')]).toEqual([hash32(''), hash32('/a'), hash32('/b')]);
    expect(new Set(['/a', '/b', '/c', 'a', 'b'].map(hash32)).size).toBe(5);
  });
});

describe('pickByHash', () => {
  const members = (n: number) => endpoints(n).map((address) => ({ address }));

  it('keeps a key on one endpoint of a list, and builds the ring once per list', () => {
    const list = members(4);
    const first = pickByHash(list, '/cart');
    for (let i = 0; i < 50; i++) expect(pickByHash(list, '/cart')).toBe(first);
    // A new list with the same addresses (a backend update) gives the same endpoint.
    expect(pickByHash(members(4), '/cart')?.address).toBe(first?.address);
  });

  it('goes past endpoints `accept` refuses (ejected or already tried), to the next on the ring', () => {
    const list = members(3);
    const home = pickByHash(list, 'user-7')!;
    const next = pickByHash(list, 'user-7', (m) => m !== home)!;
    expect(next).not.toBe(home);
    expect(pickByHash(list, 'user-7', (m) => m !== home && m !== next)).toBe(list.find((m) => m !== home && m !== next));
    expect(pickByHash(list, 'user-7', () => false)).toBeUndefined();
    expect(pickByHash([], 'user-7')).toBeUndefined();
  });
});

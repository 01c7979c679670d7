// upstream-hash-by-subset, as ingress-nginx's chashsubset.lua builds and picks: endpoints in address order cut into
// subsets of `size` (the last filled up from the start), a key hashed onto a subset, an endpoint of it at random.
import { describe, expect, it } from 'vitest';
import { buildSubsets, pickBySubset } from '../../../ingress/upstream/balancer.ts';

const ep = (address: string) => ({ address });
const names = (sets: readonly (readonly { address: string }[])[]) => sets.map((s) => s.map((e) => e.address).join(' '));

describe('buildSubsets', () => {
  it.each([
    // [endpoints (any order), size, subsets]
    [['10.0.0.3:80', '10.0.0.1:80', '10.0.0.2:80', '10.0.0.5:80', '10.0.0.4:80', '10.0.0.6:80'], 3, ['10.0.0.1:80 10.0.0.2:80 10.0.0.3:80', '10.0.0.4:80 10.0.0.5:80 10.0.0.6:80']],
    [['a:1', 'b:1', 'c:1', 'd:1', 'e:1', 'f:1', 'g:1'], 3, ['a:1 b:1 c:1', 'd:1 e:1 f:1', 'g:1 a:1 b:1']],
    [['b:1', 'a:1'], 3, ['a:1 b:1 a:1']],
    [['a:1'], 1, ['a:1']],
    [['a:1', 'b:1', 'c:1'], 5, ['a:1 b:1 c:1 a:1 b:1']],
  ])('%j in subsets of %i', (endpoints, size, expected) => {
    expect(names(buildSubsets(endpoints.map(ep), size).sets)).toEqual(expected);
  });
});

describe('pickBySubset', () => {
  const endpoints = Array.from({ length: 9 }, (_, i) => ep(`10.0.0.${i + 1}:80`));
  const subsetOf = (address: string) => Math.floor((Number(address.split('.')[3]!.split(':')[0]) - 1) / 3);

  it('sends the requests of one key to the endpoints of one subset, all of them', () => {
    for (const key of ['alice', 'bob', 'carol', '/cart?id=7']) {
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) seen.add(pickBySubset(endpoints, key, 3)!.address);
      expect(seen.size).toBe(3);
      expect(new Set([...seen].map(subsetOf)).size).toBe(1);
    }
  });

  it('spreads keys over the subsets', () => {
    const used = new Set<number>();
    for (let k = 0; k < 100; k++) used.add(subsetOf(pickBySubset(endpoints, `user-${k}`, 3)!.address));
    expect(used).toEqual(new Set([0, 1, 2]));
  });

  it('picks inside the subset with `random`', () => {
    const subset = (key: string) => [0, 0.4, 0.9].map((r) => pickBySubset(endpoints, key, 3, undefined, () => r)!.address);
    const picked = subset('alice');
    expect(new Set(picked).size).toBe(3);
    expect(picked).toEqual([...picked].sort());
  });

  it('leaves out refused endpoints, and moves a key whose subset has none left to another subset', () => {
    const home = subsetOf(pickBySubset(endpoints, 'alice', 3)!.address);
    const down = new Set(endpoints.filter((e) => subsetOf(e.address) === home).slice(0, 2).map((e) => e.address));
    for (let i = 0; i < 50; i++) {
      const m = pickBySubset(endpoints, 'alice', 3, (e) => !down.has(e.address))!;
      expect([subsetOf(m.address), down.has(m.address)]).toEqual([home, false]);
    }
    const moved = pickBySubset(endpoints, 'alice', 3, (e) => subsetOf(e.address) !== home)!;
    expect(subsetOf(moved.address)).not.toBe(home);
    expect(pickBySubset(endpoints, 'alice', 3, () => false)).toBeUndefined();
    expect(pickBySubset([], 'alice', 3)).toBeUndefined();
  });
});

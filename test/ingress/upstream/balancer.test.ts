import { describe, expect, it } from 'vitest';
import { RoundRobin, pickLeastRequest } from '../../../ingress/upstream/balancer.ts';

const items = (loads: number[]) => loads.map((inFlight, i) => ({ name: `e${i}`, inFlight }));

describe('RoundRobin', () => {
  it('cycles through the list in order from the start index', () => {
    const rr = new RoundRobin(1);
    const list = items([0, 0, 0]);
    expect(Array.from({ length: 6 }, () => rr.pick(list)?.name)).toEqual(['e1', 'e2', 'e0', 'e1', 'e2', 'e0']);
  });

  it.each([
    { name: 'skips refused items', refuse: ['e1'], want: ['e0', 'e2', 'e0', 'e2'] },
    { name: 'returns undefined when all are refused', refuse: ['e0', 'e1', 'e2'], want: [undefined, undefined] },
  ])('$name', ({ refuse, want }) => {
    const rr = new RoundRobin();
    const list = items([0, 0, 0]);
    const got = want.map(() => rr.pick(list, (i) => !refuse.includes(i.name))?.name);
    expect(got).toEqual(want);
  });

  it('can pick without moving the rotation (retries)', () => {
    const rr = new RoundRobin();
    const list = items([0, 0, 0]);
    expect(rr.pick(list)?.name).toBe('e0');
    expect(rr.pick(list, (i) => i.name !== 'e1', false)?.name).toBe('e2');
    expect(rr.pick(list)?.name).toBe('e1');
  });

  it('keeps going when the list shrinks or grows', () => {
    const rr = new RoundRobin();
    expect(rr.pick(items([0, 0, 0]))?.name).toBe('e0');
    expect(rr.pick(items([0]))?.name).toBe('e0');
    expect(rr.pick(items([0, 0, 0, 0]))?.name).toBe('e1');
    expect(rr.pick([])).toBeUndefined();
  });
});

describe('pickLeastRequest', () => {
  // A fixed sequence of "random" numbers.
  const seq = (...values: number[]) => {
    let i = 0;
    return () => values[i++ % values.length] as number;
  };

  it.each([
    { name: 'the lighter of the two drawn', loads: [5, 1, 9], random: seq(0, 0), want: 'e1' }, // draws e0, then e1
    { name: 'the first drawn on a tie', loads: [2, 2, 2], random: seq(0.9, 0.1), want: 'e2' }, // draws e2, then e0
    { name: 'never the same item twice', loads: [3, 0], random: seq(0.99, 0.99), want: 'e1' }, // draws e1, then e0
    { name: 'the only item', loads: [7], random: seq(0.5), want: 'e0' },
  ])('$name', ({ loads, random, want }) => {
    expect(pickLeastRequest(items(loads), undefined, random)?.name).toBe(want);
  });

  it('only considers accepted items', () => {
    const list = items([0, 10, 10]);
    for (let i = 0; i < 20; i++) expect(pickLeastRequest(list, (x) => x.name !== 'e0')?.name).not.toBe('e0');
    expect(pickLeastRequest(list, () => false)).toBeUndefined();
    expect(pickLeastRequest([])).toBeUndefined();
  });

  it('prefers idle items over many picks with real randomness', () => {
    const list = items([0, 4, 4, 4]);
    let idle = 0;
    for (let i = 0; i < 1000; i++) if (pickLeastRequest(list)?.name === 'e0') idle++;
    // e0 wins whenever drawn (probability 1/2 with four items); a uniform pick would give 1/4.
    expect(idle).toBeGreaterThan(400);
  });
});

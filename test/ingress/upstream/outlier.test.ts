import { describe, expect, it } from 'vitest';
import { OutlierTracker, newOutlierState, type OutlierState } from '../../../ingress/upstream/outlier.ts';

const tracker = () => new OutlierTracker({ consecutiveFailures: 3, baseEjectionMs: 100, maxEjectionMs: 350, maxEjectedPercent: 50 });
const states = (n: number): OutlierState[] => Array.from({ length: n }, newOutlierState);

describe('OutlierTracker', () => {
  it('ejects after N consecutive failures, for the base time', () => {
    const t = tracker();
    const [a] = states(2) as [OutlierState];
    const peers = [a, newOutlierState()];
    expect(t.failure(a, peers, 0)).toBe(0);
    expect(t.failure(a, peers, 1)).toBe(0);
    expect(t.failure(a, peers, 2)).toBe(100);
    expect(t.ejected(a, 50)).toBe(true);
    expect(t.ejected(a, 102)).toBe(false);
  });

  it('a success resets the count', () => {
    const t = tracker();
    const peers = states(2);
    const a = peers[0] as OutlierState;
    t.failure(a, peers, 0);
    t.failure(a, peers, 0);
    t.success(a, 0);
    expect(t.failure(a, peers, 0)).toBe(0);
    expect(t.failure(a, peers, 0)).toBe(0);
    expect(t.failure(a, peers, 0)).toBe(100);
  });

  it('doubles the time on repeat, up to the maximum', () => {
    const t = tracker();
    const peers = states(2);
    const a = peers[0] as OutlierState;
    const times: number[] = [];
    let now = 0;
    for (let round = 0; round < 4; round++) {
      let ms = 0;
      for (let i = 0; i < 3; i++) ms = t.failure(a, peers, now);
      times.push(ms);
      now = a.ejectedUntil; // back in rotation, and failing again at once
    }
    expect(times).toEqual([100, 200, 350, 350]);
  });

  it('ends a streak after answering well for as long as the last ejection', () => {
    const t = tracker();
    const peers = states(2);
    const a = peers[0] as OutlierState;
    for (let i = 0; i < 3; i++) t.failure(a, peers, 0); // ejected until 100
    t.success(a, 150); // too soon: streak goes on
    expect(a.ejections).toBe(1);
    t.success(a, 200);
    expect(a.ejections).toBe(0);
    for (let i = 0; i < 3; i++) t.failure(a, peers, 300);
    expect(a.ejectedUntil).toBe(400);
  });

  it.each([
    { endpoints: 1, ejectable: 0 },
    { endpoints: 2, ejectable: 1 },
    { endpoints: 3, ejectable: 1 },
    { endpoints: 4, ejectable: 2 },
    { endpoints: 5, ejectable: 2 },
  ])('never ejects more than half: $ejectable of $endpoints', ({ endpoints, ejectable }) => {
    const t = tracker();
    const peers = states(endpoints);
    for (const s of peers) for (let i = 0; i < 3; i++) t.failure(s, peers, 0);
    expect(peers.filter((s) => t.ejected(s, 1)).length).toBe(ejectable);
  });

  it('an endpoint held back by the cap is ejected once another returns', () => {
    const t = tracker();
    const peers = states(2);
    const [a, b] = peers as [OutlierState, OutlierState];
    for (let i = 0; i < 3; i++) t.failure(a, peers, 0);
    for (let i = 0; i < 3; i++) t.failure(b, peers, 0);
    expect(t.ejected(b, 1)).toBe(false);
    expect(t.failure(b, peers, 100)).toBe(100); // a is back at 100
    expect(t.ejected(b, 101)).toBe(true);
  });

  it('has the documented defaults', () => {
    expect(new OutlierTracker().options).toEqual({ consecutiveFailures: 5, baseEjectionMs: 10_000, maxEjectionMs: 300_000, maxEjectedPercent: 50 });
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DialDeadlines } from '../../../proxy/userspace/deadlines.ts';

describe('DialDeadlines', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('times out a dial that stays pending past its timeout, once', () => {
    const d = new DialDeadlines(100);
    const fired = vi.fn();
    d.start(fired);
    vi.advanceTimersByTime(90);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(60);
    expect(fired).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveBeenCalledTimes(1);
    expect(d.size).toBe(0);
  });

  it('doubles the timeout for each retry (250, 500, 1000, 2000 ms as kube-proxy)', () => {
    const d = new DialDeadlines(250);
    const fired = [vi.fn(), vi.fn(), vi.fn(), vi.fn()];
    fired.forEach((f, attempt) => d.start(f, attempt));
    const at = (_ms: number) => fired.map((f) => f.mock.calls.length > 0);
    vi.advanceTimersByTime(240);
    expect(at(240)).toEqual([false, false, false, false]);
    vi.advanceTimersByTime(60);
    expect(at(300)).toEqual([true, false, false, false]);
    vi.advanceTimersByTime(250);
    expect(at(550)).toEqual([true, true, false, false]);
    vi.advanceTimersByTime(500);
    expect(at(1050)).toEqual([true, true, true, false]);
    vi.advanceTimersByTime(900);
    expect(at(1950)).toEqual([true, true, true, false]);
    vi.advanceTimersByTime(150);
    expect(at(2100)).toEqual([true, true, true, true]);
  });

  it('never fires for a settled dial, and settle reports whether it was pending', () => {
    const d = new DialDeadlines(100);
    const fired = vi.fn();
    const dial = d.start(fired);
    expect(d.settle(dial)).toBe(true);
    expect(d.settle(dial)).toBe(false);
    vi.advanceTimersByTime(500);
    expect(fired).not.toHaveBeenCalled();
  });

  it('gives each dial its own clock', () => {
    const d = new DialDeadlines(100);
    const first = vi.fn();
    const second = vi.fn();
    d.start(first);
    vi.advanceTimersByTime(80);
    d.start(second);
    vi.advanceTimersByTime(60);
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).not.toHaveBeenCalled();
    vi.advanceTimersByTime(100);
    expect(second).toHaveBeenCalledTimes(1);
  });

  it('stops its timer when nothing is pending, and clear() drops pending dials silently', () => {
    const d = new DialDeadlines(100);
    const fired = vi.fn();
    d.start(fired);
    d.clear();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(500);
    expect(fired).not.toHaveBeenCalled();
    d.settle(d.start(vi.fn()));
    vi.advanceTimersByTime(500);
    expect(vi.getTimerCount()).toBe(0);
  });
});

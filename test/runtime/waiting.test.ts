// SettleWaiter: resolves when its condition holds at a check, or at its time-out, whichever first. MinuteWarnings:
// one warning a minute per reason, the next saying how many were left out.
import { describe, expect, it, vi } from 'vitest';
import { MinuteWarnings, SettleWaiter } from '../../runtime/waiting.ts';

describe('SettleWaiter', () => {
  it('resolves at once when already done, at the check that finds it done, or at the time-out', async () => {
    vi.useFakeTimers();
    try {
      const w = new SettleWaiter();
      let open = 2;
      await w.until(() => true, 1000);
      let resolved = false;
      const p = w.until(() => open === 0, 1000).then(() => (resolved = true));
      open--;
      w.check();
      await vi.advanceTimersByTimeAsync(0);
      expect(resolved).toBe(false);
      open--;
      w.check();
      await vi.advanceTimersByTimeAsync(0);
      expect(resolved).toBe(true);
      await p;
      let timedOut = false;
      const q = w.until(() => false, 1000).then(() => (timedOut = true));
      await vi.advanceTimersByTimeAsync(999);
      expect(timedOut).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await q;
      expect(timedOut).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('MinuteWarnings', () => {
  it('lets one warning a minute through per reason, the next counting those left out', () => {
    const w = new MinuteWarnings<'a' | 'b'>();
    expect(w.take('a', 0)).toBe('');
    expect(w.take('a', 1000)).toBeUndefined();
    expect(w.take('b', 1000)).toBe('');
    expect(w.take('a', 59_999)).toBeUndefined();
    expect(w.take('a', 60_000)).toBe(' (and 2 more for this reason in the last minute)');
    expect(w.take('a', 120_000)).toBe('');
  });
});

// The limit-rate pacer with a fake clock: nginx's allowance (after + rate × (t + 1) − sent), the queue, the sink's
// own backpressure, the end waiting for the queue, and stop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pacer, type PacedSink } from '../../../ingress/upstream/pacer.ts';

/** A sink that records what it got and can be made full. */
function sink() {
  const got: number[] = [];
  let full = false;
  let drain: (() => void) | undefined;
  const s: PacedSink & { got: number[]; fill(): void; drainNow(): void } = {
    got,
    write(chunk: Buffer) {
      got.push(chunk.length);
      return !full;
    },
    once(_e: 'drain', l: () => void) {
      drain = l;
    },
    fill() {
      full = true;
    },
    drainNow() {
      full = false;
      const d = drain;
      drain = undefined;
      d?.();
    },
  };
  return s;
}

describe('Pacer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends the first part at once, then the rest at the rate in steps of an eighth of a second: (size - after) / rate in all, as nginx', () => {
    const out = sink();
    const p = new Pacer(out, { bytesPerSecond: 1000, afterBytes: 500 }, () => Date.now());
    let drained = 0;
    const total = () => out.got.reduce((a, b) => a + b, 0);
    expect(p.write(Buffer.alloc(3000))).toBe(false);
    p.once('drain', () => drained++);
    expect(out.got).toEqual([500]);
    vi.advanceTimersByTime(124);
    expect(total()).toBe(500);
    vi.advanceTimersByTime(1);
    expect(out.got).toEqual([500, 125]);
    vi.advanceTimersByTime(875);
    expect([total(), drained]).toEqual([1500, 0]);
    vi.advanceTimersByTime(1499);
    expect([total(), drained]).toEqual([2875, 0]);
    vi.advanceTimersByTime(1);
    expect([total(), drained, p.pending, p.sent]).toEqual([3000, 1, false, 3000]);
  });

  it('lets a response that fell behind catch up with the clock, not beyond it', () => {
    const out = sink();
    const p = new Pacer(out, { bytesPerSecond: 1000, afterBytes: 0 }, () => Date.now());
    vi.advanceTimersByTime(5000);
    // 5 s idle: 5 s worth is allowed, as nginx counts from the start of the response.
    expect(p.write(Buffer.alloc(7000))).toBe(false);
    expect(out.got).toEqual([5000]);
  });

  it('takes later chunks into the queue while it waits, and ends only when the queue is out', () => {
    const out = sink();
    const p = new Pacer(out, { bytesPerSecond: 1000, afterBytes: 0 }, () => Date.now());
    const total = () => out.got.reduce((a, b) => a + b, 0);
    expect(p.write(Buffer.alloc(1000))).toBe(false);
    expect(p.write(Buffer.alloc(800))).toBe(false);
    expect(p.write(Buffer.alloc(800))).toBe(false);
    let ended = false;
    p.whenEmpty(() => (ended = true));
    vi.advanceTimersByTime(1000);
    expect([total(), ended]).toEqual([1000, false]);
    vi.advanceTimersByTime(1600);
    expect([total(), ended]).toEqual([2600, true]);
  });

  it('waits for the client when the sink is full, whatever the rate allows', () => {
    const out = sink();
    const p = new Pacer(out, { bytesPerSecond: 1_000_000, afterBytes: 1000 }, () => Date.now());
    out.fill();
    expect(p.write(Buffer.alloc(100))).toBe(false);
    expect(p.clientFull).toBe(true);
    expect(p.write(Buffer.alloc(100))).toBe(false);
    expect(out.got).toEqual([100]);
    let drained = false;
    p.once('drain', () => (drained = true));
    out.drainNow();
    expect([out.got, drained, p.clientFull]).toEqual([[100, 100], true, false]);
  });

  it('stop drops the queue and its timer', () => {
    const out = sink();
    const p = new Pacer(out, { bytesPerSecond: 1000, afterBytes: 1000 }, () => Date.now());
    p.write(Buffer.alloc(5000));
    let ended = false;
    p.whenEmpty(() => (ended = true));
    p.stop();
    vi.advanceTimersByTime(10_000);
    expect([out.got, p.pending, ended, vi.getTimerCount()]).toEqual([[1000], false, false, 0]);
  });
});

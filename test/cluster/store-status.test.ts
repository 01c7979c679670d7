// The cluster view's status clock: while the source is current, the last time it was known current is now (so an
// alert on the metric's age stays quiet on a healthy process); once it is cut off, the moment it was last current,
// held while it stays stale (found by an audit: it stayed at the first load while the view was current).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Store } from '../../cluster/store.ts';
import { createRegistry, registerStoreMetrics } from '../../runtime/metrics.ts';

describe('store status: lastCurrentAt', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('is 0 before the view was ever current, now while it is current, and held from the moment it is cut off', async () => {
    const store = new Store(['Node']);
    const registry = createRegistry('test', '0');
    registerStoreMetrics(registry, store);
    const metric = async () => Number(/^netplane_cluster_last_current_timestamp_seconds (\S+)$/m.exec(await registry.metrics())![1]);
    expect(store.status.lastCurrentAt).toBe(0);
    store.markStale(true, 'never loaded');
    expect(store.status.lastCurrentAt).toBe(0);
    store.markStale(false);
    vi.advanceTimersByTime(60_000);
    expect(store.status.lastCurrentAt).toBe(1_060_000);
    expect(await metric()).toBe(1060);
    store.markStale(true, 'the API server is gone');
    vi.advanceTimersByTime(30_000);
    store.markStale(true, 'still gone');
    vi.advanceTimersByTime(30_000);
    expect(store.status.lastCurrentAt).toBe(1_060_000);
    expect(await metric()).toBe(1060);
    store.markStale(false);
    vi.advanceTimersByTime(5_000);
    expect(store.status.lastCurrentAt).toBe(1_125_000);
  });
});

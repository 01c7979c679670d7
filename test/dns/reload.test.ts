// The reload plugin's parts: its INTERVAL and JITTER as CoreDNS takes them, what a reload applies and what waits for
// a restart, the reader's timer-free check (a new Corefile applied once, a bad one reported once and not retried),
// and the forwarder metrics that a replaced forwarder hands on.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ForwardMetrics } from '../../dns/forward/metrics.ts';
import { parseReload, planReload } from '../../dns/reload.ts';
import { nextDelay, Reloader } from '../../runtime/reloader.ts';

describe('parseReload', () => {
  it.each([
    ['off', false],
    ['30s', { intervalMs: 30_000, jitterMs: 15_000 }],
    ['30s,15s', { intervalMs: 30_000, jitterMs: 15_000 }],
    ['10s', { intervalMs: 10_000, jitterMs: 5_000 }],
    ['2s,1s', { intervalMs: 2_000, jitterMs: 1_000 }],
    ['1m,40s', { intervalMs: 60_000, jitterMs: 30_000 }],
    ['5s,2s', { intervalMs: 5_000, jitterMs: 2_000 }],
  ])('%s', (raw, want) => {
    expect(parseReload(raw)).toEqual(want);
  });

  it.each([
    ['1s', 'must have an INTERVAL of at least 2s'],
    ['10s,500ms', 'must have a JITTER of at least 1s'],
    ['10s,2s,1s', 'must be off or INTERVAL[,JITTER], e.g. 30s,15s'],
    ['soon', 'must be a duration such as 500ms, 1s, 2m or 1h'],
  ])('refuses %s', (raw, why) => {
    expect(() => parseReload(raw)).toThrow(why);
  });

  it('waits INTERVAL moved by at most half the JITTER', () => {
    const every = { intervalMs: 30_000, jitterMs: 15_000 };
    expect(nextDelay(every, () => 0)).toBe(22_500);
    expect(nextDelay(every, () => 0.5)).toBe(30_000);
    expect(nextDelay(every, () => 0.999_999)).toBe(37_500);
  });
});

describe('planReload', () => {
  const running = { listen: [{ host: '0.0.0.0', port: 53 }], zone: 'cluster.local', upstream: [{ text: '10.0.0.2:53' }], ttl: 5, pods: 'insecure', admin: { host: '0.0.0.0', port: 9153 } };

  it('applies what the pipeline is built from; keeps addresses, the zone and the Pod watch as they run', () => {
    const next = { ...running, listen: [{ host: '0.0.0.0', port: 1053 }], upstream: [{ text: '10.0.0.3:53' }], ttl: 30, zone: 'example.local', pods: 'disabled' };
    const plan = planReload(running, next);
    expect(plan.changed.sort()).toEqual(['pods', 'ttl', 'upstream']);
    expect(plan.waiting.sort()).toEqual(['listen', 'zone']);
    expect(plan.flags).toEqual({ ...next, listen: running.listen, zone: running.zone });
  });

  it('waits for a restart to start or stop reading Pods', () => {
    expect(planReload(running, { ...running, pods: 'verified' })).toEqual({ flags: running, changed: [], waiting: ['pods'] });
    expect(planReload({ ...running, pods: 'verified' }, running).waiting).toEqual(['pods']);
  });

  it('finds nothing to do in equal values that are not the same objects', () => {
    expect(planReload(running, structuredClone(running))).toEqual({ flags: running, changed: [], waiting: [] });
  });
});

describe('Reloader.check', () => {
  const setup = (reads: Array<string | Error>, applyFails: string[] = []) => {
    const log: string[] = [];
    const r = new Reloader({
      every: () => false,
      fingerprint: 'a',
      reread: async () => {
        const next = reads.shift()!;
        if (next instanceof Error) throw next;
        return { fingerprint: next };
      },
      apply: async (read) => {
        if (applyFails.includes(read.fingerprint!)) throw new Error(`cannot use ${read.fingerprint}`);
        log.push(`apply ${read.fingerprint}`);
      },
      failed: (e) => log.push(`failed: ${e.message}`),
      applied: (f) => log.push(`running ${f}`),
    });
    return { r, log };
  };

  it('applies a new Corefile once, and nothing while it stays', async () => {
    const { r, log } = setup(['a', 'b', 'b', 'a']);
    expect([await r.check(), await r.check(), await r.check(), await r.check()]).toEqual([false, true, false, true]);
    expect(log).toEqual(['apply b', 'running b', 'apply a', 'running a']);
  });

  it('reports a Corefile that cannot be read once, until it changes', async () => {
    const bad = () => new Error('line 2: forward /etc/other: no');
    const { r, log } = setup([bad(), bad(), new Error('line 3: other'), 'a', bad(), 'b']);
    for (let i = 0; i < 6; i++) await r.check();
    expect(log).toEqual(['failed: line 2: forward /etc/other: no', 'failed: line 3: other', 'failed: line 2: forward /etc/other: no', 'apply b', 'running b']);
  });

  it('does not try a Corefile again that failed to apply, and applies the next one', async () => {
    const { r, log } = setup(['b', 'b', 'c'], ['b']);
    expect([await r.check(), await r.check(), await r.check()]).toEqual([false, false, true]);
    expect(log).toEqual(['failed: cannot use b', 'apply c', 'running c']);
  });
});

describe('ForwardMetrics of a replaced forwarder', () => {
  const value = async (registry: Registry, name: string, labels: Record<string, string>) => {
    const m = (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return m?.value;
  };

  it('hands its counts on to the forwarder that replaces it; its cache entries count no longer', async () => {
    const registry = new Registry();
    const labels = { server: 'dns://:53', zones: '.', view: '' };
    const old = new ForwardMetrics(registry, labels, () => 7);
    for (let i = 0; i < 3; i++) old.cacheRequest();
    old.hit('success');
    const next = new ForwardMetrics(registry, labels, () => 2);
    next.cacheRequest();
    // Both count while the old one finishes its queries; the new one's cache is the one shown.
    expect(await value(registry, 'coredns_cache_requests_total', labels)).toBe(4);
    expect(await value(registry, 'coredns_cache_entries', { ...labels, type: 'success' })).toBe(2);
    old.retire();
    expect(await value(registry, 'coredns_cache_requests_total', labels)).toBe(4);
    // A third, after the old one retired, takes its counts over: the series still never goes back.
    next.retire();
    const third = new ForwardMetrics(registry, labels, () => 1);
    third.cacheRequest();
    expect(await value(registry, 'coredns_cache_requests_total', labels)).toBe(5);
    expect(await value(registry, 'coredns_cache_hits_total', { ...labels, type: 'success' })).toBe(1);
    expect(await value(registry, 'coredns_cache_entries', { ...labels, type: 'success' })).toBe(1);
  });

  it("keeps a removed stub domain's counts, with no entries", async () => {
    const registry = new Registry();
    const stub = { server: 'dns://:53', zones: 'corp.internal.', view: '' };
    const m = new ForwardMetrics(registry, stub, () => 9);
    m.cacheRequest();
    m.retire();
    expect(await value(registry, 'coredns_cache_requests_total', stub)).toBe(1);
    expect(await value(registry, 'coredns_cache_entries', { ...stub, type: 'success' })).toBe(0);
  });
});

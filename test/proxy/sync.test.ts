import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import type { ProxyBackend, SyncResult } from '../../proxy/backend.ts';
import { registerProxyMetrics } from '../../proxy/metrics.ts';
import type { ProxyPlan } from '../../proxy/plan/types.ts';
import { ProxySyncer } from '../../proxy/sync.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { service, slice } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';

/** A backend that records every sync and can be told to fail. */
class RecordingBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  syncs: Array<{ plan: ProxyPlan; full: boolean }> = [];
  failNext = 0;
  /** Every call of sync, refused ones included. */
  attempts = 0;
  async sync(plan: ProxyPlan, options: { full: boolean }): Promise<SyncResult> {
    this.attempts++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('nft: Operation not permitted');
    }
    this.syncs.push({ plan, full: options.full });
    return { rules: plan.ports.length, elements: plan.ports.reduce((n, p) => n + p.clusterEndpoints.length, 0), operations: 1 };
  }
  async cleanup(): Promise<void> {}
  async close(): Promise<void> {}
}

function setup(options: { minSyncPeriodMs?: number; syncPeriodMs?: number } = {}) {
  const store = new Store();
  const map = new ServiceMap(store, { nodeName: 'n1' });
  const backend = new RecordingBackend();
  const registry = new Registry();
  const syncer = new ProxySyncer({
    backend,
    serviceMap: map,
    tracker: map.tracker(),
    config: () => ({ nodeName: 'n1', clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: [] }),
    metrics: registerProxyMetrics(registry),
    log: silentLogger(),
    minSyncPeriodMs: options.minSyncPeriodMs ?? 10,
    syncPeriodMs: options.syncPeriodMs ?? 60_000,
  });
  const put = (...raws: object[]) => store.apply(raws.flatMap((r) => parseObject(r)));
  return { store, backend, registry, syncer, put };
}

const web = (port: number) => service('web', { clusterIP: '10.96.0.10', ports: [{ port }] });
const ep = (...ips: string[]) => slice('web-1', 'web', ips.map((ip) => ({ addresses: [ip] })), [{ port: 8080 }]);

describe('ProxySyncer', () => {
  let syncer: ProxySyncer | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await syncer?.stop();
  });

  it('does nothing before start, then syncs fully once, then partially on changes', async () => {
    const s = setup();
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    await new Promise((r) => setTimeout(r, 30));
    expect(s.backend.syncs).toEqual([]);
    s.syncer.start();
    await waitFor('first sync', () => s.backend.syncs.length === 1);
    expect(s.backend.syncs[0]!.full).toBe(true);
    expect(s.backend.syncs[0]!.plan.ports.map((p) => p.clusterEndpoints.length)).toEqual([1]);
    s.put(ep('10.244.1.1', '10.244.1.2'));
    await waitFor('second sync', () => s.backend.syncs.length === 2);
    expect(s.backend.syncs[1]!.full).toBe(false);
    expect(s.backend.syncs[1]!.plan.ports[0]!.clusterEndpoints.map((t) => t.ip)).toEqual(['10.244.1.1', '10.244.1.2']);
  });

  it('batches changes that arrive within min-sync-period into one sync', async () => {
    const s = setup({ minSyncPeriodMs: 300 });
    syncer = s.syncer;
    s.put(web(80));
    s.syncer.start();
    await waitFor('first sync', () => s.backend.syncs.length === 1);
    for (let i = 2; i <= 6; i++) s.put(ep(...Array.from({ length: i }, (_, j) => `10.244.1.${j + 1}`)));
    await s.syncer.settled();
    expect(s.backend.syncs.length).toBe(2);
    expect(s.backend.syncs[1]!.plan.ports[0]?.clusterEndpoints).toHaveLength(6);
  });

  it('keeps going after a refused sync: counts it, and the next sync is full', async () => {
    const s = setup();
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.backend.failNext = 1;
    s.syncer.start();
    await waitFor('the retry', () => s.backend.syncs.length === 1, 3000);
    expect(s.backend.syncs[0]!.full).toBe(true);
    expect(await s.registry.getSingleMetricAsString('netplane_proxy_sync_failures_total')).toContain('netplane_proxy_sync_failures_total{mode="nftables"} 1');
  });

  it('while the kernel keeps refusing, retries stay one loop: they do not add up over sync periods', async () => {
    const s = setup({ syncPeriodMs: 100 });
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.backend.failNext = Infinity;
    s.syncer.start();
    await new Promise((r) => setTimeout(r, 1000));
    const before = s.backend.attempts;
    await new Promise((r) => setTimeout(r, 1000));
    // One retry at most a sync period after each failure, plus the sync-period tick: about 20 attempts a second.
    // A retry timer per failure added a loop at every tick: 100 and more in this second.
    expect(s.backend.attempts - before).toBeLessThanOrEqual(30);
    expect(s.backend.attempts - before).toBeGreaterThanOrEqual(5);
    s.backend.failNext = 0;
    await waitFor('the repair', () => s.backend.syncs.length === 1, 3000);
    expect(s.backend.syncs[0]!.full).toBe(true);
  });

  it("counts failures under kube-proxy's names too, and records the duration of failed syncs", async () => {
    const s = setup();
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.backend.failNext = 2;
    s.syncer.start();
    await waitFor('the sync after two failures', () => s.backend.syncs.length === 1, 3000);
    const text = await s.registry.metrics();
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_nftables_sync_failures_total 2$/m);
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_iptables_restore_failures_total 0$/m);
    expect(text).toMatch(/^netplane_proxy_sync_failures_total\{mode="nftables"\} 2$/m);
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_duration_seconds_count 3$/m);
    expect(text).toMatch(/^kubeproxy_sync_full_proxy_rules_duration_seconds_count 3$/m);
  });

  it('fails its health check when a change waits longer than two sync periods, and recovers once programmed', async () => {
    const s = setup({ syncPeriodMs: 50 });
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.backend.failNext = 1000;
    s.syncer.start();
    await waitFor('unhealthy', () => !s.syncer.health().ok, 2000);
    const h = s.syncer.health();
    expect(h.ok).toBe(false);
    if (!h.ok) expect(h.reason).toMatch(/a change has waited \d+ s to be programmed/);
    s.backend.failNext = 0;
    await waitFor('healthy again', () => s.syncer.health().ok && s.backend.syncs.length > 0, 3000);
  });

  it('records kube-proxy metrics: durations, programming latency, changes', async () => {
    const s = setup();
    syncer = s.syncer;
    // The first view: in the store before it is synced.
    s.put(web(80), ep('10.244.1.1'));
    for (const k of s.store.kinds) s.store.markSynced(k);
    s.syncer.start();
    await waitFor('first sync', () => s.backend.syncs.length === 1);
    s.put(ep('10.244.1.2'));
    await waitFor('second sync', () => s.backend.syncs.length === 2);
    const text = await s.registry.metrics();
    expect(text).toMatch(/kubeproxy_sync_proxy_rules_duration_seconds_count 2/);
    expect(text).toMatch(/kubeproxy_sync_full_proxy_rules_duration_seconds_count 1/);
    // The first view is no change to measure (kube-proxy skips changes from before it started); the slice update is.
    expect(text).toMatch(/kubeproxy_network_programming_duration_seconds_count 1/);
    // A real latency: more than nothing (kube-proxy's buckets start at 0.25 s, so no bucket can say it).
    expect(Number(/^kubeproxy_network_programming_duration_seconds_sum (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/kubeproxy_network_programming_duration_seconds_bucket\{le="59"\} 1/);
    // Each Service and EndpointSlice event counts, as kube-proxy's informer handlers count them.
    expect(text).toMatch(/kubeproxy_sync_proxy_rules_endpoint_changes_total 2/);
    expect(text).toMatch(/kubeproxy_sync_proxy_rules_service_changes_total 1/);
    expect(text).toMatch(/kubeproxy_sync_proxy_rules_endpoint_changes_pending 0/);
    expect(text).toMatch(/netplane_proxy_map_elements\{mode="nftables"\} 1/);
  });

  // An NTP step or a VM resume moves the wall clock; intervals are measured on the monotonic clock, so neither holds
  // rule programming back for the length of the step nor fails /healthz.
  it('a sync requested after the wall clock stepped back an hour still runs within min-sync-period', async () => {
    const s = setup({ minSyncPeriodMs: 200 });
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.syncer.start();
    await waitFor('first sync', () => s.backend.syncs.length === 1);
    const wall = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(wall - 3_600_000);
    const t0 = performance.now();
    s.put(ep('10.244.1.1', '10.244.1.2'));
    await waitFor('the sync after the step', () => s.backend.syncs.length === 2, 2000);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(s.backend.syncs[1]!.plan.ports[0]!.clusterEndpoints).toHaveLength(2);
  });

  it('a wall clock stepped forward an hour does not make a waiting change look an hour old', async () => {
    const s = setup({ minSyncPeriodMs: 300, syncPeriodMs: 60_000 });
    syncer = s.syncer;
    s.put(web(80), ep('10.244.1.1'));
    s.syncer.start();
    await waitFor('first sync', () => s.backend.syncs.length === 1);
    s.put(ep('10.244.1.1', '10.244.1.2'));
    vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 3_600_000);
    expect(s.syncer.health()).toEqual({ ok: true });
    await waitFor('second sync', () => s.backend.syncs.length === 2, 2000);
  });
});

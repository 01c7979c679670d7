// The proxy's sync loop while its configuration holds syncs back (--detect-local-mode NodeCIDR before the Node has
// pod CIDRs): the reason is logged at once and again every sync period with how long it has lasted, readiness
// fails with it, and a hold past its time-out calls onGiveUp once (kube-proxy stops after 5 minutes).
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import type { ProxyBackend, SyncResult } from '../../proxy/backend.ts';
import { registerProxyMetrics } from '../../proxy/metrics.ts';
import type { PlanConfig } from '../../proxy/plan/plan.ts';
import { ProxySyncer, type SyncHold } from '../../proxy/sync.ts';
import { service } from '../fixtures/objects.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

/** A backend that counts its syncs. */
class CountingBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  syncs = 0;
  /** How long each sync takes. */
  delayMs = 0;
  async sync(): Promise<SyncResult> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.syncs++;
    return { rules: 0, elements: 0, operations: 1 };
  }
  async cleanup(): Promise<void> {}
  async close(): Promise<void> {}
}

const ready: PlanConfig = { nodeName: 'n1', clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: [] };

function setup(syncPeriodMs: number) {
  const store = new Store();
  const map = new ServiceMap(store, { nodeName: 'n1' });
  const backend = new CountingBackend();
  const { log, records } = captureLogger();
  let config: PlanConfig | SyncHold = { waitFor: 'waiting for the thing', giveUpAfterMs: 60_000 };
  const gaveUp: Array<[string, number]> = [];
  const syncer = new ProxySyncer({
    backend,
    serviceMap: map,
    tracker: map.tracker(),
    config: () => config,
    onGiveUp: (reason, ms) => gaveUp.push([reason, ms]),
    metrics: registerProxyMetrics(new Registry()),
    log,
    minSyncPeriodMs: 10,
    syncPeriodMs,
  });
  const said = (msg: string) => records.filter((r) => r.msg === msg);
  const put = (...raws: object[]) => store.apply(raws.flatMap((r) => parseObject(r)));
  return { syncer, backend, records, said, gaveUp, put, set: (c: PlanConfig | SyncHold) => (config = c) };
}

describe('ProxySyncer holding syncs back', () => {
  let syncer: ProxySyncer | undefined;
  afterEach(async () => {
    await syncer?.stop();
  });

  it('logs the reason at once and again every sync period, with how long it has waited; programs nothing; not ready', async () => {
    const s = setup(200);
    syncer = s.syncer;
    s.syncer.start();
    await waitFor('the first line', () => s.said('waiting for the thing').length === 1);
    expect(s.said('waiting for the thing')[0]).toMatchObject({ level: 40, waitedS: 0, giveUpInS: 60 });
    expect(s.syncer.readiness()).toEqual({ ok: false, reason: 'waiting for the thing' });
    // Changes in between (each asks for a sync) do not repeat it.
    for (let i = 0; i < 5; i++) s.syncer.requestSync();
    await new Promise((r) => setTimeout(r, 100));
    expect(s.said('waiting for the thing')).toHaveLength(1);
    await waitFor('two more lines, one per period', () => s.said('waiting for the thing').length === 3, 2000);
    expect(s.backend.syncs).toBe(0);

    s.set(ready);
    s.syncer.requestSync();
    await waitFor('the first sync', () => s.backend.syncs === 1);
    expect(s.said('no longer waiting; programming rules')).toEqual([expect.objectContaining({ waited: 'waiting for the thing', waitedS: expect.any(Number) })]);
    expect(s.syncer.readiness()).toEqual({ ok: true });
    const lines = s.said('waiting for the thing').length;
    await new Promise((r) => setTimeout(r, 450));
    expect(s.said('waiting for the thing')).toHaveLength(lines);
  });

  it('a new reason is logged at once', async () => {
    const s = setup(60_000);
    syncer = s.syncer;
    s.syncer.start();
    await waitFor('the first line', () => s.said('waiting for the thing').length === 1);
    s.set({ waitFor: 'waiting for another thing', giveUpAfterMs: 60_000 });
    s.syncer.requestSync();
    await waitFor('the second reason', () => s.said('waiting for another thing').length === 1);
  });

  const rows: Array<[what: string, hold: SyncHold, readyAfterMs: number | undefined, gaveUp: boolean]> = [
    ['a hold past its time-out gives up once', { waitFor: 'waiting for the thing', giveUpAfterMs: 150 }, undefined, true],
    ['a hold that ends in time does not', { waitFor: 'waiting for the thing', giveUpAfterMs: 300 }, 50, false],
    ['a hold without a time-out never does', { waitFor: 'waiting for the thing' }, undefined, false],
  ];
  for (const [what, hold, readyAfterMs, gaveUp] of rows) {
    it(what, async () => {
      const s = setup(60_000);
      syncer = s.syncer;
      s.set(hold);
      s.syncer.start();
      if (readyAfterMs !== undefined) {
        await new Promise((r) => setTimeout(r, readyAfterMs));
        s.set(ready);
        s.syncer.requestSync();
        await waitFor('the first sync', () => s.backend.syncs === 1);
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(s.gaveUp).toEqual(gaveUp ? [['waiting for the thing', expect.any(Number)]] : []);
      if (gaveUp) expect(s.gaveUp[0]![1]).toBeGreaterThanOrEqual(140);
    });
  }

  it('keeps /healthz up while held, with changes kept back, and counts them from the end of the hold', async () => {
    const s = setup(100);
    syncer = s.syncer;
    s.syncer.start();
    s.put(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }));
    s.syncer.requestSync();
    // Over two sync periods: a change this old fails /healthz when nothing holds it back (as in sync.test.ts).
    await new Promise((r) => setTimeout(r, 350));
    expect(s.syncer.health()).toEqual({ ok: true });
    expect(s.syncer.readiness()).toEqual({ ok: false, reason: 'waiting for the thing' });

    // The hold ends; the first sync takes a while, and the change kept back is not counted as waiting since before.
    s.backend.delayMs = 150;
    s.set(ready);
    s.syncer.requestSync();
    await new Promise((r) => setTimeout(r, 60));
    expect(s.backend.syncs).toBe(0);
    expect(s.syncer.health()).toEqual({ ok: true });
    await waitFor('the first sync', () => s.backend.syncs === 1);
    expect(s.syncer.health()).toEqual({ ok: true });
  });
});

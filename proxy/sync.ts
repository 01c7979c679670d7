// The proxy's sync loop, shared by every backend: waits for the first full view, plans, applies at most once per
// min-sync-period, retries a refused apply with a full sync (keeping the previous rules meanwhile), and reports
// health and kube-proxy's metrics.
import type { ChangeTracker, ServiceMap } from '../cluster/servicemap/index.ts';
import type { HealthCheck } from '../runtime/admin.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ProxyBackend } from './backend.ts';
import { recordProgrammed, type ProxyMetrics } from './metrics.ts';
import { PlanCache, planProxy, type PlanConfig } from './plan/plan.ts';
import type { ProxyPlan } from './plan/types.ts';

/** What `config` gives instead of a configuration while nothing may be programmed: one sentence saying what is missing. */
export interface SyncHold {
  waitFor: string;
  /** Holding longer than this in all (since the first hold) calls `onGiveUp`; absent: holds without end. */
  giveUpAfterMs?: number;
}

/** Options of the sync loop. */
export interface SyncerOptions {
  backend: ProxyBackend;
  serviceMap: ServiceMap;
  tracker: ChangeTracker;
  /**
   * The planner's configuration, read at every sync (the node's zone can change); or a hold (--detect-local-mode
   * NodeCIDR before the Node has pod CIDRs): the sync then programs nothing, changes stay pending, `readiness`
   * fails with the reason, which is logged when the hold starts and again every sync period while it lasts, and a
   * later requestSync (or the sync period) asks again.
   */
  config: () => PlanConfig | SyncHold;
  /** Called once when a hold has lasted past its giveUpAfterMs, with its reason and how long it lasted. */
  onGiveUp?: (reason: string, waitedMs: number) => void;
  metrics: ProxyMetrics;
  log: Logger;
  /** Syncs are at least this far apart; changes in between are batched. */
  minSyncPeriodMs: number;
  /** A sync runs at least this often; a change left unapplied for twice this fails /healthz. */
  syncPeriodMs: number;
  /** A full sync (reconcile with the kernel) runs at least this often. */
  fullSyncPeriodMs?: number;
  /** Runs after every successful sync with the previous and the new plan (conntrack clean-up, health checks). */
  afterSync?: (prev: ProxyPlan | undefined, next: ProxyPlan) => Promise<void>;
}

/** Runs syncs of one backend. */
export class ProxySyncer {
  #o: SyncerOptions;
  #cache = new PlanCache();
  #lastPlan?: ProxyPlan;
  #needFull = true;
  // Intervals are measured with performance.now() (monotonic): a wall clock stepped back would hold syncs back for
  // the length of the step. Both start long ago, so the first sync waits for nothing.
  #lastFullAt = -Infinity;
  #lastStartAt = -Infinity;
  #timer?: NodeJS.Timeout;
  /**
   * The one pending retry after a refused sync. A later failure replaces it, a success cancels it: one timer per
   * failure would add a retry loop at every sync-period tick while the kernel keeps refusing (kube-proxy's runner
   * also keeps a single retry).
   */
  #retry?: NodeJS.Timeout;
  #interval?: NodeJS.Timeout;
  #running?: Promise<void>;
  #again = false;
  /** Set by the sync-period tick: the next sync first runs the backend's canary check. */
  #checkDue = false;
  #failures = 0;
  /** The backend's partialRestoreFailures already counted in the metrics. */
  #partialFailuresSeen = 0;
  #started = false;
  #stopped = false;
  /** Services whose changes are taken from the tracker but not yet programmed, with when each was first seen (performance.now() ms). */
  #unapplied = new Map<string, number>();
  /** Services of #unapplied that only the first view brought: not observed in the programming latency. */
  #unmeasured = new Set<string>();
  #unsubscribe?: () => void;
  #lastSyncedAt: number | undefined;
  /** Set while `config` holds syncs back: what it waits for, since when, and when that was last logged (performance.now() ms). */
  #waitingFor: string | undefined;
  #waitingSince: number | undefined;
  /** When the last hold ended (performance.now() ms); changes it kept back count from then. */
  #holdEndedAt = -Infinity;
  #holdLoggedAt = -Infinity;
  #giveUp?: NodeJS.Timeout;

  constructor(options: SyncerOptions) {
    this.#o = options;
  }

  /** The last plan programmed successfully. */
  get lastPlan(): ProxyPlan | undefined {
    return this.#lastPlan;
  }

  /** When the last sync succeeded (ms since the epoch); undefined before the first. */
  get lastSyncedAt(): number | undefined {
    return this.#lastSyncedAt;
  }

  /** Starts syncing: a full sync now, then on every change and every sync period. Call once the view is loaded. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#o.tracker.onChange(() => this.requestSync());
    this.#interval = setInterval(() => {
      this.#checkDue = true;
      this.requestSync();
    }, this.#o.syncPeriodMs);
    this.#interval.unref();
    this.requestSync();
  }

  /** Asks for a sync as soon as min-sync-period allows. */
  requestSync(): void {
    if (!this.#started || this.#stopped) return;
    this.#o.metrics.lastQueued.set(Date.now() / 1000);
    this.#updatePending();
    this.#schedule(Math.max(0, this.#lastStartAt + this.#o.minSyncPeriodMs - performance.now()));
  }

  /** Resolves when no sync is running or scheduled; for tests and shutdown. */
  async settled(): Promise<void> {
    while (this.#running || this.#timer) {
      await (this.#running ?? new Promise((r) => setTimeout(r, 5)));
    }
  }

  /**
   * /healthz: failing when a change seen has waited longer than two sync periods. A hold is not a failure to
   * program (readiness says what it waits for, and a hold with a time-out ends the process): while it lasts /healthz
   * stays up, else a liveness probe would restart the proxy over and over before the Node has its pod CIDRs, and the
   * changes it kept back count from its end.
   */
  readonly health: HealthCheck = () => {
    if (this.#waitingFor !== undefined) return { ok: true };
    const oldest = this.#oldestUnapplied();
    const waited = oldest === undefined ? 0 : performance.now() - Math.max(oldest, this.#holdEndedAt);
    return waited > 2 * this.#o.syncPeriodMs
      ? { ok: false, reason: `a change has waited ${Math.round(waited / 1000)} s to be programmed (sync period ${this.#o.syncPeriodMs / 1000} s)` }
      : { ok: true };
  };

  /** /readyz: failing while `config` holds syncs back, with what it waits for. */
  readonly readiness: HealthCheck = () => (this.#waitingFor === undefined ? { ok: true } : { ok: false, reason: this.#waitingFor });

  /** Stops syncing; what is programmed stays. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#interval);
    clearTimeout(this.#timer);
    clearTimeout(this.#retry);
    clearTimeout(this.#giveUp);
    this.#timer = undefined;
    await this.#running;
  }

  #oldestUnapplied(): number | undefined {
    let oldest = this.#o.tracker.oldestPending();
    for (const t of this.#unapplied.values()) if (oldest === undefined || t < oldest) oldest = t;
    return oldest;
  }

  #updatePending(): void {
    const p = this.#o.tracker.pending();
    this.#o.metrics.serviceChangesPending.set(p.services);
    this.#o.metrics.endpointChangesPending.set(p.endpoints);
  }

  #schedule(delayMs: number): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#stopped) {
          this.#again = false;
          this.#schedule(Math.max(0, this.#lastStartAt + this.#o.minSyncPeriodMs - performance.now()));
        }
      });
    }, delayMs);
  }

  /**
   * A sync held back: logs the reason when the hold starts or the reason changes, and again once a sync period
   * has passed (the periodic tick runs a sync), with how long it has lasted; arms the give-up timer once.
   */
  #hold(hold: SyncHold): void {
    const o = this.#o;
    const now = performance.now();
    const since = (this.#waitingSince ??= now);
    const giveUpAt = hold.giveUpAfterMs === undefined ? undefined : since + hold.giveUpAfterMs;
    // Timers fire a little early or late: a tick counts as a period gone by.
    if (hold.waitFor !== this.#waitingFor || now - this.#holdLoggedAt >= 0.9 * o.syncPeriodMs) {
      o.log.warn({ waitedS: Math.round((now - since) / 1000), ...(giveUpAt !== undefined ? { giveUpInS: Math.max(0, Math.round((giveUpAt - now) / 1000)) } : {}) }, hold.waitFor);
      this.#holdLoggedAt = now;
    }
    this.#waitingFor = hold.waitFor;
    if (giveUpAt === undefined || this.#giveUp) return;
    this.#giveUp = setTimeout(() => {
      if (this.#waitingFor !== undefined && !this.#stopped) o.onGiveUp?.(this.#waitingFor, performance.now() - since);
    }, Math.max(0, giveUpAt - now));
    this.#giveUp.unref();
  }

  /** Counts the partial restores the backend saw refused since the last look, as kube-proxy counts each failed restore. */
  #countPartialFailures(): void {
    const o = this.#o;
    const n = o.backend.partialRestoreFailures ?? 0;
    if (n <= this.#partialFailuresSeen) return;
    o.metrics.iptablesPartialRestoreFailures.inc(n - this.#partialFailuresSeen);
    o.metrics.kernelSyncFailures.iptables.inc(n - this.#partialFailuresSeen);
    this.#partialFailuresSeen = n;
  }

  /** Runs the backend's canary (periodic syncs only); true when the kernel lost or changed what was applied. */
  async #canaryFailed(): Promise<boolean> {
    const o = this.#o;
    if (!o.backend.verify) return false;
    let drift: string | undefined;
    try {
      drift = await o.backend.verify();
    } catch (e) {
      drift = `the rules could not be read back: ${(e as Error).message}`;
    }
    if (drift === undefined) return false;
    o.metrics.canaryRepairs.inc({ mode: o.backend.mode });
    o.log.warn({ drift }, 'the kernel no longer holds the programmed rules (removed or changed outside netplane); running a full sync');
    return true;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const config = o.config();
    if ('waitFor' in config) {
      // The changes stay in the tracker for the sync that can program them.
      this.#hold(config);
      return;
    }
    if (this.#waitingFor !== undefined) {
      o.log.info({ waited: this.#waitingFor, waitedS: Math.round((performance.now() - this.#waitingSince!) / 1000) }, 'no longer waiting; programming rules');
    }
    if (this.#waitingFor !== undefined) this.#holdEndedAt = performance.now();
    this.#waitingFor = undefined;
    this.#waitingSince = undefined;
    clearTimeout(this.#giveUp);
    this.#giveUp = undefined;
    this.#lastStartAt = performance.now();
    const events = o.tracker.takeEvents();
    o.metrics.serviceChangesTotal.inc(events.services);
    o.metrics.endpointChangesTotal.inc(events.endpoints);
    const taken = o.tracker.take();
    for (const [svc, since] of taken.since) {
      const prev = this.#unapplied.get(svc);
      if (taken.initial.has(svc)) {
        if (prev === undefined) this.#unmeasured.add(svc);
      } else if (this.#unmeasured.delete(svc)) {
        // The first change since the first view: its latency counts from it.
        this.#unapplied.set(svc, since);
        continue;
      }
      if (prev === undefined || since < prev) this.#unapplied.set(svc, since);
    }
    this.#updatePending();
    let full = this.#needFull || (o.fullSyncPeriodMs !== undefined && performance.now() - this.#lastFullAt > o.fullSyncPeriodMs);
    if (this.#checkDue) {
      this.#checkDue = false;
      if (!full) full = await this.#canaryFailed();
    }
    const plan = planProxy(o.serviceMap.ports.values(), config, this.#cache);
    const t0 = performance.now();
    // Observed for failed syncs too, as kube-proxy's deferred SyncProxyRulesLatency is.
    const observe = () => {
      const seconds = (performance.now() - t0) / 1000;
      o.metrics.syncDuration.observe(seconds);
      (full ? o.metrics.fullSyncDuration : o.metrics.partialSyncDuration).observe(seconds);
      return seconds;
    };
    let result;
    try {
      result = await o.backend.sync(plan, { full });
    } catch (e) {
      this.#countPartialFailures();
      observe();
      this.#failures++;
      this.#needFull = true;
      o.metrics.syncFailures.inc({ mode: o.backend.mode });
      if (o.backend.mode !== 'userspace') o.metrics.kernelSyncFailures[o.backend.mode].inc();
      const retryMs = Math.min(o.syncPeriodMs, o.minSyncPeriodMs * 2 ** this.#failures);
      o.log.error({ err: (e as Error).message, full, retryMs }, 'sync failed; the previous rules stay, retrying with a full sync');
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        this.#schedule(0);
      }, retryMs).unref();
      return;
    }
    this.#countPartialFailures();
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const seconds = observe();
    o.metrics.lastSync.set(Date.now() / 1000);
    recordProgrammed(o.metrics, o.backend.mode, plan, result);
    const now = performance.now();
    for (const [svc, since] of this.#unapplied) if (!this.#unmeasured.has(svc)) o.metrics.networkProgramming.observe(Math.max(0, now - since) / 1000);
    this.#unapplied.clear();
    this.#unmeasured.clear();
    if (full) this.#lastFullAt = now;
    // A timestamp, not an interval: /healthz reports it as lastUpdated, in wall-clock time as kube-proxy does.
    this.#lastSyncedAt = Date.now();
    if (full || result.operations > 0) {
      o.log.info({ full, ms: Math.round(seconds * 1000), ports: plan.ports.length, rules: result.rules, elements: result.elements, operations: result.operations, ...(result.via ? { via: result.via } : {}) }, 'rules synced');
    }
    const prev = this.#lastPlan;
    this.#lastPlan = plan;
    this.#needFull = false;
    this.#failures = 0;
    try {
      await o.afterSync?.(prev, plan);
    } catch (e) {
      o.log.warn({ err: (e as Error).message }, 'after-sync step failed');
    }
  }
}

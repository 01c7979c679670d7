// One Prometheus registry per process: process metrics, the cluster view's metrics, and the component's own.
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Kind } from '../cluster/model/index.ts';
import type { Store } from '../cluster/store.ts';

/** A registry with Node.js process metrics and `netplane_build_info`. */
export function createRegistry(component: string, version: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // These gauges end in _total, which promtool's lint rejects for non-counters; the same numbers are
  // exported per type as nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  new Gauge({
    name: 'netplane_build_info',
    help: 'Always 1; labels say which netplane component and version this process runs.',
    labelNames: ['component', 'version'],
    registers: [registry],
  }).set({ component, version }, 1);
  return registry;
}

/** Gauges read from the store at scrape time: objects per kind, synced, stale, and age of the view. */
export function registerStoreMetrics(registry: Registry, store: Store): void {
  new Gauge({
    name: 'netplane_cluster_objects',
    help: 'Objects of each kind in the cluster view.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const kind of store.kinds) this.set({ kind }, store.count(kind as Kind));
    },
  });
  new Gauge({
    name: 'netplane_cluster_synced',
    help: '1 once every kind has been loaded completely once.',
    registers: [registry],
    collect() {
      this.set(store.status.synced ? 1 : 0);
    },
  });
  new Gauge({
    name: 'netplane_cluster_stale',
    help: '1 while the source is cut off and the last view is being served.',
    registers: [registry],
    collect() {
      this.set(store.status.stale ? 1 : 0);
    },
  });
  new Gauge({
    name: 'netplane_cluster_last_current_timestamp_seconds',
    help: 'When the view was last known to be current (Unix time).',
    registers: [registry],
    collect() {
      this.set(store.status.lastCurrentAt / 1000);
    },
  });
}

// The service map: kept current from the store, one entry per Service and per Service port, for one node, and
// change trackers that tell each consumer what changed since it last read.
import { isDeepStrictEqual } from 'node:util';
import { objectKey, serviceNameLabel, type EndpointSlice } from '../model/index.ts';
import type { Store, StoreChange } from '../store.ts';
import { buildServiceInfo } from './build.ts';
import type { ServiceInfo, ServiceMapChanges, ServicePortInfo } from './types.ts';

/** Collects what changed in the service map until its owner reads it. */
export class ChangeTracker {
  #services = new Set<string>();
  #ports = new Set<string>();
  #since = new Map<string, number>();
  #servicesPending = new Set<string>();
  #endpointsPending = new Set<string>();
  #listeners = new Set<() => void>();

  #initial = new Set<string>();
  #serviceEvents = 0;
  #endpointEvents = 0;

  /**
   * The Service and EndpointSlice events (added, changed or deleted, the first list's included) since the last call,
   * as kube-proxy's *_changes_total count each informer event, effective or not.
   */
  takeEvents(): { services: number; endpoints: number } {
    const events = { services: this.#serviceEvents, endpoints: this.#endpointEvents };
    this.#serviceEvents = 0;
    this.#endpointEvents = 0;
    return events;
  }

  /** @internal Called by ServiceMap. */
  countEvents(services: number, endpoints: number): void {
    this.#serviceEvents += services;
    this.#endpointEvents += endpoints;
  }

  /** Services with unread changes to their spec, and with unread changes to their endpoints. */
  pending(): { services: number; endpoints: number } {
    return { services: this.#servicesPending.size, endpoints: this.#endpointsPending.size };
  }

  /** When the oldest unread change was seen (performance.now() ms, a monotonic clock), or undefined when nothing is unread. */
  oldestPending(): number | undefined {
    let oldest: number | undefined;
    for (const t of this.#since.values()) if (oldest === undefined || t < oldest) oldest = t;
    return oldest;
  }

  /** Returns what changed since the last call, and forgets it. */
  take(): ServiceMapChanges {
    const changes = { services: this.#services, ports: this.#ports, since: this.#since, initial: this.#initial };
    this.#initial = new Set();
    this.#services = new Set();
    this.#ports = new Set();
    this.#since = new Map();
    this.#servicesPending.clear();
    this.#endpointsPending.clear();
    return changes;
  }

  /** Calls `listener` after every recorded change; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal Called by ServiceMap. */
  record(service: string, ports: Iterable<string>, cause: 'service' | 'endpoints', at: number, initial = false): void {
    this.#services.add(service);
    for (const p of ports) this.#ports.add(p);
    if (initial) {
      if (!this.#since.has(service)) {
        this.#since.set(service, at);
        this.#initial.add(service);
      }
      // A real change to a Service the first view held: its latency counts from now.
    } else if (this.#initial.delete(service) || !this.#since.has(service)) this.#since.set(service, at);
    (cause === 'service' ? this.#servicesPending : this.#endpointsPending).add(service);
  }

  /** @internal Called by ServiceMap once per store batch. */
  notify(): void {
    for (const l of this.#listeners) l();
  }
}

/**
 * Every Service and Service port with its endpoints, as seen from one node (`local` marks that node's
 * endpoints). Built once per process from the store; proxy and dns read it and nothing else re-derives it.
 */
export class ServiceMap {
  readonly nodeName: string;
  #store: Store;
  #services = new Map<string, ServiceInfo>();
  #ports = new Map<string, ServicePortInfo>();
  /** EndpointSlices by the Service (namespace/name) they are labelled with. */
  #slicesByService = new Map<string, Map<string, EndpointSlice>>();
  #trackers = new Set<ChangeTracker>();
  #unsubscribe: () => void;

  constructor(store: Store, options: { nodeName: string }) {
    this.nodeName = options.nodeName;
    this.#store = store;
    const initial: StoreChange[] = [
      ...store.list('EndpointSlice').map((object) => ({ kind: 'EndpointSlice' as const, key: objectKey('EndpointSlice', object.metadata), old: undefined, object })),
      ...store.list('Service').map((object) => ({ kind: 'Service' as const, key: objectKey('Service', object.metadata), old: undefined, object })),
    ];
    this.#onChanges(initial);
    this.#unsubscribe = store.subscribe((changes) => this.#onChanges(changes));
  }

  /** Every Service by `namespace/name`. The map and its entries must not be modified. */
  get services(): ReadonlyMap<string, ServiceInfo> {
    return this.#services;
  }

  /** Every Service port by ServicePortInfo.key. The map and its entries must not be modified. */
  get ports(): ReadonlyMap<string, ServicePortInfo> {
    return this.#ports;
  }

  /** A new tracker that records every change from now on; existing entries count as unread changes. */
  tracker(): ChangeTracker {
    const t = new ChangeTracker();
    const now = performance.now();
    for (const svc of this.#services.values()) t.record(svc.key, svc.ports.map((p) => p.key), 'service', now, true);
    let slices = 0;
    for (const m of this.#slicesByService.values()) slices += m.size;
    t.countEvents(this.#services.size, slices);
    this.#trackers.add(t);
    return t;
  }

  /** Stops following the store. */
  close(): void {
    this.#unsubscribe();
    this.#trackers.clear();
  }

  #onChanges(changes: readonly StoreChange[]): void {
    const dirty = new Map<string, 'service' | 'endpoints'>();
    let services = 0;
    let endpoints = 0;
    for (const c of changes) {
      if (c.kind === 'Service') {
        dirty.set(c.key, 'service');
        services++;
      } else if (c.kind === 'EndpointSlice') {
        endpoints++;
        for (const slice of [c.old, c.object]) {
          const svcKey = sliceService(slice);
          if (svcKey && !dirty.has(svcKey)) dirty.set(svcKey, 'endpoints');
        }
        this.#indexSlice(c.key, c.old, c.object);
      }
    }
    if (services + endpoints > 0) for (const t of this.#trackers) t.countEvents(services, endpoints);
    if (dirty.size === 0) return;
    const now = performance.now();
    let recorded = false;
    // Until the first full view is in, what arrives is that view, not a change.
    const initial = !this.#store.status.synced;
    for (const [key, cause] of dirty) recorded = this.#rebuild(key, cause, now, initial) || recorded;
    if (recorded) for (const t of this.#trackers) t.notify();
  }

  #indexSlice(key: string, old: EndpointSlice | undefined, next: EndpointSlice | undefined): void {
    const oldSvc = sliceService(old);
    if (oldSvc) {
      const m = this.#slicesByService.get(oldSvc);
      m?.delete(key);
      if (m && m.size === 0) this.#slicesByService.delete(oldSvc);
    }
    const newSvc = sliceService(next);
    if (newSvc && next) {
      let m = this.#slicesByService.get(newSvc);
      if (!m) this.#slicesByService.set(newSvc, (m = new Map()));
      m.set(key, next);
    }
  }

  /** Recomputes one Service's entry; returns whether anything changed. */
  #rebuild(key: string, cause: 'service' | 'endpoints', now: number, initial: boolean): boolean {
    const svc = this.#store.get('Service', key);
    const prev = this.#services.get(key);
    const next = svc ? buildServiceInfo(svc, this.#slicesByService.get(key)?.values() ?? [], this.nodeName) : undefined;
    if (isDeepStrictEqual(prev, next)) return false;
    const changedPorts: string[] = [];
    const prevPorts = new Map((prev?.ports ?? []).map((p) => [p.key, p]));
    for (const p of next?.ports ?? []) {
      if (!isDeepStrictEqual(prevPorts.get(p.key), p)) changedPorts.push(p.key);
      prevPorts.delete(p.key);
      this.#ports.set(p.key, p);
    }
    for (const gone of prevPorts.keys()) {
      changedPorts.push(gone);
      this.#ports.delete(gone);
    }
    if (next) this.#services.set(key, next);
    else this.#services.delete(key);
    for (const t of this.#trackers) t.record(key, changedPorts, cause, now, initial);
    return true;
  }
}

function sliceService(slice: EndpointSlice | undefined): string | undefined {
  const name = slice?.metadata.labels[serviceNameLabel];
  return slice && name ? `${slice.metadata.namespace}/${name}` : undefined;
}

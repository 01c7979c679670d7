// The cache's and forwarder's metrics under CoreDNS's names and labels (plugin/cache/metrics.go,
// plugin/forward/metrics.go, plugin/pkg/proxy/metrics.go), so CoreDNS dashboards and alerts keep working.
// Forward counters use the names of CoreDNS before 1.11 (coredns_forward_requests_total, ..._responses_total), the
// duration histogram and health-check failures the names since (coredns_proxy_*{proxy_name="forward"}).
import { Counter, Gauge, Histogram, exponentialBuckets, type Registry } from 'prom-client';
import type { CacheType } from './cache.ts';

/** Label values every cache metric carries. */
export interface CacheLabels {
  /** The server block, e.g. "dns://:53". */
  server: string;
  /** The zones the cache serves, e.g. ".". */
  zones: string;
  /** CoreDNS's view plugin name; empty without views. */
  view: string;
}

/** Everything the forwarder counts. Creating it registers the metrics; a registry can hold one set. */
export class ForwardMetrics {
  #l: CacheLabels;
  #cacheRequests: Counter<'server' | 'zones' | 'view'>;
  #hits: Counter<'server' | 'type' | 'zones' | 'view'>;
  #misses: Counter<'server' | 'zones' | 'view'>;
  #prefetches: Counter<'server' | 'zones' | 'view'>;
  #stale: Counter<'server' | 'zones' | 'view'>;
  #evictions: Counter<'server' | 'type' | 'zones' | 'view'>;
  #requests: Counter<'to'>;
  #responses: Counter<'rcode' | 'to'>;
  #duration: Histogram<'proxy_name' | 'to' | 'rcode'>;
  #probeFailures: Counter<'proxy_name' | 'to'>;
  #broken: Counter;

  /** `entries` is read at scrape time for coredns_cache_entries. */
  constructor(registry: Registry, labels: CacheLabels, entries: (type: CacheType) => number) {
    this.#l = labels;
    const registers = [registry];
    const cacheLabels = ['server', 'zones', 'view'] as const;
    const typed = ['server', 'type', 'zones', 'view'] as const;
    new Gauge({
      name: 'coredns_cache_entries',
      help: 'The number of elements in the cache.',
      labelNames: typed,
      registers,
      collect() {
        for (const type of ['success', 'denial'] as const) this.set({ ...labels, type }, entries(type));
      },
    });
    this.#cacheRequests = new Counter({ name: 'coredns_cache_requests_total', help: 'The count of cache requests.', labelNames: cacheLabels, registers });
    this.#hits = new Counter({ name: 'coredns_cache_hits_total', help: 'The count of cache hits.', labelNames: typed, registers });
    this.#misses = new Counter({ name: 'coredns_cache_misses_total', help: 'The count of cache misses.', labelNames: cacheLabels, registers });
    this.#prefetches = new Counter({
      name: 'coredns_cache_prefetch_total',
      help: 'The number of times the cache has prefetched a cached item.',
      labelNames: cacheLabels,
      registers,
    });
    this.#stale = new Counter({
      name: 'coredns_cache_served_stale_total',
      help: 'The number of requests served from stale cache entries.',
      labelNames: cacheLabels,
      registers,
    });
    this.#evictions = new Counter({ name: 'coredns_cache_evictions_total', help: 'The count of cache evictions.', labelNames: typed, registers });
    this.#requests = new Counter({ name: 'coredns_forward_requests_total', help: 'Counter of requests made per upstream.', labelNames: ['to'], registers });
    this.#responses = new Counter({
      name: 'coredns_forward_responses_total',
      help: 'Counter of responses received per upstream.',
      labelNames: ['rcode', 'to'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'coredns_proxy_request_duration_seconds',
      help: 'Histogram of the time each request took.',
      labelNames: ['proxy_name', 'to', 'rcode'],
      // CoreDNS's plugin.TimeBuckets: 0.25 ms to about 8 s.
      buckets: exponentialBuckets(0.00025, 2, 16),
      registers,
    });
    this.#probeFailures = new Counter({
      name: 'coredns_proxy_healthcheck_failures_total',
      help: 'Counter of the number of failed healthchecks.',
      labelNames: ['proxy_name', 'to'],
      registers,
    });
    this.#broken = new Counter({
      name: 'coredns_forward_healthcheck_broken_total',
      help: 'Counter of the number of complete failures of the healthchecks.',
      registers,
    });
    // Series that exist from the start, so rates and ratios are defined before the first event.
    for (const c of [this.#cacheRequests, this.#misses, this.#prefetches, this.#stale]) c.inc(labels, 0);
    for (const type of ['success', 'denial'] as const) {
      this.#hits.inc({ ...labels, type }, 0);
      this.#evictions.inc({ ...labels, type }, 0);
    }
  }

  /** Declares an upstream's series at zero. */
  upstream(to: string): void {
    this.#requests.inc({ to }, 0);
    this.#probeFailures.inc({ proxy_name: 'forward', to }, 0);
  }

  cacheRequest(): void {
    this.#cacheRequests.inc(this.#l);
  }

  hit(type: CacheType): void {
    this.#hits.inc({ ...this.#l, type });
  }

  miss(): void {
    this.#misses.inc(this.#l);
  }

  prefetch(): void {
    this.#prefetches.inc(this.#l);
  }

  servedStale(): void {
    this.#stale.inc(this.#l);
  }

  evicted(type: CacheType): void {
    this.#evictions.inc({ ...this.#l, type });
  }

  /** A query sent to an upstream. */
  request(to: string): void {
    this.#requests.inc({ to });
  }

  /** A reply received from an upstream after `seconds`. */
  response(to: string, rcode: string, seconds: number): void {
    this.#responses.inc({ rcode, to });
    this.#duration.observe({ proxy_name: 'forward', to, rcode }, seconds);
  }

  probeFailed(to: string): void {
    this.#probeFailures.inc({ proxy_name: 'forward', to });
  }

  allDown(): void {
    this.#broken.inc();
  }
}

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

/** The cache's counts, plain numbers bumped on the query path and handed to prom-client at scrape time. */
interface CacheCounts {
  requests: number;
  hits: Record<CacheType, number>;
  misses: number;
  prefetches: number;
  stale: number;
  evictions: Record<CacheType, number>;
}

/** One forwarder's cache as the shared collectors see it. */
interface CacheSource {
  labels: CacheLabels;
  counts: CacheCounts;
  entries: (type: CacheType) => number;
  /** Its forwarder was closed (replaced by a reloaded configuration): its counts stay, its cache holds nothing. */
  retired: boolean;
}

const sameLabels = (a: CacheLabels, b: CacheLabels) => a.server === b.server && a.zones === b.zones && a.view === b.view;

/** Adds a retired source's counts into `to`, so that the counters of its labels never go back. */
function carryCounts(from: CacheCounts, to: CacheCounts): void {
  to.requests += from.requests;
  to.misses += from.misses;
  to.prefetches += from.prefetches;
  to.stale += from.stale;
  for (const t of ['success', 'denial'] as const) {
    to.hits[t] += from.hits[t];
    to.evictions[t] += from.evictions[t];
  }
}

/** The metrics of one registry, shared by every forwarder on it (the default one and each stub domain's). */
interface SharedMetrics {
  sources: CacheSource[];
  requests: Counter<'to'>;
  responses: Counter<'rcode' | 'to'>;
  duration: Histogram<'proxy_name' | 'to' | 'rcode'>;
  probeFailures: Counter<'proxy_name' | 'to'>;
  broken: Counter;
  rejects: Counter;
  connHits: Counter<'proxy_name' | 'to' | 'proto'>;
  connMisses: Counter<'proxy_name' | 'to' | 'proto'>;
}

const shared = new WeakMap<Registry, SharedMetrics>();

/** Registers the metrics on a registry once; each forwarder adds its cache as a source. */
function sharedMetrics(registry: Registry): SharedMetrics {
  const known = shared.get(registry);
  if (known) return known;
  const registers = [registry];
  const sources: CacheSource[] = [];
  const cacheLabels = ['server', 'zones', 'view'] as const;
  const typed = ['server', 'type', 'zones', 'view'] as const;
  // Every series exists from the start (at zero), so rates and ratios are defined before the first event.
  const scraped = (name: string, help: string, count: (c: CacheCounts) => number) =>
    new Counter({
      name,
      help,
      labelNames: cacheLabels,
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.inc(s.labels, count(s.counts));
      },
    });
  const scrapedByType = (name: string, help: string, counts: (c: CacheCounts) => Record<CacheType, number>) =>
    new Counter({
      name,
      help,
      labelNames: typed,
      registers,
      collect() {
        this.reset();
        for (const s of sources) for (const type of ['success', 'denial'] as const) this.inc({ ...s.labels, type }, counts(s.counts)[type]);
      },
    });
  new Gauge({
    name: 'coredns_cache_entries',
    help: 'The number of elements in the cache.',
    labelNames: typed,
    registers,
    collect() {
      for (const s of sources) for (const type of ['success', 'denial'] as const) this.set({ ...s.labels, type }, s.entries(type));
    },
  });
  scraped('coredns_cache_requests_total', 'The count of cache requests.', (c) => c.requests);
  scrapedByType('coredns_cache_hits_total', 'The count of cache hits.', (c) => c.hits);
  scraped('coredns_cache_misses_total', 'The count of cache misses.', (c) => c.misses);
  scraped('coredns_cache_prefetch_total', 'The number of times the cache has prefetched a cached item.', (c) => c.prefetches);
  scraped('coredns_cache_served_stale_total', 'The number of requests served from stale cache entries.', (c) => c.stale);
  scrapedByType('coredns_cache_evictions_total', 'The count of cache evictions.', (c) => c.evictions);
  const m: SharedMetrics = {
    sources,
    requests: new Counter({ name: 'coredns_forward_requests_total', help: 'Counter of requests made per upstream.', labelNames: ['to'], registers }),
    responses: new Counter({ name: 'coredns_forward_responses_total', help: 'Counter of responses received per upstream.', labelNames: ['rcode', 'to'], registers }),
    duration: new Histogram({
      name: 'coredns_proxy_request_duration_seconds',
      help: 'Histogram of the time each request took.',
      labelNames: ['proxy_name', 'to', 'rcode'],
      // CoreDNS's plugin.TimeBuckets: 0.25 ms to about 8 s.
      buckets: exponentialBuckets(0.00025, 2, 16),
      registers,
    }),
    probeFailures: new Counter({ name: 'coredns_proxy_healthcheck_failures_total', help: 'Counter of the number of failed healthchecks.', labelNames: ['proxy_name', 'to'], registers }),
    broken: new Counter({ name: 'coredns_forward_healthcheck_broken_total', help: 'Counter of the number of complete failures of the healthchecks.', registers }),
    rejects: new Counter({ name: 'coredns_forward_max_concurrent_rejects_total', help: 'Counter of the number of queries rejected because the concurrent queries were at maximum.', registers }),
    // Only TLS and TCP-only upstreams keep connections (proto "tcp-tls", "tcp"); plain ones use a fresh socket per query.
    connHits: new Counter({ name: 'coredns_proxy_conn_cache_hits_total', help: 'Counter of connection cache hits per upstream and protocol.', labelNames: ['proxy_name', 'to', 'proto'], registers }),
    connMisses: new Counter({ name: 'coredns_proxy_conn_cache_misses_total', help: 'Counter of connection cache misses per upstream and protocol.', labelNames: ['proxy_name', 'to', 'proto'], registers }),
  };
  shared.set(registry, m);
  return m;
}

/**
 * Everything one forwarder counts. The metrics are registered on a registry once and shared by its forwarders
 * (the default one and each stub domain's): the cache series are told apart by their `zones` label, the upstream
 * series by `to`.
 */
export class ForwardMetrics {
  // A labelled prom-client counter hashes and validates its labels on every inc(), which is a few percent of a
  // cache hit at ~100k queries/s: the cache counters are plain numbers here, copied into the counters when scraped.
  readonly #c: CacheCounts = { requests: 0, hits: { success: 0, denial: 0 }, misses: 0, prefetches: 0, stale: 0, evictions: { success: 0, denial: 0 } };
  #requests: Counter<'to'>;
  #responses: Counter<'rcode' | 'to'>;
  #duration: Histogram<'proxy_name' | 'to' | 'rcode'>;
  #probeFailures: Counter<'proxy_name' | 'to'>;
  #broken: Counter;
  #rejects: Counter;
  #connHits: Counter<'proxy_name' | 'to' | 'proto'>;
  #connMisses: Counter<'proxy_name' | 'to' | 'proto'>;
  readonly #source: CacheSource;

  /**
   * `entries` is read at scrape time for coredns_cache_entries. A forwarder retired with the same labels (the one
   * this one replaces) hands its counts on to this one.
   */
  constructor(registry: Registry, labels: CacheLabels, entries: (type: CacheType) => number) {
    const m = sharedMetrics(registry);
    for (let i = m.sources.length - 1; i >= 0; i--) {
      const s = m.sources[i]!;
      if (!s.retired || !sameLabels(s.labels, labels)) continue;
      carryCounts(s.counts, this.#c);
      m.sources.splice(i, 1);
    }
    this.#source = { labels, counts: this.#c, entries, retired: false };
    m.sources.push(this.#source);
    this.#requests = m.requests;
    this.#responses = m.responses;
    this.#duration = m.duration;
    this.#probeFailures = m.probeFailures;
    this.#broken = m.broken;
    this.#rejects = m.rejects;
    this.#connHits = m.connHits;
    this.#connMisses = m.connMisses;
  }

  /** The forwarder is closed: its cache series count on (from a successor of the same labels), its entries are 0. */
  retire(): void {
    this.#source.retired = true;
    this.#source.entries = () => 0;
  }

  /** Declares an upstream's series at zero. */
  upstream(to: string): void {
    this.#requests.inc({ to }, 0);
    this.#probeFailures.inc({ proxy_name: 'forward', to }, 0);
  }

  /** Declares the connection series of an upstream whose connections are kept open (TLS or TCP only) at zero. */
  pooledUpstream(to: string, proto: 'tcp-tls' | 'tcp'): void {
    this.#connHits.inc({ proxy_name: 'forward', to, proto }, 0);
    this.#connMisses.inc({ proxy_name: 'forward', to, proto }, 0);
  }

  /** A query to such an upstream went on a connection already open (`reused`) or opened a new one. */
  dialed(to: string, proto: 'tcp-tls' | 'tcp', reused: boolean): void {
    (reused ? this.#connHits : this.#connMisses).inc({ proxy_name: 'forward', to, proto });
  }

  /** A query looked up in the cache. */
  cacheRequest(): void {
    this.#c.requests++;
  }

  /** A fresh entry of `type` answered. */
  hit(type: CacheType): void {
    this.#c.hits[type]++;
  }

  /** No fresh entry: the query goes upstream. */
  miss(): void {
    this.#c.misses++;
  }

  /** A popular entry is refreshed ahead of expiry. */
  prefetch(): void {
    this.#c.prefetches++;
  }

  /** An expired entry answered because no upstream did. */
  servedStale(): void {
    this.#c.stale++;
  }

  /** An entry of `type` pushed out to make room. */
  evicted(type: CacheType): void {
    this.#c.evictions[type]++;
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

  /** A health probe of `to` failed. */
  probeFailed(to: string): void {
    this.#probeFailures.inc({ proxy_name: 'forward', to });
  }

  /** Every upstream is down. */
  allDown(): void {
    this.#broken.inc();
  }

  /** A query answered REFUSED (or stale) at once because maxConcurrent upstream resolutions were already under way. */
  rejected(): void {
    this.#rejects.inc();
  }
}

// Counters and histograms for paths taken ~100k times a second (the DNS server's queries, the ingress's requests):
// the caller keeps a child per label set and bumps plain numbers in it; prom-client renders them at scrape time. A
// labelled prom-client metric hashes its label object on every call, which costs more than the rest of the
// bookkeeping of a request.
import type { Registry } from 'prom-client';

/** A histogram's counts without labels: one count per bucket (not cumulative), a sum and a total. */
export class Histo {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

/** One sample as prom-client's registry renders it. */
export interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric that prom-client's Registry renders: it calls get() at scrape time. */
interface ScrapedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
}

/** Registers a metric whose samples `values` gives at scrape time; `reset` is what the registry's resetMetrics() calls. */
export function registerScraped(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[], reset: () => void): void {
  const metric: ScrapedMetric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }), reset };
  registry.registerMetric(metric as never);
}

/** The samples of one histogram: cumulative buckets, +Inf, sum and count. */
export function histogramSamples(name: string, h: Histo, bounds: readonly number[], labels: Record<string, string>): Sample[] {
  const out: Sample[] = [];
  let acc = 0;
  bounds.forEach((le, i) => {
    acc += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: acc });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

/** A labelled counter: `child(values)` once per label set (cache it), then `child.value++`. */
export class FastCounter {
  readonly #labelNames: readonly string[];
  readonly #children = new Map<string, { labels: Record<string, string>; value: number }>();
  #generation = 0;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    this.#labelNames = labelNames;
    registerScraped(registry, name, help, 'counter', () => [...this.#children.values()].map((c) => ({ labels: c.labels, value: c.value })), () => {
      this.#children.clear();
      this.#generation++;
    });
  }

  /** How many times the registry reset this metric: children taken before a reset count nowhere. */
  get generation(): number {
    return this.#generation;
  }

  /** The child of these label values (in labelNames' order), made on first use. */
  child(values: readonly string[]): { value: number } {
    const key = values.join('\0');
    let c = this.#children.get(key);
    if (c === undefined) this.#children.set(key, (c = { labels: labelsOf(this.#labelNames, values), value: 0 }));
    return c;
  }
}

/** A labelled histogram: `child(values)` once per label set (cache it), then `child.observe(v)`. */
export class FastHistogram {
  readonly #labelNames: readonly string[];
  readonly #bounds: readonly number[];
  readonly #children = new Map<string, { labels: Record<string, string>; histo: Histo }>();
  #generation = 0;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    this.#labelNames = labelNames;
    this.#bounds = bounds;
    registerScraped(registry, name, help, 'histogram', () => [...this.#children.values()].flatMap((c) => histogramSamples(name, c.histo, bounds, c.labels)), () => {
      this.#children.clear();
      this.#generation++;
    });
  }

  /** How many times the registry reset this metric: children taken before a reset count nowhere. */
  get generation(): number {
    return this.#generation;
  }

  /** The child of these label values (in labelNames' order), made on first use. */
  child(values: readonly string[]): Histo {
    const key = values.join('\0');
    let c = this.#children.get(key);
    if (c === undefined) this.#children.set(key, (c = { labels: labelsOf(this.#labelNames, values), histo: new Histo(this.#bounds) }));
    return c.histo;
  }
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((n, i) => (labels[n] = values[i] ?? ''));
  return labels;
}

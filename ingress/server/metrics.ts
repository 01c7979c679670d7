// The gateway's metrics, under ingress-nginx's names and meanings so that its dashboards and alerts keep working.
// The three counted on every request are fast-metrics children (runtime/fast-metrics.ts), cached per route, status,
// method and canary (series()).
import { createHash } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastCounter, FastHistogram, type Histo } from '../../runtime/fast-metrics.ts';

const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Request and response sizes in bytes: ingress-nginx's --size-buckets default (10 to 10 MB, by tens). */
const sizeBuckets = [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];

/** The series a finished request is counted in, all with the same label values. */
export interface RequestSeries {
  readonly duration: Histo;
  readonly count: { value: number };
  /** Made when a request of these labels first has an upstream time: a series exists only once it counted one. */
  upstream: Histo | null;
  /** Made when a request of these labels first has its sizes (HTTP/1: read off its connection's byte counts). */
  sizes: { request: Histo; response: Histo } | null;
  readonly values: readonly string[];
}

/** Metrics of the ingress gateway. */
export class GatewayMetrics {
  /** Labels: ingress, namespace, service, status, method, canary. */
  readonly requests: FastCounter;
  /** Labels: ingress, namespace, service, status, method, canary (as ingress-nginx's requestTags). */
  readonly requestDuration: FastHistogram;
  readonly upstreamDuration: FastHistogram;
  readonly configReloads: Counter<'result'>;
  /** ingress-nginx's reload counters: route table updates with every Ingress served as written, and the others. */
  readonly reloadSuccess: Counter;
  readonly reloadErrors: Counter;
  /** ingress-nginx's admission check counters, by the Ingress checked: allowed and refused. */
  readonly checkSuccess: Counter<'namespace' | 'ingress'>;
  readonly checkErrors: Counter<'namespace' | 'ingress'>;
  readonly requestSize: FastHistogram;
  readonly responseSize: FastHistogram;
  readonly configLastSuccessful: Gauge;
  /** ingress-nginx's hash of the running configuration: here of the served Ingress versions (servedHash). */
  readonly configHash: Gauge;
  readonly configLastTimestamp: Gauge;
  readonly ingressProblems: Gauge<'namespace' | 'ingress' | 'served'>;
  readonly rejected: Counter<'reason'>;
  readonly connections: Gauge<'state'>;
  readonly defaultCertificateProblem: Gauge;
  readonly mirrored: Counter<'namespace' | 'ingress' | 'outcome'>;
  // A request's series by its route (requests refused before routing apart) and by status, method and canary, which
  // with the route make its label values: a request builds and hashes no label strings (in a loop, 25 ns per request
  // against 470 looking up each child by its label values). A route table compiles new routes, so a replaced route
  // takes its entries with it.
  #byRoute = new WeakMap<object, Map<number, RequestSeries>>();
  #unrouted = new Map<number, RequestSeries>();
  readonly #methodCodes = new Map<string, number>();
  #generation = 0;

  constructor(registry: Registry) {
    const registers = [registry];
    const labels = ['ingress', 'namespace', 'service', 'status', 'method', 'canary'];
    this.requests = new FastCounter(registry, 'nginx_ingress_controller_requests', 'Requests answered, by Ingress, Service, status and method (ingress-nginx meaning).', labels);
    this.requestDuration = new FastHistogram(
      registry,
      'nginx_ingress_controller_request_duration_seconds',
      'Time from the first byte of the request to the last byte of the response sent (ingress-nginx meaning).',
      labels,
      buckets,
    );
    this.upstreamDuration = new FastHistogram(
      registry,
      'nginx_ingress_controller_response_duration_seconds',
      'Time the upstream took to answer: from sending the request to the last byte of its response (ingress-nginx upstream_response_time).',
      labels,
      buckets,
    );
    this.requestSize = new FastHistogram(registry, 'nginx_ingress_controller_request_size', 'Bytes of the request as received: request line, header and body (ingress-nginx meaning; HTTP/1 only).', labels, sizeBuckets);
    this.responseSize = new FastHistogram(registry, 'nginx_ingress_controller_response_size', 'Bytes of the response as sent: status line, header and body (ingress-nginx meaning; HTTP/1 only).', labels, sizeBuckets);
    this.reloadSuccess = new Counter({ name: 'nginx_ingress_controller_success', help: 'Route table updates that served every Ingress as written (ingress-nginx meaning: reload operations).', registers });
    this.reloadErrors = new Counter({ name: 'nginx_ingress_controller_errors', help: 'Route table updates that left some Ingress not served as written (ingress-nginx meaning: errors during reload operations).', registers });
    this.checkSuccess = new Counter({ name: 'nginx_ingress_controller_check_success', help: 'Ingress writes the admission webhook allowed (ingress-nginx meaning: syntax check operations).', labelNames: ['namespace', 'ingress'], registers });
    this.checkErrors = new Counter({ name: 'nginx_ingress_controller_check_errors', help: 'Ingress writes the admission webhook refused (ingress-nginx meaning: errors during syntax check operations).', labelNames: ['namespace', 'ingress'], registers });
    registerProcessMetrics(registry);
    this.configReloads = new Counter({
      name: 'netplane_ingress_config_updates_total',
      help: 'Route table updates, by result: ok, or problems when some Ingress could not be served as written.',
      labelNames: ['result'],
      registers,
    });
    this.configLastSuccessful = new Gauge({
      name: 'nginx_ingress_controller_config_last_reload_successful',
      help: '1 when the last route table update served every Ingress as written, else 0 (ingress-nginx meaning).',
      registers,
    });
    this.configHash = new Gauge({
      name: 'nginx_ingress_controller_config_hash',
      help: 'A hash of the Ingress versions the route table serves (ingress-nginx meaning: of the running configuration): replicas that serve the same show the same value.',
      registers,
    });
    this.configLastTimestamp = new Gauge({
      name: 'nginx_ingress_controller_config_last_reload_successful_timestamp_seconds',
      help: 'When the route table was last updated with every Ingress served as written.',
      registers,
    });
    this.ingressProblems = new Gauge({
      name: 'netplane_ingress_problems',
      help: 'Ingresses not served as written (served="last-good" when an earlier version is served instead, "partly" when all but the part named in the log is served, "no" when not at all).',
      labelNames: ['namespace', 'ingress', 'served'],
      registers,
    });
    this.rejected = new Counter({
      name: 'netplane_ingress_rejected_total',
      help: 'Requests and connections refused before routing, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.connections = new Gauge({
      name: 'nginx_ingress_controller_nginx_process_connections',
      help: 'Client connections, by state (ingress-nginx meaning: active).',
      labelNames: ['state'],
      registers,
    });
    this.defaultCertificateProblem = new Gauge({
      name: 'netplane_ingress_default_certificate_problem',
      help: '1 while the --default-certificate files or Secret hold a pair that cannot be served, or the Secret is missing (the one served before is kept), else 0.',
      registers,
    });
    this.mirrored = new Counter({
      name: 'netplane_ingress_mirror_requests_total',
      help: 'Requests of routes with mirror-target, by what became of their copy: sent (the mirror answered, whatever its status), dropped (not copied: --mirror-max-in-flight copies of the route were under way), failed (not connected, reset, timed out, or its copy of the body given up).',
      labelNames: ['namespace', 'ingress', 'outcome'],
      registers,
    });
  }

  /**
   * The series of a finished request: its route (undefined: refused before routing), status, method label and
   * whether it went to the canary; `labels` gives the label values the first time this combination is seen.
   */
  series(route: object | undefined, status: number, method: string, canary: boolean, labels: () => string[]): RequestSeries {
    const generation = this.requests.generation + this.requestDuration.generation + this.upstreamDuration.generation + this.requestSize.generation + this.responseSize.generation;
    if (generation !== this.#generation) {
      this.#generation = generation;
      this.#byRoute = new WeakMap();
      this.#unrouted = new Map();
    }
    let byKey = route === undefined ? this.#unrouted : this.#byRoute.get(route);
    if (byKey === undefined) this.#byRoute.set(route!, (byKey = new Map()));
    let code = this.#methodCodes.get(method);
    if (code === undefined) this.#methodCodes.set(method, (code = this.#methodCodes.size));
    const key = (status * 256 + code) * 2 + (canary ? 1 : 0);
    let s = byKey.get(key);
    if (s === undefined) {
      const values = labels();
      s = { duration: this.requestDuration.child(values), count: this.requests.child(values), upstream: null, sizes: null, values };
      byKey.set(key, s);
    }
    return s;
  }

  /** Counts the sizes of a request of `series`, in bytes. */
  observeSizes(series: RequestSeries, request: number, response: number): void {
    const sizes = (series.sizes ??= { request: this.requestSize.child(series.values), response: this.responseSize.child(series.values) });
    sizes.request.observe(request);
    sizes.response.observe(response);
  }

  /** Counts the upstream time of a request of `series`. */
  observeUpstream(series: RequestSeries, seconds: number): void {
    (series.upstream ??= this.upstreamDuration.child(series.values)).observe(seconds);
  }
}

/** Gauges of the clients the limits of all Ingresses track (read from `budget` at scrape time). */
export function registerLimitMetrics(registry: Registry, budget: { readonly size: number; readonly evictions: number }): void {
  new Gauge({
    name: 'netplane_ingress_limit_clients',
    help: 'Client addresses tracked by the limits of all Ingresses (limit-rps, limit-rpm, limit-connections): at most --max-tracked-clients, plus those with requests in flight.',
    registers: [registry],
    collect() {
      this.set(budget.size);
    },
  });
  new Counter({
    name: 'netplane_ingress_limit_client_evictions_total',
    help: 'Clients the limits forgot, least recently used first, to stay within --max-tracked-clients or the 100,000 per Ingress; a forgotten client starts afresh, so it gets through sooner, never later.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(budget.evictions);
    },
  });
}

/**
 * ingress-nginx's gauges of its nginx processes, for this process (read at scrape time): the dashboards' memory and
 * CPU panels read these names.
 */
function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  const started = Math.round(Date.now() / 1000 - process.uptime());
  new Gauge({ name: 'nginx_ingress_controller_nginx_process_num_procs', help: 'Processes serving (ingress-nginx meaning; this one).', registers, collect() { this.set(1); } });
  new Gauge({ name: 'nginx_ingress_controller_nginx_process_resident_memory_bytes', help: 'Resident memory of the gateway process (ingress-nginx meaning: of the nginx processes).', registers, collect() { this.set(process.memoryUsage.rss()); } });
  new Gauge({ name: 'nginx_ingress_controller_nginx_process_oldest_start_time_seconds', help: 'When the gateway process started, in seconds since 1970 (ingress-nginx meaning).', registers, collect() { this.set(started); } });
  new Counter({
    name: 'nginx_ingress_controller_nginx_process_cpu_seconds_total',
    help: 'CPU time of the gateway process, user and system (ingress-nginx meaning: of the nginx processes).',
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
}

/**
 * ingress-nginx's certificate expiry gauge: for each TLS host served its Secret's certificate, when that runs out
 * (seconds since 1970), read at scrape time; `namespace` and `class` are the gateway's own, as ingress-nginx labels them.
 */
export function registerCertificateExpiry(registry: Registry, hosts: () => Iterable<[host: string, notAfter: Date]>, labels: { namespace: string; class: string }): void {
  new Gauge({
    name: 'nginx_ingress_controller_ssl_expire_time_seconds',
    help: 'When the certificate served for a TLS host runs out, in seconds since 1970 (ingress-nginx meaning; hosts served the default certificate are left out).',
    labelNames: ['namespace', 'class', 'host'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [host, notAfter] of hosts()) this.set({ ...labels, host }, Math.floor(notAfter.getTime() / 1000));
    },
  });
}

/** Each served Ingress version's own hash, made once per version (a change makes a new object). */
const versionHashes = new WeakMap<object, number>();
/** 2^48: the hashes are whole numbers below it, which a float64 sample holds exactly. */
const hashSpace = 2 ** 48;

/**
 * The hash of a set of served Ingress versions, whatever their order: the sum, modulo 2^48, of each version's
 * SHA-256 (its first 48 bits) over its JSON, namespace and name included. Only versions not seen before are
 * hashed, so a compile pays for what changed.
 */
export function servedHash(served: Iterable<object>): number {
  let sum = 0;
  for (const ingress of served) {
    let h = versionHashes.get(ingress);
    if (h === undefined) {
      h = createHash('sha256').update(JSON.stringify(ingress)).digest().readUIntBE(0, 6);
      versionHashes.set(ingress, h);
    }
    sum = (sum + h) % hashSpace;
  }
  return sum;
}

/**
 * ingress-nginx's constant labels, on every series of the gateway's registry when it runs in a pod ($POD_NAME and
 * $POD_NAMESPACE, from the downward API, as the chart and deploy/ set them), so that the selectors of its dashboards
 * (controller pod, class and namespace) have values; nothing outside a pod.
 */
export function controllerLabels(env: NodeJS.ProcessEnv, controllerClass: string): Record<string, string> | undefined {
  const pod = env.POD_NAME;
  const namespace = env.POD_NAMESPACE;
  if (!pod || !namespace) return undefined;
  return { controller_namespace: namespace, controller_class: controllerClass, controller_pod: pod };
}

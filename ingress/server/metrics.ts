// The gateway's metrics, under ingress-nginx's names and meanings so that its dashboards and alerts keep working.
// The three counted on every request are fast-metrics children (runtime/fast-metrics.ts), cached per label set.
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../runtime/fast-metrics.ts';

const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Metrics of the ingress gateway. */
export class GatewayMetrics {
  /** Labels: ingress, namespace, service, status, method, canary. */
  readonly requests: FastCounter;
  /** Labels: ingress, namespace, service, status, method, canary (as ingress-nginx's requestTags). */
  readonly requestDuration: FastHistogram;
  readonly upstreamDuration: FastHistogram;
  readonly configReloads: Counter<'result'>;
  readonly configLastSuccessful: Gauge;
  readonly configLastTimestamp: Gauge;
  readonly ingressProblems: Gauge<'namespace' | 'ingress' | 'served'>;
  readonly rejected: Counter<'reason'>;
  readonly connections: Gauge<'state'>;
  readonly defaultCertificateProblem: Gauge;
  readonly mirrored: Counter<'namespace' | 'ingress' | 'outcome'>;

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
      help: '1 while the --default-certificate files hold a pair that cannot be served (the one served before is kept), else 0.',
      registers,
    });
    this.mirrored = new Counter({
      name: 'netplane_ingress_mirror_requests_total',
      help: 'Requests of routes with mirror-target, by what became of their copy: sent (the mirror answered, whatever its status), dropped (not copied: --mirror-max-in-flight copies of the route were under way), failed (not connected, reset, timed out, or its copy of the body given up).',
      labelNames: ['namespace', 'ingress', 'outcome'],
      registers,
    });
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

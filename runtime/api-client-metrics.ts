// client-go's request metrics for the Kubernetes API requests a component makes (its lists and watches, and its
// writes: Ingress status, Leases, Node status), under client-go's names so that the dashboards written for
// kube-proxy, CoreDNS and Flannel ("Kube API Request Rate", "GET/POST Request Latency") read them. They are heard on
// undici's diagnostics channels, which every request of @kubernetes/client-node passes (it speaks through undici),
// and only those to the API server's origin count: the ingress's own requests to its backends do not.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Histogram, type Registry } from 'prom-client';

/** client-go's buckets for rest_client_request_duration_seconds. */
const buckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

interface UndiciRequest {
  origin?: unknown;
  method?: string;
}

/**
 * Counts the requests to `server` (the kubeconfig's API server URL) in `registry`: rest_client_requests_total{code,
 * method,host} (code `<error>` when no answer came) and rest_client_request_duration_seconds{verb,host}, the time to
 * the response's head (a watch's: until it is open). Returns a function that stops listening.
 */
export function registerApiClientMetrics(registry: Registry, server: string): () => void {
  const url = new URL(server);
  const { origin, host } = url;
  const registers = [registry];
  const requests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Requests to the Kubernetes API server, by HTTP status code (<error> without an answer), method and host (client-go meaning).',
    labelNames: ['code', 'method', 'host'],
    registers,
  });
  const duration = new Histogram({
    name: 'rest_client_request_duration_seconds',
    help: "Time from a request to the Kubernetes API server to its response's head, by verb and host (client-go meaning).",
    labelNames: ['verb', 'host'],
    buckets,
    registers,
  });
  const started = new WeakMap<object, number>();
  const onCreate = (message: unknown) => {
    const { request } = message as { request: UndiciRequest };
    if (String(request.origin).replace(/\/$/, '') === origin) started.set(request, performance.now());
  };
  const onHeaders = (message: unknown) => {
    const { request, response } = message as { request: UndiciRequest; response: { statusCode: number } };
    const at = started.get(request);
    if (at === undefined) return;
    started.delete(request);
    const method = request.method ?? '';
    requests.inc({ code: String(response.statusCode), method, host });
    duration.observe({ verb: method, host }, (performance.now() - at) / 1000);
  };
  const onError = (message: unknown) => {
    const { request } = message as { request: UndiciRequest };
    if (!started.has(request)) return;
    started.delete(request);
    requests.inc({ code: '<error>', method: request.method ?? '', host });
  };
  subscribe('undici:request:create', onCreate);
  subscribe('undici:request:headers', onHeaders);
  subscribe('undici:request:error', onError);
  return () => {
    unsubscribe('undici:request:create', onCreate);
    unsubscribe('undici:request:headers', onHeaders);
    unsubscribe('undici:request:error', onError);
  };
}

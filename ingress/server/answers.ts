// Answers the pipeline builds for the steps in steps.ts: the sign-in redirect of external auth (auth-signin) and the
// custom error page of an upstream status (custom-http-errors).
import type { IngressPolicy } from '../routes/types.ts';
import { signinUrl } from '../routes/variables.ts';
import { writeErrorStatus } from '../upstream/forward.ts';
import type { HeaderValue } from '../upstream/headers.ts';
import type { Exchange, GatewayState } from './steps.ts';

/**
 * The sign-in URL for this request: the variables filled in (routes/variables.ts: the route's host, the request's
 * scheme and URI) and, as ingress-nginx does, `rd=` (where to come back) added when the URL has none.
 */
export function signinLocation(template: string, x: Pick<Exchange, 'proto' | 'host' | 'path' | 'query'> & Partial<Pick<Exchange, 'hostHeader' | 'route'>>, param?: string): string {
  return signinUrl(template, x, param);
}

/**
 * custom-http-errors: the upstream answered one of the listed statuses, and nothing of it was sent. The Ingress's
 * default-backend answers instead, asked for `/` and the request's query with ingress-nginx's headers (X-Code,
 * X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, X-Request-ID); without one,
 * the controller's default backend (--default-backend-service, ingress-nginx's upstream-default-backend, which its
 * error locations use unless the Ingress names another) while it has a ready endpoint; else the gateway's own page.
 * None carries the auth service's cookies: nginx's error_page goes to another location, where the route's
 * `add_header Set-Cookie` does not apply.
 */
export async function customError(x: Exchange, s: GatewayState, p: IngressPolicy, headers: Record<string, HeaderValue>): Promise<void> {
  const status = x.upstream!.status;
  const r = x.route!;
  const fallback = s.table.defaultBackend;
  // Without a ready endpoint ingress-nginx's default server answers 404 for any status; the gateway's own page keeps it.
  const eb = p.errorBackend ?? (fallback !== undefined && s.upstreams.endpoints(fallback.key).length > 0 ? fallback : undefined);
  if (eb === undefined) {
    writeErrorStatus(x.res, status, undefined);
    return;
  }
  const accept = x.req.headers.accept;
  // The error location sets Host to the client's ($best_http_host): upstream-vhost is the route's, not the page's.
  const sent = { ...headers };
  delete sent.host;
  x.upstream = await s.upstreams.forward(x.req, x.res, {
    backend: eb.key,
    policy: p,
    // ingress-nginx's error location asks for `/` (`rewrite (.*) / break`, which keeps the query); the request's
    // own target goes in X-Original-URI, as received ($request_uri, already among the forwarded headers). A bare `?`
    // is no query: nginx's empty $args.
    path: x.query.length > 1 ? `/${x.query}` : '/',
    method: x.req.method === 'HEAD' ? 'HEAD' : 'GET',
    noBody: true,
    headers: {
      ...sent,
      'x-code': String(status),
      // ingress-nginx sets `X-Format $http_accept`: nginx sends no header whose value is empty, and a client's own
      // X-Format is replaced (an empty list sends none).
      'x-format': typeof accept === 'string' && accept !== '' ? accept : [],
      'x-namespace': r.namespace,
      'x-ingress-name': r.ingress.slice(r.namespace.length + 1),
      'x-service-name': x.backend!.service,
      'x-service-port': String(x.backend!.port),
    },
  });
}

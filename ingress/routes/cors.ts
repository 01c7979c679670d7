// CORS as ingress-nginx's `enable-cors` annotations configure it: which origins, methods and headers, credentials
// and the preflight's lifetime, with ingress-nginx's defaults. The headers a request gets are computed here from
// its Origin; a preflight (OPTIONS with an Origin) is answered by the gateway itself.
import { httpToken, invalid, type AnnotationReader } from './annotations.ts';
import type { CorsPolicy } from './types.ts';

/** ingress-nginx's defaults. */
export const corsDefaults = {
  methods: 'GET, PUT, POST, DELETE, PATCH, OPTIONS',
  headers: 'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization',
  maxAgeSeconds: 1_728_000,
};

// `*`, or an origin: scheme, host (a leading `*.` matches one or more labels, as ingress-nginx allows) and port.
const originPattern = /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;

/** The CORS policy of an Ingress's annotations, or undefined when `enable-cors` is not true. */
export function readCors(a: AnnotationReader): CorsPolicy | undefined {
  // Settings without enable-cors do nothing, in ingress-nginx too.
  if (!a.bool('enable-cors', false)) return undefined;
  const token = { test: (s: string) => httpToken.test(s), allowed: httpToken.allowed };
  const origins = a.list('cors-allow-origin', { test: (s) => s === '*' || originPattern.test(s.toLowerCase()), allowed: '"*" or origins such as https://app.example.com, https://*.example.com:8443' }) ?? ['*'];
  if (origins.length === 0) throw invalid(a.get('cors-allow-origin')!, 'allowed is "*" or a comma-separated list of origins, not empty');
  const methods = a.list('cors-allow-methods', token);
  const headers = a.list('cors-allow-headers', token);
  const expose = a.list('cors-expose-headers', { test: (s) => s === '*' || httpToken.test(s), allowed: httpToken.allowed });
  return {
    origins: origins.includes('*') ? ['*'] : origins.map((o) => o.toLowerCase()),
    methods: methods?.join(', ') ?? corsDefaults.methods,
    headers: headers?.join(', ') ?? corsDefaults.headers,
    ...(expose && expose.length > 0 ? { expose: expose.join(', ') } : {}),
    credentials: a.bool('cors-allow-credentials', true),
    maxAgeSeconds: a.int('cors-max-age', 0, 2 ** 31 - 1) ?? corsDefaults.maxAgeSeconds,
  };
}

/** Whether `origin` (as the browser sent it) is one the policy allows. */
function allowedOrigin(p: CorsPolicy, origin: string): boolean {
  if (p.origins[0] === '*') return true;
  const o = origin.toLowerCase();
  for (const allowed of p.origins) {
    if (allowed === o) return true;
    const star = allowed.indexOf('://*.');
    if (star < 0) continue;
    // https://*.example.com:8443 matches https://a.example.com:8443 and https://a.b.example.com:8443.
    const scheme = allowed.slice(0, star + 3);
    const rest = allowed.slice(star + 4);
    if (o.startsWith(scheme) && o.endsWith(rest) && o.length > scheme.length + rest.length && !o.slice(scheme.length, o.length - rest.length).includes(':')) return true;
  }
  return false;
}

/**
 * Whether the policy's answers depend on the request's Origin (a list of origins, not `*`): then every response of
 * the route, with CORS headers or without, says `Vary: Origin`, so that a cache never hands one origin's answer (or
 * the answer to a request without Origin) to another (Fetch standard, "CORS protocol and HTTP caches").
 */
export function corsVaries(p: CorsPolicy): boolean {
  return p.origins[0] !== '*';
}

/**
 * The CORS response headers for a request from `origin`; undefined when it sent none or one not allowed (then no
 * CORS header is added and the browser refuses, as it should). With `*`, credentials are never allowed: browsers
 * ignore `*` for requests with credentials, and echoing any origin with credentials would hand them to every site.
 * `Vary` is not among them: it is added to the response's own (corsVaries).
 */
export function corsHeaders(p: CorsPolicy, origin: string | undefined, preflight: boolean): Record<string, string> | undefined {
  if (origin === undefined || !allowedOrigin(p, origin)) return undefined;
  const any = p.origins[0] === '*';
  const h: Record<string, string> = { 'access-control-allow-origin': any ? '*' : origin };
  if (p.credentials && !any) h['access-control-allow-credentials'] = 'true';
  if (p.expose !== undefined) h['access-control-expose-headers'] = p.expose;
  if (preflight) {
    h['access-control-allow-methods'] = p.methods;
    h['access-control-allow-headers'] = p.headers;
    h['access-control-max-age'] = String(p.maxAgeSeconds);
  }
  return h;
}

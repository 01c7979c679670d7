// The request pipeline: a readonly list of named steps, each deciding to answer the request itself ('done') or
// to pass it on ('next'). The last step forwards upstream. Each step is exported and tested alone.
import type { TrustedProxies } from '../limits/client-ip.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Authenticators } from '../auth/authenticators.ts';
import { AddressSet } from '../limits/client-ip.ts';
import type { RateLimiters } from '../limits/rate.ts';
import { routesToCanary } from '../routes/canary.ts';
import { hashKeyOf } from '../routes/hash-key.ts';
import { upstreamPath } from '../routes/rewrite.ts';
import { hostRedirectUrl, redirectUrl } from '../routes/variables.ts';
import { judgeClientCertificate } from '../tls/client-auth.ts';
import { customError, signinLocation } from './answers.ts';
import { customHeaders } from './custom-headers.ts';
import { cors } from './cors.ts';
import type { BackendRef, IngressPolicy, Route, RouteTable } from '../routes/types.ts';
import type { CookieScope } from '../upstream/affinity.ts';
import { lingerAfterRefusal } from '../upstream/request-body.ts';
import { writeGrpcFailure, type GrpcSink } from '../upstream/grpc.ts';
import type { ForwardResult, ForwardTarget, Upstreams } from '../upstream/upstreams.ts';
import type { Mirrors } from '../upstream/mirror.ts';
import { forwardMirrored } from './mirror.ts';
import type { AuthCookies } from '../upstream/forward.ts';
import type { HeaderValue } from '../upstream/headers.ts';
import { absoluteTarget, forwardedHeaders, forwardedProto, requestHost, requestId, requestPath } from './request.ts';

/** One request as it passes through the steps. */
export interface Exchange {
  req: IncomingMessage | Http2ServerRequest;
  res: ServerResponse | Http2ServerResponse;
  proto: 'http' | 'https';
  /** The port the client reached the request's listener on (its public port, else its own): X-Forwarded-Port. */
  port: number;
  clientIP: string;
  /** The socket's peer address. */
  peer: string;
  /** The socket's peer is a trusted proxy (its X-Forwarded-* headers are believed). */
  trustedPeer: boolean;
  /** Set by `parse`. */
  host: string;
  hostHeader: string;
  /** The path as it goes upstream; `matchPath` is what routes match on (see requestPath). */
  path: string;
  matchPath: string;
  query: string;
  /** Set by `route`. */
  route?: Route;
  /** Set by `chooseBackend`: the backend this request goes to, and whether it is the canary. */
  backend?: BackendRef;
  canary: boolean;
  /** Set when `backend` has no endpoints and the Ingress's default-backend answers instead (see targetBackend). */
  defaultBackend?: BackendRef;
  /** Headers the auth step wants upstream (an empty list: none, and not the client's). */
  authHeaders?: Record<string, HeaderValue>;
  /** The auth service's Set-Cookie headers, for the response (auth-url; see authCookiesFor). */
  authCookies?: AuthCookies;
  /** Headers the client-certificate step wants upstream (ssl-client-*). */
  tlsHeaders?: Record<string, string>;
  /** Under `satisfy: any`, the source range let the request in: auth is not asked. */
  sourceGranted?: boolean;
  /** Releases the per-IP concurrency slot, when one was taken. */
  release?: () => void;
  /** The X-Request-Id sent upstream. */
  requestId?: string;
  /** Why a step answered the request itself (for the access log). */
  refused?: string;
  /** The grpc-status a step answered a gRPC request with itself (for the access log). */
  grpcStatus?: number;
  upstream?: ForwardResult;
}

/** What the steps read: the current routes and the shared state that outlives a route table. */
export interface GatewayState {
  table: RouteTable;
  limiters: RateLimiters;
  auth: Authenticators;
  upstreams: Upstreams;
  /**
   * The port clients reach HTTPS on, for redirects (--public-https-port, else the HTTPS listener's; left out of the
   * URL when 443); undefined when there is none, and then nothing is redirected to HTTPS.
   */
  httpsPort?: number | undefined;
  /** The Strict-Transport-Security value for HTTPS responses, when HSTS is on. */
  hsts?: string;
  /** The trusted proxies from the controller ConfigMap (use-forwarded-headers), in place of --trusted-proxies. */
  trusted?: TrustedProxies;
  /** Sends the copies of routes with mirror-target; absent: none is sent. */
  mirrors?: Mirrors;
}

/** A step's verdict. */
export type Verdict = 'next' | 'done';

/** One pipeline step. */
export interface Step {
  name: string;
  run(x: Exchange, s: GatewayState): Verdict | Promise<Verdict>;
}

/** Answers the request with a short plain-text body; `refused` names the reason in the access log. */
export function reply(x: Exchange, status: number, refused: string, headers: Record<string, string | string[]> = {}): Verdict {
  x.refused = refused;
  const body = `${status} ${statusText[status] ?? 'Error'}\n`;
  // Both response kinds take writeHead(status, headers); their overloads just do not unify in the types.
  (x.res as ServerResponse).writeHead(status, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
  x.res.end(body);
  return 'done';
}

const statusText: Record<number, string> = {
  302: 'Found',
  301: 'Moved Permanently',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Request Entity Too Large',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * Reads the method, the host and the path; 405 for TRACE, 400 when any is not usable, when an HTTP/1.1 request has
 * no Host or two (RFC 9112 3.2), or when an HTTP/2 request's Host names another authority than its :authority (RFC
 * 9113 8.3.1). An absolute-form target (`GET http://host/path`) names the host itself (RFC 9112 3.2.2); an HTTP/1.0
 * request without Host is served by the rules without a host.
 */
export const parse: Step = {
  name: 'parse',
  run(x) {
    // As nginx, before anything: TRACE is 405 and never reaches a backend (which could echo back the headers the
    // gateway adds, cross-site tracing); an HTTP/2 method of other than upper-case letters, `_` and `-` is 400
    // (node:http's parser takes only known methods on HTTP/1).
    const method = x.req.method;
    if (method === 'TRACE') return reply(x, 405, 'method');
    if (method === undefined || !methodShape.test(method)) return reply(x, 400, 'bad-request');
    const h = x.req.headers;
    const authority = h[':authority'] as string | undefined;
    let hostHeader = authority ?? h.host;
    if (authority !== undefined ? h.host !== undefined && h.host.toLowerCase() !== authority.toLowerCase() : hostLines(x.req.rawHeaders) > 1) {
      return reply(x, 400, 'bad-request');
    }
    let url = x.req.url;
    const absolute = url !== undefined && url.charCodeAt(0) !== 47 /* / */ ? absoluteTarget(url) : undefined;
    if (absolute) {
      hostHeader = absolute.host;
      url = absolute.target;
    }
    const host = hostHeader === undefined && x.req.httpVersion === '1.0' ? '' : requestHost(hostHeader);
    const target = requestPath(url);
    if (host === undefined || target === undefined) return reply(x, 400, 'bad-request');
    x.host = host;
    x.hostHeader = hostHeader ?? '';
    x.path = target.path;
    x.matchPath = target.matchPath;
    x.query = target.query;
    return 'next';
  },
};

const methodShape = /^[A-Z_-]+$/;

/** How many Host header lines a request has. */
function hostLines(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/**
 * Finds the route; 404 when none matches — after the host's client-certificate check, which nginx makes in the
 * host's server block before any location, so that a client the host refuses does not learn which paths exist.
 * The controller's default backend (--default-backend-service) without a ready endpoint is no route either: as
 * ingress-nginx then sends upstream-default-backend to its own default server, which answers 404.
 */
export const route: Step = {
  name: 'route',
  run(x, s) {
    const r = s.table.match(x.host, x.matchPath);
    if (!r || (r.controllerDefault === true && s.upstreams.endpoints(r.backend.key).length === 0)) {
      if (s.table.clientCert(x.host) !== undefined && clientCertificate.run(x, s) !== 'next') return 'done';
      return reply(x, 404, 'no-route');
    }
    x.route = r;
    return 'next';
  },
};

/**
 * 413 for a declared body (Content-Length) larger than the route's proxy-body-size, before anything else runs (as
 * nginx checks client_max_body_size); a streamed body without a length is counted on its way upstream. On a gRPC
 * route the answer is RESOURCE_EXHAUSTED, as for a streamed body (a gRPC client would read a 413 as UNKNOWN).
 */
export const bodySize: Step = {
  name: 'body-size',
  run(x) {
    const limit = x.route!.policy.maxBodyBytes;
    const length = x.req.headers['content-length'];
    if (limit === 0 || length === undefined || !(Number(length) > limit)) return 'next';
    // The body is not read: an HTTP/1.1 connection closes after the answer, lingering so that the answer is not lost
    // to a TCP reset (request-body.ts). (Node resets an HTTP/2 stream whose unread request outlives its response.)
    if (x.req.httpVersionMajor !== 2) lingerAfterRefusal(x.req as IncomingMessage, x.res as ServerResponse);
    const protocol = x.route!.backend?.upstream?.protocol;
    if (protocol === 'GRPC' || protocol === 'GRPCS') {
      x.refused = 'body-size';
      x.grpcStatus = writeGrpcFailure(x.res as GrpcSink, x.req.httpVersionMajor === 2, 'BODY_TOO_LARGE');
      return 'done';
    }
    return reply(x, 413, 'body-size');
  },
};

const addressSets = new WeakMap<readonly string[], AddressSet>();

/** The AddressSet of a policy's list, parsed once per list (policies are immutable). */
function addressSet(list: readonly string[]): AddressSet {
  let set = addressSets.get(list);
  if (!set) addressSets.set(list, (set = AddressSet.parse(list)));
  return set;
}

/** Refuses (403) a client outside the route's allowed sources or inside its denied ones, before anything else. */
export const sourceRange: Step = {
  name: 'source-range',
  run(x) {
    const p = x.route!.policy.sourceRange;
    if (!p) return 'next';
    const refused = (p.allow !== undefined && !addressSet(p.allow).has(x.clientIP)) || (p.deny !== undefined && addressSet(p.deny).has(x.clientIP));
    const policy = x.route!.policy;
    // satisfy any: a request the range refuses may still pass auth; one it lets in needs no auth.
    if (policy.satisfyAny === true && policy.auth !== undefined) {
      x.sourceGranted = !refused;
      return 'next';
    }
    if (refused) return reply(x, 403, 'source-range');
    return 'next';
  },
};

/**
 * The route's server-level redirects: app-root for `/`, and the 308 of a from-to-www-redirect name to its Ingress's
 * host (ingress-nginx's default http-redirect-code). ingress-nginx writes both outside the location (an `if` in the
 * server, a server of its own), so they come before the location's CORS preflight answer.
 */
export const routeRedirect: Step = {
  name: 'route-redirect',
  run(x) {
    const p = x.route!.policy;
    if (p.redirectToHost !== undefined) return reply(x, 308, 'from-to-www-redirect', { location: hostRedirectUrl(p.redirectToHost, { ...x, proto: clientProto(x) }) });
    if (p.appRoot !== undefined && x.path === '/') return reply(x, 302, 'app-root', { location: `${p.appRoot}${x.query}` });
    return 'next';
  },
};

/**
 * permanent-redirect / temporal-redirect: every request answered with the redirect. After `cors`, as ingress-nginx's
 * template writes the location's `return <code> <url>` after its CORS block: a preflight gets its 204, and the
 * redirect carries the CORS headers. Before the HTTPS redirect (`redirect`), which ingress-nginx makes in Lua after
 * the location's `return`s.
 */
export const annotationRedirect: Step = {
  name: 'annotation-redirect',
  run(x) {
    const p = x.route!.policy;
    if (p.redirect !== undefined) return reply(x, p.redirect.status, 'redirect', { location: redirectUrl(p.redirect.url, { ...x, proto: clientProto(x) }) });
    return 'next';
  },
};

/** The scheme the client used: the connection's, or what a trusted proxy in front says (X-Forwarded-Proto). */
export const clientProto = (x: Exchange): 'http' | 'https' => forwardedProto({ trustedPeer: x.trustedPeer, incomingProto: x.req.headers['x-forwarded-proto'] }) ?? x.proto;

/**
 * The rule paths never sent to HTTPS, ingress-nginx's default `no-tls-redirect-locations`: an ACME HTTP-01 challenge
 * (cert-manager's solver Ingress) is answered over plain HTTP, whatever the host's certificate or redirects.
 */
export const noTlsRedirectLocations: readonly string[] = ['/.well-known/acme-challenge'];

/**
 * Where a plain-HTTP request is sent on HTTPS, for hosts with TLS (or with force-ssl-redirect); undefined when it is
 * not: not over plain HTTP, no HTTPS listener, a trusted proxy in front says it arrived over HTTPS (it terminated
 * TLS, and a redirect would loop), or the rule's path starts with one of noTlsRedirectLocations (ingress-nginx's
 * force_no_ssl_redirect, which wins over force-ssl-redirect).
 */
export function sslRedirectLocation(x: Exchange, s: GatewayState): string | undefined {
  if (x.proto !== 'http' || s.httpsPort === undefined || clientProto(x) === 'https') return undefined;
  if (noTlsRedirectLocations.some((l) => x.route!.path.startsWith(l))) return undefined;
  const p = x.route!.policy;
  if (!p.forceSslRedirect && !(p.sslRedirect && s.table.tls(x.host))) return undefined;
  const port = s.httpsPort === 443 ? '' : `:${s.httpsPort}`;
  // The host is the parsed one (only host characters), never the raw header: nothing the client sent is echoed.
  return `https://${x.host}${port}${x.path}${x.query}`;
}

/**
 * Sends plain-HTTP requests to HTTPS with a 308 (see sslRedirectLocation). After the route's redirects and `cors`, as
 * ingress-nginx makes it in Lua (lua_ingress.rewrite's force_ssl_redirect, a rewrite_by_lua, which nginx runs at the
 * end of the rewrite phase): app-root runs before in the server's rewrite phase, and the location's CORS preflight
 * `return 204` and redirect annotation `return` before in the location's (the rewrite module's). A preflight over
 * plain HTTP is answered, and the redirect carries the CORS headers.
 */
export const redirect: Step = {
  name: 'redirect',
  run(x, s) {
    const location = sslRedirectLocation(x, s);
    return location === undefined ? 'next' : reply(x, 308, 'ssl-redirect', { location });
  },
};

/**
 * For a host guarded by client certificates (auth-tls-secret): 400 without a good one (as ingress-nginx), 421 on a
 * connection whose handshake was made for another name, 503 when the CA Secret is not usable; else passes the
 * verdict upstream in ssl-client-* headers. A routed plain-HTTP request that `redirect` sends to HTTPS is let on to
 * it: it has no certificate to show, and is checked when it comes back over HTTPS.
 */
export const clientCertificate: Step = {
  name: 'client-certificate',
  run(x, s) {
    const policy = s.table.clientCert(x.host);
    if (!policy) return 'next';
    if (x.route !== undefined && sslRedirectLocation(x, s) !== undefined) return 'next';
    const v = judgeClientCertificate(policy, x.proto === 'https' ? (x.req.socket as TLSSocket) : undefined);
    if (!v.allow) {
      // Only a refused certificate goes to the error page; a misdirected connection or a missing CA does not.
      if (v.status === 400 && policy.errorPage !== undefined) return reply(x, 302, `client-certificate: ${v.reason}`, { location: policy.errorPage });
      return reply(x, v.status, `client-certificate: ${v.reason}`);
    }
    x.tlsHeaders = v.headers;
    return 'next';
  },
};

/** Applies the route's per-client-IP limits: 429 with Retry-After over a rate, 429 over the concurrency cap. */
export const limit: Step = {
  name: 'limit',
  run(x, s) {
    const policy = x.route!.policy.rateLimit;
    if (!policy) return 'next';
    if (policy.exempt !== undefined && addressSet(policy.exempt).has(x.clientIP)) return 'next';
    const limiter = s.limiters.get(x.route!.ingress, policy);
    const taken = limiter.take(x.clientIP);
    if (!taken.allowed) return reply(x, 429, 'rate-limit', { 'retry-after': String(taken.retryAfterSeconds) });
    if (policy.connections !== undefined) {
      const release = limiter.acquire(x.clientIP);
      if (!release) return reply(x, 429, 'connection-limit', { 'retry-after': '1' });
      x.release = release;
    }
    return 'next';
  },
};

/**
 * Runs the route's authentication; its refusal (401, 403, or a fail-closed 5xx) goes back to the client. The Set-Cookie
 * of an auth-url service goes on the response as ingress-nginx's add_header puts it: on the sign-in redirect, on the
 * backend's answer of an allowed request (forward.ts authCookiesFor), and with auth-always-set-cookie on a refusal too.
 */
export const authenticate: Step = {
  name: 'authenticate',
  async run(x, s) {
    const policy = x.route!.policy.auth;
    if (!policy || x.sourceGranted === true) return 'next';
    // The auth service gets the X-Request-ID the upstream will (ingress-nginx's $req_id), so their logs meet.
    x.requestId ??= requestId(x.req.headers['x-request-id']);
    const result = await s.auth.get(x.route!.ingress, policy).check({
      requestId: x.requestId,
      method: x.req.method ?? 'GET',
      url: `${x.path}${x.query}`,
      host: x.host,
      routeHost: x.route!.host,
      proto: clientProto(x),
      clientIP: x.clientIP,
      headers: x.req.headers,
      ...(x.tlsHeaders ? { clientCert: x.tlsHeaders } : {}),
    });
    const cookies = result.setCookies !== undefined && policy.type === 'external' ? { values: result.setCookies, always: policy.alwaysSetCookie === true } : undefined;
    if (result.allow) {
      x.authHeaders = result.upstreamHeaders;
      if (cookies !== undefined) x.authCookies = cookies;
      return 'next';
    }
    if (x.res.headersSent || x.res.destroyed) return 'done';
    if (result.status === 401 && policy.type === 'external' && policy.signin !== undefined) {
      // ingress-nginx's sign-in location has its own add_header, and a 302 is a status it takes.
      const location = signinLocation(policy.signin, { ...x, proto: clientProto(x) }, policy.signinParam);
      return reply(x, 302, `auth: ${result.reason}; sent to sign in`, { location, ...(cookies ? { 'set-cookie': [...cookies.values] } : {}) });
    }
    return reply(x, result.status, `auth: ${result.reason}`, cookies?.always === true ? { ...result.headers, 'set-cookie': [...cookies.values] } : result.headers);
  },
};

/** The request target as received, in origin form (an absolute-form target without its scheme and authority). */
function receivedTarget(url: string | undefined): string {
  if (url === undefined || url.charCodeAt(0) === 47 /* / */) return url ?? '/';
  return absoluteTarget(url)?.target ?? url;
}

/** Picks the route's backend or its canary: by header, then by cookie, then by weight (routes/canary.ts). */
export const chooseBackend: Step = {
  name: 'chooseBackend',
  run(x) {
    const r = x.route!;
    const c = r.canary;
    const canary = c !== undefined && routesToCanary(c, x.req.headers);
    x.canary = canary;
    x.backend = canary ? c!.backend : r.backend;
    return 'next';
  },
};

/**
 * Where a routed request goes upstream, for plain requests and upgrades alike: the policy of the chosen backend (a
 * canary's is the primary's but for its load balancing: see canaryPolicy in compile.ts), the rewritten target, and
 * the headers the pipeline adds (forwarded headers, upstream-vhost, x-forwarded-prefix, ssl-client-*, auth).
 */
export function upstreamTarget(x: Exchange): { policy: Route['policy']; path: string; headers: Record<string, HeaderValue>; cookieScope?: CookieScope; hashKey?: string } {
  const r = x.route!;
  const headers = forwardedHeaders({
    clientIP: x.clientIP,
    peer: x.peer,
    trustedPeer: x.trustedPeer,
    incomingFor: x.req.headers['x-forwarded-for'],
    incomingRequestId: x.requestId ?? x.req.headers['x-request-id'],
    incomingProto: x.req.headers['x-forwarded-proto'],
    incomingHost: x.req.headers['x-forwarded-host'],
    incomingPort: x.req.headers['x-forwarded-port'],
    proto: x.proto,
    host: x.hostHeader,
    port: x.port,
    requestUri: receivedTarget(x.req.url),
  });
  x.requestId = headers['x-request-id'];
  const policy = x.canary ? r.canary!.policy : r.policy;
  if (policy.upstreamVhost !== undefined) headers.host = policy.upstreamVhost;
  if (policy.forwardedPrefix !== undefined) headers['x-forwarded-prefix'] = policy.forwardedPrefix;
  if (x.tlsHeaders) Object.assign(headers, x.tlsHeaders);
  if (x.authHeaders) Object.assign(headers, x.authHeaders);
  const path = upstreamPath(r, x.path, x.query);
  // Only a route with cookie affinity sets a cookie, and needs to know where. Affinity comes before upstream-hash-by,
  // as in ingress-nginx (a backend with both is balanced by its sticky cookie).
  if (policy.affinity !== undefined) return { policy, path, headers, cookieScope: { path: r.path, https: clientProto(x) === 'https' } };
  if (policy.upstreamHashBy === undefined) return { policy, path, headers };
  const { clientIP, host, hostHeader, proto, query } = x;
  const facts = { clientIP, host, hostHeader, routeHost: r.host, proto, method: x.req.method ?? 'GET', path: x.path, query, headers: x.req.headers };
  return { policy, path, headers, hashKey: hashKeyOf(policy.upstreamHashBy, facts) };
}

/**
 * The backend a routed request is sent to: the chosen one; or, when that has no endpoint and the Ingress names a
 * default-backend that has one, the default-backend — as ingress-nginx puts the custom default backend in place of a
 * location's upstream that has no active endpoint (controller.go, "so using custom default backend for location"):
 * the whole request goes there as it would have gone to the Service, and its answer is relayed. The usual
 * maintenance page: scale the app to 0 and the default-backend serves the page instead of a 503.
 */
export function targetBackend(x: Exchange, s: GatewayState, p: IngressPolicy): BackendRef {
  const chosen = x.backend!;
  const eb = p.errorBackend;
  if (eb === undefined || s.upstreams.endpoints(chosen.key).length > 0 || s.upstreams.endpoints(eb.key).length === 0) return chosen;
  x.defaultBackend = eb;
  return eb;
}

/** Forwards upstream; the upstream pools answer 502/503/504 themselves when they cannot. */
export const forward: Step = {
  name: 'forward',
  async run(x, s): Promise<Verdict> {
    const { policy: p, path, headers, cookieScope, hashKey } = upstreamTarget(x);
    // The client waits for this before it sends its body (see the checkContinue listeners in gateway.ts).
    const expect = x.req.headers.expect;
    if (expect !== undefined && expect.toLowerCase() === '100-continue') x.res.writeContinue();
    const target: ForwardTarget = {
      backend: targetBackend(x, s, p).key,
      policy: p,
      path,
      headers,
      ...(cookieScope ? { cookieScope } : {}),
      ...(hashKey !== undefined ? { hashKey } : {}),
      ...(x.authCookies ? { authCookies: x.authCookies } : {}),
      ...(p.customErrors ? { intercept: p.customErrors, passUpstreamErrors: p.passUpstreamErrors === true } : {}),
      ...(p.locationRewrite ? { locationRewrite: { from: p.locationRewrite.from, to: redirectUrl(p.locationRewrite.to, { ...x, proto: clientProto(x) }), origin: `${clientProto(x)}://${x.host}` } } : {}),
    };
    x.upstream = p.mirror === undefined ? await s.upstreams.forward(x.req, x.res, target) : await forwardMirrored(x, s, p.mirror, target);
    if (x.upstream.intercepted) await customError(x, s, p, headers);
    return 'done';
  },
};

/** The steps in order. */
export const pipeline: readonly Step[] = [parse, route, customHeaders, bodySize, sourceRange, clientCertificate, routeRedirect, cors, annotationRedirect, redirect, limit, authenticate, chooseBackend, forward];

/**
 * The steps of an upgrade (WebSocket) before it is relayed: those of a request that apply to one — the body size
 * and CORS do not (an upgrade has no body, and browsers send no preflight for it).
 */
export const upgradePipeline: readonly Step[] = [parse, route, customHeaders, sourceRange, clientCertificate, routeRedirect, annotationRedirect, redirect, limit, authenticate, chooseBackend];

/** Runs the steps until one answers. Synchronous steps cost no promise. */
export async function runPipeline(x: Exchange, s: GatewayState, steps: readonly Step[] = pipeline): Promise<void> {
  for (const step of steps) {
    const v = step.run(x, s);
    if ((typeof v === 'string' ? v : await v) === 'done') return;
  }
}

// External auth (ingress-nginx `auth-url`): a bodiless subrequest carrying the client's headers and where the
// request was going; the auth service's status decides. Fails closed: anything but 2xx/401/403 is 500, no answer
// in time is 503. An auth URL with nginx variables (`https://$host/oauth2/auth`) is filled in per request with the
// route's host, never one a client chose (see routes/variables.ts).
import { request, type Dispatcher } from 'undici';
import type { ExternalAuthPolicy } from '../routes/types.ts';
import { expandUrl, type UrlFacts } from '../routes/variables.ts';
import { AuthConfigError, deny, failClosed, type AuthRequest, type AuthResult, type Authenticator } from './types.ts';

// RFC 9110 §7.6.1 connection-specific fields (plus the legacy ones), and fields undici refuses or sets itself.
const dropped = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'content-length',
  'expect',
  'host',
]);

// Set by us; the client's own values of these are never passed on.
const ours = ['x-original-url', 'x-original-method', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'x-auth-request-redirect'];
// Set by us too, unless auth-proxy-set-headers names them (which may: routes/configmap-headers.ts). ingress-nginx
// sets X-Original-URI and X-Scheme only with auth-method, letting the client's through otherwise.
const oursUnlessSet = ['x-original-uri', 'x-scheme', 'x-sent-from', 'x-request-id'];

const tokenPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Builds the Authenticator of an external policy; a URL that is not http(s) makes it fail closed with 503. */
export function externalAuthenticator(policy: ExternalAuthPolicy, dispatcher: Dispatcher): Authenticator {
  let url: URL;
  try {
    // A URL with variables is checked as it would be for a request to a host of the route.
    url = new URL(expandUrl(policy.url, sampleFacts, 'fetched') ?? policy.url);
  } catch {
    return failClosed(new AuthConfigError(`external auth url ${JSON.stringify(policy.url)} is not a URL`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return failClosed(new AuthConfigError(`external auth url ${url.href} is not http(s)`));
  }
  if (!tokenPattern.test(policy.method)) {
    return failClosed(new AuthConfigError(`external auth method ${JSON.stringify(policy.method)} is not an HTTP method`));
  }
  const bad = policy.responseHeaders.filter((h) => !tokenPattern.test(h));
  if (bad.length > 0) {
    return failClosed(new AuthConfigError(`external auth response headers ${JSON.stringify(bad)} are not header names`));
  }
  return new ExternalAuthenticator(url, policy, dispatcher);
}

const sampleFacts: UrlFacts = { proto: 'https', host: 'host.example', route: { host: 'host.example' }, path: '/', query: '' };

/** Asks an auth service about each request. */
export class ExternalAuthenticator implements Authenticator {
  readonly #url: URL;
  /** The auth URL with nginx variables, filled in per request; undefined when it has none. */
  readonly #template: string | undefined;
  readonly #method: string;
  readonly #responseHeaders: readonly string[];
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher;
  readonly #requestRedirect: string | undefined;
  readonly #setHeaders: Readonly<Record<string, string>> | undefined;

  /** `url` is the policy's URL parsed, or one filled in as a sample when it has variables. */
  constructor(url: URL, policy: ExternalAuthPolicy, dispatcher: Dispatcher) {
    this.#url = url;
    this.#template = policy.url.includes('$') ? policy.url : undefined;
    this.#method = policy.method.toUpperCase();
    this.#responseHeaders = policy.responseHeaders;
    this.#timeoutMs = policy.timeoutMs;
    this.#dispatcher = dispatcher;
    this.#requestRedirect = policy.requestRedirect;
    this.#setHeaders = policy.proxySetHeaders;
  }

  async check(req: AuthRequest): Promise<AuthResult> {
    const url = this.#template === undefined ? this.#url : fillIn(this.#template, req);
    if (url === undefined) {
      return deny(503, 'the auth URL names the request\'s host, and the route has no host rule to take it from (a client would choose where the subrequest goes)');
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: this.#method as Dispatcher.HttpMethod,
        headers: subrequestHeaders(req, this.#requestRedirect, this.#setHeaders),
        dispatcher: this.#dispatcher,
        // One deadline for connect, headers and body alike.
        signal: AbortSignal.timeout(this.#timeoutMs),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (e) {
      return deny(503, `auth service ${url.origin} did not answer: ${describe(e)}`);
    }
    // The verdict needs only status and headers; the body is read and dropped so the connection can be reused.
    res.body.dump().catch(() => {});
    const status = res.statusCode;
    const cookies = setCookies(res.headers);
    if (status >= 200 && status < 300) {
      const upstreamHeaders: Record<string, string | string[]> = {};
      // A header the service did not send (or sent empty) goes upstream as none at all, as nginx's proxy_set_header
      // of an empty $authHeader sends none; the client's own value of it never goes either.
      for (const name of this.#responseHeaders) upstreamHeaders[name] = headerValue(res.headers, name) || [];
      return { allow: true, upstreamHeaders, ...cookies };
    }
    if (status === 401 || status === 403) {
      const headers: Record<string, string> = {};
      for (const name of ['www-authenticate', 'location']) {
        const v = headerValue(res.headers, name);
        if (v !== undefined) headers[name] = v;
      }
      return { ...deny(status, `auth service answered ${status}`, headers), ...cookies };
    }
    return { ...deny(500, `auth service answered ${status}`), ...cookies };
  }
}

/** The auth URL for one request; undefined when it needs a host the route cannot vouch for. */
function fillIn(template: string, req: AuthRequest): URL | undefined {
  const q = req.url.indexOf('?');
  const facts: UrlFacts = {
    proto: req.proto,
    host: req.host,
    // Without the route (a caller that does not say), no host is trusted: the subrequest fails closed.
    route: { host: req.routeHost ?? '' },
    path: q < 0 ? req.url : req.url.slice(0, q),
    query: q < 0 ? '' : req.url.slice(q),
  };
  const text = expandUrl(template, facts, 'fetched');
  return text === undefined ? undefined : URL.parse(text) ?? undefined;
}

/**
 * The headers of the subrequest: the client's minus connection-specific ones, plus where the request was going, what
 * the gateway verified of a client certificate, and ingress-nginx's X-Sent-From and X-Request-ID (the upstream's).
 * `setHeaders` (auth-proxy-set-headers, lower-case names) replace the client's of the same name, and an empty one
 * removes it, as nginx's proxy_set_header does.
 */
export function subrequestHeaders(req: AuthRequest, requestRedirect?: string, setHeaders?: Readonly<Record<string, string>>): Record<string, string | string[]> {
  const skip = new Set(dropped);
  for (const name of ours) skip.add(name);
  for (const name of oursUnlessSet) if (name !== 'x-request-id' || req.requestId !== undefined) skip.add(name);
  // Fields named in Connection are connection-specific too (RFC 9110 §7.6.1).
  for (const v of [req.headers.connection ?? []].flat()) {
    for (const token of v.split(',')) skip.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    // ssl-client-* come from the gateway's own check of the client certificate, never from the client.
    if (value === undefined || name.startsWith(':') || skip.has(lower) || lower.startsWith('ssl-client-')) continue;
    out[name] = value;
  }
  for (const [name, value] of Object.entries(setHeaders ?? {})) {
    for (const own of Object.keys(out)) if (own.toLowerCase() === name) delete out[own];
    if (value !== '') out[name] = value;
  }
  if (req.clientCert) Object.assign(out, req.clientCert);
  out['x-original-url'] = `${req.proto}://${req.host}${req.url}`;
  out['x-original-method'] = req.method;
  // What ingress-nginx's auth location sends too, so auth services that look for them find them.
  const fixed: Record<string, string | undefined> = {
    'x-original-uri': req.url,
    'x-scheme': req.proto,
    'x-sent-from': 'nginx-ingress-controller',
    'x-request-id': req.requestId,
  };
  for (const [name, value] of Object.entries(fixed)) if (value !== undefined && setHeaders?.[name] === undefined) out[name] = value;
  out['x-forwarded-for'] = req.clientIP;
  out['x-forwarded-host'] = req.host;
  out['x-forwarded-proto'] = req.proto;
  out['x-real-ip'] = req.clientIP;
  out['x-auth-request-redirect'] = requestRedirect ?? req.url;
  return out;
}

/**
 * The auth service's Set-Cookie headers, each kept whole (ingress-nginx's `$upstream_http_set_cookie`, which nginx
 * 1.22 reads as the first header only and later nginx as all of them joined with ", ", a form clients read as one
 * cookie); none that could not be written back as a header value.
 */
function setCookies(headers: Record<string, string | string[] | undefined>): { setCookies?: string[] } {
  const v = headers['set-cookie'];
  const all = (v === undefined ? [] : [v].flat()).filter((c) => c !== '' && !/[\r\n\0]/.test(c));
  return all.length > 0 ? { setCookies: all } : {};
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? `${e.name} ${code}` : `${e.name}: ${e.message}`;
}

// The IngressPolicy an Ingress's annotations ask for, with its canary settings and the Secrets its auth reads.
// Any value netplane cannot honour throws AnnotationError: the Ingress is then not served as written at all, since
// serving it without (say) its auth or with a different rewrite would be serving something its author did not write.
import { backendKey, dnsName, hostName, ipv4, objectName, portName, serviceName } from './names.ts';
import { AnnotationReader, httpToken, invalid, type Annotation } from './annotations.ts';
import { addressBlock, addressBlockText } from '../limits/client-ip.ts';
import { readCors } from './cors.ts';
import { readHashKey } from './hash-key.ts';
import { readCookieRewrite } from './proxy-cookie.ts';
import { readLocationRewrite } from './proxy-redirect.ts';
import { plainUrl, readUrlTemplate } from './variables.ts';
import { AnnotationError, quote } from './errors.ts';
import { asksPassthrough, sslPassthroughKey } from './unhonoured.ts';
import { readHeaderMap, type ConfigMapLookup } from './configmap-headers.ts';
import { readMirror } from './mirror.ts';
import { readNextUpstream, readNextUpstreamTimeout } from './next-upstream.ts';
import { readUserRegex } from './user-regex.ts';
import type { AuthPolicy, BackendRef, ClientCertPolicy, IngressPolicy, JwtAuthPolicy, ObjectRef, RateLimitPolicy } from './types.ts';

/** Timeouts (and body size) used when an Ingress does not set proxy-connect-timeout / -read-timeout / -send-timeout / proxy-body-size. */
export interface PolicyDefaults {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  /** --proxy-send-timeout; nginx's 60 s when absent. */
  sendTimeoutMs?: number;
  /** --proxy-body-size; ingress-nginx's 1 MiB when absent. */
  maxBodyBytes?: number;
  /**
   * Annotations every Ingress has unless it sets them itself (ingress-nginx's ConfigMap keys that are its annotations'
   * global defaults, checked one by one before they get here: controller-config.ts).
   */
  annotations?: Readonly<Record<string, string>>;
  /** --enable-ssl-passthrough: ssl-passthrough "true" is served (by ingress/edge) instead of refused. */
  sslPassthrough?: boolean;
  /** The ConfigMaps custom-headers and auth-proxy-set-headers name (absent: none is there). */
  configMaps?: ConfigMapLookup;
}

/** The largest upstream-hash-by-subset-size: a subset is that many endpoints, repeated when the Service has fewer. */
export const maxSubsetSize = 1000;

/** ingress-nginx's default proxy-body-size: 1m. */
export const defaultMaxBodyBytes = 1024 * 1024;

/** nginx's default proxy_send_timeout: 60s. */
export const defaultSendTimeoutMs = 60_000;

/** The canary annotations of an Ingress with `canary: "true"`. */
export interface CanarySettings {
  header?: string;
  headerValue?: string;
  /** canary-by-header-pattern, checked (routes/user-regex.ts); set only when used: canary-by-header-value is not set or empty. */
  headerPattern?: string;
  /** canary-by-cookie: the cookie whose value "always" or "never" decides when the header did not. */
  cookie?: string;
  weight: number;
  weightTotal: number;
}

/** What the annotations of one Ingress compile to. */
export interface AnnotatedPolicy {
  policy: IngressPolicy;
  /** Set only when the Ingress is a canary. */
  canary?: CanarySettings;
  /** The Secrets (`namespace/name`) the policy's auth reads. */
  secrets: string[];
  /** More names for the Ingress's first host (ingress-nginx server-alias), lower case. */
  aliases?: string[];
  /** use-regex: the Ingress's paths are ingress-nginx regular expressions (spec.ts reads them with routes/pattern.ts). */
  regex?: true;
  /** from-to-www-redirect: the other name of each of the Ingress's hosts is redirected to it (spec.ts, compile.ts). */
  fromToWww?: true;
  /** ssl-passthrough "true" with --enable-ssl-passthrough (spec.ts fills IngressPolicy.sslPassthrough with the hosts). */
  passthrough?: true;
  /** Values replaced by their default, as ingress-nginx replaces them, each with the sentence saying so (for the log). */
  warnings?: string[];
}

/** The default basic-auth realm, as in ingress-nginx. */
export const defaultRealm = 'Authentication Required';
/** The default affinity cookie name, as in ingress-nginx. */
export const defaultCookieName = 'INGRESSCOOKIE';
/** The default external-auth timeout. */
export const defaultAuthTimeoutMs = 5000;

/** JWT signature algorithms netplane verifies. */
export const jwtAlgorithms: readonly string[] = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
];

// RFC 3986 path characters (pchar and "/"), without "$": a `$` is an nginx capture or variable we never expand.
const plainPath = /^\/[A-Za-z0-9\-._~%!&'()*+,;=:@/]*$/;
// A cookie Path attribute (RFC 6265 path-value): visible ASCII except ";".
const cookiePath = /^\/[\x21-\x3a\x3c-\x7e]*$/;

/** Reads the policy of an Ingress in `namespace` from its annotations; throws AnnotationError when one cannot be honoured. */
export function readPolicy(namespace: string, own: Readonly<Record<string, string>>, defaults: PolicyDefaults): AnnotatedPolicy {
  const annotations = defaults.annotations === undefined ? own : { ...defaults.annotations, ...own };
  const a = new AnnotationReader(annotations, { sslPassthrough: defaults.sslPassthrough });
  const policy: IngressPolicy = {
    sslRedirect: a.bool('ssl-redirect', true),
    forceSslRedirect: a.bool('force-ssl-redirect', false),
    backendProtocol: a.oneOf('backend-protocol', ['HTTP', 'HTTPS', 'GRPC', 'GRPCS'] as const, { upper: true, unsupported: ['AJP', 'FCGI'] }) ?? 'HTTP',
    maxBodyBytes: a.bytes('proxy-body-size') ?? defaults.maxBodyBytes ?? defaultMaxBodyBytes,
    connectTimeoutMs: a.secondsAsMs('proxy-connect-timeout', defaults.connectTimeoutMs),
    readTimeoutMs: a.secondsAsMs('proxy-read-timeout', defaults.readTimeoutMs),
    sendTimeoutMs: a.secondsAsMs('proxy-send-timeout', defaults.sendTimeoutMs ?? defaultSendTimeoutMs),
    loadBalance: a.oneOf('load-balance', ['round_robin', 'least_request'] as const, { aliases: { ewma: 'least_request' } }) ?? 'round_robin',
  };
  const rateLimit = readRateLimit(a);
  if (rateLimit !== undefined) policy.rateLimit = rateLimit;
  const auth = readAuth(a, namespace, defaults.configMaps);
  if (auth !== undefined) policy.auth = auth;
  const regex = a.bool('use-regex', false);
  const rewrite = a.get('rewrite-target');
  if (rewrite !== undefined) policy.rewriteTarget = readRewrite(rewrite);
  const affinity = readAffinity(a);
  if (affinity !== undefined) policy.affinity = affinity;
  // An empty value asks for nothing, as ingress-nginx reads it.
  const hashBy = a.get('upstream-hash-by');
  if (hashBy !== undefined && hashBy.value !== '') policy.upstreamHashBy = readHashKey(hashBy);
  // Both checked also without upstream-hash-by, where they ask for nothing (as in ingress-nginx).
  const subsetSize = a.int('upstream-hash-by-subset-size', 1, maxSubsetSize) ?? 3;
  if (a.bool('upstream-hash-by-subset', false) && policy.upstreamHashBy !== undefined) policy.upstreamHashSubset = subsetSize;
  const sourceRange = readSourceRange(a);
  if (sourceRange !== undefined) policy.sourceRange = sourceRange;
  const warnings: string[] = [];
  const redirect = readRedirect(a, warnings);
  if (redirect !== undefined) policy.redirect = redirect;
  const appRoot = a.get('app-root');
  if (appRoot !== undefined) {
    if (appRoot.value === '/' || !plainPath.test(appRoot.value) || appRoot.value.startsWith('//')) throw invalid(appRoot, 'allowed is a path other than "/" starting with "/" made of URL path characters, such as /app');
    policy.appRoot = appRoot.value;
  }
  const clientCert = readClientCert(a, namespace);
  if (clientCert !== undefined) policy.clientCert = clientCert;
  const cors = readCors(a);
  if (cors !== undefined) policy.cors = cors;
  const codes = a.list('custom-http-errors', { test: (s) => /^[45]\d\d$/.test(s), allowed: 'HTTP status codes from 400 to 599' });
  if (codes !== undefined && codes.length > 0) policy.customErrors = [...new Set(codes.map(Number))];
  // Read (and checked) also without custom-http-errors, where it changes nothing, as in ingress-nginx.
  if (a.bool('disable-proxy-intercept-errors', false) && policy.customErrors !== undefined) policy.passUpstreamErrors = true;
  const errorBackend = a.get('default-backend');
  if (errorBackend !== undefined) policy.errorBackend = readErrorBackend(errorBackend, namespace);
  if (a.bool('service-upstream', false)) policy.serviceUpstream = true;
  if (a.oneOf('satisfy', ['all', 'any'] as const) === 'any') policy.satisfyAny = true;
  // 0 is nginx's "no limit": as many as there are endpoints, at most 10 here.
  const tries = a.int('proxy-next-upstream-tries', 0, 10);
  if (tries !== undefined) policy.upstreamTries = tries === 0 ? 10 : tries;
  const nextUpstream = readNextUpstream(a);
  if (nextUpstream !== undefined) policy.nextUpstream = nextUpstream;
  const nextUpstreamTimeoutMs = readNextUpstreamTimeout(a);
  if (nextUpstreamTimeoutMs !== undefined) policy.nextUpstreamTimeoutMs = nextUpstreamTimeoutMs;
  const backendTls = readBackendTls(a, namespace, policy.backendProtocol);
  if (backendTls !== undefined) policy.backendTls = backendTls;
  const vhost = a.get('upstream-vhost');
  if (vhost !== undefined) {
    // A host name or address with an optional port: what a Host header may hold, and nothing nginx would expand.
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(vhost.value)) throw invalid(vhost, 'allowed is a host name or address with an optional port, such as api.example.com or api.example.com:8443');
    policy.upstreamVhost = vhost.value;
  }
  const prefix = a.get('x-forwarded-prefix');
  if (prefix !== undefined) {
    if (prefix.value.includes('$') || !plainPath.test(prefix.value)) throw invalid(prefix, 'allowed is a path starting with "/" made of URL path characters (nginx variables are not expanded)');
    policy.forwardedPrefix = prefix.value;
  }
  // Kilobytes as ingress-nginx writes them (limit_rate <n>k); 0 is no limit, and limit-rate-after alone limits nothing.
  const rateKiB = a.int('limit-rate', 0, 1 << 30);
  if (rateKiB !== undefined && rateKiB > 0) policy.responseRate = { bytesPerSecond: rateKiB * 1024, afterBytes: (a.int('limit-rate-after', 0, 1 << 30) ?? 0) * 1024 };
  const locationRewrite = readLocationRewrite(a);
  if (locationRewrite !== undefined) policy.locationRewrite = locationRewrite;
  const cookieRewrite = readCookieRewrite(a);
  if (cookieRewrite !== undefined) policy.cookieRewrite = cookieRewrite;
  const customHeaders = a.get('custom-headers');
  const responseHeaders = customHeaders && readHeaderMap(customHeaders, namespace, defaults.configMaps, 'custom-headers');
  if (responseHeaders !== undefined && Object.keys(responseHeaders).length > 0) policy.customHeaders = responseHeaders;
  const mirror = readMirror(a);
  if (mirror !== undefined) policy.mirror = mirror;

  const result: AnnotatedPolicy = { policy, secrets: [] };
  if (asksPassthrough(annotations, { sslPassthrough: defaults.sslPassthrough })) {
    refuseOnPassthrough(a, policy, annotations[sslPassthroughKey]!.trim());
    result.passthrough = true;
  }
  if (regex) result.regex = true;
  if (warnings.length > 0) result.warnings = warnings;
  if (a.bool('from-to-www-redirect', false)) result.fromToWww = true;
  if (clientCert !== undefined) result.secrets.push(`${clientCert.secret.namespace}/${clientCert.secret.name}`);
  if (backendTls !== undefined) result.secrets.push(`${backendTls.secret.namespace}/${backendTls.secret.name}`);
  if (auth?.type === 'basic') result.secrets.push(`${auth.secret.namespace}/${auth.secret.name}`);
  if (auth?.type === 'jwt' && auth.secret !== undefined) result.secrets.push(`${auth.secret.namespace}/${auth.secret.name}`);
  const canary = readCanary(a);
  if (canary !== undefined) result.canary = canary;
  // A wildcard alias covers one label, as a wildcard host does (ingress-nginx takes it into server_name as well;
  // its regex names, `~^...`, are refused: netplane runs no user expression there).
  const aliases = a.list('server-alias', { test: (s) => s.length <= 253 && hostName.test(s.toLowerCase()) && !ipv4.test(s), allowed: 'DNS names such as www.example.com or *.example.com (no IP address, no regular expression)' });
  if (aliases !== undefined && aliases.length > 0) result.aliases = aliases.map((h) => h.toLowerCase());
  return result;
}

/**
 * ssl-passthrough: a passed-through TLS connection is never decrypted, so nothing that reads a request applies to
 * it (ingress-nginx ignores every other annotation then). What decides who may reach the backend, or how often, and
 * cannot be checked on the unterminated stream is refused, since passing the connection through would let in
 * clients the Ingress keeps out: auth (basic, jwt, auth-url), client certificates, request rates. Source ranges
 * and limit-connections are enforced per connection (ingress/edge/passthrough.ts).
 */
function refuseOnPassthrough(a: AnnotationReader, policy: IngressPolicy, passthrough: string): void {
  const conflicts: Array<[Annotation | undefined, string]> = [
    [policy.auth?.type === 'external' ? a.get('auth-url') : policy.auth !== undefined ? a.get('auth-type') : undefined, 'ask for credentials'],
    [policy.clientCert !== undefined ? a.get('auth-tls-secret') : undefined, 'ask for a client certificate'],
    [policy.rateLimit?.rps !== undefined ? a.get('limit-rps') : undefined, 'count its requests'],
    [policy.rateLimit?.rpm !== undefined ? a.get('limit-rpm') : undefined, 'count its requests'],
  ];
  for (const [other, cannot] of conflicts) {
    if (other === undefined) continue;
    throw new AnnotationError(
      sslPassthroughKey,
      `annotation ${sslPassthroughKey} is ${quote(passthrough)} while ${other.key} is ${quote(other.value)}; a passed-through TLS connection is never decrypted, so netplane cannot ${cannot}: set only one of them (source ranges and limit-connections do apply to passed-through connections)`,
    );
  }
}

/**
 * ingress-nginx's allowlist-source-range (and its older name whitelist-source-range) and denylist-source-range:
 * comma-separated addresses and CIDR blocks. A list with no entry would allow no one (or deny no one): refused.
 */
function readSourceRange(a: AnnotationReader): IngressPolicy['sourceRange'] {
  const block = { test: (s: string) => addressBlock(s) !== undefined, allowed: addressBlockText };
  const read = (name: 'allowlist-source-range' | 'whitelist-source-range' | 'denylist-source-range') => {
    const items = a.list(name, block);
    if (items !== undefined && items.length === 0) throw invalid(a.get(name)!, `allowed is a comma-separated list of at least one item, each ${addressBlockText}`);
    return items;
  };
  const allow = read('allowlist-source-range') ?? read('whitelist-source-range');
  const deny = read('denylist-source-range');
  if (!allow && !deny) return undefined;
  return { ...(allow ? { allow } : {}), ...(deny ? { deny } : {}) };
}

const clientCertNames = ['auth-tls-verify-client', 'auth-tls-verify-depth', 'auth-tls-pass-certificate-to-upstream', 'auth-tls-error-page', 'auth-tls-match-cn'] as const;

/**
 * ingress-nginx's auth-tls-secret (the Secret with `ca.crt`), auth-tls-verify-client (on, the default; optional;
 * optional_no_ca; off), auth-tls-verify-depth (default 1), auth-tls-pass-certificate-to-upstream,
 * auth-tls-error-page (an absolute http or https URL) and auth-tls-match-cn (a pattern for the subject DN).
 */
function readClientCert(a: AnnotationReader, namespace: string): ClientCertPolicy | undefined {
  const secret = a.get('auth-tls-secret');
  if (secret === undefined) {
    // A client-certificate setting without the CA to check against would leave the Ingress open.
    for (const name of clientCertNames) {
      const c = a.get(name);
      if (c !== undefined) throw invalid(c, 'it takes effect only with auth-tls-secret, which is not set');
    }
    return undefined;
  }
  const verify = a.oneOf('auth-tls-verify-client', ['on', 'optional', 'optional_no_ca', 'off'] as const) ?? 'on';
  const depth = a.int('auth-tls-verify-depth', 0, 10) ?? 1;
  const passCertificate = a.bool('auth-tls-pass-certificate-to-upstream', false);
  const errorPage = a.get('auth-tls-error-page');
  const ref = secretRef(secret, namespace);
  // ingress-nginx writes the DN check whenever the value is not empty.
  const matchCnSet = a.get('auth-tls-match-cn');
  const matchCn = matchCnSet !== undefined && matchCnSet.value !== '' ? readUserRegex(matchCnSet) : undefined;
  if (verify === 'off') {
    // nginx would then ask for no certificate, so the DN is always empty and (nearly) every request 403.
    if (matchCn !== undefined) throw invalid(matchCnSet!, 'it takes effect only when a client certificate is asked for, and auth-tls-verify-client is "off"');
    return undefined;
  }
  return { secret: ref, verify, depth, passCertificate, ...(errorPage ? { errorPage: httpUrl(errorPage) } : {}), ...(matchCn !== undefined ? { matchCn } : {}) };
}

/** default-backend: a Service of the Ingress's namespace, `name` (port 80) or `name:port` (number or port name). */
function readErrorBackend(a: Annotation, namespace: string): BackendRef {
  const [service = '', portText, extra] = a.value.split(':');
  const port = portText === undefined ? 80 : /^\d{1,5}$/.test(portText) ? Number(portText) : portText;
  if (extra !== undefined || !serviceName.test(service) || (typeof port === 'number' && (port < 1 || port > 65535)) || (typeof port === 'string' && !portName.test(port))) {
    throw invalid(a, 'allowed is a Service of the Ingress\'s namespace: NAME (port 80) or NAME:PORT');
  }
  return { namespace, service, port, key: backendKey(namespace, service, port) };
}

/**
 * ingress-nginx's proxy-ssl-verify (on|off, default off), proxy-ssl-secret (the Secret with ca.crt), proxy-ssl-name
 * (the name to verify, also the SNI) and proxy-ssl-server-name (on|off: send SNI, default off).
 */
function readBackendTls(a: AnnotationReader, namespace: string, protocol: IngressPolicy['backendProtocol']): IngressPolicy['backendTls'] {
  const verify = a.oneOf('proxy-ssl-verify', ['on', 'off'] as const) ?? 'off';
  const secret = a.get('proxy-ssl-secret');
  const name = a.get('proxy-ssl-name');
  const sni = (a.oneOf('proxy-ssl-server-name', ['on', 'off'] as const) ?? 'off') === 'on';
  if (verify === 'off') return undefined;
  if (protocol !== 'HTTPS' && protocol !== 'GRPCS') throw invalid(a.get('proxy-ssl-verify')!, 'it takes effect only with backend-protocol "HTTPS" or "GRPCS", which is not set');
  if (secret === undefined) throw invalid(a.get('proxy-ssl-verify')!, 'verifying the backend needs proxy-ssl-secret naming the Secret with ca.crt, which is not set');
  if (name !== undefined && !dnsName.test(name.value.toLowerCase())) throw invalid(name, 'allowed is a DNS name such as api.shop.svc');
  return { secret: secretRef(secret, namespace), ...(name !== undefined ? { name: name.value.toLowerCase() } : {}), sni };
}

const redirectCodes = [301, 302, 303, 307, 308] as const;

/**
 * temporal-redirect (302 or temporal-redirect-code), else permanent-redirect (301 or permanent-redirect-code): an
 * absolute URL that may use the variables of variables.ts (`https://new.example.com$request_uri`). As ingress-nginx's
 * redirect parser, temporal-redirect wins when both are set (permanent-redirect and its code are then not read), and
 * an empty one asks for nothing. A code outside 300–308 is replaced by the default, as ingress-nginx replaces it, with
 * a warning in `warnings`; 300, 304, 305 and 306 are refused: ingress-nginx passes them to nginx's `return`, which
 * sends the URL as the body of that status, without Location — no redirect.
 */
function readRedirect(a: AnnotationReader, warnings: string[]): IngressPolicy['redirect'] {
  const code = (name: 'permanent-redirect-code' | 'temporal-redirect-code', fallback: 301 | 302) => {
    const c = a.get(name);
    if (c === undefined) return fallback;
    const allowed = `allowed are ${redirectCodes.join(', ')}`;
    if (!/^-?\d{1,9}$/.test(c.value)) throw invalid(c, allowed);
    const n = Number(c.value);
    if ((redirectCodes as readonly number[]).includes(n)) return n as (typeof redirectCodes)[number];
    if (n >= 300 && n <= 308) throw invalid(c, `${allowed} (nginx answers ${n} with the URL as its body and no Location)`);
    warnings.push(`annotation ${c.key} is ${quote(c.value)}, not a redirect status code (${allowed}): the default ${fallback} is used, as ingress-nginx does`);
    return fallback;
  };
  const temporal = a.get('temporal-redirect');
  if (temporal !== undefined && temporal.value !== '') return { url: readUrlTemplate(temporal, 'client'), status: code('temporal-redirect-code', 302) };
  const permanent = a.get('permanent-redirect');
  if (permanent !== undefined && permanent.value !== '') return { url: readUrlTemplate(permanent, 'client'), status: code('permanent-redirect-code', 301) };
  return undefined;
}

function readSignin(a: AnnotationReader): { signin?: string; signinParam?: string; requestRedirect?: string } {
  const s = a.get('auth-signin');
  const out: { signin?: string; signinParam?: string; requestRedirect?: string } = s === undefined ? {} : { signin: readUrlTemplate(s, 'client') };
  const param = a.get('auth-signin-redirect-param');
  if (param !== undefined && param.value !== '' && param.value !== 'rd') {
    if (!/^[A-Za-z0-9_.~-]{1,64}$/.test(param.value)) throw invalid(param, 'allowed is a query parameter name of letters, digits and -._~, such as rd or return_to');
    out.signinParam = param.value;
  }
  const redirect = a.get('auth-request-redirect');
  if (redirect !== undefined && redirect.value !== '') {
    // Sent as a header value: a path or an absolute URL, written out; nginx variables are not filled in here.
    if (redirect.value.includes('$') || !(/^\/[A-Za-z0-9\-._~%!&'()*+,;=:@/?]*$/.test(redirect.value) || URL.canParse(redirect.value))) {
      throw invalid(redirect, 'allowed is a path starting with "/" or an absolute http or https URL (nginx variables are not filled in)');
    }
    out.requestRedirect = redirect.value.startsWith('/') ? redirect.value : plainUrl(redirect);
  }
  return out;
}

function readRateLimit(a: AnnotationReader): RateLimitPolicy | undefined {
  // 0 asks for no such limit, as ingress-nginx writes a limit only when it is above 0 (a chart's default "0" must not
  // take the Ingress out of service); a burst multiplier of 0 is nginx's burst=0.
  const rps = a.int('limit-rps', 0) || undefined;
  const rpm = a.int('limit-rpm', 0) || undefined;
  const connections = a.int('limit-connections', 0) || undefined;
  const burstMultiplier = a.int('limit-burst-multiplier', 0) ?? 5;
  if (rps === undefined && rpm === undefined && connections === undefined) return undefined;
  const limit: RateLimitPolicy = { burstMultiplier };
  if (rps !== undefined) limit.rps = rps;
  if (rpm !== undefined) limit.rpm = rpm;
  if (connections !== undefined) limit.connections = connections;
  const block = { test: (s: string) => addressBlock(s) !== undefined, allowed: addressBlockText };
  const exempt = a.list('limit-allowlist', block) ?? a.list('limit-whitelist', block);
  if (exempt !== undefined && exempt.length > 0) limit.exempt = exempt;
  return limit;
}

const jwtNames = ['auth-jwt-jwks-url', 'auth-jwt-secret', 'auth-jwt-issuer', 'auth-jwt-audience', 'auth-jwt-algorithms'] as const;

function readAuth(a: AnnotationReader, namespace: string, configMaps: ConfigMapLookup | undefined): AuthPolicy | undefined {
  const type = a.oneOf('auth-type', ['basic', 'jwt'] as const, { unsupported: ['digest'] });
  // Checked also without auth-url, where it asks for nothing (ingress-nginx reads it with auth-url only).
  const alwaysSetCookie = a.bool('auth-always-set-cookie', false);
  if (type !== 'jwt') {
    // A JWT setting without auth-type jwt would leave the Ingress open while its author thinks it is guarded.
    for (const name of jwtNames) {
      const j = a.get(name);
      if (j !== undefined) throw invalid(j, `it takes effect only with netplane.io/auth-type "jwt", which is not set`);
    }
  }
  const url = a.get('auth-url');
  if (url !== undefined) {
    if (type !== undefined) {
      throw new AnnotationError(url.key, `annotation ${url.key} is ${quote(url.value)} while auth-type is ${quote(type)}; netplane runs one kind of auth per Ingress, so set only one of them`);
    }
    return {
      type: 'external',
      url: readUrlTemplate(url, 'fetched'),
      method: a.oneOf('auth-method', ['GET', 'HEAD', 'POST'] as const, { upper: true }) ?? 'GET',
      responseHeaders: a.list('auth-response-headers', httpToken) ?? [],
      timeoutMs: a.secondsAsMs('auth-timeout', defaultAuthTimeoutMs),
      ...readSignin(a),
      ...(alwaysSetCookie ? { alwaysSetCookie: true as const } : {}),
      ...readProxySetHeaders(a, namespace, configMaps),
    };
  }
  if (type === 'basic') {
    const secret = a.get('auth-secret');
    if (secret === undefined) throw invalid(a.get('auth-type')!, 'basic auth needs auth-secret naming the Secret with the htpasswd file, which is not set');
    const secretType = a.oneOf('auth-secret-type', ['auth-file', 'auth-map'] as const);
    const realm = a.get('auth-realm');
    // The realm is sent inside a quoted string of WWW-Authenticate, where " and \ would need escaping.
    if (realm !== undefined && /["\\]/.test(realm.value)) throw invalid(realm, 'allowed is text without " and \\');
    return { type: 'basic', secret: secretRef(secret, namespace), realm: realm?.value || defaultRealm, ...(secretType === 'auth-map' ? { secretType } : {}) };
  }
  if (type === 'jwt') return readJwt(a, namespace);
  return undefined;
}

/** auth-proxy-set-headers: the headers of its ConfigMap, sent to the auth service. */
function readProxySetHeaders(a: AnnotationReader, namespace: string, configMaps: ConfigMapLookup | undefined): { proxySetHeaders?: Readonly<Record<string, string>> } {
  const named = a.get('auth-proxy-set-headers');
  const headers = named && readHeaderMap(named, namespace, configMaps, 'auth-proxy-set-headers');
  return headers !== undefined && Object.keys(headers).length > 0 ? { proxySetHeaders: headers } : {};
}

function readJwt(a: AnnotationReader, namespace: string): JwtAuthPolicy {
  const jwksUrl = a.get('auth-jwt-jwks-url');
  const secret = a.get('auth-jwt-secret');
  if ((jwksUrl === undefined) === (secret === undefined)) {
    throw invalid(a.get('auth-type')!, 'JWT auth needs exactly one of netplane.io/auth-jwt-jwks-url and netplane.io/auth-jwt-secret');
  }
  const auth: JwtAuthPolicy = {
    type: 'jwt',
    algorithms: a.list('auth-jwt-algorithms', { test: (s) => jwtAlgorithms.includes(s), allowed: jwtAlgorithms.join(', ') }) ?? [],
  };
  if (jwksUrl !== undefined) auth.jwksUrl = httpUrl(jwksUrl);
  if (secret !== undefined) auth.secret = secretRef(secret, namespace);
  const issuer = a.get('auth-jwt-issuer');
  if (issuer !== undefined) {
    if (issuer.value === '') throw invalid(issuer, 'allowed is the expected "iss" claim, not empty');
    auth.issuer = issuer.value;
  }
  const audience = a.list('auth-jwt-audience', { test: () => true, allowed: 'audience names' });
  if (audience !== undefined) {
    if (audience.length === 0) throw invalid(a.get('auth-jwt-audience')!, 'allowed is a comma list of expected "aud" values, not empty');
    auth.audience = audience;
  }
  return auth;
}

/** `name` or `namespace/name`, in the Ingress's own namespace only. */
function secretRef(a: Annotation, namespace: string): ObjectRef {
  const parts = a.value.split('/');
  const [ns, name] = parts.length === 2 ? parts : [namespace, parts[0]];
  if (parts.length > 2 || name === undefined || ns === undefined || !objectName.test(name) || !objectName.test(ns)) {
    throw invalid(a, 'allowed is a Secret name, or "namespace/name" with the Ingress\'s own namespace');
  }
  if (ns !== namespace) {
    // Ingress authors may not read Secrets of other namespaces; the gateway reading one for them would let them.
    throw invalid(a, `the Secret must be in the Ingress's own namespace ${quote(namespace)}: reading another namespace's Secret is not allowed`);
  }
  return { namespace: ns, name };
}

function httpUrl(a: Annotation): string {
  if (a.value.includes('$')) throw invalid(a, 'nginx variables ($host, $request_uri ...) are not expanded: allowed is an absolute http or https URL');
  return plainUrl(a);
}

/**
 * rewrite-target: a path of URL path characters that may hold capture references `$1` to `$9` (nginx reads `$12` as
 * `$1` and "2"). Any other `$` would be an nginx variable, never expanded here. Whether each rule's rewrite starts with
 * "/" depends on its path's groups: spec.ts checks that (routes/pattern.ts rewriteParts).
 */
function readRewrite(a: Annotation): string {
  if (/\$(?![1-9])/.test(a.value)) {
    throw invalid(a, 'a "$" may only start a capture reference $1 to $9 (nginx variables are not expanded): allowed is a path starting with "/" made of URL path characters, such as /$2 or /api/$1');
  }
  if (!rewriteTarget.test(a.value)) throw invalid(a, 'allowed is a path starting with "/" (or with a capture reference such as $1) made of URL path characters');
  return a.value;
}
const rewriteTarget = /^(\/|\$[1-9])[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$/;

function readAffinity(a: AnnotationReader): IngressPolicy['affinity'] {
  const affinity = a.oneOf('affinity', ['cookie'] as const);
  const name = a.get('session-cookie-name');
  if (name !== undefined && !httpToken.test(name.value)) throw invalid(name, `allowed is a cookie name: ${httpToken.allowed}`);
  const maxAge = a.int('session-cookie-max-age');
  const path = a.get('session-cookie-path');
  if (path !== undefined && !cookiePath.test(path.value)) throw invalid(path, 'allowed is a cookie path starting with "/", visible ASCII without ";"');
  const secure = a.bool('session-cookie-secure', false);
  const sameSite = a.oneOf('session-cookie-samesite', ['None', 'Lax', 'Strict'] as const);
  if (affinity === undefined) return undefined;
  const result: NonNullable<IngressPolicy['affinity']> = { cookieName: name?.value ?? defaultCookieName };
  if (maxAge !== undefined) result.maxAgeSeconds = maxAge;
  if (path !== undefined) result.path = path.value;
  if (secure) result.secure = true;
  if (sameSite !== undefined) result.sameSite = sameSite;
  return result;
}

function readCanary(a: AnnotationReader): CanarySettings | undefined {
  const isCanary = a.bool('canary', false);
  const header = a.get('canary-by-header');
  if (header !== undefined && !httpToken.test(header.value)) throw invalid(header, `allowed is a header name: ${httpToken.allowed}`);
  const headerValue = a.get('canary-by-header-value');
  // ingress-nginx reads the pattern only when the value is empty or not set, and an empty pattern as none.
  const headerPattern = a.get('canary-by-header-pattern');
  const pattern = headerPattern !== undefined && headerPattern.value !== '' && !headerValue?.value ? readUserRegex(headerPattern) : undefined;
  const cookie = a.get('canary-by-cookie');
  if (cookie !== undefined && !httpToken.test(cookie.value)) throw invalid(cookie, `allowed is a cookie name: ${httpToken.allowed}`);
  const weightTotal = a.int('canary-weight-total') ?? 100;
  const weight = a.int('canary-weight', 0, weightTotal) ?? 0;
  if (!isCanary) return undefined;
  const canary: CanarySettings = { weight, weightTotal };
  if (header !== undefined) canary.header = header.value;
  if (headerValue !== undefined) canary.headerValue = headerValue.value;
  if (pattern !== undefined) canary.headerPattern = pattern;
  if (cookie !== undefined) canary.cookie = cookie.value;
  return canary;
}

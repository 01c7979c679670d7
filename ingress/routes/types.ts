// What the ingress gateway serves, compiled from Ingress objects: the contract between the route compiler
// (ingress/routes/), the request pipeline (ingress/server/), auth (ingress/auth/), limits (ingress/limits/),
// upstream pools (ingress/upstream/) and TLS (ingress/tls/). Plain data, no behaviour.
import type { MirrorPolicy } from './mirror.ts';

/** A namespaced object by name. */
export interface ObjectRef {
  namespace: string;
  name: string;
}

/** A Service port an Ingress sends traffic to, and how the route reaches it. */
export interface BackendRef {
  namespace: string;
  service: string;
  /** The Service port: its number, or its name. */
  port: number | string;
  /**
   * The key of the upstream (its pools, balancing and ejection state) the requests go to, as routes/compile.ts
   * upstreamKey writes it: `namespace/service:port` for plain HTTP to the endpoints — also the key of a BackendRef
   * without `upstream` (an Ingress's errorBackend, spoken to in HTTP) — else followed by how the port is reached
   * (`ns/api:443 HTTPS verify=ns/ca name=api.ns.svc`). Equal keys mean equal settings, so one upstream serves them.
   */
  key: string;
  /** How the port is reached; set on the backends of a RouteTable's routes and canaries. Absent: plain HTTP to the endpoints. */
  upstream?: UpstreamSpec;
}

/**
 * How a route reaches a Service port, from its Ingress's annotations (a canary's: canaryPolicy in compile.ts): the
 * settings its upstream is built with. Per route, as ingress-nginx sets them per location: two Ingresses that reach
 * one Service port differently get an upstream each.
 */
export interface UpstreamSpec {
  /** backend-protocol. */
  protocol: IngressPolicy['backendProtocol'];
  /** proxy-ssl-* (only with HTTPS or GRPCS), `name` filled in (default `<service>.<namespace>.svc`); absent: not verified. */
  tls?: BackendTlsPolicy;
  /** service-upstream: the Service's cluster IP instead of its endpoints. */
  viaService: boolean;
}

/** Basic auth: htpasswd lines from the Secret's `auth` key (bcrypt, SHA-256-crypt, SHA-512-crypt, Apache MD5 `$apr1$`). */
export interface BasicAuthPolicy {
  type: 'basic';
  secret: ObjectRef;
  realm: string;
  /** ingress-nginx auth-secret-type auth-map: the Secret holds a key per user, its value the hash; absent: an htpasswd file under `auth`. */
  secretType?: 'auth-map';
}

/** JWT bearer tokens, verified with keys from a JWKS URL or from a Secret (key `jwks`: a JWKS; or `key`: one PEM public key). */
export interface JwtAuthPolicy {
  type: 'jwt';
  jwksUrl?: string;
  secret?: ObjectRef;
  issuer?: string;
  audience?: string[];
  /** Allowed `alg` values (RS256..512, PS256..512, ES256/384/512, EdDSA); empty: any of these. */
  algorithms: string[];
}

/** External auth: a subrequest to `url`; 2xx lets the request through, 401/403 go back, anything else fails closed. */
export interface ExternalAuthPolicy {
  type: 'external';
  /** The auth URL; it may use the nginx variables of routes/variables.ts, filled in per request with the route's host. */
  url: string;
  /** Subrequest method (ingress-nginx `auth-method`); GET by default. */
  method: string;
  /** Headers of the auth response copied onto the upstream request (ingress-nginx `auth-response-headers`). */
  responseHeaders: string[];
  timeoutMs: number;
  /**
   * Where a client the auth service answers 401 is sent (302) to sign in (ingress-nginx auth-signin): an absolute URL
   * that may use the nginx variables of routes/variables.ts (`$host`, `$escaped_request_uri` ...), filled in per request.
   */
  signin?: string;
  /** The query parameter of the sign-in URL that says where to come back (ingress-nginx auth-signin-redirect-param); default `rd`. */
  signinParam?: string;
  /** X-Auth-Request-Redirect sent to the auth service instead of the request's URI (ingress-nginx auth-request-redirect). */
  requestRedirect?: string;
  /**
   * ingress-nginx auth-always-set-cookie: the auth service's Set-Cookie goes on every response, refusals and errors
   * included; without it, only on those of the statuses nginx's add_header takes (200, 201, 204, 206, 301, 302, 303,
   * 304, 307, 308).
   */
  alwaysSetCookie?: true;
  /**
   * Headers sent to the auth service, from the ConfigMap of ingress-nginx auth-proxy-set-headers (lower-case names):
   * they replace the client's of the same name; an empty value sends none.
   */
  proxySetHeaders?: Readonly<Record<string, string>>;
}

export type AuthPolicy = BasicAuthPolicy | JwtAuthPolicy | ExternalAuthPolicy;

/** Per-client-IP limits of one Ingress. Each limit is absent when not set. */
export interface RateLimitPolicy {
  rps?: number;
  rpm?: number;
  /** Burst = rate × this (ingress-nginx `limit-burst-multiplier`, default 5). */
  burstMultiplier: number;
  /** Concurrent connections (in-flight requests) per client IP. */
  connections?: number;
  /** Client addresses and CIDR blocks the limits do not apply to (ingress-nginx limit-whitelist). */
  exempt?: readonly string[];
}

/**
 * Client certificates for the Ingress's hosts (ingress-nginx `auth-tls-*`). Checked per TLS host: the handshake for
 * such a host asks the client for a certificate and verifies it against the CA bundle in the Secret's `ca.crt`.
 */
export interface ClientCertPolicy {
  secret: ObjectRef;
  /** on: a valid certificate is required; optional: none or a valid one; optional_no_ca: asked for, not verified. */
  verify: 'on' | 'optional' | 'optional_no_ca';
  /** The most intermediate CAs between the client's certificate and the root it chains to (ingress-nginx verify depth, default 1). */
  depth: number;
  /** Send the client's certificate upstream (URL-encoded PEM) in `ssl-client-cert`. */
  passCertificate: boolean;
  /** Where a refused client is redirected (302) instead of getting 400 (ingress-nginx `auth-tls-error-page`). */
  errorPage?: string;
  /**
   * ingress-nginx auth-tls-match-cn: requests whose client certificate subject DN (nginx's $ssl_client_s_dn, RFC 2253
   * form; '' without a certificate) does not match this pattern (RE2, unanchored; routes/user-regex.ts) get 403.
   */
  matchCn?: string;
}

/**
 * nginx's proxy_next_upstream as data (routes/next-upstream.ts reads it, upstream/errors.ts passesToNext applies it):
 * the failures of a try after which the request goes to the next endpoint. `off` is every field false and no status.
 */
export interface NextUpstreamPolicy {
  /** `error`: the connection failed (refused, reset, TLS handshake) before the response head came. */
  error: boolean;
  /** `timeout`: the connect timeout, or proxy-read-timeout passing before the response head came. */
  timeout: boolean;
  /** `invalid_header`: the response head could not be read (netplane's 502 for a malformed response). */
  invalidHeader: boolean;
  /** `http_500`, `http_502` ...: the backend answered one of these statuses (its response dropped unread); ascending. */
  statuses: readonly number[];
  /** `non_idempotent`: POST, LOCK and PATCH go again too once sent (only without a body: bodies are streamed). */
  nonIdempotent: boolean;
}

/** What the annotations of one Ingress ask for; the defaults when it has none. */
export interface IngressPolicy {
  /** Redirect HTTP to HTTPS (308) when the host has TLS. Default true. */
  sslRedirect: boolean;
  /** Redirect HTTP to HTTPS even when the host has no TLS. Default false. */
  forceSslRedirect: boolean;
  rateLimit?: RateLimitPolicy;
  auth?: AuthPolicy;
  /**
   * Replaces the whole request path with this, the query kept, as ingress-nginx rewrites: path `/app` rewrite `/`
   * turns `/app/x?q` into `/?q`; `$1`..`$9` are the capture groups of the rule's regex path (Route.regex, which
   * holds the rewrite of each rule; routes/rewrite.ts).
   */
  rewriteTarget?: string;
  /** HTTP/1.1 to the backend, in clear or over TLS; GRPC, GRPCS: HTTP/2 in clear (prior knowledge) or over TLS. */
  backendProtocol: 'HTTP' | 'HTTPS' | 'GRPC' | 'GRPCS';
  /** Largest request body in bytes (ingress-nginx `proxy-body-size`); larger gets 413. 0: no limit. */
  maxBodyBytes: number;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  /**
   * How long the backend may take none of a request body that is waiting to be written (nginx's proxy_send_timeout,
   * between two successive writes); 504 after. Applies to plain-HTTP backends (netplane's own client).
   */
  sendTimeoutMs: number;
  /** Cookie affinity (ingress-nginx `affinity: cookie`). */
  /**
   * Cookie affinity. The cookie's Path is `path`, else the route's path (ingress-nginx's location); it is Secure on
   * HTTPS requests, or always with `secure`; `sameSite` as given.
   */
  affinity?: { cookieName: string; maxAgeSeconds?: number; path?: string; secure?: boolean; sameSite?: 'None' | 'Lax' | 'Strict' };
  loadBalance: 'round_robin' | 'least_request';
  /**
   * upstream-hash-by: each request goes to the endpoint its key hashes to on a consistent hash ring (the key's parts
   * filled in per request by routes/hash-key.ts), instead of `loadBalance`; cookie affinity, when set, comes first.
   */
  upstreamHashBy?: readonly HashKeyPart[];
  /**
   * upstream-hash-by-subset (with upstream-hash-by): the key picks a subset of this many endpoints (ingress-nginx's
   * upstream-hash-by-subset-size, default 3) on the ring, and the request goes to one of them at random
   * (ingress/upstream/balancer.ts pickBySubset).
   */
  upstreamHashSubset?: number;
  /** Client addresses (IPs and CIDR blocks) that may reach the Ingress, and those that may not; others get 403. */
  sourceRange?: { allow?: readonly string[]; deny?: readonly string[] };
  /** ingress-nginx `satisfy: any`: with both a source range and auth, either one lets a request through. */
  satisfyAny?: boolean;
  clientCert?: ClientCertPolicy;
  /**
   * Every request answered with a redirect here (ingress-nginx permanent-redirect / temporal-redirect); the URL may use
   * the nginx variables of routes/variables.ts (`https://new.example.com$request_uri`), filled in per request.
   */
  redirect?: { url: string; status: 301 | 302 | 303 | 307 | 308 };
  /** Requests for `/` redirected (302) to this path (ingress-nginx app-root). */
  appRoot?: string;
  /**
   * Every request answered with a 308 to this host, its scheme, the Host header's port, path and query kept: the policy
   * of the route that compile.ts adds for the other name (www. or not) of a host of an Ingress with from-to-www-redirect.
   */
  redirectToHost?: string;
  /** CORS (ingress-nginx enable-cors and cors-*). */
  cors?: CorsPolicy;
  /**
   * Response headers from the ConfigMap of ingress-nginx custom-headers (lower-case names), set on every response of
   * the route, whoever writes it (the backend, a refusal, an error), replacing a header of the same name, as nginx's
   * more_set_headers does.
   */
  customHeaders?: Readonly<Record<string, string>>;
  /** The Host header sent upstream instead of the client's (ingress-nginx upstream-vhost). */
  upstreamVhost?: string;
  /** Sent upstream as X-Forwarded-Prefix (ingress-nginx x-forwarded-prefix). */
  forwardedPrefix?: string;
  /**
   * The start of the backend's Location and Refresh URLs replaced (ingress-nginx proxy-redirect-from/-to); `to` may
   * use the nginx variables of routes/variables.ts, filled in per request.
   */
  locationRewrite?: { from: string; to: string };
  /** Response bodies sent no faster than this after the first `afterBytes` (ingress-nginx limit-rate, limit-rate-after; ingress/upstream/pacer.ts). */
  responseRate?: { bytesPerSecond: number; afterBytes: number };
  /** The Path and Domain attributes of the backend's Set-Cookie headers rewritten (ingress-nginx proxy-cookie-path, proxy-cookie-domain). */
  cookieRewrite?: CookieRewrite;
  /**
   * Statuses answered by `errorBackend` instead (ingress-nginx custom-http-errors): the upstream's answers of them,
   * and the gateway's own failures (502, 503, 504), as nginx's error_page takes both.
   */
  customErrors?: readonly number[];
  /**
   * ingress-nginx disable-proxy-intercept-errors (nginx's proxy_intercept_errors off): the upstream's own answers of
   * the customErrors statuses are relayed as they are; only the gateway's own failures go to `errorBackend`.
   */
  passUpstreamErrors?: true;
  /** The Service that answers them (ingress-nginx default-backend annotation); absent: the gateway's own page. */
  errorBackend?: BackendRef;
  /** Send to the Service's cluster IP instead of its endpoints (ingress-nginx service-upstream), e.g. for a mesh. */
  serviceUpstream?: boolean;
  /** Attempts per request on different endpoints, first one included (ingress-nginx proxy-next-upstream-tries); default 3. */
  upstreamTries?: number;
  /** Which failed tries go to the next endpoint (ingress-nginx proxy-next-upstream); absent: `error timeout`. */
  nextUpstream?: NextUpstreamPolicy;
  /**
   * ingress-nginx proxy-next-upstream-timeout (nginx's proxy_next_upstream_timeout): no try starts this long after
   * the first one did; a try under way is not cut. Absent: no limit.
   */
  nextUpstreamTimeoutMs?: number;
  /** Verify the HTTPS backend's certificate (ingress-nginx proxy-ssl-verify on). */
  backendTls?: BackendTlsPolicy;
  /**
   * ssl-passthrough "true" with --enable-ssl-passthrough: TLS connections for these hosts of the Ingress's own rules
   * (lower-case, wildcards as written; not its server-alias names) are passed unterminated to the backend of the
   * host's `/` rule when that rule is this Ingress's (ingress/edge/passthrough.ts).
   */
  sslPassthrough?: { hosts: readonly string[] };
  /**
   * Each request forwarded is also copied, fire and forget, to this target (ingress-nginx mirror-target, mirror-host,
   * mirror-request-body; routes/mirror.ts, upstream/mirror.ts); the copy's answer is ignored.
   */
  mirror?: MirrorPolicy;
}

/**
 * nginx's proxy_cookie_path and proxy_cookie_domain in their plain-text form (ingress/upstream/cookie-rewrite.ts):
 * a Path starting with `path.from` gets `path.to` in place of that prefix; a Domain equal to `domain.from`
 * (lower-case; compared ignoring case and a leading dot) becomes `domain.to`.
 */
export interface CookieRewrite {
  path?: { from: string; to: string };
  domain?: { from: string; to: string };
}

/** The request facts an upstream-hash-by key may use, by their nginx variable names. */
export type HashVariable =
  | 'remote_addr' | 'binary_remote_addr' | 'host' | 'http_host' | 'server_name' | 'scheme'
  | 'request_uri' | 'uri' | 'args' | 'query_string' | 'is_args' | 'request_method';

/**
 * A part of an upstream-hash-by key: literal text; a fact of the request; or a request header ($http_NAME, held
 * lower-case with "-" for "_"), cookie ($cookie_NAME) or query argument ($arg_NAME), by name.
 */
export type HashKeyPart = string | { variable: HashVariable } | { header: string } | { cookie: string } | { arg: string };

/** How an HTTPS backend's certificate is verified (ingress-nginx proxy-ssl-*). */
export interface BackendTlsPolicy {
  /** The Secret with `ca.crt` (and optionally `tls.crt`/`tls.key`, a client certificate shown to the backend). */
  secret: ObjectRef;
  /** The name the certificate must carry, also sent as SNI when `sni`; default the Service's `<name>.<namespace>.svc`. */
  name?: string;
  sni: boolean;
}

/** Which cross-origin requests browsers may make (ingress-nginx `enable-cors`). */
export interface CorsPolicy {
  /** ['*'], or lower-case origins (`https://*.example.com` matches subdomains). */
  origins: string[];
  methods: string;
  headers: string;
  expose?: string;
  credentials: boolean;
  maxAgeSeconds: number;
}

/** A canary backend attached to a route by another Ingress with the `canary` annotation. */
export interface Canary {
  /** The canary Ingress, `namespace/name`. */
  ingress: string;
  backend: BackendRef;
  /** Requests with this header go to the canary when its value is "always" (or equals headerValue when set); "never" keeps them off. */
  header?: string;
  headerValue?: string;
  /**
   * ingress-nginx canary-by-header-pattern, used when headerValue is not set (or empty): requests whose header matches
   * it (RE2, unanchored; routes/user-regex.ts) go to the canary, others are left to the cookie and the weight.
   */
  headerPattern?: string;
  /**
   * When the header did not decide: requests whose cookie of this name (matched as nginx does, ignoring case) is
   * "always" go to the canary, "never" stay off it; any other value leaves the choice to the weight.
   */
  cookie?: string;
  /** Share of the other requests sent to the canary: weight out of weightTotal (default 100). */
  weight: number;
  weightTotal: number;
  policy: IngressPolicy;
}

/** One host/path rule. */
export interface Route {
  /** The Ingress, `namespace/name`. */
  ingress: string;
  namespace: string;
  /** Lower-case host; `*.example.com` for a wildcard; '' for a rule without host (any host). */
  host: string;
  /** The path as written, without a trailing slash for Prefix (except `/` itself). */
  path: string;
  pathType: 'Exact' | 'Prefix';
  backend: BackendRef;
  canary?: Canary;
  policy: IngressPolicy;
  /**
   * Set on the rules of an Ingress with use-regex or a rewrite-target: `path` is then the path as written, matched
   * and rewritten as ingress-nginx's regex location would (routes/pattern.ts), and `pathType` does not count.
   */
  regex?: RegexPath;
  /**
   * The controller-wide default backend's route (--default-backend-service; routes/default-service.ts), matched when
   * nothing else is: `ingress` and `namespace` are empty, as ingress-nginx's catch-all location names no Ingress.
   */
  controllerDefault?: true;
}

/**
 * An ingress-nginx regex path (`location ~* "^<path>"`, `rewrite "(?i)<path>" <target> break;`) in one of the shapes
 * routes/pattern.ts recognises, held as data: matched by its structure, never run as an expression.
 */
export interface RegexPath {
  /** The path as written: ingress-nginx orders a host's regex locations by it (longest first). */
  source: string;
  /** The fixed start, lower-case, matched ASCII-case-insensitively; a NUL stands for the expression's `.` (any ASCII character). */
  prefix: string;
  /**
   * What must follow the prefix: anything; at least one character; nothing; "/" or nothing (`(/|$)`);
   * "/" and at least one more (`(/|$)(.+)`); "/" or nothing, and then nothing (`/?$`).
   */
  after: 'any' | 'some' | 'none' | 'slash-or-none' | 'slash-and-some' | 'slash-then-none';
  /** The capture groups in order ($1, $2 ...). */
  groups: readonly RegexGroup[];
  /** The rewrite-target as literal parts and group numbers (1-based; past the last group: empty); absent: no rewrite. */
  rewrite?: readonly (string | number)[];
}

/**
 * A capture group of a RegexPath: characters `from` to `to` (absent: the end) of the request path; `slash`: "/" when
 * the rest after the prefix starts with one, else empty; `after-slash`: that rest without its leading "/".
 */
export type RegexGroup = { from: number; to?: number } | 'slash' | 'after-slash';

/** A certificate choice for a TLS host: the Secret, or the default certificate when the Ingress names none. */
export interface TlsChoice {
  secret?: ObjectRef;
  /** The Ingress (`namespace/name`) the choice is from, for log lines; set when the table is compiled. */
  ingress?: string;
}

/** An Ingress that is not served as written, and why. */
export interface IngressProblem {
  /** `namespace/name`. */
  ingress: string;
  reason: string;
  /** True when a last good version of the Ingress is served instead; false when the Ingress is not served at all. */
  keptLastGood: boolean;
  /**
   * The problem takes only one part of the Ingress (a rule or TLS host another Ingress holds, a missing backend
   * Service): the rest of it is served. Overrides keptLastGood: false.
   */
  partly?: true;
  /**
   * Another Ingress (`namespace/name`) holds what this part asked for (a host, path and path type; a TLS host; a
   * host's client-certificate check; a route's canary): the admission webhook refuses such a write, as ingress-nginx's
   * refuses a host and path another Ingress defines.
   */
  conflict?: string;
  /**
   * The part waits for another Ingress to be served (a canary's primary): not wrong in itself, since a directory
   * applied at once may hold the canary before its primary; the admission webhook warns of it instead of refusing.
   */
  waitsForPrimary?: true;
  /** The problem lasts only until the source has read an object the Ingress names (a ConfigMap): not logged. */
  pending?: true;
}

/** The compiled routing table: immutable; a change compiles a new one. */
export interface RouteTable {
  /**
   * The route for a request: `host` lower-case without port; `path` the URL path without query. Exact host rules
   * first, then the wildcard for the host's parent domain, then rules without host; within the first host set that
   * has rules, the longest matching path wins, Exact before Prefix at equal length. Then the default backend.
   * Undefined: 404.
   */
  match(host: string, path: string): Route | undefined;
  /** TLS for a host name (exact, then wildcard); undefined when no Ingress lists the host under `tls`. */
  tls(host: string): TlsChoice | undefined;
  /** Every TLS host with its choice: exact names, and wildcards as `*.parent`. */
  tlsHosts?(): Iterable<[host: string, choice: TlsChoice]>;
  /** The client-certificate check of a host (exact, then wildcard), from the first Ingress that sets one for it. */
  clientCert(host: string): ClientCertPolicy | undefined;
  /** Every Secret (`namespace/name`) a served route references for TLS or auth: the only ones the gateway reads. */
  readonly secrets: ReadonlySet<string>;
  /** The Secrets (`namespace/name`) whose `ca.crt` guards a host (auth-tls-secret); also in `secrets`. */
  readonly clientCas: ReadonlySet<string>;
  /**
   * Every upstream a served route, default backend, canary or custom error backend uses, by BackendRef.key (a Service
   * port reached in one way), each with its `upstream` settings.
   */
  readonly backends: ReadonlyMap<string, BackendRef>;
  /** The Ingresses (`namespace/name`) whose served routes use each backend, by BackendRef.key; absent: not known. */
  readonly backendUsers?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * The controller-wide default backend (--default-backend-service), also in `backends`: it answers what no route
   * takes, and the custom-http-errors of routes without a default-backend annotation. Absent without the flag, or while
   * its Service is not there.
   */
  readonly defaultBackend?: BackendRef;
  /** Ingresses (`namespace/name`) served, with the policy each uses. */
  readonly ingresses: ReadonlyMap<string, IngressPolicy>;
  readonly problems: readonly IngressProblem[];
  /** Number of host/path rules (not counting default backends). */
  readonly size: number;
}

// Annotations → IngressPolicy: every annotation with good values (the policy it gives) and bad values (the problem
// sentence, the Ingress dropped or its last good version kept, the other Ingresses unaffected).
import { describe, expect, it } from 'vitest';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import { readPolicy } from '../../../ingress/routes/policy.ts';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import { backend, compile, defaults, ingress, rule } from './fixtures.ts';

const np = 'netplane.io/';
const ngx = 'nginx.ingress.kubernetes.io/';

/** How a problem sentence quotes a value: JSON, with DEL escaped too. */
const quoted = (v: string) => JSON.stringify(v).replace(/\x7f/g, '\\u007f');

const web = (name: string, annotations: Record<string, string>) => ingress(name, { namespace: 'shop', annotations, rules: [rule(`${name}.com`, `Prefix / ${name}:80`)] });

function policyOf(annotations: Record<string, string>): IngressPolicy | undefined {
  const { table } = compile([web('a', annotations)]);
  expect(table.problems).toEqual([]);
  return table.ingresses.get('shop/a');
}

const basePolicy: IngressPolicy = { sslRedirect: true, forceSslRedirect: false, backendProtocol: 'HTTP', maxBodyBytes: 1024 * 1024, connectTimeoutMs: 5000, readTimeoutMs: 60_000, sendTimeoutMs: 60_000, loadBalance: 'round_robin' };

describe('annotations with good values', () => {
  // [what, annotations, the policy fields they change]
  const cases: [string, Record<string, string>, Partial<IngressPolicy>][] = [
    ['no annotations: the defaults', {}, {}],
    ['ssl-redirect false', { [`${ngx}ssl-redirect`]: 'false' }, { sslRedirect: false }],
    ['ssl-redirect as Go ParseBool reads it', { [`${np}ssl-redirect`]: 'False' }, { sslRedirect: false }],
    ['ssl-redirect 0', { [`${np}ssl-redirect`]: '0' }, { sslRedirect: false }],
    ['force-ssl-redirect', { [`${ngx}force-ssl-redirect`]: 'TRUE' }, { forceSslRedirect: true }],
    ['limit-rps', { [`${ngx}limit-rps`]: '10' }, { rateLimit: { rps: 10, burstMultiplier: 5 } }],
    ['limit-rpm and burst multiplier', { [`${ngx}limit-rpm`]: '600', [`${ngx}limit-burst-multiplier`]: '2' }, { rateLimit: { rpm: 600, burstMultiplier: 2 } }],
    ['limit-connections, spaces trimmed', { [`${np}limit-connections`]: ' 4 ' }, { rateLimit: { connections: 4, burstMultiplier: 5 } }],
    ['limit-whitelist exempts addresses and blocks', { [`${ngx}limit-rps`]: '10', [`${ngx}limit-whitelist`]: '10.0.0.0/8, 192.0.2.7' }, { rateLimit: { rps: 10, burstMultiplier: 5, exempt: ['10.0.0.0/8', '192.0.2.7'] } }],
    ['burst multiplier alone sets no limit', { [`${np}limit-burst-multiplier`]: '3' }, {}],
    // ingress-nginx writes a limit only when it is above 0: "0" (a chart's default) is no limit, not an error.
    ['limit-rps, limit-rpm and limit-connections 0: no limit', { [`${ngx}limit-rps`]: '0', [`${ngx}limit-rpm`]: '0', [`${ngx}limit-connections`]: '0' }, {}],
    ['limit-rps 0 beside limit-connections', { [`${ngx}limit-rps`]: '0', [`${ngx}limit-connections`]: '2' }, { rateLimit: { connections: 2, burstMultiplier: 5 } }],
    ['limit-burst-multiplier 0: no burst (nginx burst=0)', { [`${ngx}limit-rps`]: '3', [`${ngx}limit-burst-multiplier`]: '0' }, { rateLimit: { rps: 3, burstMultiplier: 0 } }],
    ['basic auth', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'htpasswd' }, { auth: { type: 'basic', secret: { namespace: 'shop', name: 'htpasswd' }, realm: 'Authentication Required' } }],
    ['basic auth, secret with its own namespace, realm', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'shop/htpasswd', [`${ngx}auth-realm`]: 'Shop staff' }, { auth: { type: 'basic', secret: { namespace: 'shop', name: 'htpasswd' }, realm: 'Shop staff' } }],
    ['jwt auth from a JWKS URL', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-jwks-url`]: 'https://id.example.com/jwks.json' }, { auth: { type: 'jwt', jwksUrl: 'https://id.example.com/jwks.json', algorithms: [] } }],
    [
      'jwt auth from a Secret, with issuer, audience and algorithms',
      { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'keys', [`${np}auth-jwt-issuer`]: 'https://id.example.com', [`${np}auth-jwt-audience`]: 'shop, api', [`${np}auth-jwt-algorithms`]: 'RS256,ES256, EdDSA' },
      { auth: { type: 'jwt', secret: { namespace: 'shop', name: 'keys' }, issuer: 'https://id.example.com', audience: ['shop', 'api'], algorithms: ['RS256', 'ES256', 'EdDSA'] } },
    ],
    ['external auth', { [`${ngx}auth-url`]: 'http://auth.shop.svc/check' }, { auth: { type: 'external', url: 'http://auth.shop.svc/check', method: 'GET', responseHeaders: [], timeoutMs: 5000 } }],
    [
      'external auth with method, response headers and timeout',
      { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-method`]: 'post', [`${ngx}auth-response-headers`]: 'X-User, X-Email,', [`${np}auth-timeout`]: '2' },
      { auth: { type: 'external', url: 'https://auth.example.com/', method: 'POST', responseHeaders: ['X-User', 'X-Email'], timeoutMs: 2000 } },
    ],
    [
      'external auth with auth-signin',
      { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-signin`]: 'https://$host/oauth2/start?rd=$escaped_request_uri' },
      { auth: { type: 'external', url: 'https://auth.example.com/', method: 'GET', responseHeaders: [], timeoutMs: 5000, signin: 'https://$host/oauth2/start?rd=$escaped_request_uri' } },
    ],
    [
      'external auth with auth-signin-redirect-param and auth-request-redirect',
      { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-signin`]: 'https://login.example.com/start', [`${ngx}auth-signin-redirect-param`]: 'return_to', [`${ngx}auth-request-redirect`]: 'https://app.example.com/after?x=1' },
      { auth: { type: 'external', url: 'https://auth.example.com/', method: 'GET', responseHeaders: [], timeoutMs: 5000, signin: 'https://login.example.com/start', signinParam: 'return_to', requestRedirect: 'https://app.example.com/after?x=1' } },
    ],
    ['auth-signin-redirect-param rd and auth-request-redirect as a path', { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-signin-redirect-param`]: 'rd', [`${ngx}auth-request-redirect`]: '/home' }, { auth: { type: 'external', url: 'https://auth.example.com/', method: 'GET', responseHeaders: [], timeoutMs: 5000, requestRedirect: '/home' } }],
    ['external auth with nginx variables (oauth2-proxy)', { [`${ngx}auth-url`]: 'https://$host/oauth2/auth' }, { auth: { type: 'external', url: 'https://$host/oauth2/auth', method: 'GET', responseHeaders: [], timeoutMs: 5000 } }],
    ['permanent-redirect keeping the path', { [`${ngx}permanent-redirect`]: 'https://new.example.com$request_uri' }, { redirect: { url: 'https://new.example.com$request_uri', status: 301 } }],
    ['auth-timeout is read under netplane.io only', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-timeout`]: '9' }, { auth: { type: 'external', url: 'https://a.example.com/', method: 'GET', responseHeaders: [], timeoutMs: 5000 } }],
    ['rewrite-target', { [`${ngx}rewrite-target`]: '/' }, { rewriteTarget: '/' }],
    ['use-regex false', { [`${ngx}use-regex`]: 'false' }, {}],
    ['use-regex true (the paths are read as regexes; the policy is the same)', { [`${ngx}use-regex`]: 'true' }, {}],
    ['rewrite-target with capture groups', { [`${ngx}rewrite-target`]: '/$2' }, { rewriteTarget: '/$2' }],
    ['backend-protocol HTTPS', { [`${ngx}backend-protocol`]: 'HTTPS' }, { backendProtocol: 'HTTPS' }],
    ['backend-protocol, any case', { [`${ngx}backend-protocol`]: 'https' }, { backendProtocol: 'HTTPS' }],
    ['backend-protocol GRPC', { [`${ngx}backend-protocol`]: 'GRPC' }, { backendProtocol: 'GRPC' }],
    ['backend-protocol grpcs, netplane.io spelling, any case', { [`${np}backend-protocol`]: 'grpcs' }, { backendProtocol: 'GRPCS' }],
    [
      'backend-protocol GRPCS with proxy-ssl-verify',
      { [`${ngx}backend-protocol`]: 'GRPCS', [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'backend-ca' },
      { backendProtocol: 'GRPCS', backendTls: { secret: { namespace: 'shop', name: 'backend-ca' }, sni: false } },
    ],
    ['proxy timeouts in seconds', { [`${ngx}proxy-connect-timeout`]: '10', [`${ngx}proxy-read-timeout`]: '3600' }, { connectTimeoutMs: 10_000, readTimeoutMs: 3_600_000 }],
    ['proxy-send-timeout in seconds', { [`${ngx}proxy-send-timeout`]: '5' }, { sendTimeoutMs: 5000 }],
    ['cookie affinity', { [`${ngx}affinity`]: 'cookie' }, { affinity: { cookieName: 'INGRESSCOOKIE' } }],
    ['cookie affinity, Secure always and SameSite', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-secure`]: 'true', [`${ngx}session-cookie-samesite`]: 'Strict' }, { affinity: { cookieName: 'INGRESSCOOKIE', secure: true, sameSite: 'Strict' } }],
    ['a value from a YAML block scalar, its line break trimmed', { [`${ngx}whitelist-source-range`]: '10.0.0.0/8\n' }, { sourceRange: { allow: ['10.0.0.0/8'] } }],
    ['cookie affinity with name, max age, path', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-name`]: 'route', [`${ngx}session-cookie-max-age`]: '3600', [`${ngx}session-cookie-path`]: '/shop' }, { affinity: { cookieName: 'route', maxAgeSeconds: 3600, path: '/shop' } }],
    ['load-balance least_request', { [`${np}load-balance`]: 'least_request' }, { loadBalance: 'least_request' }],
    ['load-balance ewma reads as least_request', { [`${ngx}load-balance`]: 'ewma' }, { loadBalance: 'least_request' }],
    ['allowlist-source-range, addresses and blocks of both families', { [`${ngx}allowlist-source-range`]: '10.0.0.0/8, 192.0.2.7,fd00::/8' }, { sourceRange: { allow: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] } }],
    ['whitelist-source-range, its older name', { [`${ngx}whitelist-source-range`]: '10.0.0.0/8' }, { sourceRange: { allow: ['10.0.0.0/8'] } }],
    ['allowlist wins over whitelist; denylist beside it', { [`${np}allowlist-source-range`]: '10.1.0.0/16', [`${ngx}whitelist-source-range`]: '10.0.0.0/8', [`${ngx}denylist-source-range`]: '10.1.2.3' }, { sourceRange: { allow: ['10.1.0.0/16'], deny: ['10.1.2.3'] } }],
    ['permanent-redirect', { [`${ngx}permanent-redirect`]: 'https://new.example.com/shop' }, { redirect: { url: 'https://new.example.com/shop', status: 301 } }],
    ['permanent-redirect to a non-ASCII URL, encoded', { [`${ngx}permanent-redirect`]: 'https://例え.jp/パス' }, { redirect: { url: 'https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9', status: 301 } }],
    ['temporal-redirect with its code', { [`${ngx}temporal-redirect`]: 'https://maintenance.example.com/', [`${ngx}temporal-redirect-code`]: '307' }, { redirect: { url: 'https://maintenance.example.com/', status: 307 } }],
    // ingress-nginx's redirect parser reads temporal-redirect first and returns it: permanent-redirect is not used.
    ['both redirects: temporal-redirect wins', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect`]: 'https://b.example.com/' }, { redirect: { url: 'https://b.example.com/', status: 302 } }],
    ['both redirects with both codes', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}permanent-redirect-code`]: '308', [`${ngx}temporal-redirect`]: 'https://b.example.com/', [`${ngx}temporal-redirect-code`]: '307' }, { redirect: { url: 'https://b.example.com/', status: 307 } }],
    ['an empty temporal-redirect leaves permanent-redirect', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect`]: '' }, { redirect: { url: 'https://a.example.com/', status: 301 } }],
    ['app-root', { [`${ngx}app-root`]: '/app1' }, { appRoot: '/app1' }],
    ['proxy-next-upstream-tries', { [`${ngx}proxy-next-upstream-tries`]: '5' }, { upstreamTries: 5 }],
    ['service-upstream', { [`${ngx}service-upstream`]: 'true' }, { serviceUpstream: true }],
    ['satisfy any', { [`${ngx}satisfy`]: 'any' }, { satisfyAny: true }],
    ['satisfy all, the default', { [`${ngx}satisfy`]: 'all' }, {}],
    ['custom-http-errors with a default-backend', { [`${ngx}custom-http-errors`]: '404,503, 404', [`${ngx}default-backend`]: 'errors:8080' }, { customErrors: [404, 503], errorBackend: { namespace: 'shop', service: 'errors', port: 8080, key: 'shop/errors:8080' } }],
    ['disable-proxy-intercept-errors with custom-http-errors', { [`${ngx}custom-http-errors`]: '503', [`${ngx}disable-proxy-intercept-errors`]: 'true' }, { customErrors: [503], passUpstreamErrors: true }],
    ['auth-always-set-cookie with auth-url', { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-always-set-cookie`]: 'true' }, { auth: { type: 'external', url: 'https://auth.example.com/', method: 'GET', responseHeaders: [], timeoutMs: 5000, alwaysSetCookie: true } }],
    ['auth-always-set-cookie alone asks for nothing', { [`${ngx}auth-always-set-cookie`]: 'true' }, {}],
    ['disable-proxy-intercept-errors alone asks for nothing', { [`${ngx}disable-proxy-intercept-errors`]: 'true' }, {}],
    ['proxy-next-upstream-tries 0: as many as allowed', { [`${ngx}proxy-next-upstream-tries`]: '0' }, { upstreamTries: 10 }],
    ['upstream-vhost and x-forwarded-prefix', { [`${ngx}upstream-vhost`]: 'api.internal:8443', [`${ngx}x-forwarded-prefix`]: '/shop' }, { upstreamVhost: 'api.internal:8443', forwardedPrefix: '/shop' }],
    ['proxy-cookie-path and proxy-cookie-domain', { [`${ngx}proxy-cookie-path`]: ' /  /shop/ ', [`${ngx}proxy-cookie-domain`]: 'Backend.Svc.cluster.local   shop.com' }, { cookieRewrite: { path: { from: '/', to: '/shop/' }, domain: { from: 'backend.svc.cluster.local', to: 'shop.com' } } }],
    ['proxy-cookie-path off, proxy-cookie-domain off (ingress-nginx\'s defaults)', { [`${ngx}proxy-cookie-path`]: 'off', [`${ngx}proxy-cookie-domain`]: 'off' }, {}],
    ['limit-rate and limit-rate-after, in kilobytes', { [`${ngx}limit-rate`]: '100', [`${ngx}limit-rate-after`]: '1024' }, { responseRate: { bytesPerSecond: 102_400, afterBytes: 1_048_576 } }],
    ['limit-rate 0: no limit; limit-rate-after alone limits nothing', { [`${ngx}limit-rate`]: '0', [`${ngx}limit-rate-after`]: '10' }, {}],
    ['proxy-redirect-from and -to', { [`${ngx}proxy-redirect-from`]: 'http://backend.svc:8080/', [`${ngx}proxy-redirect-to`]: 'https://$host/' }, { locationRewrite: { from: 'http://backend.svc:8080/', to: 'https://$host/' } }],
    ['proxy-redirect-from default, or off: nothing', { [`${ngx}proxy-redirect-from`]: 'default', [`${ngx}proxy-redirect-to`]: '/x' }, {}],
    ['proxy-cookie-domain with leading dots, which nginx drops', { [`${ngx}proxy-cookie-domain`]: '.Backend.Local .shop.com' }, { cookieRewrite: { domain: { from: 'backend.local', to: 'shop.com' } } }],
    ['proxy-cookie-path under netplane.io', { [`${np}proxy-cookie-path`]: '/api/ /', [`${ngx}proxy-cookie-path`]: '/x /y' }, { cookieRewrite: { path: { from: '/api/', to: '/' } } }],
    ['enable-cors with its defaults', { [`${ngx}enable-cors`]: 'true' }, { cors: { origins: ['*'], methods: 'GET, PUT, POST, DELETE, PATCH, OPTIONS', headers: 'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization', credentials: true, maxAgeSeconds: 1728000 } }],
    [
      'enable-cors with origins, methods, headers, expose, credentials off, max age',
      { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-origin`]: 'https://App.example.com, https://*.example.org:8443', [`${ngx}cors-allow-methods`]: 'GET,POST', [`${ngx}cors-allow-headers`]: 'X-Token', [`${ngx}cors-expose-headers`]: 'X-Total', [`${ngx}cors-allow-credentials`]: 'false', [`${ngx}cors-max-age`]: '600' },
      { cors: { origins: ['https://app.example.com', 'https://*.example.org:8443'], methods: 'GET, POST', headers: 'X-Token', expose: 'X-Total', credentials: false, maxAgeSeconds: 600 } },
    ],
    ['cors settings without enable-cors do nothing', { [`${ngx}cors-allow-origin`]: 'https://app.example.com' }, {}],
    ['proxy-body-size in megabytes', { [`${ngx}proxy-body-size`]: '8m' }, { maxBodyBytes: 8 * 1024 * 1024 }],
    ['proxy-body-size in kilobytes, upper case', { [`${ngx}proxy-body-size`]: '100K' }, { maxBodyBytes: 100 * 1024 }],
    ['proxy-body-size 0: no limit', { [`${ngx}proxy-body-size`]: '0' }, { maxBodyBytes: 0 }],
    ['client certificates, ingress-nginx defaults', { [`${ngx}auth-tls-secret`]: 'shop/ca' }, { clientCert: { secret: { namespace: 'shop', name: 'ca' }, verify: 'on', depth: 1, passCertificate: false } }],
    [
      'client certificates optional, depth 2, passed upstream',
      { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-verify-client`]: 'optional_no_ca', [`${ngx}auth-tls-verify-depth`]: '2', [`${ngx}auth-tls-pass-certificate-to-upstream`]: 'true' },
      { clientCert: { secret: { namespace: 'shop', name: 'ca' }, verify: 'optional_no_ca', depth: 2, passCertificate: true } },
    ],
    [
      'client certificates with an error page',
      { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-error-page`]: 'https://help.example.com/certificates' },
      { clientCert: { secret: { namespace: 'shop', name: 'ca' }, verify: 'on', depth: 1, passCertificate: false, errorPage: 'https://help.example.com/certificates' } },
    ],
    ['client certificates off', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-verify-client`]: 'off' }, {}],
    ['netplane.io wins over nginx', { [`${np}limit-rps`]: '7', [`${ngx}limit-rps`]: 'not read' }, { rateLimit: { rps: 7, burstMultiplier: 5 } }],
    ['unknown nginx annotations are ignored, never interpreted', { [`${ngx}some-future-annotation`]: 'more_set_headers "X: y";\nreturn 200;', [`${ngx}auth-jwt-jwks-url`]: 'x' }, {}],
    ['proxy-ssl-verify off, the default', { [`${ngx}proxy-ssl-verify`]: 'off' }, {}],
    [
      'proxy-ssl-verify on with a CA Secret, a name and SNI',
      { [`${ngx}backend-protocol`]: 'HTTPS', [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'shop/backend-ca', [`${ngx}proxy-ssl-name`]: 'API.internal', [`${ngx}proxy-ssl-server-name`]: 'on' },
      { backendProtocol: 'HTTPS', backendTls: { secret: { namespace: 'shop', name: 'backend-ca' }, name: 'api.internal', sni: true } },
    ],
    ['other prefixes are not read', { 'kubectl.kubernetes.io/last-applied-configuration': '{"a":1}\n', 'example.com/limit-rps': 'x' }, {}],
  ];
  it.each(cases)('%s', (_name, annotations, want) => {
    expect(policyOf(annotations)).toEqual({ ...basePolicy, ...want });
  });

  it('reads canary annotations only on canaries, with their defaults', () => {
    const main = ingress('main', { namespace: 'shop', rules: [rule('a.com', 'Prefix / main:80')] });
    const canary = (annotations: Record<string, string>) => ingress('next', { namespace: 'shop', annotations, rules: [rule('a.com', 'Prefix / next:80')] });
    const attached = (annotations: Record<string, string>) => compile([main, canary(annotations)]).table.match('a.com', '/')?.canary;
    expect(attached({ [`${ngx}canary`]: 'true' })).toMatchObject({ weight: 0, weightTotal: 100 });
    expect(attached({ [`${ngx}canary`]: 'true' })).not.toHaveProperty('header');
    expect(attached({ [`${ngx}canary`]: 'true', [`${ngx}canary-weight`]: '100' })).toMatchObject({ weight: 100, weightTotal: 100 });
    expect(attached({ [`${ngx}canary`]: 'true', [`${ngx}canary-by-header`]: 'X-Beta' })).toMatchObject({ header: 'X-Beta' });
    expect(attached({ [`${ngx}canary`]: 'true' })).not.toHaveProperty('cookie');
    expect(attached({ [`${ngx}canary`]: 'true', [`${ngx}canary-by-cookie`]: 'beta_user' })).toMatchObject({ cookie: 'beta_user', weight: 0 });
    expect(attached({ [`${ngx}canary-weight`]: '50' })).toBeUndefined();
  });
});

describe('annotations with values that cannot be honoured', () => {
  // [what, annotations, the annotation the sentence names, its value, a word of what is allowed]
  const cases: [string, Record<string, string>, string, string, string][] = [
    ['ssl-redirect yes', { [`${np}ssl-redirect`]: 'yes' }, `${np}ssl-redirect`, 'yes', '"true"'],
    ['force-ssl-redirect on', { [`${ngx}force-ssl-redirect`]: 'on' }, `${ngx}force-ssl-redirect`, 'on', '"false"'],
    ['limit-rps negative', { [`${ngx}limit-rps`]: '-1' }, `${ngx}limit-rps`, '-1', 'whole number'],
    ['limit-rpm fraction', { [`${ngx}limit-rpm`]: '1.5' }, `${ngx}limit-rpm`, '1.5', 'whole number'],
    ['limit-connections word', { [`${np}limit-connections`]: 'ten' }, `${np}limit-connections`, 'ten', 'whole number'],
    ['limit-rps huge', { [`${np}limit-rps`]: '99999999999999999' }, `${np}limit-rps`, '99999999999999999', 'whole number'],
    ['limit-burst-multiplier negative', { [`${ngx}limit-burst-multiplier`]: '-1', [`${ngx}limit-rps`]: '1' }, `${ngx}limit-burst-multiplier`, '-1', 'whole number'],
    ['auth-type digest', { [`${ngx}auth-type`]: 'digest', [`${ngx}auth-secret`]: 's' }, `${ngx}auth-type`, 'digest', 'basic, jwt'],
    ['auth-type oauth', { [`${np}auth-type`]: 'oauth' }, `${np}auth-type`, 'oauth', 'basic, jwt'],
    ['basic auth without secret', { [`${ngx}auth-type`]: 'basic' }, `${ngx}auth-type`, 'basic', 'auth-secret'],
    ['auth-secret in another namespace', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'kube-system/admin-htpasswd' }, `${ngx}auth-secret`, 'kube-system/admin-htpasswd', 'own namespace'],
    ['auth-secret with two slashes', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'a/b/c' }, `${ngx}auth-secret`, 'a/b/c', 'Secret name'],
    ['auth-secret not a name', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'Bad_Name' }, `${ngx}auth-secret`, 'Bad_Name', 'Secret name'],
    ['auth-realm with a quote', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 's', [`${ngx}auth-realm`]: 'say "hi"' }, `${ngx}auth-realm`, 'say "hi"', 'without'],
    ['auth-url not http', { [`${ngx}auth-url`]: 'ftp://auth.example.com/' }, `${ngx}auth-url`, 'ftp://auth.example.com/', 'http or https'],
    ['auth-url relative', { [`${ngx}auth-url`]: '/auth' }, `${ngx}auth-url`, '/auth', 'http or https'],
    ['auth-url with an nginx variable netplane does not fill in', { [`${ngx}auth-url`]: 'https://$host/oauth2/auth?u=$remote_user' }, `${ngx}auth-url`, 'https://$host/oauth2/auth?u=$remote_user', '$remote_user is not a variable netplane fills in'],
    ['auth-url and auth-type together', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 's' }, `${ngx}auth-url`, 'https://a.example.com/', 'only one'],
    ['auth-method PUT', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-method`]: 'PUT' }, `${ngx}auth-method`, 'PUT', 'GET, HEAD, POST'],
    ['auth-response-headers with a space', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-response-headers`]: 'X-User, Bad Header' }, `${ngx}auth-response-headers`, 'X-User, Bad Header', 'HTTP tokens'],
    ['auth-timeout with a unit', { [`${np}auth-url`]: 'https://a.example.com/', [`${np}auth-timeout`]: '5s' }, `${np}auth-timeout`, '5s', 'seconds'],
    ['jwt without keys', { [`${np}auth-type`]: 'jwt' }, `${np}auth-type`, 'jwt', 'exactly one'],
    ['jwt with two key sources', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'k', [`${np}auth-jwt-jwks-url`]: 'https://a.example.com/jwks' }, `${np}auth-type`, 'jwt', 'exactly one'],
    ['jwt setting without auth-type jwt', { [`${np}auth-jwt-jwks-url`]: 'https://a.example.com/jwks' }, `${np}auth-jwt-jwks-url`, 'https://a.example.com/jwks', 'auth-type "jwt"'],
    ['jwt secret in another namespace', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'other/keys' }, `${np}auth-jwt-secret`, 'other/keys', 'own namespace'],
    ['jwt algorithm HS256', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'k', [`${np}auth-jwt-algorithms`]: 'RS256,HS256' }, `${np}auth-jwt-algorithms`, 'RS256,HS256', 'EdDSA'],
    ['jwt issuer empty', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'k', [`${np}auth-jwt-issuer`]: ' ' }, `${np}auth-jwt-issuer`, '', 'not empty'],
    ['jwt audience empty', { [`${np}auth-type`]: 'jwt', [`${np}auth-jwt-secret`]: 'k', [`${np}auth-jwt-audience`]: ',' }, `${np}auth-jwt-audience`, ',', 'not empty'],
    ['rewrite-target with an nginx variable', { [`${ngx}rewrite-target`]: '/$uri' }, `${ngx}rewrite-target`, '/$uri', 'capture reference $1 to $9'],
    ['rewrite-target with $0', { [`${ngx}rewrite-target`]: '/$0' }, `${ngx}rewrite-target`, '/$0', 'capture reference $1 to $9'],
    ['rewrite-target relative', { [`${ngx}rewrite-target`]: 'app' }, `${ngx}rewrite-target`, 'app', 'starting with "/"'],
    ['rewrite-target with a space', { [`${ngx}rewrite-target`]: '/a b' }, `${ngx}rewrite-target`, '/a b', 'starting with "/"'],
    ['use-regex yes', { [`${ngx}use-regex`]: 'yes' }, `${ngx}use-regex`, 'yes', '"false"'],
    ['backend-protocol H2C', { [`${ngx}backend-protocol`]: 'H2C' }, `${ngx}backend-protocol`, 'H2C', 'HTTP, HTTPS, GRPC, GRPCS'],
    ['backend-protocol FCGI', { [`${ngx}backend-protocol`]: 'FCGI' }, `${ngx}backend-protocol`, 'FCGI', 'does not support FCGI'],
    ['backend-protocol AJP', { [`${np}backend-protocol`]: 'ajp' }, `${np}backend-protocol`, 'ajp', 'does not support AJP'],
    ['proxy-connect-timeout with a unit', { [`${ngx}proxy-connect-timeout`]: '5s' }, `${ngx}proxy-connect-timeout`, '5s', 'seconds'],
    ['proxy-read-timeout 0', { [`${ngx}proxy-read-timeout`]: '0' }, `${ngx}proxy-read-timeout`, '0', 'from 1 to 86400'],
    ['proxy-read-timeout past a day', { [`${ngx}proxy-read-timeout`]: '100000' }, `${ngx}proxy-read-timeout`, '100000', 'from 1 to 86400'],
    ['affinity by IP', { [`${ngx}affinity`]: 'ip' }, `${ngx}affinity`, 'ip', 'cookie'],
    ['session-cookie-name with a space', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-name`]: 'my cookie' }, `${ngx}session-cookie-name`, 'my cookie', 'cookie name'],
    ['session-cookie-name with ;', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-name`]: 'a;b' }, `${ngx}session-cookie-name`, 'a;b', 'cookie name'],
    ['session-cookie-max-age negative', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-max-age`]: '-1' }, `${ngx}session-cookie-max-age`, '-1', 'whole number'],
    ['session-cookie-path relative', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-path`]: 'shop' }, `${ngx}session-cookie-path`, 'shop', 'cookie path'],
    ['session-cookie-path with ;', { [`${ngx}affinity`]: 'cookie', [`${ngx}session-cookie-path`]: '/a;Domain=x' }, `${ngx}session-cookie-path`, '/a;Domain=x', 'cookie path'],
    ['load-balance chash', { [`${ngx}load-balance`]: 'chash' }, `${ngx}load-balance`, 'chash', 'round_robin, least_request'],
    ['canary maybe', { [`${ngx}canary`]: 'maybe' }, `${ngx}canary`, 'maybe', '"true"'],
    ['canary-weight negative', { [`${ngx}canary-weight`]: '-5' }, `${ngx}canary-weight`, '-5', 'from 0 to 100'],
    ['canary-weight-total 0', { [`${ngx}canary-weight-total`]: '0' }, `${ngx}canary-weight-total`, '0', 'whole number'],
    ['canary-by-header with a colon', { [`${ngx}canary-by-header`]: 'X-Canary:' }, `${ngx}canary-by-header`, 'X-Canary:', 'header name'],
    ['canary-by-cookie with a =', { [`${ngx}canary`]: 'true', [`${ngx}canary-by-cookie`]: 'beta=1' }, `${ngx}canary-by-cookie`, 'beta=1', 'cookie name'],
    ['canary-by-cookie with a space', { [`${ngx}canary-by-cookie`]: 'beta user' }, `${ngx}canary-by-cookie`, 'beta user', 'cookie name'],
    ['unknown netplane.io annotation (a typo)', { [`${np}limit-rsp`]: '10' }, `${np}limit-rsp`, '', 'limit-rps'],
    ['control character, netplane.io', { [`${np}auth-realm`]: 'a\nb' }, `${np}auth-realm`, 'a\nb', 'control characters'],
    ['control character, nginx', { [`${ngx}rewrite-target`]: '/\u0000' }, `${ngx}rewrite-target`, '/\u0000', 'control characters'],
    ['DEL character', { [`${ngx}limit-rps`]: '10\u007f' }, `${ngx}limit-rps`, '10\u007f', 'control characters'],
    ['tab character', { [`${ngx}ssl-redirect`]: 'tr\tue' }, `${ngx}ssl-redirect`, 'tr\tue', 'control characters'],
    ['control character in an nginx value a netplane.io one overrides', { [`${np}limit-rps`]: '1', [`${ngx}limit-rps`]: '1\r\n2' }, `${ngx}limit-rps`, '1\r\n2', 'control characters'],
    ['allowlist-source-range with a hostname', { [`${ngx}allowlist-source-range`]: '10.0.0.0/8, office.example.com' }, `${ngx}allowlist-source-range`, '10.0.0.0/8, office.example.com', 'IPv4 or IPv6 address or CIDR block'],
    ['whitelist-source-range with a bad prefix', { [`${ngx}whitelist-source-range`]: '10.0.0.0/33' }, `${ngx}whitelist-source-range`, '10.0.0.0/33', 'IPv4 or IPv6 address or CIDR block'],
    ['denylist-source-range empty', { [`${ngx}denylist-source-range`]: ',' }, `${ngx}denylist-source-range`, ',', 'at least one item'],
    ['auth-tls-match-cn with a back-reference', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-match-cn`]: '(CN)=\\1' }, `${ngx}auth-tls-match-cn`, '(CN)=\\1', 'back-reference'],
    ['auth-tls-secret in another namespace', { [`${ngx}auth-tls-secret`]: 'other/ca' }, `${ngx}auth-tls-secret`, 'other/ca', 'own namespace'],
    ['auth-tls-verify-client unknown', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-verify-client`]: 'required' }, `${ngx}auth-tls-verify-client`, 'required', 'on, optional, optional_no_ca, off'],
    ['auth-tls-verify-depth too deep', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-verify-depth`]: '11' }, `${ngx}auth-tls-verify-depth`, '11', 'from 0 to 10'],
    ['permanent-redirect relative', { [`${ngx}permanent-redirect`]: '/elsewhere' }, `${ngx}permanent-redirect`, '/elsewhere', 'http or https'],
    ['permanent-redirect with the request URI as its host', { [`${ngx}permanent-redirect`]: 'https://$request_uri' }, `${ngx}permanent-redirect`, 'https://$request_uri', 'cannot stand in the URL'],
    // ingress-nginx passes 300–308 on to nginx's `return`, which answers 300, 304, 305 and 306 without Location.
    ['permanent-redirect-code 304', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}permanent-redirect-code`]: '304' }, `${ngx}permanent-redirect-code`, '304', 'allowed are 301, 302, 303, 307, 308'],
    ['temporal-redirect-code 300', { [`${ngx}temporal-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect-code`]: '300' }, `${ngx}temporal-redirect-code`, '300', 'no Location'],
    ['temporal-redirect-code not a number', { [`${ngx}temporal-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect-code`]: '307x' }, `${ngx}temporal-redirect-code`, '307x', 'allowed are 301, 302, 303, 307, 308'],
    ['cors-allow-origin with a path', { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-origin`]: 'https://app.example.com/x' }, `${ngx}cors-allow-origin`, 'https://app.example.com/x', 'origins such as'],
    ['cors-allow-headers with a space in a name', { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-headers`]: 'X Token' }, `${ngx}cors-allow-headers`, 'X Token', 'HTTP tokens'],
    ['upstream-vhost with nginx variables', { [`${ngx}upstream-vhost`]: '$host' }, `${ngx}upstream-vhost`, '$host', 'host name or address'],
    ['upstream-vhost with a path', { [`${ngx}upstream-vhost`]: 'a.example.com/x' }, `${ngx}upstream-vhost`, 'a.example.com/x', 'host name or address'],
    ['x-forwarded-prefix with nginx variables', { [`${ngx}x-forwarded-prefix`]: '/$1' }, `${ngx}x-forwarded-prefix`, '/$1', 'not expanded'],
    ['limit-rate with a unit', { [`${ngx}limit-rate`]: '100k' }, `${ngx}limit-rate`, '100k', 'whole number'],
    ['proxy-redirect-from without -to', { [`${ngx}proxy-redirect-from`]: '/app/' }, `${ngx}proxy-redirect-from`, '/app/', 'needs proxy-redirect-to'],
    ['proxy-redirect-from as a regex', { [`${ngx}proxy-redirect-from`]: '~^http://(.*)', [`${ngx}proxy-redirect-to`]: '/' }, `${ngx}proxy-redirect-from`, '~^http://(.*)', 'regexes and variables are not read'],
    ['proxy-redirect-to with a variable netplane does not fill in', { [`${ngx}proxy-redirect-from`]: '/a/', [`${ngx}proxy-redirect-to`]: 'https://$remote_user/' }, `${ngx}proxy-redirect-to`, 'https://$remote_user/', 'not a variable netplane fills in'],
    ['proxy-cookie-path as a regex', { [`${ngx}proxy-cookie-path`]: '~*^/app(.*) /x$1' }, `${ngx}proxy-cookie-path`, '~*^/app(.*) /x$1', 'regexes and variables are not read'],
    ['proxy-cookie-path with one word', { [`${ngx}proxy-cookie-path`]: '/app' }, `${ngx}proxy-cookie-path`, '/app', 'a path and its replacement'],
    ['proxy-cookie-path with three words', { [`${ngx}proxy-cookie-path`]: '/a /b /c' }, `${ngx}proxy-cookie-path`, '/a /b /c', 'a path and its replacement'],
    ['proxy-cookie-path with nginx syntax', { [`${ngx}proxy-cookie-path`]: '/a /b;add_header' }, `${ngx}proxy-cookie-path`, '/a /b;add_header', 'a path and its replacement'],
    ['proxy-cookie-path quoted', { [`${ngx}proxy-cookie-path`]: '"/a" /b' }, `${ngx}proxy-cookie-path`, '"/a" /b', 'a path and its replacement'],
    ['proxy-cookie-domain with a variable', { [`${ngx}proxy-cookie-domain`]: 'backend.local $host' }, `${ngx}proxy-cookie-domain`, 'backend.local $host', 'variables are not read'],
    ['server-alias with a regex', { [`${ngx}server-alias`]: 'www.a.com, ~^www\\d+\\.a\\.com$' }, `${ngx}server-alias`, 'www.a.com, ~^www\\d+\\.a\\.com$', 'no regular expression'],
    ['server-alias with a wildcard in the middle', { [`${ngx}server-alias`]: 'www.*.a.com' }, `${ngx}server-alias`, 'www.*.a.com', 'no IP address'],
    ['server-alias an IP address', { [`${ngx}server-alias`]: '10.0.0.1' }, `${ngx}server-alias`, '10.0.0.1', 'no IP address'],
    ['proxy-ssl-verify on without HTTPS to the backend', { [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'ca' }, `${ngx}proxy-ssl-verify`, 'on', 'backend-protocol "HTTPS"'],
    ['proxy-ssl-verify on without a CA', { [`${ngx}backend-protocol`]: 'HTTPS', [`${ngx}proxy-ssl-verify`]: 'on' }, `${ngx}proxy-ssl-verify`, 'on', 'proxy-ssl-secret'],
    ['proxy-ssl-name not a name', { [`${ngx}backend-protocol`]: 'HTTPS', [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'ca', [`${ngx}proxy-ssl-name`]: '$host' }, `${ngx}proxy-ssl-name`, '$host', 'DNS name'],
    ['auth-signin with another nginx variable', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-signin`]: 'https://$host/start?u=$remote_user' }, `${ngx}auth-signin`, 'https://$host/start?u=$remote_user', '$escaped_request_uri'],
    ['auth-signin-redirect-param not a query name', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-signin-redirect-param`]: 'a=b' }, `${ngx}auth-signin-redirect-param`, 'a=b', 'query parameter name'],
    ['auth-request-redirect with an nginx variable', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-request-redirect`]: '$request_uri' }, `${ngx}auth-request-redirect`, '$request_uri', 'not filled in'],
    ['auth-signin relative', { [`${ngx}auth-url`]: 'https://a.example.com/', [`${ngx}auth-signin`]: '/oauth2/start' }, `${ngx}auth-signin`, '/oauth2/start', 'absolute http or https URL'],
    ['auth-always-set-cookie not a boolean', { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-always-set-cookie`]: 'always' }, `${ngx}auth-always-set-cookie`, 'always', '"true" and "false"'],
    ['disable-proxy-intercept-errors not a boolean', { [`${ngx}custom-http-errors`]: '503', [`${ngx}disable-proxy-intercept-errors`]: 'yes' }, `${ngx}disable-proxy-intercept-errors`, 'yes', '"true" and "false"'],
    ['custom-http-errors with a 3xx', { [`${ngx}custom-http-errors`]: '302' }, `${ngx}custom-http-errors`, '302', 'from 400 to 599'],
    ['default-backend in another namespace', { [`${ngx}default-backend`]: 'other/errors' }, `${ngx}default-backend`, 'other/errors', "Ingress's namespace"],
    ['satisfy some', { [`${ngx}satisfy`]: 'some' }, `${ngx}satisfy`, 'some', 'allowed are all, any'],
    ['app-root "/"', { [`${ngx}app-root`]: '/' }, `${ngx}app-root`, '/', 'other than "/"'],
    ['app-root protocol-relative', { [`${ngx}app-root`]: '//evil.example.com' }, `${ngx}app-root`, '//evil.example.com', 'other than "/"'],
    ['proxy-body-size with a unit nginx does not know', { [`${ngx}proxy-body-size`]: '8mb' }, `${ngx}proxy-body-size`, '8mb', 'such as 0 (no limit), 512, 100k, 8m or 1g'],
    ['auth-tls-error-page relative', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-error-page`]: '/help' }, `${ngx}auth-tls-error-page`, '/help', 'http or https'],
    ['auth-tls setting without auth-tls-secret', { [`${ngx}auth-tls-verify-client`]: 'on' }, `${ngx}auth-tls-verify-client`, 'on', 'auth-tls-secret, which is not set'],
  ];

  it.each(cases)('%s', (_name, annotations, key, value, allowed) => {
    const lastGoodVersion = web('a', { [`${np}limit-rps`]: '3' });
    for (const lastGood of [new Map(), new Map([['shop/a', lastGoodVersion]])]) {
      const { table, served } = compile([web('a', annotations), web('b', {})], { lastGood });
      const kept = lastGood.size > 0;
      expect(table.problems).toHaveLength(1);
      const [problem] = table.problems;
      expect([problem!.ingress, problem!.keptLastGood]).toEqual(['shop/a', kept]);
      // One sentence that names the annotation, its value and what is allowed.
      expect(problem!.reason).toContain(`annotation ${key} `);
      if (value !== '') expect(problem!.reason).toContain(quoted(value));
      expect(problem!.reason).toContain(allowed);
      expect(problem!.reason).not.toMatch(/[\x00-\x1f\x7f]/);
      expect(problem!.reason.split('. ')).toHaveLength(1);
      expect(served.get('shop/a')).toBe(kept ? lastGoodVersion : undefined);
      expect(table.ingresses.get('shop/a')?.rateLimit?.rps).toBe(kept ? 3 : undefined);
      expect(table.match('a.com', '/')?.ingress).toBe(kept ? 'shop/a' : undefined);
      expect(table.match('b.com', '/')?.ingress).toBe('shop/b');
    }
    // The same refusal from the policy reader itself: an AnnotationError with a stable code naming the annotation.
    let error: unknown;
    try {
      readPolicy('shop', annotations, defaults);
    } catch (e) {
      error = e;
    }
    expect(error instanceof AnnotationError && error.code === 'NETPLANE_INGRESS_ANNOTATION' && error.annotation === key).toBe(true);
  });

  it('does not read the Secrets of an Ingress that is not served', () => {
    const { table } = compile([web('a', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'kube-system/admin' })]);
    expect([table.secrets.size, table.problems.length]).toEqual([0, 1]);
  });
});

describe('client certificates guard hosts', () => {
  const tlsAuth = (secret: string, more: Record<string, string> = {}) => ({ [`${ngx}auth-tls-secret`]: secret, ...more });

  it('guard every rule of the host, from whichever Ingress, and only hosts they name', () => {
    const guarded = ingress('a', { namespace: 'shop', annotations: tlsAuth('ca'), rules: [rule('shop.com', 'Prefix / web:80'), rule('*.apps.com', 'Prefix / web:80')] });
    const other = ingress('b', { namespace: 'shop', rules: [rule('shop.com', 'Prefix /api api:80'), rule('open.com', 'Prefix / web:80'), rule('x.apps.com', 'Prefix / web:80')] });
    const { table } = compile([guarded, other]);
    expect(table.problems).toEqual([]);
    expect(table.secrets.has('shop/ca')).toBe(true);
    expect([...table.clientCas]).toEqual(['shop/ca']);
    expect(table.clientCert('shop.com')?.secret).toEqual({ namespace: 'shop', name: 'ca' });
    expect(table.clientCert('SHOP.com')?.verify).toBe('on');
    expect(table.match('shop.com', '/api')?.ingress).toBe('shop/b');
    expect(table.clientCert('open.com')).toBeUndefined();
    expect(table.clientCert('y.apps.com')?.secret.name).toBe('ca');
    // x.apps.com has rules of its own, so its requests never reach the guarded wildcard's rules.
    expect(table.clientCert('x.apps.com')).toBeUndefined();
    expect(table.clientCert('unknown.com')).toBeUndefined();
  });

  it('keep the oldest Ingress settings for a host; a different later one is a problem that names the first', () => {
    const first = ingress('c', { namespace: 'shop', created: '2020-01-01T00:00:00Z', annotations: tlsAuth('ca'), rules: [rule('shop.com', 'Prefix / web:80')] });
    const same = ingress('b', { namespace: 'shop', created: '2021-01-01T00:00:00Z', annotations: tlsAuth('ca'), rules: [rule('shop.com', 'Prefix /b web:80')] });
    const looser = ingress('a', { namespace: 'shop', created: '2022-01-01T00:00:00Z', annotations: tlsAuth('ca', { [`${ngx}auth-tls-verify-client`]: 'optional' }), rules: [rule('shop.com', 'Prefix /c web:80')] });
    const { table } = compile([looser, same, first]);
    expect(table.clientCert('shop.com')?.verify).toBe('on');
    expect([...table.clientCas]).toEqual(['shop/ca']);
    expect(table.problems.map((p) => [p.ingress, p.reason])).toEqual([['shop/a', 'the auth-tls settings for host "shop.com" are not used: Ingress shop/c, which is older (created 2020-01-01T00:00:00Z; this one 2022-01-01T00:00:00Z), set other ones for it, which guard the host']]);
    expect(table.match('shop.com', '/c')?.ingress).toBe('shop/a');
  });

  it.each([
    ['a rule without host', { rules: [rule('', 'Prefix / web:80')] }, 'spec.rules[0] has no host'],
    ['a default backend', { rules: [rule('shop.com', 'Prefix / web:80')], defaultBackend: backend('web:80') }, 'spec.defaultBackend cannot be guarded'],
  ])('refuse an Ingress with %s (no host name to ask by)', (_what, spec, reason) => {
    const { table } = compile([ingress('a', { namespace: 'shop', annotations: tlsAuth('ca'), ...spec })]);
    expect(table.problems).toHaveLength(1);
    expect(table.problems[0]!.reason).toContain(reason);
    expect(table.match('shop.com', '/')).toBeUndefined();
  });
});

describe('server-alias', () => {
  const alias = (name: string, aliases: string, rules = [rule(`${name}.com`, 'Prefix / web:80', 'Exact /api api:80')], tls?: object[]) =>
    ingress(name, { namespace: 'shop', annotations: { [`${ngx}server-alias`]: aliases }, rules, ...(tls ? { tls } : {}) });

  it("serves the first host's rules and certificate under every alias", () => {
    const { table } = compile([alias('a', 'www.a.com, A.example.org', [rule('a.com', 'Prefix / web:80', 'Exact /api api:80'), rule('b.com', 'Prefix / other:80')], [{ hosts: ['a.com'], secretName: 'a-tls' }])]);
    expect(table.problems).toEqual([]);
    for (const host of ['a.com', 'www.a.com', 'a.example.org']) {
      expect([host, table.match(host, '/x')?.backend.key, table.match(host, '/api')?.backend.key]).toEqual([host, 'shop/web:80', 'shop/api:80']);
      expect(table.tls(host)?.secret).toEqual({ namespace: 'shop', name: 'a-tls' });
    }
    // Only the first host is aliased.
    expect(table.match('www.a.com', '/x')?.backend.key).not.toBe('shop/other:80');
  });

  it("leaves another Ingress's rules for an alias host to that Ingress (the first in order keeps them)", () => {
    const owner = ingress('z-owner', { namespace: 'shop', rules: [rule('www.b.com', 'Prefix / owner:80')] });
    const { table } = compile([owner, alias('b', 'www.b.com')]);
    expect(table.match('www.b.com', '/')?.backend.key).toBe('shop/owner:80');
    expect(table.match('www.b.com', '/api')?.backend.key).toBe('shop/api:80');
    expect(table.problems.map((p) => p.ingress)).toEqual(['shop/b']);
  });

  it('serves a wildcard alias for one more label, as a wildcard host (ingress-nginx takes *.name into server_name)', () => {
    const { table } = compile([alias('w', '*.w.org', [rule('w.com', 'Prefix / web:80', 'Exact /api api:80')], [{ hosts: ['w.com'], secretName: 'w-tls' }])]);
    expect(table.problems).toEqual([]);
    for (const host of ['x.w.org', 'shop.w.org']) {
      expect([host, table.match(host, '/x')?.backend.key, table.match(host, '/api')?.backend.key, table.tls(host)?.secret]).toEqual([host, 'shop/web:80', 'shop/api:80', { namespace: 'shop', name: 'w-tls' }]);
    }
    expect([table.match('w.org', '/x'), table.match('a.b.w.org', '/x')]).toEqual([undefined, undefined]);
  });

  it('refuses an Ingress with aliases and no host rule', () => {
    const { table } = compile([alias('c', 'www.c.com', [rule('', 'Prefix / web:80')])]);
    expect(table.problems[0]?.reason).toContain('server-alias needs a rule with a host');
  });
});

describe('redirect codes outside 300–308: the default, as ingress-nginx, with a warning', () => {
  // [what, annotations, the status served, the annotation the warning names, its value]
  it.each([
    ['permanent-redirect-code 200', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}permanent-redirect-code`]: '200' }, 301, `${ngx}permanent-redirect-code`, '200'],
    ['permanent-redirect-code -1', { [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${np}permanent-redirect-code`]: '-1' }, 301, `${np}permanent-redirect-code`, '-1'],
    ['temporal-redirect-code 418', { [`${ngx}temporal-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect-code`]: '418' }, 302, `${ngx}temporal-redirect-code`, '418'],
    ['temporal-redirect-code 309', { [`${ngx}temporal-redirect`]: 'https://a.example.com/', [`${ngx}temporal-redirect-code`]: '309' }, 302, `${ngx}temporal-redirect-code`, '309'],
  ] as const)('%s: the default instead', (_name, annotations, status, key, value) => {
    const { table } = compile([web('a', annotations), web('b', {})]);
    expect(table.ingresses.get('shop/a')?.redirect).toEqual({ url: 'https://a.example.com/', status });
    expect(table.match('a.com', '/')?.policy.redirect?.status).toBe(status);
    expect(table.problems).toEqual([
      {
        ingress: 'shop/a',
        reason: `annotation ${key} is ${quoted(value)}, not a redirect status code (allowed are 301, 302, 303, 307, 308): the default ${status} is used, as ingress-nginx does`,
        keptLastGood: false,
        partly: true,
      },
    ]);
  });

  it('warns for the code that is read only: temporal-redirect wins, and permanent-redirect-code is not read', () => {
    const both = { [`${ngx}temporal-redirect`]: 'https://b.example.com/', [`${ngx}permanent-redirect`]: 'https://a.example.com/', [`${ngx}permanent-redirect-code`]: '999' };
    expect(policyOf(both)?.redirect).toEqual({ url: 'https://b.example.com/', status: 302 });
  });
});

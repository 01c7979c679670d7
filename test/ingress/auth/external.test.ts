import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import type { AuthResult } from '../../../ingress/auth/types.ts';
import type { ExternalAuthPolicy } from '../../../ingress/routes/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { freePort } from '../../helpers/ports.ts';
import { authRequest, Servers } from './fixtures.ts';

const servers = new Servers();
const opened: Authenticators[] = [];
afterEach(async () => {
  for (const a of opened.splice(0)) a.close();
  await servers.closeAll();
});

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An auth service that records what it was asked and answers with `respond`. */
async function authService(respond: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const url = await servers.start((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      respond(req, res);
    });
  });
  return { url: `${url}/verify?from=gateway`, seen };
}

function policy(url: string, over: Partial<ExternalAuthPolicy> = {}): ExternalAuthPolicy {
  return { type: 'external', url, method: 'GET', responseHeaders: ['X-User', 'x-email', 'X-Missing'], timeoutMs: 2000, ...over };
}

function authenticator(p: ExternalAuthPolicy) {
  const a = new Authenticators({ secrets: () => undefined, log: silentLogger() });
  opened.push(a);
  return a.get('team/app', p);
}

const answer =
  (status: number, headers: Record<string, string | string[]> = {}, body = '') =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, headers);
    res.end(body);
  };

describe('external auth verdicts', () => {
  const cases: Array<[string, (req: IncomingMessage, res: ServerResponse) => void, AuthResult]> = [
    [
      '200: allowed, with the listed response headers (case-insensitive), a missing one sent as none',
      answer(200, { 'X-User': 'alice', 'X-Email': 'alice@example.com', 'X-Other': 'not copied' }, 'ok'),
      { allow: true, upstreamHeaders: { 'X-User': 'alice', 'x-email': 'alice@example.com', 'X-Missing': [] } },
    ],
    ['204: allowed; a header sent empty is no header', answer(204, { 'x-user': 'bob', 'x-email': '' }), { allow: true, upstreamHeaders: { 'X-User': 'bob', 'x-email': [], 'X-Missing': [] } }],
    [
      '401: passed back with WWW-Authenticate',
      answer(401, { 'WWW-Authenticate': 'Bearer realm="sso"', 'X-User': 'ignored' }, 'no'),
      { allow: false, status: 401, headers: { 'www-authenticate': 'Bearer realm="sso"' }, reason: 'auth service answered 401' },
    ],
    [
      '401 with a sign-in Location',
      answer(401, { location: 'https://sso.example/login', 'www-authenticate': ['Basic realm="a"', 'Bearer'] }),
      {
        allow: false,
        status: 401,
        headers: { location: 'https://sso.example/login', 'www-authenticate': 'Basic realm="a", Bearer' },
        reason: 'auth service answered 401',
      },
    ],
    ['403: passed back', answer(403, {}, 'forbidden'), { allow: false, status: 403, headers: {}, reason: 'auth service answered 403' }],
    ['302 redirect: 500', answer(302, { location: '/elsewhere' }), { allow: false, status: 500, headers: {}, reason: 'auth service answered 302' }],
    ['404: 500', answer(404), { allow: false, status: 500, headers: {}, reason: 'auth service answered 404' }],
    ['500: 500', answer(500, {}, 'boom'), { allow: false, status: 500, headers: {}, reason: 'auth service answered 500' }],
    ['503: 500', answer(503), { allow: false, status: 500, headers: {}, reason: 'auth service answered 503' }],
    [
      '200 with two Set-Cookie headers: both kept, each whole',
      answer(200, { 'set-cookie': ['a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2'] }),
      { allow: true, upstreamHeaders: { 'X-User': [], 'x-email': [], 'X-Missing': [] }, setCookies: ['a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2'] },
    ],
    ['401 with a Set-Cookie', answer(401, { 'set-cookie': 'a=; Max-Age=0' }), { allow: false, status: 401, headers: {}, reason: 'auth service answered 401', setCookies: ['a=; Max-Age=0'] }],
    ['500 with a Set-Cookie', answer(500, { 'set-cookie': 'a=1' }), { allow: false, status: 500, headers: {}, reason: 'auth service answered 500', setCookies: ['a=1'] }],
  ];
  for (const [name, respond, want] of cases) {
    it(name, async () => {
      const { url } = await authService(respond);
      expect(await authenticator(policy(url)).check(authRequest())).toEqual(want);
    });
  }

  it('response bodies are drained, so connections are reused', async () => {
    const ports = new Set<number>();
    const { url } = await authService((req, res) => {
      ports.add(req.socket.remotePort!);
      res.end('x'.repeat(64 * 1024));
    });
    const auth = authenticator(policy(url));
    for (let i = 0; i < 10; i++) expect((await auth.check(authRequest())).allow).toBe(true);
    // The verdict does not wait for the body, so a check may start while the last body drains: a second
    // connection at most. An undrained body would pin its connection and need one per check.
    expect(ports.size).toBeLessThanOrEqual(2);
  });
});

describe('external auth failures', () => {
  it('a service that never answers: 503 after the timeout', async () => {
    const { url } = await authService(() => {});
    const auth = authenticator(policy(url, { timeoutMs: 300 }));
    const t = performance.now();
    const r = await auth.check(authRequest());
    const elapsed = performance.now() - t;
    expect(r).toMatchObject({ allow: false, status: 503, headers: {} });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
  });

  it('connection refused: 503', async () => {
    const auth = authenticator(policy(`http://127.0.0.1:${await freePort()}/verify`));
    expect(await auth.check(authRequest())).toMatchObject({ allow: false, status: 503 });
  });

  it('connection closed without an answer: 503', async () => {
    const { url } = await authService((req) => req.socket.destroy());
    expect(await authenticator(policy(url)).check(authRequest())).toMatchObject({ allow: false, status: 503 });
  });

  it('2xx whose body never ends: decided on the headers, without waiting for the body', async () => {
    const { url } = await authService((_req, res) => {
      res.writeHead(200, { 'x-user': 'slow' });
      res.write('partial');
    });
    const t = performance.now();
    const r = await authenticator(policy(url, { timeoutMs: 1500 })).check(authRequest());
    expect(r).toEqual({ allow: true, upstreamHeaders: { 'X-User': 'slow', 'x-email': [], 'X-Missing': [] } });
    expect(performance.now() - t).toBeLessThan(1000);
  });

  const misconfigured: Array<[string, Partial<ExternalAuthPolicy>]> = [
    ['url that is not a URL', { url: 'not a url' }],
    ['url that is not http(s)', { url: 'ftp://auth.example/' }],
    ['method with a space', { method: 'GET /x' }],
    ['response header that is not a name', { responseHeaders: ['X-Ok', 'bad name'] }],
  ];
  for (const [name, over] of misconfigured) {
    it(`${name}: 503`, async () => {
      expect(await authenticator(policy('http://127.0.0.1:1/', over)).check(authRequest())).toMatchObject({ allow: false, status: 503 });
    });
  }
});

describe('the subrequest', () => {
  it('carries the client’s headers minus hop-by-hop ones, and where the request was going', async () => {
    const { url, seen } = await authService(answer(200));
    const auth = authenticator(policy(url, { method: 'POST' }));
    const req = authRequest(
      {
        authorization: 'Bearer abc',
        cookie: 'session=1',
        'x-custom': 'kept',
        'x-private-hop': 'dropped',
        connection: 'keep-alive, X-Private-Hop',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        'content-length': '42',
        'proxy-authorization': 'Basic eDp5',
        upgrade: 'websocket',
        expect: '100-continue',
        'x-original-url': 'https://spoofed.example/',
        'x-forwarded-for': '10.9.9.9',
        'x-real-ip': '10.9.9.9',
      },
      { method: 'PUT', url: '/api/items?id=7&x=%20', host: 'app.example.com:8443', proto: 'http', clientIP: '198.51.100.4' },
    );
    expect((await auth.check(req)).allow).toBe(true);
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect([s.method, s.url, s.body]).toEqual(['POST', '/verify?from=gateway', '']);
    expect(s.headers).toMatchObject({
      'x-original-url': 'http://app.example.com:8443/api/items?id=7&x=%20',
      'x-original-method': 'PUT',
      'x-forwarded-for': '198.51.100.4',
      'x-forwarded-host': 'app.example.com:8443',
      'x-forwarded-proto': 'http',
      'x-real-ip': '198.51.100.4',
      authorization: 'Bearer abc',
      cookie: 'session=1',
      'x-custom': 'kept',
    });
    expect(s.headers.host).toBe(new URL(url).host);
    for (const gone of ['x-private-hop', 'keep-alive', 'te', 'transfer-encoding', 'proxy-authorization', 'upgrade', 'expect']) {
      expect(s.headers[gone], gone).toBeUndefined();
    }
    expect(s.headers['content-length'] ?? '0').toBe('0');
  });

  it('passes what the gateway verified of a client certificate, never the client-sent ssl-client-* headers', async () => {
    const { url, seen } = await authService(answer(200));
    const auth = authenticator(policy(url));
    const spoofed = { 'ssl-client-verify': 'SUCCESS', 'SSL-Client-Subject-DN': 'CN=admin', 'ssl-client-cert': 'x' };
    expect((await auth.check(authRequest(spoofed))).allow).toBe(true);
    expect((await auth.check(authRequest(spoofed, { clientCert: { 'ssl-client-verify': 'NONE' } }))).allow).toBe(true);
    const [plain, checked] = seen.map((s) => Object.keys(s.headers).filter((k) => k.startsWith('ssl-client-')).map((k) => `${k}: ${s.headers[k]}`));
    expect(plain).toEqual([]);
    expect(checked).toEqual(['ssl-client-verify: NONE']);
  });

  it('uses GET by default, with no body', async () => {
    const { url, seen } = await authService(answer(200));
    await authenticator(policy(url)).check(authRequest({}, { method: 'DELETE' }));
    expect([seen[0]?.method, seen[0]?.body, seen[0]?.headers['x-original-method']]).toEqual(['GET', '', 'DELETE']);
  });
});

describe('the subrequest, as ingress-nginx sends it', () => {
  it('says where it comes from (X-Sent-From), with the gateway’s own X-Original-URI and X-Scheme, never the client’s', async () => {
    const { url, seen } = await authService(answer(200));
    const spoofed = { 'x-sent-from': 'me', 'X-Original-URI': '/public', 'x-scheme': 'https' };
    await authenticator(policy(url)).check(authRequest(spoofed, { url: '/admin/users?id=7', proto: 'http' }));
    const h = seen[0]!.headers;
    expect([h['x-sent-from'], h['x-original-uri'], h['x-scheme']]).toEqual(['nginx-ingress-controller', '/admin/users?id=7', 'http']);
  });

  it('carries the X-Request-ID the request goes upstream with (ingress-nginx’s $req_id), not one the client sent', async () => {
    const { url, seen } = await authService(answer(200));
    const auth = authenticator(policy(url));
    await auth.check(authRequest({ 'x-request-id': 'from-client' }, { requestId: 'f3c3f0a2-gateway' }));
    await auth.check(authRequest({ 'x-request-id': 'from-client' }));
    expect(seen.map((s) => s.headers['x-request-id'])).toEqual(['f3c3f0a2-gateway', 'from-client']);
  });
});

describe('auth-proxy-set-headers and the headers ingress-nginx adds', () => {
  it('a ConfigMap naming X-Sent-From, X-Scheme or X-Request-ID sends its value, or none when empty', async () => {
    const { url, seen } = await authService(answer(200));
    const set = { 'x-sent-from': 'edge-a', 'x-scheme': '', 'x-request-id': 'fixed' };
    await authenticator(policy(url, { proxySetHeaders: set })).check(authRequest({ 'x-scheme': 'https' }, { requestId: 'gw-1' }));
    const h = seen[0]!.headers;
    expect([h['x-sent-from'], h['x-scheme'], h['x-request-id'], h['x-original-uri']]).toEqual(['edge-a', undefined, 'fixed', '/path?q=1']);
  });
});

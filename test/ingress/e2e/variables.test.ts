// nginx variables in auth-url, auth-signin and the redirect annotations through `netplane ingress` (audit 3, missing
// 1 and 6): oauth2-proxy's own example (`https://$host/oauth2/auth`, `.../start?rd=$escaped_request_uri`) asks the
// auth service at the route's host and sends the client to sign in there; a domain move keeps the path
// (`https://new.example.com$request_uri`); a client cannot point the auth subrequest at a host of its choosing; an
// unknown variable still takes the Ingress out of service, naming it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress fills in nginx variables as data', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  let auth: Server;
  /** What the auth service was asked: its Host header and URL. */
  const asked: { host: string | undefined; url: string | undefined; headers: IncomingHttpHeaders }[] = [];

  beforeAll(async () => {
    await web.start();
    // oauth2-proxy's /oauth2/auth: 202 with a user for "Bearer ok", else 401.
    auth = createServer((req, res) => {
      asked.push({ host: req.headers.host, url: req.url, headers: req.headers });
      if (req.headers.authorization === 'Bearer ok') res.writeHead(202, { 'x-auth-request-user': 'alice' }).end();
      else res.writeHead(401).end();
    });
    await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
    const port = (auth.address() as AddressInfo).port;
    const ing = (name: string, host: string | undefined, annotations: Record<string, string>) => ingressYaml({ name, ...(host ? { host } : {}), paths: [['Prefix', '/', 'web']], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        // `localhost` is the route's host, and where the auth service listens.
        ing('oauth', 'localhost', {
          [`${ngx}auth-url`]: `http://$host:${port}/oauth2/auth?rd=$escaped_request_uri`,
          [`${ngx}auth-signin`]: 'https://$host/oauth2/start?rd=$escaped_request_uri',
          [`${ngx}auth-response-headers`]: 'X-Auth-Request-User',
        }),
        // No host rule: `$host` would be whatever a client sends.
        ing('anyhost', undefined, { [`${ngx}auth-url`]: `http://$host:${port}/oauth2/auth` }),
        // oauth2-proxy style with its own return parameter and a fixed place to come back to.
        ing('returnto', 'returnto.test', {
          [`${ngx}auth-url`]: `http://127.0.0.1:${port}/oauth2/auth`,
          [`${ngx}auth-signin`]: 'https://login.example.com/start',
          [`${ngx}auth-signin-redirect-param`]: 'return_to',
          [`${ngx}auth-request-redirect`]: 'https://returnto.test/home',
        }),
        ing('moved', 'moved.test', { [`${ngx}permanent-redirect`]: 'https://new.example.com$request_uri' }),
        ing('split', 'split.test', { [`${ngx}temporal-redirect`]: '$scheme://www.${host}/v2$uri$is_args$args', [`${ngx}temporal-redirect-code`]: '307' }),
        ing('unknown', 'unknown.test', { [`${ngx}permanent-redirect`]: 'https://new.example.com/?u=$remote_user' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'moved.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await new Promise((r) => auth.close(r));
  });

  it('asks the auth service at the route\'s host, with the escaped URI, and passes its user upstream', async () => {
    asked.length = 0;
    const ok = await gw.get('localhost', '/orders/7?all=1', { headers: { authorization: 'Bearer ok' } });
    expect(ok.status).toBe(200);
    expect(echoOf(ok).headers['x-auth-request-user']).toBe('alice');
    expect(asked.map((a) => [a.host?.replace(/:\d+$/, ''), a.url])).toEqual([['localhost', '/oauth2/auth?rd=%2Forders%2F7%3Fall%3D1']]);
  });

  it('sends a client the auth service refuses to sign in at the same host, with where to come back', async () => {
    const r = await gw.get('localhost', '/orders/7?all=1');
    expect([r.status, r.headers.location]).toEqual([302, 'https://localhost/oauth2/start?rd=%2Forders%2F7%3Fall%3D1']);
  });

  it('under a rule without host, fails closed (503) rather than ask a host the client named', async () => {
    asked.length = 0;
    // (localhost has its own rule above; these reach only the rule without host.)
    for (const host of ['127.0.0.1', 'attacker.example', 'evil.localhost']) {
      const r = await gw.get(host, '/', { headers: { authorization: 'Bearer ok' } });
      expect([host, r.status]).toEqual([host, 503]);
    }
    expect(asked).toEqual([]);
  });

  it('names the return address with auth-signin-redirect-param, and sends the auth service auth-request-redirect', async () => {
    asked.length = 0;
    const r = await gw.get('returnto.test', '/orders/7?all=1');
    expect([r.status, r.headers.location]).toEqual([302, 'https://login.example.com/start?return_to=http%3A%2F%2Freturnto.test%2Forders%2F7%3Fall%3D1']);
    expect(asked.map((a) => a.headers['x-auth-request-redirect'])).toEqual(['https://returnto.test/home']);
    // Without the annotation the auth service gets the request's own URI, as before.
    asked.length = 0;
    await gw.get('localhost', '/orders/7?all=1', { headers: { authorization: 'Bearer ok' } });
    expect(asked.map((a) => a.headers['x-auth-request-redirect'])).toEqual(['/orders/7?all=1']);
  });

  it.each([
    ['moved.test', '/shop/cart?id=7', 301, 'https://new.example.com/shop/cart?id=7'],
    ['moved.test', '/', 301, 'https://new.example.com/'],
    ['split.test', '/a/b?x=1&y=2', 307, 'http://www.split.test/v2/a/b?x=1&y=2'],
    ['split.test', '/a', 307, 'http://www.split.test/v2/a'],
  ])('redirects %s%s with %i to %s', async (host, path, status, location) => {
    const r = await gw.get(host, path);
    expect([r.status, r.headers.location]).toEqual([status, location]);
  });

  it('refuses an Ingress whose URL uses a variable netplane does not fill in, naming it', async () => {
    // Not redirected: with its Ingress out of service, the rule without host answers (and fails closed).
    const r = await gw.get('unknown.test', '/');
    expect([r.status, r.headers.location]).toEqual([503, undefined]);
    expect(gw.output).toMatch(/Ingress default\/unknown: annotation nginx\.ingress\.kubernetes\.io\/permanent-redirect is [^\n]*\$remote_user is not a variable netplane fills in/);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="unknown",served="no"\} 1/);
  });
});

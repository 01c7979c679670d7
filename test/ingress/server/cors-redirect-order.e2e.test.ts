// enable-cors beside permanent-redirect / temporal-redirect / app-root, through `netplane ingress`. ingress-nginx's
// template writes the CORS block (whose preflight `return 204`) in the location before the location's
// `return <code> <url>` of a redirect annotation, and nginx's rewrite module runs them in that order: a preflight gets
// 204 and every other request the redirect, carrying the CORS headers. app-root is an `if ($uri = /)` at server level,
// which runs before the location's: it redirects a preflight for `/` too.
// The HTTPS redirect (ssl-redirect, force-ssl-redirect) comes after all of these: ingress-nginx makes it in Lua
// (lua_ingress.rewrite, a rewrite_by_lua, which nginx runs at the end of the rewrite phase, after the rewrite
// module's `if`/`return`), so a preflight over plain HTTP gets its 204, and a redirect annotation or app-root wins.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const origin = 'https://app.example.com';
const preflight = { origin, 'access-control-request-method': 'PUT' };

describe('a CORS preflight and the redirect annotations, in ingress-nginx’s order', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await web.start();
    const ca = await makeCert('Clients CA', ['clients-ca.test'], { isCa: true });
    const forced = { [`${ngx}force-ssl-redirect`]: 'true' };
    const cors = { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-origin`]: origin };
    const ing = (name: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        ing('moved', { ...cors, [`${ngx}permanent-redirect`]: 'https://new.example.com$request_uri' }),
        ing('away', { ...cors, [`${ngx}temporal-redirect`]: 'https://elsewhere.example.com/' }),
        ing('rooted', { ...cors, [`${ngx}app-root`]: '/app' }),
        ing('secure', { ...cors, ...forced }),
        ing('moved-secure', { ...cors, ...forced, [`${ngx}permanent-redirect`]: 'https://new.example.com$request_uri' }),
        ing('rooted-secure', { ...cors, ...forced, [`${ngx}app-root`]: '/app' }),
        ing('guarded', { ...cors, ...forced, [`${ngx}auth-tls-secret`]: 'clients-ca' }),
        `apiVersion: v1\nkind: Secret\nmetadata: { name: clients-ca, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(ca.cert)} }\n`,
      ].join('---\n'),
    );
    await gw.start([], { host: 'moved.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  const ask = async (host: string, method: string, path: string, headers: Record<string, string>) => {
    const r = await request(`http://127.0.0.1:${gw.http}${path}`, { method: method as 'GET', headers: { host, ...headers } });
    await r.body.text();
    return { status: r.statusCode, location: r.headers.location, allowOrigin: r.headers['access-control-allow-origin'], allowMethods: r.headers['access-control-allow-methods'] };
  };

  it.each([
    { host: 'moved.test', code: 301, location: 'https://new.example.com/a?b=1' },
    { host: 'away.test', code: 302, location: 'https://elsewhere.example.com/' },
  ])('$host: a preflight gets 204, other requests the $code with the CORS headers', async ({ host, code, location }) => {
    const pre = await ask(host, 'OPTIONS', '/a?b=1', preflight);
    expect([pre.status, pre.location, pre.allowOrigin]).toEqual([204, undefined, origin]);
    expect(pre.allowMethods).toBeDefined();
    expect(await ask(host, 'GET', '/a?b=1', { origin })).toMatchObject({ status: code, location, allowOrigin: origin });
    // An OPTIONS without an Origin is no preflight: redirected.
    expect(await ask(host, 'OPTIONS', '/a?b=1', {})).toMatchObject({ status: code, location });
  });

  it('app-root still redirects a preflight for / (a server-level rule in ingress-nginx), and not one for another path', async () => {
    expect(await ask('rooted.test', 'OPTIONS', '/', preflight)).toMatchObject({ status: 302, location: '/app' });
    expect(await ask('rooted.test', 'OPTIONS', '/x', preflight)).toMatchObject({ status: 204, allowOrigin: origin });
  });

  it('force-ssl-redirect: a preflight over plain HTTP gets 204, other requests the 308 with the CORS headers', async () => {
    const pre = await ask('secure.test', 'OPTIONS', '/a?b=1', preflight);
    expect([pre.status, pre.location, pre.allowOrigin]).toEqual([204, undefined, origin]);
    expect(pre.allowMethods).toBeDefined();
    const https = `https://secure.test:${gw.https}/a?b=1`;
    expect(await ask('secure.test', 'GET', '/a?b=1', { origin })).toMatchObject({ status: 308, location: https, allowOrigin: origin });
    expect(await ask('secure.test', 'OPTIONS', '/a?b=1', {})).toMatchObject({ status: 308, location: https });
  });

  it.each([
    // [host, method, path, headers, status, location (HTTPS: the host's HTTPS redirect)]
    ['moved-secure.test', 'GET', '/a?b=1', {}, 301, 'https://new.example.com/a?b=1'],
    ['moved-secure.test', 'OPTIONS', '/a', preflight, 204, undefined],
    ['rooted-secure.test', 'GET', '/', {}, 302, '/app'],
    ['rooted-secure.test', 'GET', '/x', {}, 308, 'HTTPS'],
    ['guarded.test', 'GET', '/x', {}, 308, 'HTTPS'],
    ['guarded.test', 'OPTIONS', '/x', preflight, 204, undefined],
  ] as const)('force-ssl-redirect after the others: %s %s %s', async (host, method, path, headers, status, location) => {
    const r = await ask(host, method, path, headers);
    expect([r.status, r.location]).toEqual([status, location === 'HTTPS' ? `https://${host}:${gw.https}${path}` : location]);
  });
});

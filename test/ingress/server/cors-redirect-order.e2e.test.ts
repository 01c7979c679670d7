// enable-cors beside permanent-redirect / temporal-redirect / app-root, through `netplane ingress`. ingress-nginx's
// template writes the CORS block (whose preflight `return 204`) in the location before the location's
// `return <code> <url>` of a redirect annotation, and nginx's rewrite module runs them in that order: a preflight gets
// 204 and every other request the redirect, carrying the CORS headers. app-root is an `if ($uri = /)` at server level,
// which runs before the location's: it redirects a preflight for `/` too.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const origin = 'https://app.example.com';
const preflight = { origin, 'access-control-request-method': 'PUT' };

describe('a CORS preflight and the redirect annotations, in ingress-nginx’s order', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await web.start();
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
});

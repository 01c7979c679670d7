// custom-http-errors through `netplane ingress`, as nginx's error_page takes errors: the listed statuses are answered
// by the default-backend (or the gateway's own page) whether the backend answered them or the gateway failed itself
// (502 for a refused connection, 504 for a backend too slow); with disable-proxy-intercept-errors "true" (nginx's
// proxy_intercept_errors off) the backend's own answers pass unchanged and only the gateway's failures are replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freePort } from '../../helpers/ports.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('custom-http-errors and disable-proxy-intercept-errors', () => {
  const web = new EchoBackend('web');
  const errors = new EchoBackend('errors');
  // A Service whose one endpoint refuses connections: the gateway answers 502 itself.
  const dead = new EchoBackend('dead');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await web.start();
    await errors.start();
    dead.port = await freePort();
    // /status/NNN answers NNN with a body of its own; /slow never answers (the gateway's 504).
    web.handler = (req, res) => {
      if (req.url === '/slow') return true;
      // An error whose body never ends: a promised 100,000 bytes, two sent.
      if (req.url === '/stall/503') {
        res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '100000' }).write('xx');
        return true;
      }
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(Number(m[1]), { 'content-type': 'text/plain' }).end(`upstream says ${m[1]}\n`);
      return true;
    };
    errors.handler = (req, res) => {
      res.writeHead(Number(req.headers['x-code'] ?? 500), { 'content-type': 'text/plain' }).end(`custom page for ${req.headers['x-code']}\n`);
      return true;
    };
    const listed = { [`${ngx}custom-http-errors`]: '502,503,504', [`${ngx}proxy-read-timeout`]: '1' };
    const passing = { ...listed, [`${ngx}disable-proxy-intercept-errors`]: 'true' };
    const ing = (name: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web'], ['Prefix', '/dead', 'dead']], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('errors', [errors]),
        serviceYaml('dead', [dead]),
        ing('intercepting', { ...listed, [`${ngx}default-backend`]: 'errors' }),
        ing('passing', { ...passing, [`${ngx}default-backend`]: 'errors' }),
        ing('passing-page', passing),
        ing('stalling', { [`${ngx}custom-http-errors`]: '503', [`${ngx}proxy-read-timeout`]: '60', [`${ngx}default-backend`]: 'errors' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'passing.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await errors.stop();
  });

  it.each([
    // [host, path, status, body]
    ['intercepting.test', '/status/503', 503, 'custom page for 503\n'],
    ['intercepting.test', '/dead', 502, 'custom page for 502\n'],
    ['intercepting.test', '/slow', 504, 'custom page for 504\n'],
    ['passing.test', '/status/503', 503, 'upstream says 503\n'],
    ['passing.test', '/status/502', 502, 'upstream says 502\n'],
    ['passing.test', '/dead', 502, 'custom page for 502\n'],
    ['passing.test', '/slow', 504, 'custom page for 504\n'],
    ['passing-page.test', '/status/504', 504, 'upstream says 504\n'],
  ])('%s%s: %i %j', async (host, path, status, body) => {
    const r = await gw.get(host, path);
    expect([r.status, r.text]).toEqual([status, body]);
  });

  it('answers an intercepted status at once, without waiting for the rest of the backend\'s body (nginx closes the upstream)', async () => {
    // The route's read timeout is 60 s: a gateway that reads the error body to its end answers only then.
    const r = await request(`http://127.0.0.1:${gw.http}/stall/503`, { headers: { host: 'stalling.test' }, signal: AbortSignal.timeout(10_000) });
    expect([r.statusCode, await r.body.text()]).toEqual([503, 'custom page for 503\n']);
    // The gateway still answers the next request on the same route as before.
    expect((await gw.get('stalling.test', '/status/503')).text).toBe('custom page for 503\n');
  });

  it("answers the gateway's own failures with its own page when no default-backend is named", async () => {
    const r = await gw.get('passing-page.test', '/dead');
    expect(r.status).toBe(502);
    expect(r.text).toContain('<title>502 Bad Gateway</title>');
  });

  it('serves the Ingresses, none taken out of service', async () => {
    expect(gw.output).not.toContain('disable-proxy-intercept-errors is');
    expect(await gw.metrics()).not.toMatch(/netplane_ingress_problems\{[^}]*\} 1/);
  });
});

// --default-backend-service through `netplane ingress`, as ingress-nginx's flag of that name: the Service (its first
// port, its ready endpoints) answers what no route takes — a host no rule names, a host's path no rule takes — after
// an Ingress's own defaultBackend; and the custom-http-errors of Ingresses without a default-backend annotation, with
// ingress-nginx's X-* headers. Without a ready endpoint, or without the Service, the gateway answers 404 itself (as
// ingress-nginx's default server does) and says why once; endpoints that come later are used at once.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml, type Echo } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress --default-backend-service', () => {
  const web = new EchoBackend('web');
  const home = new EchoBackend('own-home');
  const fallback = new EchoBackend('fallback');
  const gw = new GatewayProcess();
  const fallbackService = (backends: EchoBackend[]) => gw.write('fallback.yaml', serviceYaml('defaultbackend', backends, 'ingress-nginx'));
  /** As ingress-nginx's custom error pages: the status it is asked for (X-Code), else 200; the request echoed. */
  const errorPages: EchoBackend['handler'] = (req, res) => {
    const echo: Echo = { backend: 'fallback', method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    res.writeHead(Number(req.headers['x-code'] ?? 200), { 'content-type': 'application/json' }).end(JSON.stringify(echo));
    return true;
  };
  /** How many warnings the gateway logged that say `words`. */
  const warned = (words: string) => gw.output.split('\n').filter((l) => l.includes('"level":40') && l.includes(words)).length;

  beforeAll(async () => {
    await web.start();
    await home.start();
    await fallback.start();
    // /status/NNN answers NNN.
    web.handler = (req, res) => {
      const m = /^\/status\/(\d{3})(\?|$)/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(Number(m[1]), { 'content-type': 'text/plain' }).end(`upstream says ${m[1]}\n`);
      return true;
    };
    fallback.handler = errorPages;
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('own-home', [home]),
        ingressYaml({ name: 'site', host: 'site.test', paths: [['Prefix', '/app', 'web']] }),
        ingressYaml({ name: 'errors', host: 'errors.test', paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}custom-http-errors`]: '503' } }),
        `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: own, namespace: default }
spec:
  ingressClassName: netplane
  defaultBackend: { service: { name: own-home, port: { number: 80 } } }
  rules: [{ host: own.test, http: { paths: [{ path: /app, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }]
`,
      ].join('---\n'),
    );
    fallbackService([fallback]);
    await gw.start(['--default-backend-service', 'ingress-nginx/defaultbackend'], { host: 'site.test', path: '/app' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await home.stop();
    await fallback.stop();
  });

  it.each([
    // [host, target, backend]
    ['nothing.test', '/any/path?q=1', 'fallback'],
    ['site.test', '/other', 'fallback'],
    ['site.test', '/app/x', 'web'],
    // An Ingress's own defaultBackend answers its host's misses before the controller's.
    ['own.test', '/other', 'own-home'],
  ])('%s%s: %s', async (host, target, backend) => {
    const r = await gw.get(host, target);
    expect([r.status, echoOf(r).backend]).toEqual([200, backend]);
    // The request goes as it came: target, Host.
    expect([echoOf(r).url, echoOf(r).headers.host]).toEqual([target, host]);
  });

  it("sends custom-http-errors of an Ingress without a default-backend annotation to it, with ingress-nginx's headers", async () => {
    const r = await gw.get('errors.test', '/status/503?x=1', { headers: { accept: 'application/json', 'x-request-id': 'abc123' } });
    expect(r.status).toBe(503);
    const e = echoOf(r);
    expect([e.backend, e.method, e.url]).toEqual(['fallback', 'GET', '/?x=1']);
    const h = e.headers;
    expect([h['x-code'], h['x-format'], h['x-original-uri'], h['x-namespace'], h['x-ingress-name'], h['x-service-name'], h['x-service-port'], h['x-request-id'], h.host]).toEqual([
      '503', 'application/json', '/status/503?x=1', 'default', 'errors', 'web', '80', 'abc123', 'errors.test',
    ]);
    // Its own answers are passed on as they are: a 404 of the default backend is not asked for again.
    fallback.handler = undefined;
    try {
      expect(echoOf(await gw.get('nothing.test', '/')).headers['x-code']).toBeUndefined();
    } finally {
      fallback.handler = errorPages;
    }
  });

  it('answers 404 itself while the Service has no ready endpoint, says why once, and uses endpoints as they come', async () => {
    fallbackService([]);
    await waitFor('404 without endpoints', async () => (await gw.get('nothing.test', '/')).status === 404, 10_000, 50);
    expect((await gw.get('nothing.test', '/')).text).toBe('404 Not Found\n');
    expect((await gw.get('site.test', '/other')).status).toBe(404);
    // Custom errors then get the gateway's own page, of their own status.
    const page = await gw.get('errors.test', '/status/503');
    expect([page.status, page.text]).toEqual([503, expect.stringContaining('<title>503 Service Temporarily Unavailable</title>')]);
    await waitFor('the warning', async () => warned('has no ready endpoint at its first port, 80') === 1, 5000, 50);
    fallbackService([fallback]);
    await waitFor('the default backend again', async () => (await gw.get('nothing.test', '/')).status === 200, 10_000, 50);
    expect(echoOf(await gw.get('nothing.test', '/')).backend).toBe('fallback');
    expect(warned('has no ready endpoint')).toBe(1);
  });

  it('answers 404 while the Service is not there, and says so', async () => {
    rmSync(join(gw.dir, 'fallback.yaml'));
    await waitFor('404 without the Service', async () => (await gw.get('nothing.test', '/')).status === 404, 10_000, 50);
    await waitFor('the warning', async () => warned('Service ingress-nginx/defaultbackend (--default-backend-service) does not exist') === 1, 5000, 50);
    // The Ingresses are served all the same, and none of them has a problem.
    expect(echoOf(await gw.get('site.test', '/app')).backend).toBe('web');
    expect(await gw.metrics()).not.toMatch(/netplane_ingress_problems\{[^}]*\} 1/);
    fallbackService([fallback]);
    await waitFor('the default backend again', async () => (await gw.get('nothing.test', '/')).status === 200, 10_000, 50);
  });
});

// Canary Ingresses through `netplane ingress`: a canary is one more backend of the primary's route, so its requests
// get the primary's settings, as ingress-nginx documents ("all the other non-canary annotations will be ignored
// (inherited from the corresponding main ingress) except load-balance, upstream-hash-by, and annotations related to
// session affinity"): upstream-vhost, x-forwarded-prefix, proxy-read-timeout, proxy-body-size (chunked uploads too)
// and backend-protocol. Each case is asked of the primary and of the canary, which must agree.
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress canaries take the primary Ingress’s settings', () => {
  const main = new EchoBackend('main');
  const next = new EchoBackend('next');
  const tlsServers: Server[] = [];
  const gw = new GatewayProcess();

  /** An HTTPS backend that answers with its name (a plain-HTTP request to it fails). */
  async function httpsBackend(name: string): Promise<EchoBackend> {
    const pems = await makeCert(name);
    const server = createHttpsServer({ cert: pems.cert, key: pems.key }, (req, res) => res.end(JSON.stringify({ backend: name, url: req.url })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tlsServers.push(server);
    return { port: (server.address() as AddressInfo).port } as EchoBackend;
  }

  const canary = (name: string, host: string, service: string, annotations: Record<string, string> = {}) =>
    ingressYaml({ name, host, paths: [['Prefix', '/', service]], annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-by-header`]: 'X-Canary', ...annotations } });

  beforeAll(async () => {
    await main.start();
    await next.start();
    // `?delay=ms` answers late.
    for (const b of [main, next]) {
      b.handler = (req, res) => {
        const delay = /[?&]delay=(\d+)/.exec(req.url ?? '');
        if (!delay) return false;
        setTimeout(() => res.end(b.name), Number(delay[1]));
        return true;
      };
    }
    const [secureMain, secureNext] = [await httpsBackend('secure-main'), await httpsBackend('secure-next')];
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('main', [main]),
        serviceYaml('next', [next]),
        serviceYaml('secure-main', [secureMain]),
        serviceYaml('secure-next', [secureNext]),
        ingressYaml({
          name: 'can',
          host: 'can.test',
          paths: [['Prefix', '/', 'main']],
          annotations: { [`${ngx}upstream-vhost`]: 'internal.svc', [`${ngx}x-forwarded-prefix`]: '/pre', [`${ngx}proxy-read-timeout`]: '1', [`${ngx}proxy-body-size`]: '4m' },
        }),
        // Its own upstream-vhost and time-out are not used: the primary's are.
        canary('can-canary', 'can.test', 'next', { [`${ngx}upstream-vhost`]: 'canary.svc', [`${ngx}proxy-read-timeout`]: '30' }),
        ingressYaml({ name: 'sec', host: 'sec.test', paths: [['Prefix', '/', 'secure-main']], annotations: { [`${ngx}backend-protocol`]: 'HTTPS' } }),
        canary('sec-canary', 'sec.test', 'secure-next'),
      ].join('---\n'),
    );
    await gw.start([], { host: 'can.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await main.stop();
    await next.stop();
    for (const s of tlsServers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const sides: [string, Record<string, string>, string][] = [
    ['the primary', { 'x-canary': 'never' }, 'main'],
    ['the canary', { 'x-canary': 'always' }, 'next'],
  ];

  it.each(sides)('%s gets the primary’s upstream-vhost and x-forwarded-prefix', async (_side, headers, backend) => {
    const echo = echoOf(await gw.get('can.test', '/x', { headers }));
    expect([echo.backend, echo.headers.host, echo.headers['x-forwarded-prefix'], echo.headers['x-forwarded-host']]).toEqual([backend, 'internal.svc', '/pre', 'can.test']);
  });

  it.each(sides)('%s times out after the primary’s proxy-read-timeout (1 s, not 30 s or the 60 s default)', async (_side, headers) => {
    const t0 = performance.now();
    const r = await gw.get('can.test', '/x?delay=2500', { headers });
    expect(r.status).toBe(504);
    expect(performance.now() - t0).toBeLessThan(2400);
  });

  it.each(sides)('%s takes a 2 MiB chunked upload under the primary’s proxy-body-size 4m', async (_side, headers, backend) => {
    const body = Readable.from([Buffer.alloc(1 << 20, 'a'), Buffer.alloc(1 << 20, 'b')]);
    const r = await request(`http://127.0.0.1:${gw.http}/upload`, { method: 'POST', headers: { host: 'can.test', ...headers }, body });
    const text = await r.body.text();
    expect(r.statusCode).toBe(200);
    const echo = JSON.parse(text) as { backend: string; body: string; headers: Record<string, string> };
    expect([echo.backend, echo.body.length, echo.headers['transfer-encoding']]).toEqual([backend, 2 << 20, 'chunked']);
  });

  it('counts a canary\'s requests under the primary\'s Service, naming the canary upstream as ingress-nginx does (namespace-service-port)', async () => {
    await gw.get('can.test', '/m', { headers: { 'x-canary': 'always' } });
    await gw.get('can.test', '/m', { headers: { 'x-canary': 'never' } });
    const m = await gw.metrics();
    expect(m).toMatch(/nginx_ingress_controller_requests\{ingress="can",namespace="default",service="main",status="200",method="GET",canary="default-next-80"\} \d+/);
    expect(m).toMatch(/nginx_ingress_controller_requests\{ingress="can",namespace="default",service="main",status="200",method="GET",canary=""\} \d+/);
    // The duration histograms carry the same labels, canary included, as ingress-nginx's requestTags.
    expect(m).toMatch(/nginx_ingress_controller_request_duration_seconds_count\{ingress="can",namespace="default",service="main",status="200",method="GET",canary="default-next-80"\} \d+/);
    expect(m).toMatch(/nginx_ingress_controller_response_duration_seconds_count\{ingress="can",namespace="default",service="main",status="200",method="GET",canary=""\} \d+/);
    expect(m).not.toMatch(/nginx_ingress_controller_requests\{[^}]*service="next"/);
  });

  it.each([
    ['the primary', 'never', 'secure-main'],
    ['the canary', 'always', 'secure-next'],
  ])('%s is spoken to in the primary’s backend-protocol (HTTPS)', async (_side, value, backend) => {
    const r = await gw.get('sec.test', '/y', { headers: { 'x-canary': value } });
    expect([r.status, r.text]).toEqual([200, JSON.stringify({ backend, url: '/y' })]);
  });
});

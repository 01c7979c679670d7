// The default-backend annotation through `netplane ingress` when the route's Service has no endpoint: as in
// ingress-nginx ("This service will be used to handle the response when the configured service in the Ingress rule
// does not have any active endpoints"), the whole request goes to the default-backend and its answer is relayed —
// the maintenance page of an app scaled to 0. Without a default-backend, or when it has no endpoint either: 503.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress default-backend for a Service without endpoints', () => {
  const app = new EchoBackend('app');
  const errors = new EchoBackend('errors');
  const gw = new GatewayProcess();

  /** A Service without any EndpointSlice: scaled to 0. */
  const emptyService = (name: string) => serviceYaml(name, []);
  const ing = (name: string, service: string, annotations: Record<string, string> = {}) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', service]], annotations });

  beforeAll(async () => {
    await app.start();
    await errors.start();
    // The default-backend takes upgrades too, and says so.
    errors.server.on('upgrade', (req, socket) => socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: errors\r\nX-Url: ${req.url}\r\n\r\n`));
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        emptyService('down'),
        emptyService('down-too'),
        serviceYaml('errors', [errors]),
        ing('maint', 'down', { [`${ngx}default-backend`]: 'errors', [`${ngx}upstream-vhost`]: 'internal.svc' }),
        ing('plain', 'down'),
        ing('nowhere', 'down', { [`${ngx}default-backend`]: 'down-too' }),
        ing('live', 'app', { [`${ngx}default-backend`]: 'errors' }),
      ].join('---\n'),
    );
    gw.write('app.yaml', serviceYaml('app', [app]));
    await gw.start([], { host: 'live.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await app.stop();
    await errors.stop();
  });

  it('sends the whole request to the default-backend and relays its answer', async () => {
    const r = await gw.get('maint.test', '/shop/cart?id=7', { method: 'POST', body: 'order', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(200);
    const echo = echoOf(r);
    expect([echo.backend, echo.method, echo.url, echo.body, echo.headers.host, echo.headers['x-forwarded-host']]).toEqual(['errors', 'POST', '/shop/cart?id=7', 'order', 'internal.svc', 'maint.test']);
  });

  it.each([
    ['no default-backend', 'plain.test'],
    ['a default-backend without endpoints either', 'nowhere.test'],
  ])('answers 503 with %s', async (_what, host) => {
    expect((await gw.get(host, '/')).status).toBe(503);
  });

  it('relays an upgrade to the default-backend', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const s = connect(gw.http, '127.0.0.1', () =>
        s.write('GET /live HTTP/1.1\r\nHost: maint.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
      );
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 101/);
    expect(answer).toMatch(/X-Backend: errors/i);
  });

  it('follows the endpoints: the app while it has some, the default-backend while it has none', async () => {
    expect(echoOf(await gw.get('live.test', '/')).backend).toBe('app');
    gw.write('app.yaml', serviceYaml('app', []));
    await waitFor('the default-backend', async () => echoOf(await gw.get('live.test', '/')).backend === 'errors', 10_000, 50);
    gw.write('app.yaml', serviceYaml('app', [app]));
    await waitFor('the app again', async () => echoOf(await gw.get('live.test', '/')).backend === 'app', 10_000, 50);
    const log = gw.output.split('\n').find((l) => l.includes('"host":"live.test"') && l.includes('"defaultBackend":"default/errors:80"'));
    expect(log).toBeDefined();
  });
});

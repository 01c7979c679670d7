// custom-headers and auth-proxy-set-headers through `netplane ingress` from a manifests directory: the ConfigMap's
// headers on every response of the Ingress (the backend's, its errors, the gateway's own 503), replacing the
// backend's of the same name as more_set_headers does; the auth service gets its ConfigMap's headers; a ConfigMap
// that is missing or holds a bad header takes only its Ingress out of service (logged, counted), and it comes back,
// with the new headers, when the ConfigMap is written or fixed, without a restart.
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml, upgradeHead } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('headers from ConfigMaps, read from a manifests directory', () => {
  const web = new EchoBackend('web');
  const auth = new EchoBackend('auth');
  const gw = new GatewayProcess();
  /** The headers of each subrequest the auth service got. */
  const asked: Array<Record<string, string | string[] | undefined>> = [];
  const security = { 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'self'" };

  beforeAll(async () => {
    // /own answers with its own X-Frame-Options; /status/NNN answers NNN.
    web.handler = (req, res) => {
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      if (req.url === '/own') res.writeHead(200, { 'x-frame-options': 'SAMEORIGIN', 'x-backend': 'kept' });
      else if (m) res.writeHead(Number(m[1]), { 'content-type': 'text/plain' });
      else return false;
      res.end('web\n');
      return true;
    };
    auth.handler = (req, res) => {
      asked.push(req.headers);
      res.writeHead(req.headers['x-tenant'] === 'blue' && req.headers['x-deny'] === undefined ? 200 : 403);
      res.end();
      return true;
    };
    await web.start();
    // A WebSocket handshake answered with an X-Frame-Options of the backend's own.
    web.server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Frame-Options: SAMEORIGIN\r\nX-Backend: kept\r\n\r\n'));
    await auth.start();
    const noSsl = { [`${ngx}ssl-redirect`]: 'false' };
    gw.write('cluster.yaml', `${ingressClassYaml}---\n${serviceYaml('web', [web])}---\n${serviceYaml('empty', [])}`);
    gw.write('security.yaml', configMapYaml('security', security));
    gw.write('auth-headers.yaml', configMapYaml('auth-headers', { 'X-Tenant': 'blue', Cookie: '' }));
    gw.write(
      'ingresses.yaml',
      [
        ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}custom-headers`]: 'default/security' } }),
        ingressYaml({ name: 'down', host: 'down.test', paths: [['Prefix', '/', 'empty']], annotations: { ...noSsl, [`${ngx}custom-headers`]: 'default/security' } }),
        ingressYaml({ name: 'plain', host: 'plain.test', paths: [['Prefix', '/', 'web']], annotations: noSsl }),
        ingressYaml({ name: 'guarded', host: 'guarded.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}auth-url`]: `http://127.0.0.1:${auth.port}/check`, [`${ngx}auth-proxy-set-headers`]: 'default/auth-headers', [`${ngx}custom-headers`]: 'default/security' } }),
        ingressYaml({ name: 'later', host: 'later.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}custom-headers`]: 'default/later' } }),
      ].join(''),
    );
    await gw.start([], { host: 'shop.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await auth.stop();
  });

  it('adds the headers to the backend\'s answers, replacing its own of the same name, errors included', async () => {
    const r = await gw.get('shop.test', '/');
    expect([r.status, r.headers['x-frame-options'], r.headers['content-security-policy']]).toEqual([200, 'DENY', "default-src 'self'"]);
    expect(echoOf(r).backend).toBe('web');
    const own = await gw.get('shop.test', '/own');
    expect([own.headers['x-frame-options'], own.headers['x-backend']]).toEqual(['DENY', 'kept']);
    for (const status of [404, 500]) {
      const e = await gw.get('shop.test', `/status/${status}`);
      expect([e.status, e.headers['x-frame-options']]).toEqual([status, 'DENY']);
    }
  });

  it('adds them to a WebSocket handshake (101) too, replacing the backend\'s own, as more_set_headers does', async () => {
    const lines = (await upgradeHead(gw.http, 'shop.test')).split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(lines.filter((l) => /^x-frame-options:/i.test(l)).map((l) => l.toLowerCase())).toEqual(['x-frame-options: deny']);
    expect(lines.map((l) => l.toLowerCase())).toContain("content-security-policy: default-src 'self'");
    expect(lines).toContain('X-Backend: kept');
  });

  it('adds them over HTTP/2 as well', async () => {
    const session = connect(`https://127.0.0.1:${gw.https}`, { rejectUnauthorized: false, servername: 'shop.test' });
    try {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request({ ':path': '/own', ':authority': 'shop.test' });
        req.on('response', (h) => {
          req.resume();
          req.on('end', () => resolve(h));
        });
        req.on('error', reject);
      });
      expect([headers[':status'], headers['x-frame-options'], headers['x-backend']]).toEqual([200, 'DENY', 'kept']);
    } finally {
      session.close();
    }
  });

  it("adds them to the gateway's own answers too (503: no endpoint), and to no other Ingress's", async () => {
    const down = await gw.get('down.test', '/');
    expect(down.text).toContain('503 Service Temporarily Unavailable');
    expect([down.status, down.headers['x-frame-options']]).toEqual([503, 'DENY']);
    const plain = await gw.get('plain.test', '/');
    expect([plain.status, plain.headers['x-frame-options']]).toEqual([200, undefined]);
    expect((await gw.get('nowhere.test', '/')).headers['x-frame-options']).toBeUndefined();
  });

  it("sends the auth service the ConfigMap's headers in place of the client's (an empty value: none)", async () => {
    const r = await gw.get('guarded.test', '/', { headers: { 'x-tenant': 'red', cookie: 'session=secret' } });
    expect(r.status).toBe(200);
    const sub = asked.at(-1)!;
    expect([sub['x-tenant'], sub.cookie]).toEqual(['blue', undefined]);
    // The backend still gets the client's own headers: the ConfigMap is for the subrequest only.
    expect(echoOf(r).headers['x-tenant']).toBe('red');
    // The auth service's refusal carries the Ingress's custom-headers too.
    const refused = await gw.get('guarded.test', '/', { headers: { 'x-deny': '1' } });
    expect([refused.status, refused.headers['x-frame-options']]).toEqual([403, 'DENY']);
  });

  it('leaves out an Ingress whose ConfigMap is not there, logged and counted, and serves it once the ConfigMap is written', async () => {
    expect((await gw.get('later.test', '/')).status).toBe(404);
    expect(gw.output).toContain(`annotation ${ngx}custom-headers names ConfigMap default/later, which is not there`);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="later",served="no"\} 1/);
    gw.write('later.yaml', configMapYaml('later', { 'X-Later': 'yes' }));
    await waitFor('later.test served', async () => (await gw.get('later.test', '/')).status === 200, 5000, 50);
    expect((await gw.get('later.test', '/')).headers['x-later']).toBe('yes');
    expect(await gw.metrics()).not.toMatch(/netplane_ingress_problems\{[^}]*ingress="later"/);
  });

  it('applies a changed ConfigMap without a restart; one with a bad header takes only its Ingresses out, until it is fixed', async () => {
    gw.write('security.yaml', configMapYaml('security', { ...security, 'X-Frame-Options': 'SAMEORIGIN' }));
    await waitFor('the new value', async () => (await gw.get('shop.test', '/')).headers['x-frame-options'] === 'SAMEORIGIN', 5000, 50);
    // A value that would split the response: refused, never sent.
    gw.write('security.yaml', configMapYaml('security', { 'X-Frame-Options': 'DENY\r\nSet-Cookie: stolen=1' }));
    await waitFor('shop.test out of service', async () => (await gw.get('shop.test', '/')).status === 404, 5000, 50);
    expect((await gw.get('down.test', '/')).status).toBe(404);
    expect((await gw.get('plain.test', '/')).status).toBe(200);
    expect((await gw.get('later.test', '/')).status).toBe(200);
    await waitFor('the reason logged', () => gw.output.includes('names ConfigMap default/security, which cannot be used: the value of'), 2000, 50);
    gw.write('security.yaml', configMapYaml('security', { 'X-Frame-Options': 'DENY' }));
    await waitFor('shop.test back', async () => (await gw.get('shop.test', '/')).status === 200, 5000, 50);
    const r = await gw.get('shop.test', '/');
    expect([r.headers['x-frame-options'], r.headers['content-security-policy'], r.headers['set-cookie']]).toEqual(['DENY', undefined, undefined]);
  });
});

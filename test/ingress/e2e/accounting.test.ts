// What the gateway tells clients, backends and Prometheus when things go other than planned, over real sockets:
// an HTTP/2 upload the client cancels, a response the upstream cuts short, methods and streams a client makes up,
// the figures of plain-HTTP and upgraded requests, the affinity cookie's scope, HSTS on every HTTPS answer, and a
// sign-in return URL behind a TLS-terminating proxy.
import { connect as h2Connect, constants as h2c, type ClientHttp2Session } from 'node:http2';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml, listenLoopback } from './harness.ts';

/** A backend that records how each request body ended: 'complete' or 'aborted'; `/cut` sends half its body and resets. */
class RecordingBackend {
  readonly endings: string[] = [];
  server: Server;
  port = 0;
  constructor() {
    this.server = createServer((req: IncomingMessage, res) => {
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100000' });
        res.write(Buffer.alloc(1000, 97));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/ws-upgrade') return;
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        this.endings.push(`complete ${n}`);
        res.end('ok');
      });
      req.on('aborted', () => this.endings.push(`aborted ${n}`));
    });
    this.server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  }
  async start(): Promise<this> {
    this.port = await listenLoopback(this.server);
    return this;
  }
}

describe('netplane ingress: accounting and integrity', () => {
  const rec = new RecordingBackend();
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  let session: ClientHttp2Session;

  let auth: Server;
  let authPort = 0;

  beforeAll(async () => {
    // An external auth service that refuses everyone.
    auth = createServer((_req, res) => res.writeHead(401).end());
    await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
    authPort = (auth.address() as AddressInfo).port;
    await rec.start();
    await web.start();
    const cert = await makeCert('a.test', ['a.test', 'sticky.test', 'guard.test']);
    const users = `alice:${bcrypt.hashSync('wonderland', 4)}\n`;
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('rec', [rec as unknown as EchoBackend]),
        serviceYaml('web', [web, web]),
        tlsSecretYaml('a-tls', cert),
        `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${b64(users)} }\n`,
        ingressYaml({ name: 'a', host: 'a.test', paths: [['Prefix', '/', 'rec']], tlsSecret: 'a-tls' }),
        ingressYaml({ name: 'sticky', host: 'sticky.test', paths: [['Prefix', '/shop', 'web']], tlsSecret: 'a-tls', annotations: { 'nginx.ingress.kubernetes.io/affinity': 'cookie' } }),
        ingressYaml({
          name: 'guard',
          host: 'guard.test',
          paths: [['Prefix', '/', 'web']],
          tlsSecret: 'a-tls',
          annotations: { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' },
        }),
        ingressYaml({ name: 'signin', host: 'signin.test', paths: [['Prefix', '/', 'web']], annotations: { 'nginx.ingress.kubernetes.io/auth-url': `http://127.0.0.1:${authPort}/check`, 'nginx.ingress.kubernetes.io/auth-signin': 'https://login.test/start' } }),
      ].join('---\n'),
    );
    await gw.start(['--hsts', '1h', '--trusted-proxies', '127.0.0.1/32'], { host: 'guard.test' });
    session = h2Connect(`https://127.0.0.1:${gw.https}`, { servername: 'a.test', rejectUnauthorized: false });
  }, 30_000);

  afterAll(async () => {
    session?.close();
    await gw.stop();
    await web.stop();
    rec.server.closeAllConnections();
    await new Promise((r) => rec.server.close(r));
    await new Promise((r) => auth.close(r));
  });

  /** One HTTP/2 request on the shared session; resolves with status, headers, body length and the stream's reset code. */
  function h2(headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; bytes: number; rstCode: number }> {
    return new Promise((resolve, reject) => {
      const req = session.request({ ':authority': 'a.test', ...headers });
      let status = 0;
      let got: Record<string, unknown> = {};
      let bytes = 0;
      req.on('response', (h) => ((status = Number(h[':status'])), (got = h)));
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('close', () => resolve({ status, headers: got, bytes, rstCode: req.rstCode ?? 0 }));
      req.on('error', () => {});
      req.on('aborted', () => {});
      if (body) req.end(body);
      else req.end();
      void reject;
    });
  }

  it('an HTTP/2 upload the client cancels reaches the backend as aborted, not as a complete request', async () => {
    const req = session.request({ ':authority': 'a.test', ':method': 'POST', ':path': '/upload' });
    req.on('error', () => {});
    req.write(Buffer.alloc(50_000, 98));
    await new Promise((r) => setTimeout(r, 200));
    // destroy() resets the stream as a browser or curl cancelling does; close() would first end it (END_STREAM), after
    // which the body is complete and rightly forwarded as such.
    req.destroy();
    await waitFor('the backend to see the request end', async () => rec.endings.length > 0, 5000, 50);
    expect(rec.endings[0]).toMatch(/^aborted/);
    // A whole body still arrives whole.
    const done = await h2({ ':method': 'POST', ':path': '/upload' }, Buffer.alloc(30_000, 99));
    expect(done.status).toBe(200);
    expect(rec.endings.at(-1)).toBe('complete 30000');
  });

  it('a response the upstream cuts short is reset for the HTTP/2 client, not ended as complete', async () => {
    const r = await h2({ ':path': '/cut' });
    expect(r.status).toBe(200);
    expect(r.bytes).toBeLessThan(100_000);
    expect(r.rstCode).toBe(h2c.NGHTTP2_INTERNAL_ERROR);
  });

  it('caps concurrent HTTP/2 streams at 128 and counts made-up methods as OTHER', async () => {
    expect(session.remoteSettings.maxConcurrentStreams).toBe(128);
    await Promise.all(Array.from({ length: 20 }, (_, i) => h2({ ':method': `MADEUP${i}`, ':path': '/x' })));
    const m = await gw.metrics();
    expect(m).not.toMatch(/method="MADEUP/);
    expect(m).toMatch(/nginx_ingress_controller_requests\{[^}]*method="OTHER"[^}]*\} 20/);
  });

  it('counts the upstream time of plain-HTTP requests, and an upgrade as its relayed 101', async () => {
    const before = /nginx_ingress_controller_response_duration_seconds_count\{[^}]*ingress="guard"[^}]*\} (\d+)/.exec(await gw.metrics());
    for (let i = 0; i < 3; i++) expect((await gw.get('guard.test', '/', { headers: { authorization: `Basic ${b64('alice:wonderland')}` } })).status).toBe(200);
    const after = /nginx_ingress_controller_response_duration_seconds_count\{[^}]*ingress="guard"[^}]*\} (\d+)/.exec(await gw.metrics());
    expect(Number(after?.[1]) - Number(before?.[1] ?? 0)).toBe(3);
    await new Promise<void>((resolve, reject) => {
      const s = tcpConnect(gw.http, '127.0.0.1', () => s.write('GET /ws-upgrade HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
      s.on('data', (d) => {
        if (d.toString().startsWith('HTTP/1.1 101')) s.end();
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    await waitFor('the upgrade to be counted', async () => /nginx_ingress_controller_requests\{[^}]*ingress="a"[^}]*status="101"[^}]*\} 1/.test(await gw.metrics()), 3000, 50);
  });

  it("scopes the affinity cookie to the route's path and marks it Secure over HTTPS", async () => {
    const r = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const s = h2Connect(`https://127.0.0.1:${gw.https}`, { servername: 'sticky.test', rejectUnauthorized: false });
      const req = s.request({ ':authority': 'sticky.test', ':path': '/shop/cart' });
      req.on('response', (h) => {
        resolve(h);
        s.close();
      });
      req.on('error', reject);
      req.end();
    });
    expect(String(r['set-cookie'])).toMatch(/^INGRESSCOOKIE=[^;]+; Path=\/shop; HttpOnly; Secure$/);
  });

  it('sends HSTS with every HTTPS answer, refusals included, and counts a refusal under its route\'s Service', async () => {
    const refused = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const s = h2Connect(`https://127.0.0.1:${gw.https}`, { servername: 'guard.test', rejectUnauthorized: false });
      const req = s.request({ ':authority': 'guard.test', ':path': '/' });
      req.on('response', (h) => {
        resolve(h);
        s.close();
      });
      req.on('error', reject);
      req.end();
    });
    expect(refused[':status']).toBe(401);
    expect(refused['strict-transport-security']).toBe('max-age=3600');
    expect((await h2({ ':authority': 'nowhere.test', ':path': '/' })).headers['strict-transport-security']).toBe('max-age=3600');
    expect(await gw.metrics()).toMatch(/nginx_ingress_controller_requests\{ingress="guard",namespace="default",service="web",status="401"/);
  });

  it('builds the sign-in return URL with the scheme a trusted TLS-terminating proxy reports', async () => {
    const r = await gw.get('signin.test', '/orders?id=7', { headers: { 'x-forwarded-proto': 'https' } });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`https://login.test/start?rd=${encodeURIComponent('https://signin.test/orders?id=7')}`);
  });
});

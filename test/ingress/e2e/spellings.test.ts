// What a client can send that routing must not be fooled by, through `netplane ingress` over real sockets: other
// spellings of a guarded path, a Host that disagrees with HTTP/2's :authority or comes twice, absolute-form
// targets, oversized headers on the HTTPS listener, upgrades under the route's redirects and rewrites, and the
// X-Forwarded-* headers of a trusted load balancer in front.
import { connect as tcpConnect } from 'node:net';
import { connect as h2Connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';

/** Sends raw bytes and resolves with everything the gateway answered until it closed or went quiet. */
function raw(port: number, text: string, quietMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    let timer: NodeJS.Timeout | undefined;
    const s = tcpConnect(port, '127.0.0.1', () => s.write(text));
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    s.on('data', (d) => {
      got += d.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    });
    s.on('end', done);
    s.on('error', reject);
  });
}
const statusOf = (response: string) => Number(response.slice(9, 12));

/** The JSON body of a raw response, chunked or not. */
function bodyOf(response: string): unknown {
  const split = response.indexOf('\r\n\r\n');
  let body = response.slice(split + 4);
  if (/\r\ntransfer-encoding: chunked\r\n/i.test(response.slice(0, split + 2))) {
    let out = '';
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!(size > 0)) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    body = out;
  }
  return JSON.parse(body);
}

/** One HTTP/2 request over TLS with headers exactly as given; resolves with the status and body. */
function h2(port: number, servername: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request(headers);
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
    req.end();
  });
}

/** An HTTPS/1.1 request with extra headers; resolves with the status. */
function https1(port: number, servername: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const options: RequestOptions = { host: '127.0.0.1', port, servername, path: '/', headers: { host: servername, ...headers }, rejectUnauthorized: false };
    const req = httpsRequest(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('netplane ingress: other spellings of a request', () => {
  const web = new EchoBackend('web');
  const admin = new EchoBackend('admin');
  const gw = new GatewayProcess();
  let ws: Server;
  let wsPort = 0;

  beforeAll(async () => {
    await web.start();
    await admin.start();
    // A WebSocket endpoint that accepts every upgrade and says which target and Host it got.
    ws = createServer((_req, res) => res.end('not an upgrade'));
    ws.on('upgrade', (req, socket) => socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Url: ${req.url}\r\nX-Host: ${req.headers.host}\r\n\r\n`));
    await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
    wsPort = (ws.address() as AddressInfo).port;
    const shop = await makeCert('shop.test');
    const users = `alice:${bcrypt.hashSync('wonderland', 4)}\n`;
    const basic = { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users' };
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('admin', [admin]),
        serviceYaml('ws', [{ port: wsPort } as EchoBackend]),
        `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${b64(users)} }\n`,
        tlsSecretYaml('shop-tls', shop),
        ingressYaml({ name: 'public', host: 'app.test', paths: [['Prefix', '/', 'web']] }),
        ingressYaml({ name: 'private', host: 'app.test', paths: [['Prefix', '/admin', 'admin']], annotations: basic }),
        ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'shop-tls' }),
        ingressYaml({ name: 'shop-admin', host: 'shop.test', paths: [['Prefix', '/admin', 'admin']], annotations: basic }),
        ingressYaml({ name: 'socket', host: 'ws.test', paths: [['Prefix', '/app', 'ws']], annotations: { 'nginx.ingress.kubernetes.io/rewrite-target': '/', 'nginx.ingress.kubernetes.io/upstream-vhost': 'internal.ws' } }),
        ingressYaml({ name: 'moved', host: 'moved.test', paths: [['Prefix', '/', 'ws']], annotations: { 'nginx.ingress.kubernetes.io/permanent-redirect': 'https://例え.jp/パス' } }),
      ].join('---\n'),
    );
    await gw.start(['--trusted-proxies', '127.0.0.1/32', '--max-header-size', '4096'], { host: 'app.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await admin.stop();
    ws.closeAllConnections();
    await new Promise((r) => ws.close(r));
  });

  it.each(['/admin/users', '/%61dmin/users', '/admin%2fusers', '/.//admin/users', '//admin/users', '/x/../admin/users', '/ADMIN/../admin/users'])(
    '%s is the guarded route, whatever its spelling',
    async (path) => {
      expect(statusOf(await raw(gw.http, `GET ${path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n`))).toBe(401);
      const authorized = await gw.get('app.test', path, { headers: { authorization: `Basic ${b64('alice:wonderland')}` } });
      expect(echoOf(authorized).backend).toBe('admin');
    },
  );

  it('sends the backend the normalised path, an encoded slash kept encoded', async () => {
    const r = await raw(gw.http, `GET /%61dmin/a%2fb/./c?q=1 HTTP/1.1\r\nHost: app.test\r\nAuthorization: Basic ${b64('alice:wonderland')}\r\nConnection: close\r\n\r\n`);
    expect(bodyOf(r)).toMatchObject({ backend: 'admin', url: '/admin/a%2Fb/c?q=1' });
    expect(statusOf(await raw(gw.http, 'GET /a%00b HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'))).toBe(400);
  });

  it('refuses two Host headers, and an HTTP/2 Host that names another authority than :authority', async () => {
    expect(statusOf(await raw(gw.http, 'GET /admin HTTP/1.1\r\nHost: other.test\r\nHost: app.test\r\nConnection: close\r\n\r\n'))).toBe(400);
    expect((await h2(gw.https, 'shop.test', { ':path': '/admin', ':authority': 'shop.test', host: 'app.test' })).status).toBe(400);
    expect((await h2(gw.https, 'shop.test', { ':path': '/', ':authority': 'shop.test', host: 'shop.test' })).status).toBe(200);
    expect((await h2(gw.https, 'shop.test', { ':path': '/admin', ':authority': 'shop.test' })).status).toBe(401);
  });

  it('routes an absolute-form target by its own host, and an HTTP/1.0 request without Host by the host-less rules', async () => {
    expect(statusOf(await raw(gw.http, 'GET http://app.test/admin HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n'))).toBe(401);
    const r = await raw(gw.http, 'GET http://app.test/?x=1 HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n');
    expect(bodyOf(r)).toMatchObject({ backend: 'web', url: '/?x=1' });
    // No rule without a host here: 404, not 400.
    expect(statusOf(await raw(gw.http, 'GET / HTTP/1.0\r\n\r\n'))).toBe(404);
  });

  it('answers Expect: 100-continue only when the request is forwarded: a refused client never sends its body', async () => {
    const head = (auth: string) => `POST /admin/upload HTTP/1.1\r\nHost: app.test\r\n${auth}Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    const refused = await raw(gw.http, head(''));
    expect(statusOf(refused)).toBe(401);
    expect(refused).not.toContain('100 Continue');
    const answered = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = tcpConnect(gw.http, '127.0.0.1', () => s.write(head(`Authorization: Basic ${b64('alice:wonderland')}\r\n`)));
      s.on('data', (d) => {
        got += d.toString();
        if (got.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && got.length === 25) s.write('hello');
      });
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(answered.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200')).toBe(true);
    expect(bodyOf(answered.slice(25))).toMatchObject({ backend: 'admin', method: 'POST', body: 'hello' });
  });

  it('applies the header size limit on the HTTPS listener too, HTTP/1.1 and HTTP/2', async () => {
    const big = { 'x-big': 'a'.repeat(8000) };
    expect(await https1(gw.https, 'shop.test', {})).toBe(200);
    expect(await https1(gw.https, 'shop.test', big)).toBe(431);
    expect((await h2(gw.https, 'shop.test', { ':path': '/', ':authority': 'shop.test', ...big })).status).toBe(431);
  });

  it('upgrades go through the route: redirected to HTTPS for a TLS host, rewritten and re-hosted like requests', async () => {
    const upgrade = (host: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const toTls = await raw(gw.http, upgrade('shop.test', '/chat'));
    expect(statusOf(toTls)).toBe(308);
    expect(toTls).toMatch(/location: https:\/\/shop\.test:\d+\/chat/i);
    const relayed = await raw(gw.http, upgrade('ws.test', '/app/chat?room=1'));
    expect(statusOf(relayed)).toBe(101);
    expect(relayed).toContain('X-Url: /?room=1');
    expect(relayed).toContain('X-Host: internal.ws');
    const moved = await raw(gw.http, upgrade('moved.test', '/'));
    expect(statusOf(moved)).toBe(301);
    expect(moved).toMatch(/location: https:\/\/xn--r8jz45g\.jp\/%E3%83%91%E3%82%B9/i);
  });

  it('believes a trusted load balancer that it terminated TLS: no redirect loop, its proxy address appended to X-Forwarded-For', async () => {
    const r = await gw.get('shop.test', '/', { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'shop.test', 'x-forwarded-port': '443' } });
    expect(r.status).toBe(200);
    expect(echoOf(r).headers).toMatchObject({ 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9, 127.0.0.1', 'x-real-ip': '203.0.113.9', 'x-forwarded-port': '443' });
    expect(r.headers['strict-transport-security']).toBeUndefined();
    expect((await gw.get('shop.test', '/')).status).toBe(308);
  });
});

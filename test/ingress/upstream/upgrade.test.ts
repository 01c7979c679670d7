// Upgrade pass-through with real sockets: 101 and data both ways, non-101 answers, errors, TLS, affinity.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import { clientHead, upgradeRequestHead } from '../../../ingress/upstream/upgrade.ts';
import { Closer, backend, deadPort, gateway, httpsBackend, policy, sleep, stalledPort, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

const target = (over: Partial<IngressPolicy> = {}, headers: Record<string, string> = {}) => (req: IncomingMessage) => ({
  backend: 'ns/ws:80',
  policy: policy(over),
  path: req.url ?? '/',
  headers,
});

/** An upgrade server: answers 101 and echoes every byte (the `head` first), prefixed with nothing. */
function echoUpgrade(seen: { headers?: IncomingHttpHeaders; url?: string; head?: string }) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.headers = req.headers;
    seen.url = req.url;
    seen.head = head.toString();
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Up: 1\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  };
}

interface Upgraded {
  status: number;
  headers: IncomingHttpHeaders;
  socket?: Socket;
  body?: string;
}

/** An Upgrade request through the gateway; resolves with the 101 socket, or the non-101 response and its body. */
function upgradeRequest(port: number, path = '/ws', headers: Record<string, string> = {}): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'Upgrade', Upgrade: 'websocket', ...headers } });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, socket });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function readSome(socket: Socket, bytes: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const on = (c: Buffer) => {
      got += c.toString();
      if (got.length >= bytes) {
        socket.off('data', on);
        resolve(got);
      }
    };
    socket.on('data', on);
  });
}

describe('upgrade', () => {
  it('relays 101 and then data both ways, with the request head as the client sent it', async () => {
    const seen: { headers?: IncomingHttpHeaders; url?: string } = {};
    const b = await backend(closer, (_req, res) => res.end(), echoUpgrade(seen));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({}, { 'X-Forwarded-For': '198.51.100.7' }));
    const up = await upgradeRequest(g.port, '/chat?room=1', { Host: 'ws.example.test', 'Sec-WebSocket-Key': 'abc', 'Keep-Alive': '5', 'X-Forwarded-For': 'spoof' });
    expect(up.status).toBe(101);
    expect(up.headers['x-up']).toBe('1');
    expect(seen.url).toBe('/chat?room=1');
    expect(seen.headers).toMatchObject({ host: 'ws.example.test', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'abc', 'x-forwarded-for': '198.51.100.7' });
    expect(seen.headers?.['keep-alive']).toBeUndefined();
    const socket = up.socket as Socket;
    for (const message of ['hello', 'x'.repeat(200_000)]) {
      const echoed = readSome(socket, message.length);
      socket.write(message);
      expect(await echoed).toBe(message);
    }
    expect(u.endpoints('ns/ws:80')[0]?.inFlight).toBe(1);
    socket.end();
    await sleep(100);
    expect(g.results).toEqual([expect.objectContaining({ status: 101, attempts: 1, endpoint: `127.0.0.1:${b.port}` })]);
    expect(u.endpoints('ns/ws:80')[0]?.inFlight).toBe(0);
  });

  // Sent once the upstream has switched protocols, never with the request head (upgrade-smuggling.test.ts).
  it('passes the bytes that came with the request head, after the 101', async () => {
    const seen: { head?: string } = {};
    const b = await backend(closer, (_req, res) => res.end(), echoUpgrade(seen));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const { connect } = await import('node:net');
    const raw = connect(g.port, '127.0.0.1');
    const reply = readSome(raw, 1);
    raw.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY');
    let text = await reply;
    while (!text.includes('EARLY')) text += await readSome(raw, 1);
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(text.endsWith('\r\n\r\nEARLY')).toBe(true);
    expect(seen.head).toBe('');
    raw.destroy();
  });

  it('relays a non-101 answer and closes', async () => {
    const b = await backend(closer, (_req, res) => res.end(), (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nnope!\n');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await upgradeRequest(g.port);
    expect([got.status, got.body]).toEqual([403, 'nope!\n']);
    await sleep(50);
    expect(g.results[0]).toMatchObject({ status: 403, attempts: 1 });
  });

  it('relays a non-101 answer with a length even if the upstream keeps the connection open', async () => {
    const b = await backend(closer, (_req, res) => res.end(), (_req, socket) => {
      socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await upgradeRequest(g.port);
    expect([got.status, got.body]).toEqual([400, 'bad']);
  });

  it.each([
    { name: '503 without endpoints', setup: async () => [] as number[], over: {}, status: 503, error: 'NO_ENDPOINTS' },
    { name: '502 when refused', setup: async () => [await deadPort()], over: {}, status: 502, error: 'CONNECT_REFUSED' },
    { name: '504 on connect timeout', setup: async () => [await stalledPort(closer)], over: { connectTimeoutMs: 200 }, status: 504, error: 'CONNECT_TIMEOUT' },
  ])('$name', async ({ setup, over, status, error }) => {
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', (await setup()).map((port) => ({ ip: '127.0.0.1', port })), 'HTTP');
    const g = await gateway(closer, u, target(over));
    const got = await upgradeRequest(g.port);
    expect(got.status).toBe(status);
    expect(got.headers.connection).toBe('close');
    await sleep(20);
    expect(g.results[0]).toMatchObject({ status, error });
  });

  it('504 when the upstream does not answer the upgrade in time', async () => {
    const b = await backend(closer, (_req, res) => res.end(), () => {});
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 200 }));
    expect((await upgradeRequest(g.port)).status).toBe(504);
    await sleep(20);
    expect(g.results[0]).toMatchObject({ status: 504, error: 'READ_TIMEOUT' });
  });

  it('the read timeout runs between two reads of the answer head, as nginx\'s proxy_read_timeout: a head in pieces, longer in all, gets through', async () => {
    const pieces = ['HTTP/1.1 101 Switching Protocols\r\n', 'Upgrade: websocket\r\n', 'Connection: Upgrade\r\n', 'X-Up: 1\r\n', '\r\n'];
    const b = await backend(closer, (_req, res) => res.end(), (_req, socket) => pieces.forEach((p, i) => setTimeout(() => socket.write(p), i * 120)));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 200 }));
    const got = await upgradeRequest(g.port);
    expect([got.status, got.headers['x-up']]).toEqual([101, '1']);
    got.socket?.destroy();
  });

  it('retries a refused connect on another endpoint', async () => {
    const b = await backend(closer, (_req, res) => res.end(), echoUpgrade({}));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: await deadPort() }, { ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    for (let i = 0; i < 2; i++) {
      const got = await upgradeRequest(g.port);
      expect(got.status).toBe(101);
      got.socket?.destroy();
    }
    await sleep(50);
    expect(g.results.map((r) => r.attempts).sort()).toEqual([1, 2]);
  });

  it('over TLS to an HTTPS backend', async () => {
    const b = await httpsBackend(closer, (_req, res) => res.end(), echoUpgrade({}));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTPS');
    const g = await gateway(closer, u, target({ backendProtocol: 'HTTPS' }));
    const got = await upgradeRequest(g.port);
    expect(got.status).toBe(101);
    const socket = got.socket as Socket;
    const echoed = readSome(socket, 4);
    socket.write('ping');
    expect(await echoed).toBe('ping');
    socket.destroy();
  });

  it('sets the affinity cookie on the 101 and honours it', async () => {
    const a = await backend(closer, (_req, res) => res.end(), echoUpgrade({}));
    const c = await backend(closer, (_req, res) => res.end(), echoUpgrade({}));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [a, c].map((x) => ({ ip: '127.0.0.1', port: x.port })), 'HTTP');
    const g = await gateway(closer, u, target({ affinity: { cookieName: 'ws' } }));
    const first = await upgradeRequest(g.port);
    first.socket?.destroy();
    const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0] as string;
    expect(cookie).toMatch(/^ws=[0-9a-f]{16}$/);
    for (let i = 0; i < 3; i++) {
      const again = await upgradeRequest(g.port, '/ws', { Cookie: cookie });
      expect(again.headers['set-cookie']).toBeUndefined();
      again.socket?.destroy();
    }
    await sleep(50);
    expect(new Set(g.results.map((r) => r.endpoint)).size).toBe(1);
  });

  it('close() ends relayed connections', async () => {
    const b = await backend(closer, (_req, res) => res.end(), echoUpgrade({}));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await upgradeRequest(g.port);
    const closed = new Promise((r) => got.socket?.once('close', r));
    await u.close();
    await closed;
    await sleep(20);
    expect(g.results[0]?.status).toBe(101);
  });
});

describe('upgradeRequestHead', () => {
  const req = (raw: string[]) => ({ method: 'GET', rawHeaders: raw }) as unknown as IncomingMessage;
  const t = (path: string, headers: Record<string, string> = {}) => ({ backend: 'b', policy: policy(), path, headers });

  it.each([
    {
      name: 'keeps Upgrade, writes Connection: Upgrade, drops hop-by-hop',
      raw: ['Host', 'h', 'Connection', 'keep-alive, Upgrade', 'Upgrade', 'websocket', 'Keep-Alive', '5', 'Sec-WebSocket-Version', '13'],
      target: t('/ws'),
      want: 'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nConnection: Upgrade\r\n\r\n',
    },
    {
      name: 'applies the pipeline headers',
      raw: ['Host', 'h', 'X-Real-IP', 'spoof'],
      target: t('/', { 'X-Real-IP': '192.0.2.1' }),
      want: 'GET / HTTP/1.1\r\nHost: h\r\nX-Real-IP: 192.0.2.1\r\nConnection: Upgrade\r\n\r\n',
    },
    {
      name: 'drops the h2c token, keeps the others, and drops HTTP2-Settings',
      raw: ['Host', 'h', 'Connection', 'Upgrade, HTTP2-Settings', 'Upgrade', 'H2C, websocket', 'HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'],
      target: t('/'),
      want: 'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    },
    {
      name: 'drops an Upgrade line naming only h2c, keeps another',
      raw: ['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'h2c', 'upgrade', 'websocket'],
      target: t('/'),
      want: 'GET / HTTP/1.1\r\nHost: h\r\nupgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    },
  ])('$name', ({ raw, target, want }) => {
    expect(upgradeRequestHead(req(raw), target)).toBe(want);
  });

  it.each([
    { name: 'a path with a space', target: t('/a b') },
    { name: 'a header value with CRLF', target: t('/', { 'x-a': 'v\r\nInjected: 1' }) },
    { name: 'a header name that is not a token', target: t('/', { 'x a': 'v' }) },
  ])('refuses $name', ({ target }) => {
    const got = upgradeRequestHead(req(['Host', 'h']), target);
    expect(typeof got).not.toBe('string');
    expect((got as { code: string }).code).toBe('INVALID_REQUEST');
  });
});

describe('clientHead', () => {
  const date = 'Sat, 28 Nov 2026 04:00:00 GMT';
  it.each([
    {
      name: 'drops what nginx hides by default, any case, and writes the gateway’s Date',
      head: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nDATE: Mon, 01 Jan 2001 00:00:00 GMT\r\nServer: b/1\r\nX-Pad: p\r\nx-accel-redirect: /i\r\nX-Accel-Buffering: no\r\nX-Accel-Expires: 1\r\nX-Accel-Limit-Rate: 5\r\nX-Accel-Charset: utf-8\r\nX-Accel-Other: o\r\nConnection: Upgrade\r\n',
      want: `HTTP/1.1 101 Switching Protocols\r\nDate: ${date}\r\nUpgrade: websocket\r\nX-Accel-Other: o\r\nConnection: Upgrade\r\n`,
    },
    {
      name: 'drops the folded lines of a hidden header with it, keeps those of another',
      head: 'HTTP/1.1 200 OK\r\nServer: b\r\n  folded\r\nX-A: 1\r\n\t2\r\n',
      want: `HTTP/1.1 200 OK\r\nDate: ${date}\r\nX-A: 1\r\n\t2\r\n`,
    },
  ])('$name', ({ head, want }) => {
    expect(clientHead(Buffer.from(head, 'latin1'), date).toString('latin1')).toBe(want);
  });
});

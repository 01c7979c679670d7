// h2c smuggling (Bishop Fox, 2020): a client asks for `Upgrade: h2c` on an HTTP/1.1 request; a gateway that relays
// the upgrade and gets a 101 from a lax backend hands the client a tunnel to it, and every request inside the tunnel
// skips the gateway's routing, auth, limits and source ranges. The backend here switches on any h2c upgrade (as a
// lax h2c server does) and answers whatever arrives in the tunnel, so the test shows a `GET /admin` that only basic
// auth should let through. The gateway now serves such a request as a plain HTTP/1.1 request without the h2c token
// (and without HTTP2-Settings), on both listeners, and keeps other tokens of the same Upgrade header.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, GatewayProcess, ingressClassYaml, ingressYaml, listenLoopback, serviceYaml, type EchoBackend } from '../e2e/harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const settings = 'AAMAAABkAARAAAAAAAIAAAAA';

/** A response read off a raw connection: status, lower-case headers, body (by Content-Length; none for a 1xx). */
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Reads responses one by one off a raw connection. */
class Connection {
  readonly socket: Socket;
  #buffer = '';
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  /** Resolves with what is left unread once the connection has closed; rejects when it is still open after 5 s. */
  async closed(): Promise<string> {
    const deadline = Date.now() + 5000;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error(`still open after 5 s; unread: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 100);
      });
      this.#wake = null;
    }
    return this.#buffer;
  }

  /** The next whole response; rejects when the connection closes or nothing comes within 5 s. */
  async next(): Promise<Answer> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end !== -1) {
        const [line, ...fields] = this.#buffer.slice(0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const f of fields) headers[f.slice(0, f.indexOf(':')).trim().toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(line!)?.[1]);
        const length = status < 200 ? 0 : Number(headers['content-length'] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          const body = this.#buffer.slice(end + 4, end + 4 + length);
          this.#buffer = this.#buffer.slice(end + 4 + length);
          return { status, headers, body };
        }
      }
      if (this.#closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer)}`);
      if (Date.now() > deadline) throw new Error(`no whole answer in 5 s; unread: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 100);
      });
      this.#wake = null;
    }
  }
}

describe('Upgrade: h2c is not relayed', () => {
  const gw = new GatewayProcess();
  let backend: Server;
  let port = 0;
  /** Upgrade headers of the upgrades the backend got. */
  const upgrades: string[] = [];
  /** What reached the backend inside a tunnel it opened. */
  const tunnelled: string[] = [];
  /** What the backend got as plain requests: target, Upgrade, Connection and HTTP2-Settings. */
  const requests: { url: string; upgrade?: string; connection?: string; settings?: string }[] = [];
  /** The backend's switched connections, closed before the gateway stops (it drains relays). */
  const switched = new Set<Duplex>();

  beforeAll(async () => {
    // A lax h2c server: it switches on `Upgrade: h2c` (HTTP2-Settings or not), then answers each request it reads
    // in the tunnel (a real one would read HTTP/2 frames there; the request line is enough to show what got in).
    backend = createServer((req, res) => {
      requests.push({ url: req.url ?? '', upgrade: req.headers.upgrade, connection: req.headers.connection ?? '', settings: req.headers['http2-settings'] as string | undefined });
      res.end('plain\n');
    });
    backend.on('upgrade', (req, socket) => {
      const asked = req.headers.upgrade ?? '';
      upgrades.push(asked);
      const protocol = /h2c/i.test(asked) ? 'h2c' : 'websocket';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
      socket.on('data', (d: Buffer) => {
        for (const line of d.toString('latin1').split('\r\n').filter((l) => /^[A-Z]+ \S+ HTTP\//.test(l))) {
          tunnelled.push(line);
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nadmin secrets\n');
        }
      });
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
      switched.add(socket);
    });
    port = await listenLoopback(backend);
    const users = `alice:${execFileSync('openssl', ['passwd', '-apr1', 'wonderland']).toString().trim()}\n`;
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('app', [{ port } as EchoBackend]),
        `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${b64(users)} }\n`,
        ingressYaml({ name: 'public', host: 'app.test', paths: [['Prefix', '/', 'app']] }),
        ingressYaml({ name: 'private', host: 'app.test', paths: [['Prefix', '/admin', 'app']], annotations: { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users' } }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'app.test' });
  }, 30_000);

  afterAll(async () => {
    for (const s of switched) s.destroy();
    await gw.stop();
    backend.closeAllConnections();
    await new Promise((r) => backend.close(r));
  });

  /** A new connection to a listener: plain TCP, or TLS with ALPN http/1.1. */
  async function open(listener: 'http' | 'https'): Promise<Connection> {
    const { promise, resolve, reject } = Promise.withResolvers<Socket>();
    const s: Socket =
      listener === 'https'
        ? tlsConnect({ host: '127.0.0.1', port: gw.https, servername: 'app.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }, () => resolve(s))
        : tcpConnect(gw.http, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    return new Connection(await promise);
  }

  const h2cUpgrade = (upgrade: string) => `GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\nHTTP2-Settings: ${settings}\r\n\r\n`;
  const rejectedH2c = async () => Number(/netplane_ingress_rejected_total\{reason="h2c-upgrade"\} (\d+)/.exec(await gw.metrics())?.[1] ?? 0);

  it.each([
    ['http', 'h2c'],
    ['http', 'H2C'],
    ['https', 'h2c'],
  ] as const)('%s, Upgrade: %s: served as plain HTTP/1.1, the connection closed after it, and GET /admin still needs the password', async (listener, token) => {
    const [up, tun, req, counted] = [upgrades.length, tunnelled.length, requests.length, await rejectedH2c()];
    const c = await open(listener);
    // What a smuggler sends behind it: through a tunnel it would reach the backend, past basic auth. node:http drops
    // what was pipelined behind a request whose upgrade it declined, so the gateway closes the connection after the
    // answer: the client is not left waiting for an answer that will not come.
    c.socket.write(h2cUpgrade(token) + 'GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const first = await c.next();
    expect(await c.closed()).toBe('');
    expect({ first: first.status, close: first.headers.connection, upgrades: upgrades.slice(up), tunnelled: tunnelled.slice(tun) }).toEqual({ first: 200, close: 'close', upgrades: [], tunnelled: [] });
    expect(first.body).toBe('plain\n');
    expect(first.headers.upgrade).toBeUndefined();
    // The backend got a plain request: no Upgrade, no HTTP2-Settings, no Connection naming them.
    expect(requests.slice(req)).toEqual([{ url: '/', upgrade: undefined, connection: expect.not.stringMatching(/upgrade|settings/i), settings: undefined }]);
    expect(await rejectedH2c()).toBe(counted + 1);
    // Sent again on a new connection, as a client does after the close, it meets basic auth.
    const again = await open(listener);
    again.socket.write('GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n');
    expect((await again.next()).status).toBe(401);
    again.socket.destroy();
    expect(tunnelled.slice(tun)).toEqual([]);
  });

  it('a plain request on the same listener keeps its connection open', async () => {
    const c = await open('http');
    c.socket.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const [a, b] = [await c.next(), await c.next()];
    c.socket.destroy();
    expect([a.status, a.headers.connection, b.status, b.headers.connection]).toEqual([200, 'keep-alive', 200, 'keep-alive']);
  });

  it.each(['h2c, websocket', 'websocket, h2c'])('Upgrade: %s is relayed as Upgrade: websocket', async (value) => {
    const [up, tun] = [upgrades.length, tunnelled.length];
    const c = await open('http');
    c.socket.write(h2cUpgrade(value));
    expect((await c.next()).status).toBe(101);
    c.socket.destroy();
    expect(upgrades.slice(up)).toEqual(['websocket']);
    expect(tunnelled.slice(tun)).toEqual([]);
  });

  it('a WebSocket upgrade is relayed as before, and not counted', async () => {
    const [up, counted] = [upgrades.length, await rejectedH2c()];
    const c = await open('https');
    c.socket.write('GET /chat HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect((await c.next()).status).toBe(101);
    c.socket.destroy();
    expect(upgrades.slice(up)).toEqual(['websocket']);
    expect(await rejectedH2c()).toBe(counted);
  });
});

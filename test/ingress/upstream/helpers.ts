// Real backends, a tiny gateway around Upstreams, and a client, all on 127.0.0.1, for the upstream tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createH2Server, type Http2Server, type Http2Session } from 'node:http2';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { generate } from 'selfsigned';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import { Upstreams, type ForwardResult, type ForwardTarget } from '../../../ingress/upstream/upstreams.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { freePort } from '../../helpers/ports.ts';

/** An IngressPolicy with the defaults and quick timeouts, plus `over`. */
export function policy(over: Partial<IngressPolicy> = {}): IngressPolicy {
  return { sslRedirect: true, forceSslRedirect: false, backendProtocol: 'HTTP', maxBodyBytes: 0, connectTimeoutMs: 1000, readTimeoutMs: 5000, sendTimeoutMs: 5000, loadBalance: 'round_robin', ...over };
}

/** Servers and sockets to close after each test. */
export class Closer {
  #items: (() => Promise<void> | void)[] = [];
  add(fn: () => Promise<void> | void): void {
    this.#items.push(fn);
  }
  async closeAll(): Promise<void> {
    const items = this.#items.reverse();
    this.#items = [];
    for (const fn of items) await fn();
  }
}

/** Listens on 127.0.0.1:`port` (a fixed port of the test's range); on close, its connections are destroyed first. */
export async function listenOn(closer: Closer, server: Server, port: number): Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections?.();
  return new Promise((r) => server.close(() => r()));
}

/** A backend: node:http on 127.0.0.1; `upgrade` handles Upgrade requests. */
export async function backend(closer: Closer, handler: RequestListener, upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (upgrade) server.on('upgrade', upgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return closeServer(server);
  });
  return { port: (server.address() as AddressInfo).port, server, sockets };
}

/** An HTTPS backend with a fresh self-signed certificate. */
export async function httpsBackend(closer: Closer, handler: RequestListener, upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): Promise<{ port: number; snis: (string | false)[] }> {
  const pems = await generate([{ name: 'commonName', value: 'backend.test' }], { keyType: 'ec', algorithm: 'sha256' });
  const server = createHttpsServer({ cert: pems.cert, key: pems.private }, handler);
  const snis: (string | false)[] = [];
  server.on('secureConnection', (s) => snis.push((s as unknown as { servername: string | false }).servername));
  if (upgrade) server.on('upgrade', upgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => closeServer(server as unknown as Server));
  return { port: (server.address() as AddressInfo).port, snis };
}

/** A gateway: node:http calling upstreams.forward / upgrade with the target `route` gives; results recorded. */
export async function gateway(closer: Closer, upstreams: Upstreams, route: (req: IncomingMessage) => ForwardTarget): Promise<{ port: number; results: ForwardResult[] }> {
  const results: ForwardResult[] = [];
  const server = createServer((req, res) => {
    void upstreams.forward(req, res, route(req)).then((r) => results.push(r));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upstreams.upgrade(req, socket, head, route(req)).then((r) => results.push(r));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => closeServer(server));
  return { port: (server.address() as AddressInfo).port, results };
}

/**
 * An HTTP/2 gateway in clear (h2c with prior knowledge, as gRPC clients speak it) forwarding every request to
 * `target`, with the request's own path; results recorded.
 */
export async function h2Gateway(closer: Closer, upstreams: Upstreams, target: ForwardTarget): Promise<{ port: number; results: ForwardResult[] }> {
  const results: ForwardResult[] = [];
  const server: Http2Server = createH2Server((req, res) => void upstreams.forward(req, res, { ...target, path: req.url }).then((r) => results.push(r)));
  const sessions = new Set<Http2Session>();
  server.on('session', (s) => (sessions.add(s), s.once('close', () => sessions.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, results };
}

/**
 * A TCP relay to `port` for an HTTP/2 client that holds what the client sends until the client has been quiet for
 * `ms` milliseconds and then passes it on in one write (what the server sends goes back at once): frames a client
 * writes close together reach the server in one read. A batch whose last frame ends a stream (END_STREAM) is held
 * up to 1 s longer for what follows it: Node's client writes the RST_STREAM of a close only once the END_STREAM is
 * out, which on a busy machine can take longer than the quiet time.
 */
export async function batchingRelay(closer: Closer, port: number, ms: number): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    const frames = new FrameTracker();
    let held: Buffer[] = [];
    let since = 0;
    let timer: NodeJS.Timeout | undefined;
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => (clearTimeout(timer), inbound.destroy(), outbound.destroy()));
    }
    const flush = () => {
      if (frames.endsStream && performance.now() - since < 1000) return void (timer = setTimeout(flush, ms));
      outbound.write(Buffer.concat(held));
      held = [];
    };
    inbound.on('data', (d: Buffer) => {
      if (held.length === 0) since = performance.now();
      held.push(d);
      frames.feed(d);
      clearTimeout(timer);
      timer = setTimeout(flush, ms);
    });
    outbound.pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port };
}

/** Reads the frame headers of a client's HTTP/2 byte stream: whether the last whole frame so far ended a stream. */
class FrameTracker {
  #skip = 24; // the connection preface
  #header = Buffer.alloc(0);
  endsStream = false;

  feed(d: Buffer): void {
    let at = 0;
    while (at < d.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, d.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(9 - this.#header.length, d.length - at);
      this.#header = Buffer.concat([this.#header, d.subarray(at, at + n)]);
      at += n;
      if (this.#header.length < 9) return;
      const length = this.#header.readUIntBE(0, 3);
      const type = this.#header[3]!;
      // DATA or HEADERS with END_STREAM; anything else after it (RST_STREAM, WINDOW_UPDATE ...) releases the hold.
      this.endsStream = (type === 0 || type === 1) && (this.#header[4]! & 0x1) !== 0;
      this.#skip = length;
      this.#header = Buffer.alloc(0);
    }
  }
}

/** A fresh Upstreams with a silent logger, closed after the test. */
export function upstreamsFor(closer: Closer, options: Partial<ConstructorParameters<typeof Upstreams>[0]> = {}): Upstreams {
  const u = new Upstreams({ log: silentLogger(), ...options });
  closer.add(() => u.close());
  return u;
}

/** What a client got. */
export interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** One request with node:http; `agent: false` so each request has its own connection. */
export function get(port: number, path = '/', options: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A port on 127.0.0.1 whose listener's accept queue is full: connecting to it hangs (for connect timeouts). */
export async function stalledPort(closer: Closer): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, ['-e', "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((r) => child.stdout?.once('data', (d) => r(Number(String(d).trim()))));
  // A stopped process accepts nothing: after the backlog fills, the kernel drops further SYNs.
  process.kill(child.pid as number, 'SIGSTOP');
  const fillers = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 100));
  closer.add(() => {
    for (const f of fillers) f.destroy();
    child.kill('SIGKILL');
  });
  return port;
}

/** A port on 127.0.0.1 with nothing listening (connection refused): a free port, released. */
export const deadPort = freePort;

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

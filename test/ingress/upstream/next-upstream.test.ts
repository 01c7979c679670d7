// Which failed requests go to the next endpoint, as nginx's proxy_next_upstream "error timeout" (ingress-nginx's
// default) decides in ngx_http_upstream_next: any request not yet sent (connect refused, timed out, TLS handshake
// failed), whatever its method, its body handed to the next endpoint untouched; once sent, only an idempotent one
// without a body (netplane streams bodies, as nginx with proxy_request_buffering off), also after a read timeout
// while waiting for the response head. Real backends on 127.0.0.1, ports 63500-63599.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as h2connect, createServer as createH2Server, type Http2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import type { ForwardResult, ForwardTarget } from '../../../ingress/upstream/upstreams.ts';
import type { Upstreams } from '../../../ingress/upstream/upstreams.ts';
import { Closer, get, policy, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

// Ports of this file: nothing ever listens on 63500-63503 (REFUSED the first); each test uses a block of ten from BASE.
const REFUSED = 63500;
const BASE = 63510;
let block = 0;
function ports(): number[] {
  const first = BASE + 10 * (block++ % 8);
  return Array.from({ length: 10 }, (_, i) => first + i);
}

async function listen(server: Server, port: number): Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => (sockets.add(s), s.once('close', () => sockets.delete(s))));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
}

/** A backend that answers `METHOD body` once it has the whole body; `seen` lists what it answered. */
async function answering(port: number, seen: string[] = []): Promise<string[]> {
  await listen(createServer(echo(seen)), port);
  return seen;
}

function echo(seen: string[]): RequestListener {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push(`${req.method} ${body}`);
      res.end(`${req.method} ${body}`);
    });
  };
}

/** A backend that reads requests and never answers; counts them. */
async function hanging(port: number): Promise<{ hits: number; bodies: string[] }> {
  const state = { hits: 0, bodies: [] as string[] };
  await listen(
    createServer((req: IncomingMessage) => {
      state.hits++;
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => state.bodies.push(body));
    }),
    port,
  );
  return state;
}

/** A port whose listener's accept queue is full: a connect to it hangs (connect timeout). */
async function stalled(port: number): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen({port:${port},host:'127.0.0.1',backlog:1},()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout.once('data', r));
  process.kill(child.pid as number, 'SIGSTOP');
  const fillers = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 100));
  closer.add(() => {
    for (const f of fillers) f.destroy();
    child.kill('SIGKILL');
  });
}

/** A gateway on `port` forwarding every request to `ns/svc:80` with `over` in its policy; results recorded. */
async function gateway(port: number, u: Upstreams, over: Parameters<typeof policy>[0] = {}): Promise<ForwardResult[]> {
  const results: ForwardResult[] = [];
  const target = (req: IncomingMessage): ForwardTarget => ({ backend: 'ns/svc:80', policy: policy(over), path: req.url ?? '/', headers: {} });
  await listen(createServer((req, res) => void u.forward(req, res, target(req)).then((r) => results.push(r))), port);
  return results;
}

const at = (...list: number[]) => list.map((port) => ({ ip: '127.0.0.1', port }));
const sorted = (results: ForwardResult[]) => results.map((r) => r.attempts).sort();

describe('HTTPS backends (undici): a request with a body that failed after it was sent is answered', () => {
  // undici destroys a request body it failed to send; the client's connection is still open and gets the status
  // (it used to get nothing, logged as 499 CLIENT_ABORTED, and wait until it gave up).
  it.each([
    { what: 'a read timeout', status: 504, error: 'READ_TIMEOUT', hang: true },
    { what: 'a connection closed before answering', status: 502, error: 'CONNECTION_RESET', hang: false },
  ])('$what: $status', async ({ status, error, hang }) => {
    const [gw, tls] = ports() as [number, number];
    const pems = await generate([{ name: 'commonName', value: 'backend.test' }], { keyType: 'ec', algorithm: 'sha256' });
    const server = createHttpsServer({ cert: pems.cert, key: pems.private }, (req) => {
      req.resume();
      if (!hang) req.once('end', () => req.socket.destroy());
    });
    await listen(server as unknown as Server, tls);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(tls), 'HTTPS');
    const results = await gateway(gw, u, { backendProtocol: 'HTTPS', readTimeoutMs: 200 });
    const got = await get(gw, '/', { method: 'PUT', body: 'payload' });
    expect(got.status).toBe(status);
    expect(results[0]).toMatchObject({ status, attempts: 1, error });
  });
});

// Request bodies that stop midway over HTTP/1.1 backends (HTTP and HTTPS): a client that goes away mid-upload, over
// HTTP/1.1 or HTTP/2, and a body past proxy-body-size reach the backend as a request cut short (its connection
// closed before the body's end), never as a complete one. A refused upload's client gets its answer: an HTTP/1.1
// connection lingers, an HTTP/2 stream is reset with NO_ERROR after the answer.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { addAbortSignal } from 'node:stream';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bodySize, type Exchange as StepExchange, type GatewayState } from '../../../ingress/server/steps.ts';
import type { ForwardResult, ForwardTarget } from '../../../ingress/upstream/upstreams.ts';
import { waitFor } from '../../helpers/wait.ts';
import { Closer, backend, batchingRelay, gateway, h2Gateway, httpsBackend, policy, sleep, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

/** How a request body ended at the backend: complete, or cut with the byte count read. */
type Upload = 'complete' | 'cut';

/** What a recording backend saw: how each request body ended, its bytes, and the bytes read so far in all. */
interface Seen {
  uploads: Upload[];
  bytes: number[];
  received: number;
}

/** A backend handler that reads request bodies, never answers, and records how each body ended. */
function recording(seen: Seen): (req: IncomingMessage, res: ServerResponse) => void {
  return (req) => {
    let n = 0;
    req.on('data', (c: Buffer) => ((n += c.length), (seen.received += c.length)));
    req.on('close', () => {
      seen.uploads.push(req.complete ? 'complete' : 'cut');
      seen.bytes.push(n);
    });
  };
}

type Client = 'http1-close' | 'http2-close-cancel' | 'http2-rst-only';

/**
 * Starts a POST through the gateway on `port`, sends 1000 bytes, and once the backend has them (`arrived`), gives up
 * as `how` says: closes an HTTP/1.1 connection, closes an HTTP/2 stream with CANCEL (Node: END_STREAM, then
 * RST_STREAM), or resets it with RST_STREAM(CANCEL) alone.
 */
async function abandonUpload(port: number, how: Client, arrived: () => boolean): Promise<void> {
  const chunk = Buffer.alloc(1000, 0x62);
  if (how === 'http1-close') {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/up', agent: false, headers: { 'transfer-encoding': 'chunked' } });
    req.on('error', () => {});
    req.write(chunk);
    await waitFor('the upload to reach the backend', arrived);
    req.destroy();
    return;
  }
  // Through a relay that passes the client's bytes on after 10 ms of quiet: the END_STREAM and RST_STREAM of a close
  // reach the gateway in one read, as from another process or host.
  const relay = await batchingRelay(closer, port, 10);
  const session = h2connect(`http://127.0.0.1:${relay.port}`);
  session.on('error', () => {});
  closer.add(() => void session.destroy());
  const stream = session.request({ ':method': 'POST', ':path': '/up' });
  stream.on('error', () => {});
  stream.write(chunk);
  await waitFor('the upload to reach the backend', arrived);
  if (how === 'http2-close-cancel') stream.close(0x8);
  else {
    const abort = new AbortController();
    addAbortSignal(abort.signal, stream);
    abort.abort();
  }
}

/**
 * A POST without Content-Length (chunked over HTTP/1.1, a plain stream over HTTP/2) of 10 kB, then, once the backend
 * has them (`arrived`), `size` bytes more: the status.
 */
async function upload(port: number, http: 1 | 2, size: number, arrived: () => boolean): Promise<number> {
  const first = Buffer.alloc(10_000, 0x63);
  const rest = Buffer.alloc(size, 0x64);
  if (http === 1) {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/up', agent: false, headers: { 'transfer-encoding': 'chunked' } });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res: IncomingMessage) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on('error', reject);
    });
    req.write(first);
    await waitFor('the first bytes to reach the backend', arrived);
    req.end(rest);
    return status;
  }
  const session = h2connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  closer.add(() => void session.destroy());
  const stream = session.request({ ':method': 'POST', ':path': '/up' });
  stream.on('error', () => {});
  stream.resume();
  const status = new Promise<number>((resolve) => stream.on('response', (h) => resolve(Number(h[':status']))));
  stream.write(first);
  await waitFor('the first bytes to reach the backend', arrived);
  stream.end(rest);
  // More than the flow-control window: the client can only finish when the gateway resets its stream (NO_ERROR).
  await waitFor('the gateway to reset the client stream', () => stream.closed);
  expect(stream.rstCode).toBe(0);
  return status;
}

const target = (protocol: 'HTTP' | 'HTTPS', maxBodyBytes = 0): ForwardTarget => ({
  backend: 'ns/svc:80',
  policy: policy({ backendProtocol: protocol, maxBodyBytes }),
  path: '/up',
  headers: {},
});

/** A backend of `protocol` recording bodies, and a gateway for `http` clients in front of it. */
async function setup(protocol: 'HTTP' | 'HTTPS', http: 1 | 2, maxBodyBytes = 0): Promise<{ port: number; results: ForwardResult[]; seen: Seen }> {
  const seen: Seen = { uploads: [], bytes: [], received: 0 };
  const b = protocol === 'HTTP' ? await backend(closer, recording(seen)) : await httpsBackend(closer, recording(seen));
  const u = upstreamsFor(closer);
  u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], protocol);
  const g = http === 1 ? await gateway(closer, u, () => target(protocol, maxBodyBytes)) : await h2Gateway(closer, u, target(protocol, maxBodyBytes));
  return { ...g, seen };
}

/** A gateway that runs only the body-size step (a declared Content-Length over `limit` is refused), answering 204 otherwise. */
async function bodySizeGateway(limit: number): Promise<{ port: number }> {
  const server = createHttpServer((req, res) => {
    const x = { req, res, route: { policy: policy({ maxBodyBytes: limit }) } } as unknown as StepExchange;
    if (bodySize.run(x, {} as GatewayState) === 'next') res.writeHead(204).end();
  });
  const sockets = new Set<Socket>();
  server.on('connection', (c: Socket) => (sockets.add(c), c.once('close', () => sockets.delete(c))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const c of sockets) c.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port };
}

describe('request bodies that stop midway, over HTTP/1.1 backends', () => {
  it.each<[Client, 'HTTP' | 'HTTPS']>([
    ['http1-close', 'HTTP'],
    ['http1-close', 'HTTPS'],
    ['http2-close-cancel', 'HTTP'],
    ['http2-close-cancel', 'HTTPS'],
    ['http2-rst-only', 'HTTP'],
    ['http2-rst-only', 'HTTPS'],
  ])('a client that gives up mid-upload (%s) cuts the request at the %s backend: its connection closes mid-body', async (how, protocol) => {
    const g = await setup(protocol, how === 'http1-close' ? 1 : 2);
    await abandonUpload(g.port, how, () => g.seen.received === 1000);
    await waitFor('the backend request to close', () => g.seen.uploads.length === 1);
    expect(g.seen.uploads).toEqual(['cut']);
    await waitFor('the gateway to log the request', () => g.results.length === 1);
    expect(g.results[0]).toMatchObject({ status: 499, error: 'CLIENT_ABORTED' });
  });

  it.each<[1 | 2, 'HTTP' | 'HTTPS']>([
    [1, 'HTTP'],
    [1, 'HTTPS'],
    [2, 'HTTP'],
    [2, 'HTTPS'],
  ])('a streamed body past proxy-body-size from an HTTP/%i client: 413, and the %s backend sees the request cut', async (http, protocol) => {
    const g = await setup(protocol, http, 50_000);
    expect(await upload(g.port, http, 300_000, () => g.seen.received === 10_000)).toBe(413);
    await waitFor('the backend request to close', () => g.seen.uploads.length === 1);
    expect(g.seen.uploads).toEqual(['cut']);
    expect(g.seen.bytes[0]).toBeLessThanOrEqual(50_000);
    expect(g.results[0]).toMatchObject({ status: 413, error: 'BODY_TOO_LARGE' });
  });

  it.each([
    ['streamed, refused on its way upstream', 'chunked'],
    ['with a Content-Length over the limit, refused by the body-size step', 'declared'],
  ] as const)('an HTTP/1.1 client still sending after its upload (%s) was refused still reads the 413 (the connection lingers)', async (_what, how) => {
    const g: { port: number; results?: ForwardResult[] } = how === 'chunked' ? await setup('HTTP', 1, 50_000) : await bodySizeGateway(50_000);
    const socket = connect(g.port, '127.0.0.1');
    socket.on('error', () => {});
    // Not read until the upload is given up, as a client that sends its whole body first.
    socket.pause();
    socket.write(`POST /up HTTP/1.1\r\nHost: up.test\r\n${how === 'chunked' ? 'Transfer-Encoding: chunked' : 'Content-Length: 10000000'}\r\n\r\n`);
    const chunk = how === 'chunked' ? `${(16_384).toString(16)}\r\n${'e'.repeat(16_384)}\r\n` : 'e'.repeat(16_384);
    for (let i = 0; i < 40 && !socket.destroyed; i++) {
      socket.write(chunk);
      await sleep(5);
    }
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.resume();
    let closed = socket.destroyed;
    socket.once('close', () => (closed = true));
    await waitFor('the connection to close', () => closed);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    if (how === 'chunked') expect(g.results?.[0]).toMatchObject({ status: 413, error: 'BODY_TOO_LARGE' });
  });
});

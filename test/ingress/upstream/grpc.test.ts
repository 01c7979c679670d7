// gRPC backends (backend-protocol GRPC, GRPCS) through Upstreams: a real gRPC client (@grpc/grpc-js) speaks HTTP/2
// to a small gateway around Upstreams.forward, which speaks HTTP/2 to real gRPC servers, in clear (h2c) or over TLS.
import { createServer, createSecureServer, connect as h2connect, constants as h2, type ServerHttp2Stream } from 'node:http2';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { addAbortSignal } from 'node:stream';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import type { ForwardTarget } from '../../../ingress/upstream/upstreams.ts';
import { call, echoClient, echoService, failure, startEchoServer, type EchoServer } from './grpc-service.ts';
import { Closer, batchingRelay, deadPort, h2Gateway, httpsBackend, policy, sleep, stalledPort, upstreamsFor } from './helpers.ts';
import { waitFor } from '../../helpers/wait.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

/** A gRPC server closed after the test. */
async function echo(name: string, tls?: { cert: string; key: string }): Promise<EchoServer> {
  const s = await startEchoServer(name, tls);
  closer.add(() => s.stop());
  return s;
}

/** A TCP relay to `port` on 127.0.0.1 that counts the connections made through it. */
async function countingRelay(port: number): Promise<{ port: number; connections: number }> {
  const relay = { port: 0, connections: 0 };
  const sockets = new Set<Socket>();
  const server = createTcpServer((inbound) => {
    relay.connections++;
    const outbound = tcpConnect(port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => (inbound.destroy(), outbound.destroy()));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  relay.port = (server.address() as AddressInfo).port;
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return relay;
}

/** A client of the gateway, closed after the test. */
function client(port: number): grpc.Client {
  const c = echoClient(`127.0.0.1:${port}`);
  closer.add(() => c.close());
  return c;
}

const target = (backendProtocol: 'GRPC' | 'GRPCS', over: Partial<ForwardTarget['policy']> = {}): ForwardTarget => ({
  backend: 'default/grpc:50051',
  policy: policy({ backendProtocol, ...over }),
  path: '',
  headers: { 'x-forwarded-for': '127.0.0.1' },
});

describe('gRPC backends through Upstreams', () => {
  async function setup(protocol: 'GRPC' | 'GRPCS', over: Partial<ForwardTarget['policy']> = {}) {
    const pems = await generate([{ name: 'commonName', value: 'grpc.test' }], { keyType: 'ec', algorithm: 'sha256' });
    const server = await echo('one', protocol === 'GRPCS' ? { cert: pems.cert, key: pems.private } : undefined);
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: server.port }], protocol);
    const gw = await h2Gateway(closer, upstreams, target(protocol, over));
    return { server, upstreams, gw, c: client(gw.port) };
  }

  it.each(['GRPC', 'GRPCS'] as const)('%s: unary, server-, client- and bidi-streaming calls, with metadata both ways', async (protocol) => {
    const { c, server, gw } = await setup(protocol);
    const unary = await call(c, 'Unary', ['hello'], { metadata: { 'x-client': 'abc', 'x-blob-bin': Buffer.from([1, 2]) } });
    expect(unary).toMatchObject({ code: grpc.status.OK, messages: ['one: hello'], trailers: { 'x-trailer': 'done' } });
    expect(unary.headers).toMatchObject({ 'x-server': 'one', 'x-server-saw': 'abc', 'x-blob-bin': 'bin:0102ff' });
    expect(await call(c, 'Count', ['3'])).toMatchObject({ code: grpc.status.OK, messages: ['1', '2', '3'], trailers: { 'x-trailer': 'done' } });
    expect(await call(c, 'Collect', ['a', 'b', 'c'])).toMatchObject({ code: grpc.status.OK, messages: ['a+b+c'] });
    // Each message waits for the answer to the one before: only a relay streaming both ways at once completes it.
    expect(await call(c, 'Chat', ['x', 'y', 'z'], { turns: true })).toMatchObject({ code: grpc.status.OK, messages: ['re: x', 're: y', 're: z'], trailers: { 'x-trailer': 'done' } });
    expect(server.calls).toEqual(['Unary', 'Count', 'Collect', 'Chat']);
    expect(gw.results.map((r) => [r.status, r.grpcStatus, r.error])).toEqual(Array(4).fill([200, 0, undefined]));
  });

  it('relays a failure status and message intact, from Trailers-Only headers and from trailers after messages', async () => {
    const { c, gw } = await setup('GRPC');
    const failed = await call(c, 'Fail', ['x']);
    expect(failed).toMatchObject({ code: failure.code, details: failure.details, messages: [] });
    expect(failed.trailers).toMatchObject({ 'x-why': 'testing' });
    const cut = await call(c, 'Count', ['5']);
    expect(cut).toMatchObject({ code: grpc.status.OUT_OF_RANGE, details: 'stopped after 5', messages: ['1', '2', '3', '4', '5'] });
    expect(gw.results.map((r) => r.grpcStatus)).toEqual([failure.code, grpc.status.OUT_OF_RANGE]);
  });

  it('the backend answers Fail Trailers-Only (grpc-status in the one HEADERS frame that ends the stream)', async () => {
    // The case the relay must rewrite: checked against the backend directly, so the test above covers it.
    const server = await echo('one');
    const session = h2connect(`http://127.0.0.1:${server.port}`);
    closer.add(() => void session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/netplane.test.Echo/Fail', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(Buffer.from([0, 0, 0, 0, 1, 0x78]));
    const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((r) => stream.on('response', (h, f) => r([h, f])));
    expect(headers['grpc-status']).toBe(String(failure.code));
    expect(flags & h2.NGHTTP2_FLAG_END_STREAM).toBeTruthy();
  });

  it.each([
    ['no endpoint', 'none', grpc.status.UNAVAILABLE, 'NO_ENDPOINTS'],
    ['connection refused', 'refused', grpc.status.UNAVAILABLE, 'CONNECT_REFUSED'],
    ['connect time-out', 'stalled', grpc.status.UNAVAILABLE, 'CONNECT_TIMEOUT'],
  ] as const)('%s (%s): the gateway answers grpc-status %i itself, which the client reads as such', async (_what, kind, code, error) => {
    const upstreams = upstreamsFor(closer);
    const port = kind === 'refused' ? await deadPort() : kind === 'stalled' ? await stalledPort(closer) : 0;
    upstreams.setEndpoints('default/grpc:50051', kind === 'none' ? [] : [{ ip: '127.0.0.1', port }], 'GRPC');
    const gw = await h2Gateway(closer, upstreams, target('GRPC', { connectTimeoutMs: 300 }));
    const got = await call(client(gw.port), 'Unary', ['x']);
    expect(got.code).toBe(code);
    expect(got.details).not.toMatch(/HTTP status|RST_STREAM|without gRPC status/);
    expect(gw.results).toMatchObject([{ status: 200, grpcStatus: code, error }]);
  });

  it('a streamed request past proxy-body-size: RESOURCE_EXHAUSTED', async () => {
    // As nginx's client_max_body_size, the limit is on the whole request body: every message of a stream.
    const { c, server, gw } = await setup('GRPC', { maxBodyBytes: 100 });
    expect(await call(c, 'Collect', ['a'.repeat(40)])).toMatchObject({ code: grpc.status.OK });
    const got = await call(c, 'Collect', ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40)]);
    expect(got).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'the request is larger than proxy-body-size' });
    expect(gw.results[1]).toMatchObject({ status: 200, grpcStatus: grpc.status.RESOURCE_EXHAUSTED, error: 'BODY_TOO_LARGE' });
    expect(server.calls).toEqual(['Collect', 'Collect']);
  });

  it('a backend silent past proxy-read-timeout: DEADLINE_EXCEEDED', async () => {
    const { c, gw } = await setup('GRPC', { readTimeoutMs: 300 });
    const got = await call(c, 'Slow', ['x']);
    expect(got).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, details: 'the backend did not answer within proxy-read-timeout' });
    expect(gw.results).toMatchObject([{ status: 200, grpcStatus: grpc.status.DEADLINE_EXCEEDED, error: 'READ_TIMEOUT' }]);
  });

  it('balances calls over the endpoints and multiplexes them on one HTTP/2 connection per endpoint', async () => {
    const [a, b] = [await echo('a'), await echo('b')];
    const [ta, tb] = [await countingRelay(a.port), await countingRelay(b.port)];
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: ta.port }, { ip: '127.0.0.1', port: tb.port }], 'GRPC');
    const gw = await h2Gateway(closer, upstreams, target('GRPC'));
    const c = client(gw.port);
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => call(c, 'Unary', [String(i)])));
    expect(got.map((r) => r.code)).toEqual(Array(8).fill(grpc.status.OK));
    expect([a.calls.length, b.calls.length]).toEqual([4, 4]);
    expect([ta.connections, tb.connections]).toEqual([1, 1]);
    expect(upstreams.endpoints('default/grpc:50051').map((m) => m.inFlight)).toEqual([0, 0]);
  });

  it('a client that cancels its call cancels the backend call (its stream is reset, the backend told)', async () => {
    const { c, server, gw } = await setup('GRPC');
    const got = await call(c, 'Slow', ['x'], { deadlineMs: 300 });
    expect(got.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor('the backend call to be cancelled', () => server.cancelled.includes('Slow'));
    await waitFor('the gateway to log the call', () => gw.results.length === 1);
    expect(gw.results).toMatchObject([{ status: 499, error: 'CLIENT_ABORTED' }]);
  });

  it('sends TE: trailers upstream, also for a client that left it out', async () => {
    // A bare HTTP/2 backend in clear that tells which TE it got; the client is node:http2, sending no TE.
    const seen: unknown[] = [];
    const bare = createServer((req, res) => {
      seen.push(req.headers.te);
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    closer.add(() => new Promise<void>((r) => bare.close(() => r())));
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: (bare.address() as AddressInfo).port }], 'GRPC');
    const gw = await h2Gateway(closer, upstreams, target('GRPC'));
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    closer.add(() => void session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/netplane.test.Echo/Unary', 'content-type': 'application/grpc' });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
    stream.resume();
    const trailers = await new Promise<Record<string, unknown>>((r) => stream.on('trailers', (t) => r(t)));
    expect(trailers['grpc-status']).toBe('0');
    expect(seen).toEqual(['trailers']);
  });

  it('a GRPCS backend that does not choose HTTP/2 by ALPN fails the call UNAVAILABLE (TLS_FAILED)', async () => {
    const h1 = await httpsBackend(closer, (_req, res) => res.end('hello'));
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: h1.port }], 'GRPCS');
    const gw = await h2Gateway(closer, upstreams, target('GRPCS'));
    expect((await call(client(gw.port), 'Unary', ['x'])).code).toBe(grpc.status.UNAVAILABLE);
    expect(gw.results).toMatchObject([{ status: 200, grpcStatus: grpc.status.UNAVAILABLE, error: 'TLS_FAILED' }]);
  });

  it('a GRPC backend that speaks only HTTP/1.1 fails the call UNAVAILABLE, not with a broken stream', async () => {
    const { createServer: h1 } = await import('node:http');
    const plain = h1((_req, res) => res.end('hello'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    closer.add(() => new Promise<void>((r) => (plain.closeAllConnections(), plain.close(() => r()))));
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: (plain.address() as AddressInfo).port }], 'GRPC');
    const gw = await h2Gateway(closer, upstreams, target('GRPC'));
    expect((await call(client(gw.port), 'Unary', ['x'])).code).toBe(grpc.status.UNAVAILABLE);
  });
});

/**
 * How a stream to a bare HTTP/2 backend ended: its END_STREAM seen, the code it was closed with, and whether its
 * connection was still up then (a stream reset on its own, not closed with its connection).
 */
interface Seen {
  ended: boolean;
  rstCode?: number;
  connection?: 'up' | 'closing';
}

/**
 * A bare HTTP/2 backend in clear that never answers and records, per stream, whether END_STREAM came and the code
 * of the RST_STREAM that closed it. It reads request bodies; with `window: 'none'` it opens no flow-control window
 * (SETTINGS_INITIAL_WINDOW_SIZE 0), so only HEADERS arrive and a body stays in the gateway. Over TLS with `tls`.
 */
async function bareBackend(window: 'open' | 'none', tls?: { cert: string; key: string }): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const settings = window === 'none' ? { initialWindowSize: 0 } : {};
  const server = tls === undefined ? createServer({ settings }) : createSecureServer({ settings, ...tls });
  server.on('stream', (stream: ServerHttp2Stream) => {
    const s: Seen = { ended: false };
    seen.push(s);
    // Node ends a reset stream's readable side too, after 'aborted': only an end before any reset is END_STREAM.
    stream.on('end', () => (s.ended = !stream.aborted));
    const session = stream.session!;
    stream.on('close', () => {
      s.rstCode = stream.rstCode;
      s.connection = session.closed || session.destroyed ? 'closing' : 'up';
    });
    stream.on('error', () => {});
    stream.resume();
  });
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => (sessions.add(s), s.once('close', () => sessions.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

/** A gRPC frame (uncompressed) of `n` bytes of payload. */
function frame(n: number): Buffer {
  const f = Buffer.alloc(5 + n, 0x61);
  f[0] = 0;
  f.writeUInt32BE(n, 1);
  return f;
}

/**
 * Starts a Collect call, sends three messages 50 ms apart and a fourth, and cancels it at once, as grpc-js does:
 * Node's HTTP/2 client writes END_STREAM and then RST_STREAM(CANCEL).
 */
async function cancelledUpload(c: grpc.Client): Promise<void> {
  const def = echoService.Collect;
  const w = c.makeClientStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, () => {});
  for (let i = 0; i < 3; i++) {
    w.write(Buffer.from(`m${i}`));
    await sleep(50);
  }
  w.write(Buffer.from('last'));
  w.cancel();
}

describe('request bodies on gRPC routes: an upload that cannot be completed is reset upstream, never ended', () => {
  // A gRPC server on grpc-js emits 'end' on a call whose stream was reset as well as on one ended, so what reaches
  // the backend is read on the wire. From another process or host, the END_STREAM and RST_STREAM of a grpc-js cancel
  // mostly reach the gateway in one read; a relay that passes the client's bytes on after 10 ms of quiet makes sure
  // they do.
  it.each(['GRPC', 'GRPCS'] as const)('%s: a client-streaming call cancelled mid-upload: the backend stream gets RST_STREAM(CANCEL) and no END_STREAM', async (protocol) => {
    const pems = await generate([{ name: 'commonName', value: 'grpc.test' }], { keyType: 'ec', algorithm: 'sha256' });
    const bare = await bareBackend('open', protocol === 'GRPCS' ? { cert: pems.cert, key: pems.private } : undefined);
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: bare.port }], protocol);
    const gw = await h2Gateway(closer, upstreams, target(protocol));
    const c = client((await batchingRelay(closer, gw.port, 10)).port);
    for (let run = 1; run <= 3; run++) {
      await cancelledUpload(c);
      await waitFor(`upload ${run} to be closed at the backend`, () => bare.seen[run - 1]?.rstCode !== undefined);
    }
    expect(bare.seen).toEqual(Array(3).fill({ ended: false, rstCode: h2.NGHTTP2_CANCEL, connection: 'up' }));
  });

  it.each([
    ['past proxy-body-size', 'too-large', 'none'],
    ['that the client closes with CANCEL (END_STREAM queued behind its data, then RST_STREAM)', 'client-close', 'none'],
    ['that the client resets with RST_STREAM(CANCEL) alone, as Go and C gRPC clients do', 'client-reset', 'open'],
  ] as const)('an upload %s: the backend stream is reset with CANCEL, without END_STREAM', async (_what, how, window) => {
    const bare = await bareBackend(window);
    const upstreams = upstreamsFor(closer);
    upstreams.setEndpoints('default/grpc:50051', [{ ip: '127.0.0.1', port: bare.port }], 'GRPC');
    const gw = await h2Gateway(closer, upstreams, target('GRPC', { maxBodyBytes: 1000 }));
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    closer.add(() => void session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': '/netplane.test.Echo/Collect', 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => {});
    stream.resume();
    const trailers = new Promise<Record<string, unknown>>((r) => stream.on('trailers', (t) => r(t)));
    stream.write(frame(400));
    await waitFor('the request to reach the backend', () => bare.seen.length === 1);
    if (how === 'too-large') {
      stream.write(frame(400));
      stream.write(frame(400));
      expect((await trailers)['grpc-status']).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
      // The rest of the upload is refused: the client's stream is reset with NO_ERROR after the answer.
      await waitFor('the client stream to close', () => stream.closed);
      expect(stream.rstCode).toBe(h2.NGHTTP2_NO_ERROR);
    } else if (how === 'client-close') {
      stream.close(h2.NGHTTP2_CANCEL);
    } else {
      // Destroyed with an AbortError: RST_STREAM(CANCEL) and no END_STREAM.
      const abort = new AbortController();
      addAbortSignal(abort.signal, stream);
      abort.abort();
    }
    await waitFor('the backend stream to be reset', () => bare.seen[0]!.rstCode !== undefined);
    expect(bare.seen[0]).toEqual({ ended: false, rstCode: h2.NGHTTP2_CANCEL, connection: 'up' });
    await waitFor('the gateway to log the call', () => gw.results.length === 1);
    expect(gw.results[0]).toMatchObject(how === 'too-large' ? { status: 200, grpcStatus: grpc.status.RESOURCE_EXHAUSTED, error: 'BODY_TOO_LARGE' } : { status: 499, error: 'CLIENT_ABORTED' });
  });
});

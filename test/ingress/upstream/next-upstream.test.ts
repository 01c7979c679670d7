// Which failed requests go to the next endpoint, as nginx's proxy_next_upstream "error timeout" (ingress-nginx's
// default) decides in ngx_http_upstream_next: any request not yet sent (connect refused, timed out, TLS handshake
// failed), whatever its method, its body handed to the next endpoint untouched; once sent, only an idempotent one
// without a body (netplane streams bodies, as nginx with proxy_request_buffering off), also after a read timeout
// while waiting for the response head. Real backends on 127.0.0.1, ports 63500-63599.
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as h2connect, createServer as createH2Server, type Http2Session } from 'node:http2';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import type { ForwardResult, ForwardTarget } from '../../../ingress/upstream/upstreams.ts';
import type { Upstreams } from '../../../ingress/upstream/upstreams.ts';
import { Closer, get, listenOn, policy, stalledPort, upstreamsFor } from './helpers.ts';

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

const listen = (server: Server, port: number) => listenOn(closer, server, port);

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

/** A gateway on `port` forwarding every request to `ns/svc:80` with `over` in its policy; results recorded. */
async function gateway(port: number, u: Upstreams, over: Parameters<typeof policy>[0] = {}): Promise<ForwardResult[]> {
  const results: ForwardResult[] = [];
  const target = (req: IncomingMessage): ForwardTarget => ({ backend: 'ns/svc:80', policy: policy(over), path: req.url ?? '/', headers: {} });
  await listen(createServer((req, res) => void u.forward(req, res, target(req)).then((r) => results.push(r))), port);
  return results;
}

const at = (...list: number[]) => list.map((port) => ({ ip: '127.0.0.1', port }));
const sorted = (results: ForwardResult[]) => results.map((r) => r.attempts).sort();

describe('next upstream: a request not yet sent goes to the next endpoint, whatever its method and body', () => {
  it.each<{ method: string; headers: Record<string, string> }>([
    { method: 'POST', headers: {} },
    { method: 'PATCH', headers: {} },
    { method: 'POST', headers: { 'transfer-encoding': 'chunked' } },
    { method: 'LOCK', headers: {} },
  ])('$method $headers with a body after a refused connect', async ({ method, headers }) => {
    const [gw, live] = ports() as [number, number];
    const seen = await answering(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(REFUSED, live), 'HTTP');
    const results = await gateway(gw, u);
    const got = [];
    // Round robin: one of the two goes to the refusing endpoint first.
    for (let i = 0; i < 2; i++) got.push(await get(gw, '/', { method, headers, body: `data${i}` }));
    expect(got.map((g) => [g.status, g.body])).toEqual([[200, `${method} data0`], [200, `${method} data1`]]);
    expect(seen).toEqual([`${method} data0`, `${method} data1`]);
    expect(sorted(results)).toEqual([1, 2]);
    // As before: the refused connect is a try and the endpoint's failure.
    expect(u.endpoints('ns/svc:80').find((e) => e.port === REFUSED)?.failures).toBe(1);
  });

  it('a POST with a body after a connect timeout', async () => {
    const [gw, live] = ports() as [number, number];
    const slow = await stalledPort(closer);
    const seen = await answering(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(slow, live), 'HTTP');
    const results = await gateway(gw, u, { connectTimeoutMs: 200 });
    for (let i = 0; i < 2; i++) expect((await get(gw, '/', { method: 'POST', body: `b${i}` })).body).toBe(`POST b${i}`);
    expect(seen).toEqual(['POST b0', 'POST b1']);
    expect(sorted(results)).toEqual([1, 2]);
  });

  it('a POST with a body after a failed TLS handshake (undici)', async () => {
    const [gw, plain, tls] = ports() as [number, number, number];
    await listen(createServer((_req, res) => res.end('plain')), plain);
    const pems = await generate([{ name: 'commonName', value: 'backend.test' }], { keyType: 'ec', algorithm: 'sha256' });
    const seen: string[] = [];
    await listen(createHttpsServer({ cert: pems.cert, key: pems.private }, echo(seen)) as unknown as Server, tls);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(plain, tls), 'HTTPS');
    const results = await gateway(gw, u, { backendProtocol: 'HTTPS' });
    for (let i = 0; i < 2; i++) expect((await get(gw, '/', { method: 'POST', body: `t${i}` })).body).toBe(`POST t${i}`);
    expect(seen).toEqual(['POST t0', 'POST t1']);
    expect(sorted(results)).toEqual([1, 2]);
    expect(results.every((r) => r.endpoint === `127.0.0.1:${tls}` && r.status === 200)).toBe(true);
  });

  it('an HTTP/2 client\'s POST with a body (the body through UpstreamBody) after a refused connect', async () => {
    const [gw, live] = ports() as [number, number];
    const seen = await answering(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(REFUSED, live), 'HTTP');
    const results: ForwardResult[] = [];
    const server = createH2Server((req, res) => void u.forward(req, res, { backend: 'ns/svc:80', policy: policy(), path: req.url, headers: {} }).then((r) => results.push(r)));
    const sessions = new Set<Http2Session>();
    server.on('session', (s) => (sessions.add(s), s.once('close', () => sessions.delete(s))));
    await new Promise<void>((r) => server.listen(gw, '127.0.0.1', r));
    closer.add(() => {
      for (const s of sessions) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const session = h2connect(`http://127.0.0.1:${gw}`);
    closer.add(() => void session.destroy());
    const post = (body: string) =>
      new Promise<[number, string]>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/' });
        let status = 0;
        let text = '';
        s.on('response', (h) => (status = Number(h[':status']))).setEncoding('utf8');
        s.on('data', (c: string) => (text += c)).on('end', () => resolve([status, text])).on('error', reject);
        s.end(body);
      });
    expect([await post('h0'), await post('h1')]).toEqual([[200, 'POST h0'], [200, 'POST h1']]);
    expect(seen).toEqual(['POST h0', 'POST h1']);
    expect(sorted(results)).toEqual([1, 2]);
  });

  it('makes at most proxy-next-upstream-tries attempts, a POST with a body too', async () => {
    const [gw] = ports() as [number];
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(REFUSED, REFUSED + 1, REFUSED + 2, REFUSED + 3), 'HTTP');
    const results = await gateway(gw, u, { upstreamTries: 2 });
    expect((await get(gw, '/', { method: 'POST', body: 'x' })).status).toBe(502);
    expect(results[0]).toMatchObject({ status: 502, attempts: 2, error: 'CONNECT_REFUSED' });
  });
});

describe('next upstream: a request sent is sent again only when idempotent and without a body', () => {
  it('a GET whose answer does not come within proxy-read-timeout goes to the next endpoint; each try has its own timeout', async () => {
    const [gw, h1, h2, h3, live] = ports() as [number, number, number, number, number];
    const hangs = [await hanging(h1), await hanging(h2), await hanging(h3)];
    const seen = await answering(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(h1, live), 'HTTP');
    const results = await gateway(gw, u, { readTimeoutMs: 300 });
    const got = [await get(gw, '/'), await get(gw, '/')];
    expect(got.map((g) => [g.status, g.body])).toEqual([[200, 'GET '], [200, 'GET ']]);
    expect(seen).toHaveLength(2);
    expect(hangs[0]?.hits).toBe(1);
    expect(sorted(results)).toEqual([1, 2]);

    // Three endpoints that never answer: three tries of 300 ms each, then 504.
    results.length = 0;
    u.setEndpoints('ns/svc:80', at(h1, h2, h3), 'HTTP');
    const t0 = performance.now();
    expect((await get(gw, '/', { method: 'DELETE' })).status).toBe(504);
    const took = performance.now() - t0;
    expect(results[0]).toMatchObject({ status: 504, attempts: 3, error: 'READ_TIMEOUT' });
    expect(hangs.map((h) => h.hits)).toEqual([2, 1, 1]);
    expect(took).toBeGreaterThanOrEqual(850);
    // (undici's timers, under NETPLANE_INGRESS_UPSTREAM_CLIENT=undici, round 300 ms up to about 1 s)
    expect(took).toBeLessThan(4500);
    // A read timeout is not the endpoint's failure (outlier ejection counts connect failures).
    expect(u.endpoints('ns/svc:80').map((e) => e.failures)).toEqual([0, 0, 0]);
  });

  it.each([
    { what: 'a POST without a body', method: 'POST', body: undefined },
    { what: 'a PATCH with a body', method: 'PATCH', body: 'p' },
    { what: 'a PUT with a body (streamed, so not sent twice)', method: 'PUT', body: 'q' },
  ])('$what is not sent again after a read timeout', async ({ method, body }) => {
    const [gw, h1, h2] = ports() as [number, number, number];
    const hangs = [await hanging(h1), await hanging(h2)];
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(h1, h2), 'HTTP');
    const results = await gateway(gw, u, { readTimeoutMs: 200 });
    expect((await get(gw, '/', { method, ...(body === undefined ? {} : { body }) })).status).toBe(504);
    expect(results[0]).toMatchObject({ status: 504, attempts: 1, error: 'READ_TIMEOUT' });
    expect(hangs[0]!.hits + hangs[1]!.hits).toBe(1);
  });

  it('a POST with a body whose endpoint closed before answering is not sent again (502)', async () => {
    const [gw, closing, live] = ports() as [number, number, number];
    let hits = 0;
    await listen(createServer((req) => (hits++, req.once('data', () => req.socket.destroy()))), closing);
    const seen = await answering(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(closing, live), 'HTTP');
    const results = await gateway(gw, u);
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await get(gw, '/', { method: 'POST', body: 'z' })).status);
    expect(statuses.sort()).toEqual([200, 502]);
    expect([hits, seen.length]).toEqual([1, 1]);
    expect(sorted(results)).toEqual([1, 1]);
  });
});

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

// An Ingress's proxy-next-upstream and proxy-next-upstream-timeout, read from its annotations by the real policy
// reader, decide which failed tries go to the next endpoint, as nginx's proxy_next_upstream does: `off` none, `error`
// and `timeout` their failures, `invalid_header` an unreadable response head, `http_XXX` an answer of that status
// (dropped unread; the last one passed on when the tries run out), `non_idempotent` a bodiless POST already sent;
// and no try starts once proxy-next-upstream-timeout has passed. Real backends on 127.0.0.1, ports 64000-64099.
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readPolicy } from '../../../ingress/routes/policy.ts';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import type { ForwardResult, ForwardTarget, Upstreams } from '../../../ingress/upstream/upstreams.ts';
import { Closer, get, listenOn, policy, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

const ngx = 'nginx.ingress.kubernetes.io/';
// Nothing ever listens on 64000-64003; each test takes a block of ten from 64010.
const REFUSED = 64000;
let block = 0;
function ports(): number[] {
  const first = 64010 + 10 * (block++ % 9);
  return Array.from({ length: 10 }, (_, i) => first + i);
}

const listen = (server: Server, port: number) => listenOn(closer, server, port);

/** A backend answering with `handler`; `hits` counts its requests. */
async function serving(port: number, handler: RequestListener = (req, res) => void req.resume().once('end', () => res.end(`${req.method} ok`))): Promise<{ hits: number }> {
  const state = { hits: 0 };
  const server = createServer((req, res) => (state.hits++, handler(req, res)));
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  await listen(server, port);
  return state;
}

/** A backend that reads requests and never answers. */
const hanging = (port: number) => serving(port, (req) => void req.resume());
/** A backend that closes the connection on each request, before any answer. */
const closing = (port: number) => serving(port, (req) => void req.socket.destroy());

/** A backend whose answer's head cannot be read (not HTTP). */
async function garbling(port: number): Promise<{ hits: number }> {
  const state = { hits: 0 };
  const server = createTcpServer((s) => s.once('data', () => (state.hits++, s.end('HELLO THERE\r\n\r\n'))).on('error', () => {}));
  await listen(server as unknown as Server, port);
  return state;
}

/**
 * A raw HTTP/1.1 backend answering the first request of each connection with keep-alive, and closing the connection
 * when the next one arrives on it, without answering (an idle timeout racing the request).
 */
async function keepAliveOnce(port: number): Promise<{ seen: number }> {
  const state = { seen: 0 };
  const server = createTcpServer((socket) => {
    let n = 0;
    socket.on('error', () => {}).on('data', (d: Buffer) => {
      for (let i = d.indexOf('\r\n\r\n'); i >= 0; i = d.indexOf('\r\n\r\n', i + 4)) {
        state.seen++;
        if (n++ > 0) return void socket.end();
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n');
      }
    });
  });
  await listen(server as unknown as Server, port);
  return state;
}

/** The Ingress policy readPolicy makes of `annotations`, with the test's quick timeouts. */
function annotated(annotations: Record<string, string>, over: Partial<IngressPolicy> = {}): IngressPolicy {
  const read = readPolicy('ns', annotations, { connectTimeoutMs: 1000, readTimeoutMs: 5000 }).policy;
  const p = policy(over);
  if (read.nextUpstream !== undefined) p.nextUpstream = read.nextUpstream;
  if (read.nextUpstreamTimeoutMs !== undefined) p.nextUpstreamTimeoutMs = read.nextUpstreamTimeoutMs;
  if (read.upstreamTries !== undefined) p.upstreamTries = read.upstreamTries;
  return p;
}

/** A gateway on `port` forwarding every request to `ns/svc:80` with `p`; results recorded. */
async function gateway(port: number, u: Upstreams, p: IngressPolicy): Promise<ForwardResult[]> {
  const results: ForwardResult[] = [];
  const target = (req: IncomingMessage): ForwardTarget => ({ backend: 'ns/svc:80', policy: p, path: req.url ?? '/', headers: {} });
  const server = createServer((req, res) => void u.forward(req, res, target(req)).then((r) => results.push(r)));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void u.upgrade(req, socket, head, target(req)).then((r) => results.push(r)));
  await listen(server, port);
  return results;
}

const at = (...list: number[]) => list.map((port) => ({ ip: '127.0.0.1', port }));
const attempts = (results: ForwardResult[]) => results.map((r) => r.attempts).sort();
const nextUpstream = (value: string) => ({ [`${ngx}proxy-next-upstream`]: value });

/** Two requests, one to each endpoint first (round robin); their statuses, sorted. */
async function twice(gw: number, options: Parameters<typeof get>[2] = {}): Promise<number[]> {
  const statuses = [];
  for (let i = 0; i < 2; i++) statuses.push((await get(gw, '/', options)).status);
  return statuses.sort();
}

describe('off, error, timeout: which failures go to the next endpoint', () => {
  it.each([
    { value: 'off', want: [200, 502], tries: [1, 1] },
    { value: 'timeout', want: [200, 502], tries: [1, 1] },
    { value: 'error', want: [200, 200], tries: [1, 2] },
  ])('a refused connect, proxy-next-upstream $value: $want', async ({ value, want, tries }) => {
    const [gw, live] = ports() as [number, number];
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(REFUSED, live), 'HTTP');
    const results = await gateway(gw, u, annotated(nextUpstream(value)));
    expect(await twice(gw)).toEqual(want);
    expect(attempts(results)).toEqual(tries);
  });

  it.each([
    { value: 'off', want: [200, 504], tries: [1, 1], answered: 1 },
    { value: 'error', want: [200, 504], tries: [1, 1], answered: 1 },
    { value: 'timeout', want: [200, 200], tries: [1, 2], answered: 2 },
  ])('a GET not answered within proxy-read-timeout, proxy-next-upstream $value: $want', async ({ value, want, tries, answered }) => {
    const [gw, slow, live] = ports() as [number, number, number];
    const hang = await hanging(slow);
    const fine = await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(slow, live), 'HTTP');
    const results = await gateway(gw, u, annotated(nextUpstream(value), { readTimeoutMs: 300 }));
    expect(await twice(gw)).toEqual(want);
    expect(attempts(results)).toEqual(tries);
    expect([hang.hits, fine.hits]).toEqual([1, answered]);
  });

  it('off: a WebSocket handshake is not tried again after a refused connect either', async () => {
    const [gw, live] = ports() as [number, number];
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(REFUSED, live), 'HTTP');
    await gateway(gw, u, annotated(nextUpstream('off')));
    const handshake = () =>
      new Promise<string>((resolve, reject) => {
        const s = connect(gw, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
        s.once('data', (d) => (resolve(d.toString('latin1').split('\r\n')[0]!), s.destroy())).once('error', reject);
      });
    const lines = [await handshake(), await handshake()].sort();
    expect(lines).toEqual(['HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 502 Bad Gateway']);
  });
});

describe('invalid_header', () => {
  it.each([
    { value: 'error timeout', want: [200, 502], tries: [1, 1] },
    { value: 'error timeout invalid_header', want: [200, 200], tries: [1, 2] },
  ])('a response head that cannot be read, proxy-next-upstream $value: $want', async ({ value, want, tries }) => {
    const [gw, bad, live] = ports() as [number, number, number];
    await garbling(bad);
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(bad, live), 'HTTP');
    const results = await gateway(gw, u, annotated(nextUpstream(value)));
    expect(await twice(gw)).toEqual(want);
    expect(attempts(results)).toEqual(tries);
  });
});

describe('http_503', () => {
  it('a 503 answer goes to the next endpoint, its body not waited for', async () => {
    const [gw, busy, live] = ports() as [number, number, number];
    // Its 503's body never ends: the answer is dropped at its head.
    const b = await serving(busy, (_req, res) => void res.writeHead(503, { 'content-length': '100' }).write('partial'));
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(busy, live), 'HTTP');
    const results = await gateway(gw, u, annotated(nextUpstream('error timeout http_503'), { readTimeoutMs: 3000 }));
    const t0 = performance.now();
    const got = [await get(gw, '/'), await get(gw, '/')];
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(got.map((g) => [g.status, g.body])).toEqual([[200, 'GET ok'], [200, 'GET ok']]);
    expect(attempts(results)).toEqual([1, 2]);
    expect(results.every((r) => r.status === 200 && r.endpoint === `127.0.0.1:${live}`)).toBe(true);
    expect(b.hits).toBe(1);
  });

  it('when every try answers 503, the client gets the last one as it came', async () => {
    const [gw, a, b, c] = ports() as [number, number, number, number];
    const order: number[] = [];
    for (const port of [a, b, c]) await serving(port, (_req, res) => (order.push(port), res.writeHead(503, { 'x-from': String(port) }).end(`busy ${port}`)));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(a, b, c), 'HTTP');
    const results = await gateway(gw, u, annotated({ ...nextUpstream('http_503'), [`${ngx}proxy-next-upstream-tries`]: '2' }));
    const got = await get(gw, '/');
    expect(order).toHaveLength(2);
    expect([got.status, got.body, got.headers['x-from']]).toEqual([503, `busy ${order[1]}`, String(order[1])]);
    expect(results).toMatchObject([{ status: 503, attempts: 2, endpoint: `127.0.0.1:${order[1]}` }]);
    expect(results[0]!.error).toBeUndefined();
  });

  it.each([
    { what: 'without http_503 (the default)', annotations: {}, method: 'GET', want: [200, 503] },
    { what: 'a POST without non_idempotent', annotations: nextUpstream('error timeout http_503'), method: 'POST', want: [200, 503] },
    { what: 'a POST with non_idempotent', annotations: nextUpstream('error timeout http_503 non_idempotent'), method: 'POST', want: [200, 200] },
  ])('$what: $want', async ({ annotations, method, want }) => {
    const [gw, busy, live] = ports() as [number, number, number];
    await serving(busy, (_req, res) => void res.writeHead(503).end('busy'));
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(busy, live), 'HTTP');
    await gateway(gw, u, annotated(annotations));
    expect(await twice(gw, { method })).toEqual(want);
  });
});

describe('non_idempotent', () => {
  it.each([
    { what: 'a POST without a body, by default', value: 'error timeout', body: undefined, want: [200, 502], tries: [1, 1] },
    { what: 'a POST without a body, with non_idempotent', value: 'error timeout non_idempotent', body: undefined, want: [200, 200], tries: [1, 2] },
    { what: 'a POST with a body, with non_idempotent (a streamed body is never sent twice)', value: 'error timeout non_idempotent', body: 'data', want: [200, 502], tries: [1, 1] },
  ])('$what, reset before an answer: $want', async ({ value, body, want, tries }) => {
    const [gw, reset, live] = ports() as [number, number, number];
    const r = await closing(reset);
    await serving(live);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(reset, live), 'HTTP');
    const results = await gateway(gw, u, annotated(nextUpstream(value)));
    expect(await twice(gw, { method: 'POST', ...(body === undefined ? {} : { body }) })).toEqual(want);
    expect(attempts(results)).toEqual(tries);
    expect(r.hits).toBe(1);
  });
});

describe('a kept-alive connection closed under a request', () => {
  // nginx sends such a request again on a new connection only as proxy-next-upstream allows an `error`
  // (ngx_http_upstream_next adds a try for a cached connection, then tests next_upstream as for any other).
  it.each([
    { what: 'a GET, by default: sent again', annotations: {}, method: 'GET', want: [200, 200, 200, 200] },
    { what: 'a GET, off: 502', annotations: nextUpstream('off'), method: 'GET', want: [200, 502, 200, 502] },
    { what: 'a POST, by default: 502', annotations: {}, method: 'POST', want: [200, 502, 200, 502] },
    { what: 'a POST, non_idempotent: sent again', annotations: nextUpstream('error timeout non_idempotent'), method: 'POST', want: [200, 200, 200, 200] },
  ])('$what', async ({ annotations, method, want }) => {
    const [gw, port] = ports() as [number, number];
    await keepAliveOnce(port);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(port), 'HTTP');
    await gateway(gw, u, annotated(annotations));
    const got: number[] = [];
    for (let i = 0; i < want.length; i++) {
      got.push((await get(gw, `/x${i}`, { method })).status);
      // The answer's end seen and the connection back in the pool before the next request.
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(got).toEqual(want);
  });
});

describe('proxy-next-upstream-timeout', () => {
  it('no try starts once it has passed since the first began; one under way is not cut', async () => {
    const [gw, h1, h2, h3] = ports() as [number, number, number, number];
    const hangs = [await hanging(h1), await hanging(h2), await hanging(h3)];
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(h1, h2, h3), 'HTTP');
    const results = await gateway(gw, u, annotated({ [`${ngx}proxy-next-upstream-timeout`]: '1' }, { readTimeoutMs: 600 }));
    const t0 = performance.now();
    expect((await get(gw, '/')).status).toBe(504);
    const took = performance.now() - t0;
    // Tries at 0 and 600 ms; at 1200 ms the second second has begun: no third.
    expect(results).toMatchObject([{ status: 504, attempts: 2, error: 'READ_TIMEOUT' }]);
    expect(hangs.map((h) => h.hits).reduce((x, y) => x + y)).toBe(2);
    expect(took).toBeGreaterThanOrEqual(1150);
  });

  it('0: no limit', async () => {
    const [gw, h1, h2, h3] = ports() as [number, number, number, number];
    for (const port of [h1, h2, h3]) await hanging(port);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', at(h1, h2, h3), 'HTTP');
    const results = await gateway(gw, u, annotated({ [`${ngx}proxy-next-upstream-timeout`]: '0' }, { readTimeoutMs: 400 }));
    expect((await get(gw, '/')).status).toBe(504);
    expect(results).toMatchObject([{ status: 504, attempts: 3 }]);
  });
});

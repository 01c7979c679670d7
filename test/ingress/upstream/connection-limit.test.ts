// How many connections the gateway opens to one endpoint: as many as requests need at once, as nginx opens one for
// each request that finds no idle one (ingress-nginx sets no max_conns), so a long-lived response (a server-sent
// event stream, a long poll) never holds back the requests after it; and of those that go idle, only so many are
// kept (nginx's keepalive N).
import { afterEach, describe, expect, it } from 'vitest';
import { answerOk, checkEndings, closer as h1Closer, expectOk, poolTo, send } from './h1-harness.ts';
import { scriptedServer, ok } from './h1-servers.ts';
import { Closer, backend, gateway, get, policy, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

describe('forward: connections to one endpoint', () => {
  it('a request is answered at once while 150 long-lived responses from the same endpoint are open', async () => {
    const held: Array<() => void> = [];
    const b = await backend(closer, (req, res) => {
      if (req.url !== '/events') return void res.end('now');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hello\n\n');
      held.push(() => res.end());
    });
    closer.add(() => held.forEach((end) => end()));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, (req) => ({ backend: 'ns/svc:80', policy: policy(), path: req.url ?? '/', headers: {} }));
    const streams = Array.from({ length: 150 }, () => get(g.port, '/events'));
    const deadline = performance.now() + 5000;
    while (held.length < 150 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(held.length).toBe(150);
    const t0 = performance.now();
    const now = await get(g.port, '/now');
    expect([now.status, now.body]).toEqual([200, 'now']);
    expect(performance.now() - t0).toBeLessThan(1000);
    held.forEach((end) => end());
    expect((await Promise.all(streams)).every((r) => r.status === 200 && r.body === 'data: hello\n\n')).toBe(true);
  });
});

describe('h1 client: idle connections kept', () => {
  checkEndings();

  it('maxIdle: 2 after 5 requests at once: 2 connections stay open, and the next request reuses one', async () => {
    const s = await scriptedServer(h1Closer, (req, conn) => setTimeout(() => conn.write(ok(req.path)), 80));
    const pool = poolTo(s.port, { connections: Infinity, maxIdle: 2 });
    const all = await Promise.all([1, 2, 3, 4, 5].map((i) => send(pool, { path: `/${i}` })));
    all.forEach((o, i) => expectOk(o, `/${i + 1}`));
    expect(s.conns.length).toBe(5);
    expect(pool.connectionCount).toBe(2);
    const next = await send(pool, { path: '/6' });
    expectOk(next, '/6');
    expect(next.reused).toEqual([true]);
    expect(s.conns.length).toBe(5);
  });

  it('without maxIdle, as many idle connections as `connections` are kept', async () => {
    const s = await scriptedServer(h1Closer, answerOk);
    const pool = poolTo(s.port, { connections: 3 });
    await Promise.all([1, 2, 3].map(() => send(pool)));
    expect(pool.connectionCount).toBe(3);
  });
});

// Endpoint choice through a real gateway: round robin, least request, cookie affinity, outlier ejection, and
// endpoint changes under load.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import { Closer, backend, deadPort, gateway, get, policy, sleep, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

const target = (over: Partial<IngressPolicy> = {}) => (req: IncomingMessage) => ({ backend: 'ns/svc:80', policy: policy(over), path: req.url ?? '/', headers: {} });

/** Backends answering their own name; `hold` requests wait until released. */
async function named(n: number, hold?: (name: string) => boolean) {
  const hits: Record<string, number> = {};
  const held: ServerResponse[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `b${i}`;
    hits[name] = 0;
    const b = await backend(closer, (_req, res) => {
      hits[name] = (hits[name] ?? 0) + 1;
      if (hold?.(name)) held.push(res);
      else res.end(name);
    });
    ports.push(b.port);
  }
  const release = () => {
    for (const res of held.splice(0)) res.end('released');
  };
  closer.add(release);
  return { hits, ports, release, endpoints: ports.map((port) => ({ ip: '127.0.0.1', port })) };
}

describe('round robin', () => {
  it('spreads requests evenly', async () => {
    const b = await named(3);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const g = await gateway(closer, u, target());
    for (let i = 0; i < 30; i++) expect((await get(g.port, '/')).status).toBe(200);
    expect(b.hits).toEqual({ b0: 10, b1: 10, b2: 10 });
  });
});

describe('least request', () => {
  it('prefers the endpoint with nothing in flight', async () => {
    // b0 holds every request it gets; b1 answers at once. Requests go one after another, so b1 is idle at each pick.
    const b = await named(2, (name) => name === 'b0');
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const g = await gateway(closer, u, target({ loadBalance: 'least_request' }));
    const total = () => (b.hits.b0 ?? 0) + (b.hits.b1 ?? 0);
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const held = b.hits.b0;
      const pending = get(g.port, '/');
      all.push(pending);
      while (total() === i) await sleep(2);
      if (b.hits.b0 === held) await pending; // answered by b1
    }
    b.release();
    await Promise.all(all);
    // At most the first pick (a tie) lands on b0; round robin would have sent it 10.
    expect(b.hits.b0).toBeLessThanOrEqual(1);
    expect(b.hits.b1).toBeGreaterThanOrEqual(19);
  });
});

describe('cookie affinity', () => {
  const affinity = { cookieName: 'route', maxAgeSeconds: 600, path: '/app' };

  it('sets a cookie, honours it, and re-picks when its endpoint goes', async () => {
    const b = await named(3);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const g = await gateway(closer, u, target({ affinity }));
    const first = await get(g.port, '/app');
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^route=[0-9a-f]{16}; Path=\/app; HttpOnly; Max-Age=600$/);
    const cookie = setCookie.split(';')[0] as string;
    const pinned = first.body;
    for (let i = 0; i < 9; i++) {
      const got = await get(g.port, '/app', { headers: { cookie: `other=1; ${cookie}` } });
      expect(got.body).toBe(pinned);
      expect(got.headers['set-cookie']).toBeUndefined();
    }
    expect(b.hits[pinned]).toBe(10);

    // The pinned endpoint leaves: the next request goes elsewhere and gets a new cookie.
    const index = Number(pinned.slice(1));
    u.setEndpoints('ns/svc:80', b.endpoints.filter((_, i) => i !== index), 'HTTP');
    const moved = await get(g.port, '/app', { headers: { cookie } });
    expect(moved.body).not.toBe(pinned);
    const next = moved.headers['set-cookie']?.[0]?.split(';')[0];
    expect(next).toMatch(/^route=[0-9a-f]{16}$/);
    expect(next).not.toBe(cookie);
    const again = await get(g.port, '/app', { headers: { cookie: next as string } });
    expect([again.body, again.headers['set-cookie']]).toEqual([moved.body, undefined]);
  });

  it('an unknown cookie value gets a fresh pick and cookie', async () => {
    const b = await named(2);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const g = await gateway(closer, u, target({ affinity: { cookieName: 'route' } }));
    const got = await get(g.port, '/', { headers: { cookie: 'route=10.0.0.1:80' } });
    expect(got.status).toBe(200);
    expect(got.headers['set-cookie']?.[0]).toMatch(/^route=[0-9a-f]{16}; Path=\/; HttpOnly$/);
  });

  it('the cookie names the endpoint that answered after a retry', async () => {
    const live = await named(1);
    const dead = await deadPort();
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: dead }, ...live.endpoints], 'HTTP');
    const g = await gateway(closer, u, target({ affinity: { cookieName: 'route' } }));
    const cookies = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const got = await get(g.port, '/');
      expect(got.body).toBe('b0');
      cookies.add(got.headers['set-cookie']?.[0]?.split(';')[0] as string);
    }
    expect(cookies.size).toBe(1);
    const only = [...cookies][0] as string;
    expect((await get(g.port, '/', { headers: { cookie: only } })).headers['set-cookie']).toBeUndefined();
  });
});

describe('outlier ejection', () => {
  it('ejects an endpoint after consecutive connect failures and gives it traffic again after its time', async () => {
    const live = await named(2);
    const dead = await deadPort();
    const u = upstreamsFor(closer, { outlier: { consecutiveFailures: 2, baseEjectionMs: 400 } });
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: dead }, ...live.endpoints], 'HTTP');
    const g = await gateway(closer, u, target());
    // Round robin: every third request tries the dead endpoint first (and is retried); the second failure ejects it.
    for (let i = 0; i < 6; i++) expect((await get(g.port, '/')).status).toBe(200);
    expect(g.results.filter((r) => r.attempts === 2)).toHaveLength(2);
    const deadState = u.endpoints('ns/svc:80').find((e) => e.port === dead);
    expect(deadState?.ejectedUntil).toBeGreaterThan(performance.now());

    g.results.length = 0;
    for (let i = 0; i < 9; i++) expect((await get(g.port, '/')).status).toBe(200);
    expect(g.results.every((r) => r.attempts === 1)).toBe(true);

    await sleep(450);
    g.results.length = 0;
    for (let i = 0; i < 3; i++) expect((await get(g.port, '/')).status).toBe(200);
    expect(g.results.filter((r) => r.attempts === 2)).toHaveLength(1);
  });

  it('never ejects more than half of the endpoints: a lone endpoint still gets every request', async () => {
    const u = upstreamsFor(closer, { outlier: { consecutiveFailures: 2, baseEjectionMs: 10_000 } });
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: await deadPort() }], 'HTTP');
    const g = await gateway(closer, u, target());
    for (let i = 0; i < 5; i++) expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results.map((r) => r.attempts)).toEqual([1, 1, 1, 1, 1]);
    expect(u.endpoints('ns/svc:80')[0]?.ejectedUntil).toBe(0);
  });
});

describe('endpoint changes', () => {
  it('when only ejected endpoints are left, they are still tried (no 503)', async () => {
    const live = await named(1);
    const dead = await deadPort();
    const u = upstreamsFor(closer, { outlier: { consecutiveFailures: 1, baseEjectionMs: 60_000 } });
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: dead }, ...live.endpoints], 'HTTP');
    const g = await gateway(closer, u, target());
    while (!(u.endpoints('ns/svc:80')[0]?.ejectedUntil ?? 0)) await get(g.port, '/');
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: dead }], 'HTTP');
    expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results.at(-1)).toMatchObject({ error: 'CONNECT_REFUSED', attempts: 1 });
  });

  it('a removed endpoint finishes its requests in flight; new requests go to the others', async () => {
    const b = await named(2, (name) => name === 'b0');
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const g = await gateway(closer, u, target({ loadBalance: 'least_request' }));
    // Hold a request on b0 (least request sends the next one to b1 at once, so keep firing until b0 has one).
    const pending: Promise<{ body: string }>[] = [];
    while (b.hits.b0 === 0) {
      pending.push(get(g.port, '/'));
      await sleep(20);
    }
    u.setEndpoints('ns/svc:80', [b.endpoints[1] as { ip: string; port: number }], 'HTTP');
    expect(u.endpoints('ns/svc:80').map((e) => e.port)).toEqual([b.ports[1]]);
    for (let i = 0; i < 3; i++) expect((await get(g.port, '/')).body).toBe('b1');
    await sleep(100);
    b.release();
    const bodies = (await Promise.all(pending)).map((r) => r.body);
    expect(bodies).toContain('released');
    expect(b.hits.b0).toBe(1);
  });

  it('endpoints that stay keep their state; a protocol change makes new pools', async () => {
    const b = await named(2);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    const before = u.endpoints('ns/svc:80');
    u.setEndpoints('ns/svc:80', [...b.endpoints].reverse(), 'HTTP');
    const after = u.endpoints('ns/svc:80');
    expect(after[0]).toBe(before[1]);
    expect(after[1]).toBe(before[0]);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTPS');
    expect(u.endpoints('ns/svc:80')[0]).not.toBe(before[0]);
    expect(u.endpoints('ns/svc:80')[0]?.protocol).toBe('HTTPS');
  });

  it('retain drops other backends (their requests get 503)', async () => {
    const b = await named(1);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', b.endpoints, 'HTTP');
    u.setEndpoints('ns/old:80', b.endpoints, 'HTTP');
    u.retain(new Set(['ns/svc:80']));
    const g = await gateway(closer, u, (req) => ({ ...target()(req), backend: req.url === '/old' ? 'ns/old:80' : 'ns/svc:80' }));
    expect((await get(g.port, '/')).status).toBe(200);
    expect((await get(g.port, '/old')).status).toBe(503);
  });
});

import { describe, expect, it } from 'vitest';
import { RateLimiter, RateLimiters, RateLimitPolicyError, type TakeResult } from '../../../ingress/limits/rate.ts';
import type { RateLimitPolicy } from '../../../ingress/routes/types.ts';

/** Requests of one client: at time `at` (ms), `n` requests, of which the first `allowed` pass; the others get `retry`. */
interface Step {
  at: number;
  n: number;
  allowed: number;
  retry?: number;
}

const cases: Array<[string, RateLimitPolicy, Step[]]> = [
  [
    'rps 1 × 5: burst of 1 + 5, then one per second',
    { rps: 1, burstMultiplier: 5 },
    [
      { at: 0, n: 10, allowed: 6, retry: 1 },
      { at: 999, n: 1, allowed: 0, retry: 1 },
      { at: 1000, n: 2, allowed: 1, retry: 1 },
      { at: 3000, n: 3, allowed: 2, retry: 1 },
    ],
  ],
  [
    'rps 10 × 1: 11 at once, refilled at 100 ms a request',
    { rps: 10, burstMultiplier: 1 },
    [
      { at: 0, n: 20, allowed: 11, retry: 1 },
      { at: 100, n: 2, allowed: 1, retry: 1 },
      { at: 550, n: 10, allowed: 4, retry: 1 },
    ],
  ],
  ['rps 3 × 1: a 334 ms wait is a Retry-After of 1 s', { rps: 3, burstMultiplier: 1 }, [{ at: 0, n: 5, allowed: 4, retry: 1 }]],
  [
    'rpm 6 × 1: 7 at once, then one per 10 s',
    { rpm: 6, burstMultiplier: 1 },
    [
      { at: 0, n: 8, allowed: 7, retry: 10 },
      { at: 4_000, n: 1, allowed: 0, retry: 6 },
      { at: 9_999, n: 1, allowed: 0, retry: 1 },
      { at: 10_000, n: 2, allowed: 1, retry: 10 },
    ],
  ],
  ['rpm 1 × 1: Retry-After 60', { rpm: 1, burstMultiplier: 1 }, [{ at: 0, n: 3, allowed: 2, retry: 60 }]],
  [
    'rps and rpm: the tighter one decides, and a refused request counts in neither',
    { rps: 100, rpm: 10, burstMultiplier: 1 },
    [
      { at: 0, n: 50, allowed: 11, retry: 6 },
      { at: 6_000, n: 2, allowed: 1, retry: 6 },
    ],
  ],
  [
    'refused requests do not push the wait further',
    { rps: 1, burstMultiplier: 1 },
    [
      { at: 0, n: 2, allowed: 2 },
      ...Array.from({ length: 9 }, (_, i): Step => ({ at: i * 100, n: 10, allowed: 0, retry: 1 })),
      { at: 1000, n: 2, allowed: 1, retry: 1 },
    ],
  ],
  [
    'a steady rate at the limit is never refused',
    { rps: 5, burstMultiplier: 1 },
    [{ at: 0, n: 6, allowed: 6 }, ...Array.from({ length: 50 }, (_, i): Step => ({ at: (i + 1) * 200, n: 1, allowed: 1 }))],
  ],
  [
    'after a long idle time the full burst is back',
    { rps: 2, burstMultiplier: 2 },
    [
      { at: 0, n: 10, allowed: 5, retry: 1 },
      { at: 1e12, n: 10, allowed: 5, retry: 1 },
    ],
  ],
  ['no rate limit: everything passes', { burstMultiplier: 5, connections: 1 }, [{ at: 0, n: 1000, allowed: 1000 }]],
  [
    'burst multiplier 0 (nginx burst=0): one request, then one per 1/rate',
    { rps: 2, burstMultiplier: 0 },
    [
      { at: 0, n: 3, allowed: 1, retry: 1 },
      { at: 499, n: 1, allowed: 0, retry: 1 },
      { at: 500, n: 2, allowed: 1, retry: 1 },
    ],
  ],
];

describe('RateLimiter.take', () => {
  for (const [name, policy, steps] of cases) {
    it(name, () => {
      const limiter = new RateLimiter(policy);
      for (const step of steps) {
        const results: TakeResult[] = [];
        for (let i = 0; i < step.n; i++) results.push(limiter.take('192.0.2.1', step.at));
        const want: TakeResult[] = Array.from({ length: step.n }, (_, i) =>
          i < step.allowed ? { allowed: true } : { allowed: false, retryAfterSeconds: step.retry! },
        );
        expect(results, `at ${step.at}`).toEqual(want);
      }
    });
  }

  it('clients are limited apart', () => {
    const limiter = new RateLimiter({ rps: 1, burstMultiplier: 1 });
    expect([1, 2, 3].map(() => limiter.take('192.0.2.1', 0).allowed)).toEqual([true, true, false]);
    expect([1, 2, 3].map(() => limiter.take('192.0.2.2', 0).allowed)).toEqual([true, true, false]);
  });

  it('waiting Retry-After seconds is always enough', () => {
    for (const policy of [{ rps: 7, burstMultiplier: 3 }, { rpm: 7, burstMultiplier: 2 }, { rps: 3, rpm: 50, burstMultiplier: 1 }]) {
      const limiter = new RateLimiter(policy);
      let now = 0;
      for (let i = 0; i < 200; i++) {
        const r = limiter.take('ip', now);
        if (!r.allowed) {
          expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          now += r.retryAfterSeconds * 1000;
          expect(limiter.take('ip', now).allowed).toBe(true);
        }
        now += 37;
      }
    }
  });
});

describe('RateLimiter.acquire', () => {
  it('limits in-flight requests per client; release is idempotent', () => {
    const limiter = new RateLimiter({ connections: 2, burstMultiplier: 5 });
    const a = limiter.acquire('192.0.2.1');
    const b = limiter.acquire('192.0.2.1');
    expect(a && b).toBeTypeOf('function');
    expect(limiter.acquire('192.0.2.1')).toBeUndefined();
    expect(limiter.acquire('192.0.2.2')).toBeTypeOf('function');
    a!();
    a!();
    expect(limiter.acquire('192.0.2.1')).toBeTypeOf('function');
    expect(limiter.acquire('192.0.2.1')).toBeUndefined();
    b!();
    expect(limiter.acquire('192.0.2.1')).toBeTypeOf('function');
  });

  it('without a connections limit every acquire succeeds and nothing is tracked', () => {
    const limiter = new RateLimiter({ rps: 1, burstMultiplier: 1 });
    for (let i = 0; i < 100; i++) expect(limiter.acquire('192.0.2.1')).toBeTypeOf('function');
    expect(limiter.size).toBe(0);
  });
});

describe('RateLimiter memory', () => {
  it('prune drops clients once their buckets have drained, but not those with requests in flight', () => {
    const limiter = new RateLimiter({ rps: 1, burstMultiplier: 1, connections: 5 });
    for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, 0);
    const release = limiter.acquire('10.0.0.0');
    limiter.prune(999);
    expect(limiter.size).toBe(1000);
    limiter.prune(1000);
    expect(limiter.size).toBe(1);
    release!();
    limiter.prune(1000);
    expect(limiter.size).toBe(0);
  });

  it('an IP flood never holds more than maxClients', () => {
    const limiter = new RateLimiter({ rps: 1, burstMultiplier: 1 }, { maxClients: 100 });
    for (let i = 0; i < 50_000; i++) limiter.take(`2001:db8::${i.toString(16)}`, i);
    expect(limiter.size).toBe(100);
  });

  it('a full table evicts an idle client before one with requests in flight', () => {
    const limiter = new RateLimiter({ rps: 1, burstMultiplier: 1, connections: 1 }, { maxClients: 4 });
    expect(limiter.acquire('busy')).toBeTypeOf('function');
    for (const ip of ['a', 'b', 'c']) limiter.take(ip, 0);
    limiter.take('d', 5000);
    expect(limiter.size).toBe(4);
    expect(limiter.acquire('busy')).toBeUndefined();
  });

  it('the default maxClients is 100k', () => {
    const limiter = new RateLimiter({ rpm: 1, burstMultiplier: 1 });
    for (let i = 0; i < 100_100; i++) limiter.take(`c${i}`, 0);
    expect(limiter.size).toBe(100_000);
  });
});

describe('RateLimiter policy errors', () => {
  const bad: Array<[string, RateLimitPolicy]> = [
    ['rps 0', { rps: 0, burstMultiplier: 5 }],
    ['rps -1', { rps: -1, burstMultiplier: 5 }],
    ['rps 1.5', { rps: 1.5, burstMultiplier: 5 }],
    ['rpm NaN', { rpm: Number.NaN, burstMultiplier: 5 }],
    ['burstMultiplier -1', { rps: 1, burstMultiplier: -1 }],
    ['connections 0', { connections: 0, burstMultiplier: 5 }],
  ];
  for (const [name, policy] of bad) {
    it(name, () => {
      let error: unknown;
      try {
        new RateLimiter(policy);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RateLimitPolicyError);
      expect((error as RateLimitPolicyError).code).toBe('NETPLANE_INGRESS_RATE_LIMIT_POLICY');
    });
  }
});

describe('RateLimiters', () => {
  it('one limiter per Ingress while the policy is deep-equal; retain forgets the rest', () => {
    const limiters = new RateLimiters();
    const p: RateLimitPolicy = { rps: 1, burstMultiplier: 1 };
    const first = limiters.get('ns/a', p);
    expect(limiters.get('ns/a', { ...p })).toBe(first);
    expect(limiters.get('ns/b', p)).not.toBe(first);
    const changed = limiters.get('ns/a', { ...p, rps: 2 });
    expect(changed).not.toBe(first);
    const b = limiters.get('ns/b', p);
    limiters.retain(new Set(['ns/a']));
    expect(limiters.get('ns/a', { rps: 2, burstMultiplier: 1 })).toBe(changed);
    expect(limiters.get('ns/b', p)).not.toBe(b);
  });

  it('state survives get() with an equal policy', () => {
    const limiters = new RateLimiters();
    for (let i = 0; i < 2; i++) expect(limiters.get('ns/a', { rps: 1, burstMultiplier: 1 }).take('ip', 0).allowed).toBe(true);
    expect(limiters.get('ns/a', { rps: 1, burstMultiplier: 1 }).take('ip', 0).allowed).toBe(false);
  });
});

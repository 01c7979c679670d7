// The gateway-wide bound on the clients the limits of all Ingresses track (--max-tracked-clients): a spray of
// addresses against many limited Ingresses stays within it, forgetting the least recently used client across them
// all; forgetting only ever lets a client through sooner; clients with requests in flight are never forgotten.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ClientBoundError, ClientBudget, defaultMaxTrackedClients } from '../../../ingress/limits/client-table.ts';
import { clientIP, TrustedProxies } from '../../../ingress/limits/client-ip.ts';
import { RateLimiter, RateLimiters } from '../../../ingress/limits/rate.ts';
import type { RateLimitPolicy } from '../../../ingress/routes/types.ts';

/** One request a minute and no burst: a client's second request is refused until it is forgotten. */
const onePerMinute: RateLimitPolicy = { rpm: 1, burstMultiplier: 0 };
const ingresses = ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e'];

/** The i-th address of a spray, as the gateway keys it: from X-Forwarded-For behind a trusted proxy. */
const trusted = TrustedProxies.parse(['10.0.0.1']);
const sprayed = (i: number) => clientIP('10.0.0.1', `2001:db8:${(i >>> 16).toString(16)}:0:0:0:${(i & 0xffff).toString(16)}:1`, trusted);

/** Whether `ip`'s next request on `ingress` is allowed (at time 0: nothing drains). */
const allowed = (l: RateLimiters, ingress: string, ip: string) => l.get(ingress, onePerMinute).take(ip, 0).allowed;

describe('the gateway-wide bound on tracked clients', () => {
  it('holds across every Ingress a spray hits, each forgotten client counted', () => {
    const limiters = new RateLimiters({ maxTrackedClients: 1000 });
    for (let i = 0; i < 20_000; i++) expect(allowed(limiters, ingresses[i % 5]!, sprayed(i))).toBe(true);
    const sizes = ingresses.map((ing) => limiters.get(ing, onePerMinute).size);
    expect([limiters.budget.size, sizes.reduce((a, b) => a + b), limiters.budget.evictions]).toEqual([1000, 1000, 19_000]);
    expect(sizes).toEqual([200, 200, 200, 200, 200]);
  });

  it('forgets the least recently used client, whichever Ingress holds it', () => {
    const limiters = new RateLimiters({ maxTrackedClients: 3 });
    const steps: Array<[ingress: string, ip: string, allowed: boolean]> = [
      ['ns/a', 'a', true],
      ['ns/b', 'b', true],
      ['ns/a', 'c', true],
      ['ns/a', 'a', false], // refused, but used: b is now the least recently used
      ['ns/b', 'd', true], // forgets b
      ['ns/b', 'b', true], // afresh; forgets c
      ['ns/a', 'a', false],
      ['ns/a', 'c', true], // forgets d
      ['ns/b', 'd', true],
    ];
    expect(steps.map(([ing, ip]) => allowed(limiters, ing, ip))).toEqual(steps.map((s) => s[2]));
    expect([limiters.budget.size, limiters.budget.evictions]).toEqual([3, 4]);
  });

  it('an Ingress that goes, or whose limits change, gives its clients back; prune gives back drained ones', () => {
    const limiters = new RateLimiters({ maxTrackedClients: 100 });
    for (const ing of ['ns/a', 'ns/b', 'ns/c']) for (let i = 0; i < 10; i++) allowed(limiters, ing, `192.0.2.${i}`);
    const conn = limiters.get('ns/d', { connections: 1, burstMultiplier: 1 });
    const release = conn.acquire('192.0.2.99')!;
    expect(limiters.budget.size).toBe(31);
    limiters.retain(new Set(['ns/a', 'ns/b', 'ns/d']));
    expect(limiters.budget.size).toBe(21);
    limiters.get('ns/b', { rpm: 2, burstMultiplier: 0 });
    expect(limiters.budget.size).toBe(11);
    limiters.get('ns/d', { connections: 2, burstMultiplier: 1 });
    expect(limiters.budget.size).toBe(10);
    // The release of a request the replaced limiter let in changes nothing of the new one's count.
    release();
    expect(limiters.budget.size).toBe(10);
    limiters.prune(Number.MAX_SAFE_INTEGER);
    expect(limiters.budget.size).toBe(0);
    expect(limiters.budget.evictions).toBe(0);
  });

  it('the default is 250,000; a bound that is not a positive integer is refused with ClientBoundError', () => {
    expect(new RateLimiters().budget.max).toBe(defaultMaxTrackedClients);
    expect(defaultMaxTrackedClients).toBe(250_000);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new RateLimiters({ maxTrackedClients: bad })).toThrow(ClientBoundError);
      expect(() => new RateLimiter(onePerMinute, { maxClients: bad })).toThrow(ClientBoundError);
    }
  });
});

describe('clients with requests in flight', () => {
  it('are never forgotten, by the gateway-wide bound or the per-Ingress one', () => {
    for (const options of [{ maxTrackedClients: 10 }, { maxClients: 10 }]) {
      const limiters = new RateLimiters(options);
      const policy: RateLimitPolicy = { connections: 1, burstMultiplier: 1 };
      const conn = limiters.get('ns/conn', policy);
      const busy = Array.from({ length: 9 }, (_, i) => conn.acquire(`192.0.2.${i}`)!);
      // A spray of short requests on the same Ingress, and (for the gateway-wide bound) of rates on others.
      for (let i = 0; i < 5000; i++) {
        conn.acquire(sprayed(i))!();
        if (!('maxClients' in options)) allowed(limiters, ingresses[i % 5]!, sprayed(i));
      }
      // Still counted: a second request of each is refused, and the first release lets one in again.
      expect(busy.map((_, i) => conn.acquire(`192.0.2.${i}`))).toEqual(busy.map(() => undefined));
      busy[0]!();
      expect(conn.acquire('192.0.2.0')).toBeTypeOf('function');
      expect(limiters.budget.size).toBeLessThanOrEqual(10);
    }
  });

  it('may hold the table past the bound while their requests last', () => {
    const limiters = new RateLimiters({ maxTrackedClients: 2 });
    const conn = limiters.get('ns/conn', { connections: 1, burstMultiplier: 1 });
    const releases = ['a', 'b', 'c'].map((ip) => conn.acquire(ip)!);
    expect([limiters.budget.size, conn.acquire('a'), conn.acquire('c')]).toEqual([3, undefined, undefined]);
    for (const r of releases) r();
    conn.acquire('d');
    expect(limiters.budget.size).toBe(2);
  });
});

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('forgetting only ever lets a client through sooner', () => {
  // Against a limiter that forgets nothing: at every step each client has had at least as many requests allowed.
  // [name, policy, largest ms between two requests (of any client)]
  const policies: Array<[string, RateLimitPolicy, number]> = [
    ['rps 2 × 1', { rps: 2, burstMultiplier: 1 }, 60],
    ['rpm 30 × 0', { rpm: 30, burstMultiplier: 0 }, 60],
    ['rps 5 × 3', { rps: 5, burstMultiplier: 3 }, 10],
  ];
  for (const [name, policy, gap] of policies) {
    it(name, () => {
      const next = random(name.length * 7919);
      const bounded = new RateLimiters({ maxTrackedClients: 8, maxClients: 4 });
      const whole = new RateLimiters({ maxTrackedClients: 1_000_000 });
      const countB = new Map<string, number>();
      const countW = new Map<string, number>();
      let now = 0;
      let differed = 0;
      for (let step = 0; step < 20_000; step++) {
        now += Math.floor(next() * gap);
        const ing = ingresses[Math.floor(next() * 3)]!;
        const key = `${ing} 192.0.2.${Math.floor(next() * 12)}`;
        const ip = key.slice(ing.length + 1);
        const b = bounded.get(ing, policy).take(ip, now).allowed;
        const w = whole.get(ing, policy).take(ip, now).allowed;
        if (b !== w) differed++;
        countB.set(key, (countB.get(key) ?? 0) + (b ? 1 : 0));
        countW.set(key, (countW.get(key) ?? 0) + (w ? 1 : 0));
        expect(countB.get(key)!, `${key} at step ${step}`).toBeGreaterThanOrEqual(countW.get(key)!);
      }
      expect(bounded.budget.evictions).toBeGreaterThan(1000);
      expect(differed).toBeGreaterThan(0);
    });
  }

  it('limit-connections answers exactly as without a bound', () => {
    const next = random(42);
    const policy: RateLimitPolicy = { connections: 2, burstMultiplier: 1 };
    const bounded = new RateLimiters({ maxTrackedClients: 6, maxClients: 3 });
    const whole = new RateLimiters();
    const held: Array<[() => void, () => void]> = [];
    for (let step = 0; step < 20_000; step++) {
      if (held.length > 0 && next() < 0.5) {
        const [rb, rw] = held.splice(Math.floor(next() * held.length), 1)[0]!;
        rb();
        rw();
        continue;
      }
      const ing = ingresses[Math.floor(next() * 3)]!;
      const ip = `192.0.2.${Math.floor(next() * 10)}`;
      const b = bounded.get(ing, policy).acquire(ip);
      const w = whole.get(ing, policy).acquire(ip);
      expect(b === undefined, `step ${step}`).toBe(w === undefined);
      if (b && w) held.push([b, w]);
    }
  });
});

describe('memory under an address spray through X-Forwarded-For', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };

  it('stays within the bound however many limited Ingresses are sprayed (and says what a client costs)', () => {
    const spray = 100_000;
    const bound = 10_000;
    // A spray of addresses against five limited Ingresses: without a gateway-wide bound all 100,000 stay tracked.
    const before = heap();
    const limiters = new RateLimiters({ maxTrackedClients: bound });
    for (let i = 0; i < spray; i++) limiters.get(ingresses[i % 5]!, onePerMinute).take(sprayed(i), 0);
    const grown = heap() - before;
    expect(limiters.budget.size).toBe(bound);
    const perClient = grown / bound;
    // eslint-disable-next-line no-console
    console.log(`${spray} sprayed, ${limiters.budget.size} tracked: heap +${(grown / 1e6).toFixed(1)} MB, ${perClient.toFixed(0)} bytes a tracked client`);
    // About 320 bytes a client: well under 100,000 × 320 = 32 MB, what every sprayed address would hold.
    expect(grown).toBeLessThan(bound * 600);
    expect(limiters.budget.evictions).toBe(spray - bound);
  });

  it('a budget can be shared by limiters made alone', () => {
    const budget = new ClientBudget(5);
    const ls = [new RateLimiter(onePerMinute, { budget }), new RateLimiter(onePerMinute, { budget })];
    for (let i = 0; i < 50; i++) ls[i % 2]!.take(`192.0.2.${i}`, 0);
    expect([budget.size, ls[0]!.size + ls[1]!.size, budget.evictions]).toEqual([5, 5, 45]);
  });
});

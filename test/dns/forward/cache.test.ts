import { describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import { DnsCache, cacheKey, cacheTtl, resolveCacheSettings, staleTtl, type CacheType } from '../../../dns/forward/cache.ts';
import type { UpstreamReply } from '../../../dns/forward/exchange.ts';
import type { Rcode } from '../../../dns/types.ts';
import { a, query, soa } from './fake-upstream.ts';

function reply(rcode: Rcode, answers: Answer[] = [], authorities: Answer[] = [], additionals: Answer[] = []): UpstreamReply {
  return { rcode, wireRcode: rcode, answers, authorities, additionals, transport: 'udp' };
}

const ns = (ttl: number): Answer => ({ name: 'example.com', type: 'NS', class: 'IN', ttl, data: 'ns1.example.com' });
const s = resolveCacheSettings();

describe('cacheTtl', () => {
  const cases: Array<[string, UpstreamReply, ReturnType<typeof cacheTtl>, Parameters<typeof resolveCacheSettings>[0]?]> = [
    ['positive: smallest answer TTL', reply('NOERROR', [a('x', '10.0.0.1', 300), a('x', '10.0.0.2', 120)]), { type: 'success', ttl: 120 }],
    ['positive: authority and additional count too', reply('NOERROR', [a('x', '10.0.0.1', 300)], [ns(90)], [a('ns1', '10.0.0.9', 60)]), { type: 'success', ttl: 60 }],
    ['positive: capped by maxTtl', reply('NOERROR', [a('x', '10.0.0.1', 86400)]), { type: 'success', ttl: 3600 }],
    ['positive: own maxTtl', reply('NOERROR', [a('x', '10.0.0.1', 86400)]), { type: 'success', ttl: 600 }, { maxTtl: 600 }],
    ['positive: raised to minTtl', reply('NOERROR', [a('x', '10.0.0.1', 1)]), { type: 'success', ttl: 5 }],
    ['positive: TTL 0 with minTtl 0 is not cached', reply('NOERROR', [a('x', '10.0.0.1', 0)]), undefined, { minTtl: 0 }],
    ['NXDOMAIN: SOA minimum below SOA TTL', reply('NXDOMAIN', [], [soa('example.com', 900, 60)]), { type: 'denial', ttl: 60 }],
    ['NXDOMAIN: SOA TTL below minimum', reply('NXDOMAIN', [], [soa('example.com', 30, 600)]), { type: 'denial', ttl: 30 }],
    ['NXDOMAIN: capped by maxNegativeTtl', reply('NXDOMAIN', [], [soa('example.com', 86400, 86400)]), { type: 'denial', ttl: 1800 }],
    ['NXDOMAIN: own maxNegativeTtl', reply('NXDOMAIN', [], [soa('example.com', 86400, 86400)]), { type: 'denial', ttl: 20 }, { maxNegativeTtl: 20 }],
    ['NXDOMAIN: raised to minNegativeTtl', reply('NXDOMAIN', [], [soa('example.com', 1, 1)]), { type: 'denial', ttl: 5 }],
    ['NXDOMAIN: own minNegativeTtl, apart from minTtl', reply('NXDOMAIN', [], [soa('example.com', 1, 1)]), { type: 'denial', ttl: 2 }, { minNegativeTtl: 2, minTtl: 20 }],
    ['positive: minTtl apart from minNegativeTtl', reply('NOERROR', [a('x', '10.0.0.1', 1)]), { type: 'success', ttl: 20 }, { minNegativeTtl: 2, minTtl: 20 }],
    ['cache 30: a long positive TTL capped at 30', reply('NOERROR', [a('x', '10.0.0.1', 86400)]), { type: 'success', ttl: 30 }, { maxTtl: 30, maxNegativeTtl: 30 }],
    ['cache 30: a long negative TTL capped at 30', reply('NXDOMAIN', [], [soa('example.com', 3600, 3600)]), { type: 'denial', ttl: 30 }, { maxTtl: 30, maxNegativeTtl: 30 }],
    ['a cap below the floor wins (CoreDNS computeTTL)', reply('NOERROR', [a('x', '10.0.0.1', 1)]), { type: 'success', ttl: 3 }, { maxTtl: 3 }],
    ['NODATA: NOERROR without answers, with SOA', reply('NOERROR', [], [soa('example.com', 300, 120)]), { type: 'denial', ttl: 120 }],
    ['NXDOMAIN without SOA is not cached', reply('NXDOMAIN'), undefined],
    ['NOERROR without answers or SOA (referral) is not cached', reply('NOERROR', [], [ns(300)]), undefined],
    ['SERVFAIL is not cached', reply('SERVFAIL'), undefined],
    ['REFUSED is not cached', reply('REFUSED'), undefined],
  ];
  for (const [name, r, want, settings] of cases) it(name, () => expect(cacheTtl(r, resolveCacheSettings(settings))).toEqual(want));
});

describe('cacheKey', () => {
  it('folds case and keeps DO and CD apart', () => {
    expect(cacheKey(query('Example.COM'))).toBe(cacheKey(query('example.com')));
    // The usual question is keyed by its name alone.
    expect(cacheKey(query('Example.COM'))).toBe('example.com');
    expect(cacheKey(query('example.com', 'AAAA'))).not.toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { dnssecOk: true }))).not.toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { cd: true }))).not.toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { qclass: 3 }))).not.toBe(cacheKey(query('example.com')));
  });
});

describe('DnsCache', () => {
  const t0 = 1_700_000_000_000;

  it('serves answers whose TTLs count down, the same object within a second', () => {
    const c = new DnsCache();
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)], [ns(300)]), t0);
    const first = c.lookup('k', t0 + 200);
    const again = c.lookup('k', t0 + 900);
    const later = c.lookup('k', t0 + 10_500);
    if (first.kind !== 'hit' || again.kind !== 'hit' || later.kind !== 'hit') throw new Error('expected hits');
    expect(first.answer.answers[0]).toMatchObject({ ttl: 100, data: '10.0.0.1' });
    expect(again.answer).toBe(first.answer);
    expect(later.answer.answers[0]).toMatchObject({ ttl: 90 });
    expect(later.answer.authorities[0]).toMatchObject({ ttl: 90, type: 'NS' });
    expect(later.answer).toMatchObject({ rcode: 'NOERROR', authoritative: false, recursionAvailable: true, source: 'cache' });
  });

  it('expires, then serves stale within staleMaxSeconds, then forgets', () => {
    const c = new DnsCache({ staleMaxSeconds: 60 });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 10)]), t0);
    expect(c.lookup('k', t0 + 9_999).kind).toBe('hit');
    const stale = c.lookup('k', t0 + 10_000);
    expect(stale.kind).toBe('stale');
    if (stale.kind === 'stale') expect(c.staleAnswer(stale.entry).answers[0]).toMatchObject({ ttl: staleTtl });
    expect(c.lookup('k', t0 + 69_999).kind).toBe('stale');
    expect(c.lookup('k', t0 + 70_000).kind).toBe('miss');
    expect(c.count('success')).toBe(0);
  });

  it('keeps an entry when the new reply is not cacheable', () => {
    const c = new DnsCache();
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 10)]), t0);
    expect(c.store('k', reply('SERVFAIL'), t0 + 20_000)).toBeUndefined();
    expect(c.lookup('k', t0 + 20_000).kind).toBe('stale');
  });

  it('evicts the least recently used entry when full, and counts by type', () => {
    const evicted: CacheType[] = [];
    const c = new DnsCache({ maxEntries: 2 }, (t) => evicted.push(t));
    c.store('one', reply('NOERROR', [a('one', '10.0.0.1')]), t0);
    c.store('two', reply('NXDOMAIN', [], [soa('example.com', 60, 60)]), t0);
    expect([c.count('success'), c.count('denial')]).toEqual([1, 1]);
    c.lookup('one', t0 + 1000); // "two" is now the least recently used
    c.store('three', reply('NOERROR', [a('three', '10.0.0.3')]), t0 + 2000);
    expect(evicted).toEqual(['denial']);
    expect(c.lookup('two', t0 + 2000).kind).toBe('miss');
    expect(c.lookup('one', t0 + 2000).kind).toBe('hit');
    expect([c.size, c.count('success'), c.count('denial')]).toEqual([2, 2, 0]);
  });

  it('keeps an entry used within the last half of its capacity while new names push the others out', () => {
    let evictions = 0;
    const c = new DnsCache({ maxEntries: 100 }, () => evictions++);
    const answerOf = (name: string) => reply('NOERROR', [a(name, '10.0.0.1')]);
    c.store('hot', answerOf('hot'), t0);
    for (let i = 0; i < 1000; i++) {
      c.store(`n${i}`, answerOf(`n${i}`), t0);
      // Asked every 40 new names: never among the 50 least recently moved.
      if (i % 40 === 0) expect(c.lookup('hot', t0 + 1000).kind).toBe('hit');
    }
    expect([c.lookup('hot', t0 + 1000).kind, c.lookup('n0', t0 + 1000).kind, c.lookup('n999', t0 + 1000).kind]).toEqual(['hit', 'miss', 'hit']);
    expect([c.size, evictions]).toEqual([100, 901]);
  });

  it('stores nothing with maxEntries 0', () => {
    const c = new DnsCache({ maxEntries: 0 });
    expect(c.store('k', reply('NOERROR', [a('x', '10.0.0.1')]), t0)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('asks for one prefetch of a popular entry in the last 10% of its TTL', () => {
    const c = new DnsCache({ prefetch: { amount: 3, windowSeconds: 60, percentage: 10 } });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)]), t0); // query 1 (the miss)
    const at = (s: number) => {
      const r = c.lookup('k', t0 + s * 1000);
      return r.kind === 'hit' && r.prefetch;
    };
    expect(at(50)).toBe(false); // query 2: popular enough? no, 3 needed
    expect(at(89)).toBe(false); // query 3: popular, but 11 s of 100 left
    expect(at(91)).toBe(true); // query 4: 9 s left
    expect(at(92)).toBe(false); // asked once already
  });

  it('forgets popularity after a gap of the prefetch window', () => {
    const c = new DnsCache({ prefetch: { amount: 2, windowSeconds: 60 }, maxTtl: 3600 });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 1000)]), t0);
    const r = c.lookup('k', t0 + 950_000); // 50 s left, but 950 s since the miss: this is the first of a new run
    expect(r.kind === 'hit' && r.prefetch).toBe(false);
    const r2 = c.lookup('k', t0 + 951_000);
    expect(r2.kind === 'hit' && r2.prefetch).toBe(true);
  });

  it('hands popularity on to the entry that replaces it', () => {
    const c = new DnsCache({ prefetch: { amount: 3 } });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)]), t0);
    c.lookup('k', t0 + 1000);
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 50)]), t0 + 2000);
    const r = c.lookup('k', t0 + 47_000); // third query, 5 s of 50 left
    expect(r.kind === 'hit' && r.prefetch).toBe(true);
  });

  it('uses the defaults CoreDNS uses', () => {
    expect(s).toEqual({ maxEntries: 10_000, maxTtl: 3600, minTtl: 5, maxNegativeTtl: 1800, minNegativeTtl: 5, prefetch: undefined, staleMaxSeconds: 3600 });
    expect(resolveCacheSettings({ prefetch: true }).prefetch).toEqual({ amount: 2, windowMs: 60_000, percentage: 10 });
  });
});

import { describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import { DnsCache, cacheKey, cacheTtl, resolveCacheSettings, staleTtl, type CacheType } from '../../../dns/forward/cache.ts';
import type { UpstreamReply } from '../../../dns/forward/exchange.ts';
import type { Rcode } from '../../../dns/types.ts';
import { a, query, soa } from './fake-upstream.ts';
import { ecsOption, subnetOf } from './ecs-options.ts';

function reply(rcode: Rcode, answers: Answer[] = [], authorities: Answer[] = [], additionals: Answer[] = []): UpstreamReply {
  return { rcode, wireRcode: rcode, answers, authorities, additionals, transport: 'udp' };
}

const ns = (ttl: number): Answer => ({ name: 'example.com', type: 'NS', class: 'IN', ttl, data: 'ns1.example.com' });
const s = resolveCacheSettings();
/** An A question asked upstream without DO, and a client without DO. */
const asked = { type: 'A', dnssecOk: false };
const plain = { dnssecOk: false };
/** An ECS option for a /24 (three address bytes), with a scope. */
const ecs24 = (net: string, scope = 0) => Buffer.from([0, 8, 0, 7, 0, 1, 24, scope, ...net.split('.').map(Number)]);
const cookie = (n: number) => Buffer.from([0, 10, 0, 8, ...Buffer.alloc(8, n)]);

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
    ['SERVFAIL: 5 s, as CoreDNS cache servfail (its failttl), in the denial cache', reply('SERVFAIL'), { type: 'denial', ttl: 5 }],
    ['SERVFAIL: whatever its records say', reply('SERVFAIL', [], [soa('example.com', 900, 900)]), { type: 'denial', ttl: 5 }],
    ['SERVFAIL: own servfailTtl', reply('SERVFAIL'), { type: 'denial', ttl: 60 }, { servfailTtl: 60 }],
    ['SERVFAIL: servfailTtl 0 is never cached', reply('SERVFAIL'), undefined, { servfailTtl: 0 }],
    ['an extended rcode (BADVERS) is not cached', { ...reply('SERVFAIL'), wireRcode: 'BADVERS' }, undefined],
    ['REFUSED is not cached', reply('REFUSED'), undefined],
  ];
  for (const [name, r, want, settings] of cases) it(name, () => expect(cacheTtl(r, resolveCacheSettings(settings))).toEqual(want));
});

describe('cacheKey', () => {
  it('folds case, keeps CD apart, and shares DO and DO=0 questions (the entry says how it was asked)', () => {
    expect(cacheKey(query('Example.COM'))).toBe(cacheKey(query('example.com')));
    // The usual question is keyed by its name alone.
    expect(cacheKey(query('Example.COM'))).toBe('example.com');
    expect(cacheKey(query('example.com', 'AAAA'))).not.toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { dnssecOk: true }))).toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { cd: true }))).not.toBe(cacheKey(query('example.com')));
    expect(cacheKey(query('example.com', 'A', { qclass: 3 }))).not.toBe(cacheKey(query('example.com')));
  });

  it('keeps questions with other relayed EDNS options apart, and ignores hop-by-hop ones and the client subnet', () => {
    const key = (...options: Buffer[]) => cacheKey(query('example.com', 'A', options.length ? { ednsOptions: Buffer.concat(options) } : {}));
    const keyTag = Buffer.from([0, 14, 0, 2, 0x4f, 0x66]);
    const rows: Array<[string, string, string, boolean]> = [
      // The subnet is matched by network, within the SCOPE of the answer (DnsCache.lookup), not by key.
      ['ECS vs none', key(ecs24('10.1.1')), key(), true],
      ['two subnets', key(ecs24('10.1.1')), key(ecs24('10.2.2')), true],
      ['a key tag vs none', key(keyTag), key(), false],
      ['a key tag and ECS vs a key tag', key(keyTag, ecs24('10.1.1')), key(keyTag), true],
      ['a cookie vs none', key(cookie(1)), key(), true],
      ['two cookies', key(cookie(1)), key(cookie(2)), true],
      ['a cookie and ECS vs ECS', key(cookie(1), ecs24('10.1.1')), key(ecs24('10.1.1')), true],
    ];
    for (const [what, one, other, same] of rows) expect(one === other, what).toBe(same);
    expect(key(cookie(1))).toBe('example.com');
    expect(key(ecs24('10.1.1'))).toBe('example.com');
  });
});

describe('ECS answers in the cache', () => {
  const dataOf = (rr: unknown) => (rr as { data?: unknown } | undefined)?.data;
  const t0 = 1_000_000;
  const withEcs = (ecs: Buffer | undefined, ip = '10.0.0.1'): UpstreamReply => ({ ...reply('NOERROR', [a('x', ip, 60)]), ...(ecs ? { ednsOptions: ecs } : {}) });
  const hitOf = (c: DnsCache, q: string | undefined, at = t0 + 1000) => {
    const found = c.lookup('k', at, plain, q === undefined ? undefined : subnetOf(q));
    return found.kind === 'hit' ? { address: dataOf(found.answer.answers[0]), ecs: found.answer.ednsOptions?.toString('hex') } : found.kind;
  };
  const opt = (prefix: string, scope: number) => ecsOption(prefix, scope).toString('hex');

  // [what, asked with, the reply's option, later query, what it gets: the answer and its option, or 'miss']
  const rows: Array<[string, string | undefined, Buffer | undefined, string | undefined, { ecs: string | undefined } | 'miss' | 'not cached']> = [
    ['scope 24: the same subnet, its option echoed', '10.1.1.0/24', ecsOption('10.1.1.0/24', 24), '10.1.1.0/24', { ecs: opt('10.1.1.0/24', 24) }],
    ["scope 24: a /25 inside gets its own option with SCOPE 24", '10.1.1.0/24', ecsOption('10.1.1.0/24', 24), '10.1.1.128/25', { ecs: opt('10.1.1.128/25', 24) }],
    ['scope 24: another /24 misses', '10.1.1.0/24', ecsOption('10.1.1.0/24', 24), '10.1.2.0/24', 'miss'],
    ['scope 24: a query without ECS misses', '10.1.1.0/24', ecsOption('10.1.1.0/24', 24), undefined, 'miss'],
    ['scope 0: any subnet, SCOPE 0', '10.1.1.0/24', ecsOption('10.1.1.0/24', 0), '192.0.2.0/24', { ecs: opt('192.0.2.0/24', 0) }],
    ['scope 0: a query without ECS, no option', '10.1.1.0/24', ecsOption('10.1.1.0/24', 0), undefined, { ecs: undefined }],
    ['no option in the reply (no ECS upstream) counts as scope 0', '10.1.1.0/24', undefined, '10.7.7.0/24', { ecs: opt('10.7.7.0/24', 0) }],
    ['scope 28 > source 24: only the same source and address', '10.1.1.0/24', ecsOption('10.1.1.0/24', 28), '10.1.1.0/24', { ecs: opt('10.1.1.0/24', 28) }],
    ['scope 28 > source 24: a /28 inside misses', '10.1.1.0/24', ecsOption('10.1.1.0/24', 28), '10.1.1.0/28', 'miss'],
    ['answered for another subnet: not cached', '10.1.1.0/24', ecsOption('10.2.2.0/24', 24), '10.1.1.0/24', 'not cached'],
    ['asked without ECS, answered with one: not cached', undefined, ecsOption('10.1.1.0/24', 24), undefined, 'not cached'],
  ];
  for (const [what, askedFor, replyEcs, q, want] of rows) {
    it(what, () => {
      const c = new DnsCache();
      const entry = c.store('k', withEcs(replyEcs), t0, asked, askedFor === undefined ? undefined : subnetOf(askedFor));
      if (want === 'not cached') return expect(entry).toBeUndefined();
      expect(entry).toBeDefined();
      expect(hitOf(c, q)).toEqual(want === 'miss' ? 'miss' : { address: '10.0.0.1', ecs: want.ecs });
      // A stale answer echoes the client's option the same way.
      if (want !== 'miss') expect(c.staleAnswer(entry!, plain, q === undefined ? undefined : subnetOf(q)).ednsOptions?.toString('hex')).toBe(want.ecs);
    });
  }

  it('serves the longest scope that matches, and a fresh entry before a stale one', () => {
    const c = new DnsCache();
    c.store('k', withEcs(ecsOption('10.1.1.0/24', 0), '10.0.0.0'), t0, asked, subnetOf('10.1.1.0/24'));
    c.store('k', withEcs(ecsOption('10.1.1.0/24', 16), '10.0.0.16'), t0, asked, subnetOf('10.1.1.0/24'));
    c.store('k', { ...withEcs(ecsOption('10.1.1.0/24', 24), '10.0.0.24'), answers: [a('x', '10.0.0.24', 5)] }, t0, asked, subnetOf('10.1.1.0/24'));
    expect(c.size).toBe(3);
    const address = (q: string | undefined, at = t0 + 1000) => {
      const found = c.lookup('k', at, plain, q === undefined ? undefined : subnetOf(q));
      return found.kind === 'miss' ? 'miss' : `${found.kind} ${dataOf(found.entry.answers[0])}`;
    };
    expect(address('10.1.1.0/24')).toBe('hit 10.0.0.24');
    expect(address('10.1.2.0/24')).toBe('hit 10.0.0.16');
    expect(address('10.2.0.0/24')).toBe('hit 10.0.0.0');
    expect(address(undefined)).toBe('hit 10.0.0.0');
    // The /24 entry (TTL 5) has expired: the /16 one, still fresh, wins over serving it stale.
    expect(address('10.1.1.0/24', t0 + 10_000)).toBe('hit 10.0.0.16');
  });

  it('serves an expired entry stale when no fresh one matches', () => {
    const c = new DnsCache();
    c.store('k', { ...withEcs(ecsOption('10.1.1.0/24', 24)), answers: [a('x', '10.0.0.24', 5)] }, t0, asked, subnetOf('10.1.1.0/24'));
    const found = c.lookup('k', t0 + 10_000, plain, subnetOf('10.1.1.0/25'));
    expect(found.kind).toBe('stale');
  });

  it('counts entries of every subnet towards maxEntries, and evicts them like any other', () => {
    const evicted: CacheType[] = [];
    const c = new DnsCache({ maxEntries: 3 }, (t) => evicted.push(t));
    for (const net of ['10.1.1', '10.1.2', '10.1.3', '10.1.4']) c.store('k', withEcs(ecsOption(`${net}.0/24`, 24)), t0, asked, subnetOf(`${net}.0/24`));
    expect(c.size).toBe(3);
    expect(evicted).toEqual(['success']);
    const kinds = ['10.1.1', '10.1.2', '10.1.3', '10.1.4'].map((net) => c.lookup('k', t0 + 1000, plain, subnetOf(`${net}.0/24`)).kind);
    expect(kinds).toEqual(['miss', 'hit', 'hit', 'hit']);
    c.clear();
    expect(c.lookup('k', t0 + 1000, plain, subnetOf('10.1.2.0/24')).kind).toBe('miss');
  });

  it('lets an answer for every network asked with ECS replace one asked without, not the other way round with DO', () => {
    const c = new DnsCache();
    c.store('k', withEcs(undefined, '10.0.0.1'), t0, { type: 'A', dnssecOk: true });
    // A DO=0 answer with SCOPE 0 replaces the DO one asked without ECS: that one may not serve subnets.
    c.store('k', withEcs(ecsOption('10.1.1.0/24', 0), '10.0.0.2'), t0, asked, subnetOf('10.1.1.0/24'));
    const hit = c.lookup('k', t0 + 1000, plain, subnetOf('10.9.9.0/24'));
    expect(hit.kind === 'hit' && dataOf(hit.answer.answers[0])).toBe('10.0.0.2');
  });
});

describe('DnsCache', () => {
  const t0 = 1_700_000_000_000;

  it('serves answers whose TTLs count down, the same object within a second', () => {
    const c = new DnsCache();
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)], [ns(300)]), t0, asked);
    const first = c.lookup('k', t0 + 200, plain);
    const again = c.lookup('k', t0 + 900, plain);
    const later = c.lookup('k', t0 + 10_500, plain);
    if (first.kind !== 'hit' || again.kind !== 'hit' || later.kind !== 'hit') throw new Error('expected hits');
    expect(first.answer.answers[0]).toMatchObject({ ttl: 100, data: '10.0.0.1' });
    expect(again.answer).toBe(first.answer);
    expect(later.answer.answers[0]).toMatchObject({ ttl: 90 });
    expect(later.answer.authorities[0]).toMatchObject({ ttl: 90, type: 'NS' });
    expect(later.answer).toMatchObject({ rcode: 'NOERROR', authoritative: false, recursionAvailable: true, source: 'cache' });
  });

  it('with keepTtl serves the TTL it cached for until the entry expires, as CoreDNS keepttl', () => {
    const c = new DnsCache({ keepTtl: true, staleMaxSeconds: 0 });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)], [ns(300)]), t0, asked);
    const later = c.lookup('k', t0 + 60_500, plain);
    if (later.kind !== 'hit') throw new Error('expected a hit');
    expect(later.answer.answers[0]).toMatchObject({ ttl: 100 });
    expect(later.answer.authorities[0]).toMatchObject({ ttl: 100 });
    expect(c.lookup('k', t0 + 100_000, plain).kind).toBe('miss');
  });

  it('expires, then serves stale within staleMaxSeconds, then forgets', () => {
    const c = new DnsCache({ staleMaxSeconds: 60 });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 10)]), t0, asked);
    expect(c.lookup('k', t0 + 9_999, plain).kind).toBe('hit');
    const stale = c.lookup('k', t0 + 10_000, plain);
    expect(stale.kind).toBe('stale');
    if (stale.kind === 'stale') expect(c.staleAnswer(stale.entry, plain).answers[0]).toMatchObject({ ttl: staleTtl });
    expect(c.lookup('k', t0 + 69_999, plain).kind).toBe('stale');
    expect(c.lookup('k', t0 + 70_000, plain).kind).toBe('miss');
    expect(c.count('success')).toBe(0);
  });

  it('keeps an entry when the new reply is not cacheable', () => {
    const c = new DnsCache();
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 10)]), t0, asked);
    expect(c.store('k', reply('SERVFAIL'), t0 + 20_000, asked)).toBeUndefined();
    expect(c.lookup('k', t0 + 20_000, plain).kind).toBe('stale');
  });

  it('a SERVFAIL is served from the cache for its 5 s, never stale, and never replaces another answer', () => {
    const c = new DnsCache();
    expect(c.store('k', reply('SERVFAIL'), t0, asked)).toMatchObject({ type: 'denial', ttl: 5 });
    const hit = c.lookup('k', t0 + 4_999, plain);
    expect(hit.kind).toBe('hit');
    if (hit.kind === 'hit') expect(hit.answer).toMatchObject({ rcode: 'SERVFAIL', source: 'cache' });
    expect(c.lookup('k', t0 + 5_000, plain).kind).toBe('miss');
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 10)]), t0 + 5_000, asked);
    expect(c.store('k', reply('SERVFAIL'), t0 + 6_000, asked)).toBeUndefined();
    const still = c.lookup('k', t0 + 6_000, plain);
    if (still.kind !== 'hit') throw new Error('expected a hit');
    expect(still.answer.rcode).toBe('NOERROR');
  });

  it('evicts the least recently used entry when full, and counts by type', () => {
    const evicted: CacheType[] = [];
    const c = new DnsCache({ maxEntries: 2 }, (t) => evicted.push(t));
    c.store('one', reply('NOERROR', [a('one', '10.0.0.1')]), t0, asked);
    c.store('two', reply('NXDOMAIN', [], [soa('example.com', 60, 60)]), t0, asked);
    expect([c.count('success'), c.count('denial')]).toEqual([1, 1]);
    c.lookup('one', t0 + 1000, plain); // "two" is now the least recently used
    c.store('three', reply('NOERROR', [a('three', '10.0.0.3')]), t0 + 2000, asked);
    expect(evicted).toEqual(['denial']);
    expect(c.lookup('two', t0 + 2000, plain).kind).toBe('miss');
    expect(c.lookup('one', t0 + 2000, plain).kind).toBe('hit');
    expect([c.size, c.count('success'), c.count('denial')]).toEqual([2, 2, 0]);
  });

  it('keeps an entry used within the last half of its capacity while new names push the others out', () => {
    let evictions = 0;
    const c = new DnsCache({ maxEntries: 100 }, () => evictions++);
    const answerOf = (name: string) => reply('NOERROR', [a(name, '10.0.0.1')]);
    c.store('hot', answerOf('hot'), t0, asked);
    for (let i = 0; i < 1000; i++) {
      c.store(`n${i}`, answerOf(`n${i}`), t0, asked);
      // Asked every 40 new names: never among the 50 least recently moved.
      if (i % 40 === 0) expect(c.lookup('hot', t0 + 1000, plain).kind).toBe('hit');
    }
    expect([c.lookup('hot', t0 + 1000, plain).kind, c.lookup('n0', t0 + 1000, plain).kind, c.lookup('n999', t0 + 1000, plain).kind]).toEqual(['hit', 'miss', 'hit']);
    expect([c.size, evictions]).toEqual([100, 901]);
  });

  it('stores nothing with maxEntries 0', () => {
    const c = new DnsCache({ maxEntries: 0 });
    expect(c.store('k', reply('NOERROR', [a('x', '10.0.0.1')]), t0, asked)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('asks for one prefetch of a popular entry in the last 10% of its TTL', () => {
    const c = new DnsCache({ prefetch: { amount: 3, windowSeconds: 60, percentage: 10 } });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)]), t0, asked); // query 1 (the miss)
    const at = (s: number) => {
      const r = c.lookup('k', t0 + s * 1000, plain);
      return r.kind === 'hit' && r.prefetch;
    };
    expect(at(50)).toBe(false); // query 2: popular enough? no, 3 needed
    expect(at(89)).toBe(false); // query 3: popular, but 11 s of 100 left
    expect(at(91)).toBe(true); // query 4: 9 s left
    expect(at(92)).toBe(false); // asked once already
  });

  it('forgets popularity after a gap of the prefetch window', () => {
    const c = new DnsCache({ prefetch: { amount: 2, windowSeconds: 60 }, maxTtl: 3600 });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 1000)]), t0, asked);
    const r = c.lookup('k', t0 + 950_000, plain); // 50 s left, but 950 s since the miss: this is the first of a new run
    expect(r.kind === 'hit' && r.prefetch).toBe(false);
    const r2 = c.lookup('k', t0 + 951_000, plain);
    expect(r2.kind === 'hit' && r2.prefetch).toBe(true);
  });

  it('hands popularity on to the entry that replaces it', () => {
    const c = new DnsCache({ prefetch: { amount: 3 } });
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 100)]), t0, asked);
    c.lookup('k', t0 + 1000, plain);
    c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 50)]), t0 + 2000, asked);
    const r = c.lookup('k', t0 + 47_000, plain); // third query, 5 s of 50 left
    expect(r.kind === 'hit' && r.prefetch).toBe(true);
  });

  it('uses the defaults CoreDNS uses', () => {
    expect(s).toEqual({ maxEntries: 10_000, maxTtl: 3600, minTtl: 5, maxNegativeTtl: 1800, minNegativeTtl: 5, prefetch: undefined, staleMaxSeconds: 3600, servfailTtl: 5, keepTtl: false });
    expect(resolveCacheSettings({ prefetch: true }).prefetch).toEqual({ amount: 2, windowMs: 60_000, percentage: 10 });
  });

  describe('DNSSEC records and the DO bit', () => {
    const sig = { name: 'x', type: 'RRSIG', class: 'IN', ttl: 300, data: { typeCovered: 'A', algorithm: 13, labels: 1, originalTTL: 300, expiration: 1_900_000_000, inception: 1_700_000_000, keyTag: 1, signersName: 'example.com', signature: Buffer.from([1]) } } as Answer;
    const signedReply = () => ({ ...reply('NOERROR', [a('x', '10.0.0.1', 300), sig]), authenticatedData: true });
    const doClient = { dnssecOk: true };
    const types = (x: { answers: Array<{ type: string }> }) => x.answers.map((r) => r.type);

    it('serves an entry asked with DO to both kinds of client, each its own object, the same one while the TTL stands', () => {
      const c = new DnsCache();
      c.store('k', signedReply(), t0, { type: 'A', dnssecOk: true });
      const full = c.lookup('k', t0 + 100, doClient);
      const bare = c.lookup('k', t0 + 100, plain);
      const withAd = c.lookup('k', t0 + 100, { dnssecOk: false, ad: true });
      if (full.kind !== 'hit' || bare.kind !== 'hit' || withAd.kind !== 'hit') throw new Error('expected hits');
      expect([types(full.answer), full.answer.authenticatedData]).toEqual([['A', 'RRSIG'], true]);
      expect([types(bare.answer), bare.answer.authenticatedData]).toEqual([['A'], undefined]);
      expect([types(withAd.answer), withAd.answer.authenticatedData]).toEqual([['A'], true]);
      expect(new Set([full.answer, bare.answer, withAd.answer]).size).toBe(3);
      const again = c.lookup('k', t0 + 200, plain);
      expect(again.kind === 'hit' && again.answer).toBe(bare.answer);
    });

    it('is a miss for a DO client when asked without DO; a DO reply then replaces it', () => {
      const c = new DnsCache();
      c.store('k', reply('NOERROR', [a('x', '10.0.0.1', 300)]), t0, asked);
      expect(c.lookup('k', t0, doClient).kind).toBe('miss');
      expect(c.lookup('k', t0, plain).kind).toBe('hit');
      c.store('k', signedReply(), t0, { type: 'A', dnssecOk: true });
      expect(c.size).toBe(1);
      expect(c.lookup('k', t0, doClient).kind).toBe('hit');
    });

    it('keeps a fresh entry asked with DO when a reply asked without DO comes later, and returns it', () => {
      const c = new DnsCache();
      const signed = c.store('k', signedReply(), t0, { type: 'A', dnssecOk: true });
      expect(c.store('k', reply('NXDOMAIN', [], [soa('example.com', 60, 60)]), t0 + 1000, asked)).toBe(signed);
      expect(c.current('k')).toBe(signed);
      // Once it expired, the later reply replaces it.
      expect(c.store('k', reply('NOERROR', [a('x', '10.0.0.2', 300)]), t0 + 300_000, asked)).not.toBe(signed);
    });

    it('leaves the DNSSEC records out of a stale answer to a client without DO', () => {
      const c = new DnsCache();
      c.store('k', signedReply(), t0, { type: 'A', dnssecOk: true });
      const stale = c.lookup('k', t0 + 301_000, plain);
      if (stale.kind !== 'stale') throw new Error('expected stale');
      expect(types(c.staleAnswer(stale.entry, plain))).toEqual(['A']);
      expect(types(c.staleAnswer(stale.entry, doClient))).toEqual(['A', 'RRSIG']);
    });
  });
});

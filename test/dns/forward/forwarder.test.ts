import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Answer } from 'dns-packet';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder, ForwarderConfigError, type ForwarderOptions } from '../../../dns/forward/forwarder.ts';
import type { HostPort } from '../../../runtime/flags.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { waitFor } from '../../helpers/wait.ts';
import { a, deadUpstream, query, soa, startUpstream, type FakeUpstream, type Reply, type SeenQuery } from './fake-upstream.ts';
import { ecsOption } from './ecs-options.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function upstream(script: (q: SeenQuery) => Reply): Promise<FakeUpstream> {
  const fake = await startUpstream(script);
  open.push(fake);
  return fake;
}

/** A forwarder with a clock the test moves, and its registry. */
function forwarder(upstreams: HostPort[], over: Partial<ForwarderOptions> = {}) {
  const clock = { now: 1_700_000_000_000 };
  const registry = new Registry();
  const f = new Forwarder({ upstreams, log: silentLogger(), registry, now: () => clock.now, ...over });
  open.unshift(f);
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = (await registry.getSingleMetric(name)?.get())?.values ?? [];
    return m.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((sum, v) => sum + v.value, 0);
  };
  return { f, clock, registry, metric, advance: (s: number) => (clock.now += s * 1000) };
}

const answerA = (ip: string, ttl = 300) => (q: { name: string }): Reply => ({ answers: [a(q.name, ip, ttl)] });

describe('forwarding', () => {
  const cases: Array<[string, Reply, object]> = [
    ['an answer', { answers: [a('www.example.com', '10.0.0.1', 60)] }, { rcode: 'NOERROR', answers: [{ name: 'www.example.com', data: '10.0.0.1', ttl: 60 }] }],
    ['NXDOMAIN with its SOA', { rcode: 'NXDOMAIN', authorities: [soa('example.com', 900, 60)] }, { rcode: 'NXDOMAIN', answers: [], authorities: [{ type: 'SOA', ttl: 60 }] }],
    ['REFUSED', { rcode: 'REFUSED' }, { rcode: 'REFUSED', answers: [] }],
    ['SERVFAIL', { rcode: 'SERVFAIL' }, { rcode: 'SERVFAIL' }],
    // Found by an audit: YXDOMAIN became SERVFAIL, and the AD bit was dropped.
    ['YXDOMAIN', { rcode: 'YXDOMAIN' }, { rcode: 'YXDOMAIN' }],
    ['the AD bit', { answers: [a('www.example.com', '10.0.0.1', 60)], authenticated: true }, { rcode: 'NOERROR', authenticatedData: true }],
    ['additional records without the OPT', { answers: [a('www.example.com', '10.0.0.1')], additionals: [a('ns1.example.com', '10.0.0.53')] }, { additionals: [{ name: 'ns1.example.com' }] }],
  ];
  for (const [name, reply, want] of cases) {
    it(`passes on ${name}`, async () => {
      const up = await upstream(() => reply);
      const { f } = forwarder([up.hostPort]);
      // With AD set, as dig asks: a client that set neither AD nor DO gets no AD bit (RFC 6840 5.8, as CoreDNS).
      const got = await f.handle(query('www.example.com', 'A', { ad: true }));
      expect(got).toMatchObject({ authoritative: false, recursionAvailable: true, source: 'forward', ...want });
      expect(got.additionals.some((rr) => rr.type === 'OPT')).toBe(false);
    });
  }

  it('asks with RD, its own EDNS0 size, and the DO and CD bits of the query', async () => {
    const up = await upstream(answerA('10.0.0.1'));
    const { f } = forwarder([up.hostPort]);
    await f.handle(query('plain.example.com', 'AAAA', { udpSize: 4096 }));
    await f.handle(query('signed.example.com', 'A', { dnssecOk: true, cd: true }));
    expect(up.seen).toMatchObject([
      { name: 'plain.example.com', type: 'AAAA', rd: true, cd: false, dnssecOk: false, udpSize: 1232 },
      { name: 'signed.example.com', type: 'A', rd: true, cd: true, dnssecOk: true, udpSize: 1232 },
    ]);
  });

  it('retries over TCP when the UDP reply is truncated', async () => {
    const big: Answer[] = Array.from({ length: 3 }, (_, i) => a('big.example.com', `10.0.1.${i}`));
    const up = await upstream(() => ({ answers: big, truncated: true }));
    const { f } = forwarder([up.hostPort]);
    const got = await f.handle(query('big.example.com'));
    expect(got.answers.map((rr) => rr.type === 'A' && rr.data)).toEqual(['10.0.1.0', '10.0.1.1', '10.0.1.2']);
    expect([up.count('udp'), up.count('tcp')]).toEqual([1, 1]);
  });

  it('ignores a reply with the wrong ID and takes the real one', async () => {
    const up = await upstream((q) => ({ answers: [a(q.name, '10.0.0.9')], decoysFirst: true }));
    const { f } = forwarder([up.hostPort]);
    expect((await f.handle(query('www.example.com'))).answers).toMatchObject([{ data: '10.0.0.9' }]);
  });

  it('fails over to the second upstream when the first is silent, and then tries the silent one last', async () => {
    const silent = await upstream(() => 'silent');
    const good = await upstream(answerA('10.0.0.2'));
    const { f, metric } = forwarder([silent.hostPort, good.hostPort], { timeoutMs: 150, cache: { maxEntries: 0 } });
    for (let i = 0; i < 2; i++) expect((await f.handle(query(`n${i}.example.com`))).answers).toMatchObject([{ data: '10.0.0.2' }]);
    expect(silent.count()).toBe(2);
    // Two failures in a row: the silent upstream is down and goes last; the next query costs no timeout.
    const started = performance.now();
    expect((await f.handle(query('n2.example.com'))).rcode).toBe('NOERROR');
    expect(performance.now() - started).toBeLessThan(100);
    expect(await metric('coredns_forward_requests_total', { to: silent.hostPort.text })).toBe(2);
    expect(await metric('coredns_forward_requests_total', { to: good.hostPort.text })).toBe(3);
    expect(await metric('coredns_forward_responses_total', { to: good.hostPort.text, rcode: 'NOERROR' })).toBe(3);
    expect(await metric('coredns_proxy_request_duration_seconds', { proxy_name: 'forward', to: good.hostPort.text })).toBeGreaterThan(0);
  });

  it('with maxFails 0 never takes the silent first upstream down: every query waits for it (CoreDNS max_fails 0)', async () => {
    const silent = await upstream(() => 'silent');
    const good = await upstream(answerA('10.0.0.2'));
    const { f } = forwarder([silent.hostPort, good.hostPort], { timeoutMs: 100, maxFails: 0, cache: { maxEntries: 0 } });
    for (let i = 0; i < 4; i++) expect((await f.handle(query(`z${i}.example.com`))).answers).toMatchObject([{ data: '10.0.0.2' }]);
    // Asked first every time, never probed: no ". IN NS" among what it received.
    expect(silent.count()).toBe(4);
  });

  it('never sends an except name upstream: SERVFAIL, the upstream not asked; other names as ever (CoreDNS forward except)', async () => {
    const up = await upstream(answerA('10.0.0.2'));
    const { f } = forwarder([up.hostPort], { except: ['internal.corp'], cache: { maxEntries: 0 } });
    expect((await f.handle(query('db.Internal.Corp'))).rcode).toBe('SERVFAIL');
    expect((await f.handle(query('internal.corp'))).rcode).toBe('SERVFAIL');
    expect(up.count()).toBe(0);
    expect((await f.handle(query('notinternal.corp'))).answers).toMatchObject([{ data: '10.0.0.2' }]);
    expect(up.count()).toBe(1);
  });

  it('with failFast and every upstream down, fails at once without asking them (CoreDNS failfast_all_unhealthy_upstreams)', async () => {
    const silent = await upstream(() => 'silent');
    const { f } = forwarder([silent.hostPort], { timeoutMs: 100, maxFails: 1, failFast: true, cache: { maxEntries: 0 } });
    expect((await f.handle(query('first.example.com'))).rcode).toBe('SERVFAIL');
    const asked = silent.count();
    const started = performance.now();
    expect((await f.handle(query('second.example.com'))).rcode).toBe('SERVFAIL');
    expect(performance.now() - started).toBeLessThan(50);
    // Not asked (a probe, every 0.5 s, may be under way: none within 50 ms of the first failure's own).
    expect(silent.count()).toBe(asked);
    // Without it the one upstream is still asked, and the query waits for it.
    const { f: plain } = forwarder([silent.hostPort], { timeoutMs: 100, maxFails: 1, cache: { maxEntries: 0 } });
    await plain.handle(query('third.example.com'));
    const waited = performance.now();
    expect((await plain.handle(query('fourth.example.com'))).rcode).toBe('SERVFAIL');
    expect(performance.now() - waited).toBeGreaterThanOrEqual(90);
  });

  it('probes an upstream taken down every probeIntervalMs (CoreDNS health_check)', async () => {
    const silent = await upstream(() => 'silent');
    const good = await upstream(answerA('10.0.0.2'));
    const { f } = forwarder([silent.hostPort, good.hostPort], { timeoutMs: 50, maxFails: 1, probeIntervalMs: 100, cache: { maxEntries: 0 } });
    await f.handle(query('down.example.com'));
    const before = silent.count();
    await new Promise((r) => setTimeout(r, 450));
    // About four probes in 450 ms at 100 ms; at the default 500 ms there would be none.
    expect(silent.count() - before).toBeGreaterThanOrEqual(3);
  });

  const policyCases: Array<{ policy: ForwarderOptions['policy']; check: (counts: number[]) => void }> = [
    // CoreDNS's default: a shuffle per query (20 queries all on one of three: about 3 in a billion).
    { policy: 'random', check: (c) => expect(c.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2) },
    { policy: 'round_robin', check: (c) => expect(c).toEqual([7, 7, 6]) },
    { policy: 'sequential', check: (c) => expect(c).toEqual([20, 0, 0]) },
  ];
  it.each(policyCases)('spreads 20 names over three upstreams by policy $policy', async ({ policy, check }) => {
    const ups = [await upstream(answerA('10.0.0.1')), await upstream(answerA('10.0.0.2')), await upstream(answerA('10.0.0.3'))];
    const { f } = forwarder(ups.map((u) => u.hostPort), { policy, cache: { maxEntries: 0 } });
    for (let i = 0; i < 20; i++) expect((await f.handle(query(`p${i}.example.com`))).rcode).toBe('NOERROR');
    check(ups.map((u) => u.count()));
  });

  it.each(['random', 'round_robin'] as const)('with policy %s, a silent upstream goes last once down: no query waits for it again', async (policy) => {
    const silent = await upstream(() => 'silent');
    const good = await upstream(answerA('10.0.0.2'));
    const { f } = forwarder([silent.hostPort, good.hostPort], { policy, timeoutMs: 100, cache: { maxEntries: 0 } });
    // Until the silent one has failed twice, some queries time out on it first, then fail over.
    const asked = () => silent.seen.filter((q) => q.name !== '.').length;
    for (let i = 0; asked() < 2 && i < 40; i++) expect((await f.handle(query(`w${i}.example.com`))).rcode).toBe('NOERROR');
    const before = asked();
    const started = performance.now();
    for (let i = 0; i < 10; i++) expect((await f.handle(query(`d${i}.example.com`))).answers).toMatchObject([{ data: '10.0.0.2' }]);
    expect(performance.now() - started).toBeLessThan(500);
    // Health probes (". NS") go on in the background; no query is sent to it.
    expect(asked() - before).toBe(0);
  });

  it('answers SERVFAIL within the budget when every upstream is silent', async () => {
    const one = await upstream(() => 'silent');
    const two = await upstream(() => 'silent');
    const { f } = forwarder([one.hostPort, two.hostPort], { timeoutMs: 100, budgetMs: 350 });
    const started = performance.now();
    const got = await f.handle(query('www.example.com'));
    const took = performance.now() - started;
    expect(got).toMatchObject({ rcode: 'SERVFAIL', answers: [], source: 'forward' });
    expect(took).toBeGreaterThanOrEqual(330);
    expect(took).toBeLessThan(700);
    // Timeouts may be lost datagrams, so rounds repeat while the budget lasts.
    expect(one.count()).toBeGreaterThanOrEqual(2);
  });

  it('answers SERVFAIL at once when every upstream refuses, and counts the broken health check', async () => {
    const { f, metric } = forwarder([await deadUpstream(), await deadUpstream()], { cache: { maxEntries: 0 } });
    const started = performance.now();
    for (let i = 0; i < 3; i++) expect((await f.handle(query('www.example.com'))).rcode).toBe('SERVFAIL');
    expect(performance.now() - started).toBeLessThan(500);
    expect(await metric('coredns_forward_healthcheck_broken_total')).toBe(1);
  });

  it('brings an upstream back when its health probe is answered', async () => {
    const up = await upstream(() => 'silent');
    const { f } = forwarder([up.hostPort], { timeoutMs: 50, budgetMs: 60, maxFails: 1, cache: { maxEntries: 0 } });
    expect((await f.handle(query('www.example.com'))).rcode).toBe('SERVFAIL');
    up.script = answerA('10.0.0.3');
    await waitFor('a health probe', () => up.seen.some((q) => q.name === '.' && q.type === 'NS'));
    expect((await f.handle(query('www.example.com'))).answers).toMatchObject([{ data: '10.0.0.3' }]);
  });

  it('refuses bad options with a typed error', () => {
    const bad: Array<Partial<ForwarderOptions>> = [
      { upstreams: [] },
      { upstreams: [{ host: 'dns.google', port: 53, text: 'dns.google:53' }] },
      { upstreams: [{ host: '8.8.8.8', port: 0, text: '8.8.8.8:0' }] },
      { timeoutMs: 0 },
      { budgetMs: Number.NaN },
      { maxConcurrent: 0 },
    ];
    for (const over of bad) {
      expect(() => new Forwarder({ upstreams: [{ host: '8.8.8.8', port: 53, text: '8.8.8.8:53' }], log: silentLogger(), ...over })).toThrow(ForwarderConfigError);
    }
  });

  it('answers REFUSED at once above maxConcurrent upstream queries (CoreDNS ErrLimitExceeded), counts it, and takes new ones once they end', async () => {
    const up = await upstream(() => 'silent');
    const { f, metric } = forwarder([up.hostPort], { maxConcurrent: 2, timeoutMs: 300, budgetMs: 300 });
    const pending = [f.handle(query('one.example.com')), f.handle(query('two.example.com'))];
    const started = performance.now();
    expect(await f.handle(query('three.example.com'))).toMatchObject({ rcode: 'REFUSED', source: 'forward' });
    expect(performance.now() - started).toBeLessThan(100);
    expect(await metric('coredns_forward_max_concurrent_rejects_total')).toBe(1);
    await Promise.all(pending);
    up.script = answerA('10.0.0.4');
    expect((await f.handle(query('three.example.com'))).answers).toMatchObject([{ data: '10.0.0.4' }]);
  });

  it('answers SERVFAIL to queries in flight when closed', async () => {
    const up = await upstream(() => 'silent');
    const { f } = forwarder([up.hostPort]);
    const pending = f.handle(query('www.example.com'));
    await waitFor('the upstream query', () => up.count() === 1);
    await f.close();
    expect((await pending).rcode).toBe('SERVFAIL');
    expect((await f.handle(query('www.example.com'))).rcode).toBe('SERVFAIL');
  });
});

describe('cache', () => {
  it('answers the second query from the cache, TTLs counting down', async () => {
    const up = await upstream(answerA('10.0.0.1', 300));
    const { f, advance, metric } = forwarder([up.hostPort]);
    const first = await f.handle(query('www.example.com'));
    advance(42);
    const second = await f.handle(query('WWW.Example.com'));
    expect(up.count()).toBe(1);
    expect(first).toMatchObject({ source: 'forward', answers: [{ ttl: 300 }] });
    expect(second).toMatchObject({ source: 'cache', answers: [{ ttl: 258, data: '10.0.0.1' }] });
    // An entry asked without DO is a miss for a DO query, whose answer then replaces it (one entry per question).
    await f.handle(query('www.example.com', 'A', { dnssecOk: true }));
    expect(up.count()).toBe(2);
    expect(await metric('coredns_cache_hits_total', { type: 'success', server: 'dns://:53', zones: '.' })).toBe(1);
    expect(await metric('coredns_cache_misses_total')).toBe(2);
    expect(await metric('coredns_cache_requests_total')).toBe(3);
    expect(await metric('coredns_cache_entries', { type: 'success' })).toBe(1);
  });

  it('keeps the upstream\'s AD bit on cache hits for clients that set AD or DO, as CoreDNS\'s cache does, and none where the upstream set none', async () => {
    const up = await upstream((q) => ({ answers: [a(q.name, '10.0.0.1', 300)], authenticated: q.name.startsWith('signed') }));
    const { f } = forwarder([up.hostPort]);
    await f.handle(query('signed.example.com', 'A', { ad: true }));
    expect(await f.handle(query('signed.example.com', 'A', { ad: true }))).toMatchObject({ source: 'cache', authenticatedData: true });
    // RFC 6840 5.8: neither AD nor DO asked, no AD given (CoreDNS's toMsg clears it the same way).
    expect((await f.handle(query('signed.example.com'))).authenticatedData).toBeUndefined();
    await f.handle(query('plain.example.com', 'A', { ad: true }));
    expect((await f.handle(query('plain.example.com', 'A', { ad: true }))).authenticatedData).toBeUndefined();
  });

  it('answers a fresh hit synchronously, the same object until the remaining TTL changes', async () => {
    const up = await upstream(answerA('10.0.0.1', 300));
    const { f, advance } = forwarder([up.hostPort]);
    const miss = f.handle(query('www.example.com'));
    expect(miss).toBeInstanceOf(Promise);
    await miss;
    advance(0.2);
    const hit = f.handle(query('WWW.example.com'));
    expect(hit).not.toBeInstanceOf(Promise);
    advance(0.7);
    expect(f.handle(query('www.example.com'))).toBe(hit);
    advance(0.2);
    const next = f.handle(query('www.example.com'));
    expect(next).not.toBe(hit);
    expect([hit, next]).toMatchObject([{ source: 'cache', answers: [{ ttl: 300 }] }, { source: 'cache', answers: [{ ttl: 299 }] }]);
  });

  it('exports cache and forward metrics that promtool accepts', async () => {
    const up = await upstream(answerA('10.0.0.1', 300));
    const { f, registry } = forwarder([up.hostPort]);
    await f.handle(query('www.example.com'));
    await f.handle(query('www.example.com'));
    const text = await registry.metrics();
    expect(text).toMatch(/^coredns_cache_hits_total\{server="dns:\/\/:53",zones=".",view="",type="success"\} 1$/m);
    expect(text).toMatch(/^coredns_cache_hits_total\{[^}]*type="denial"\} 0$/m);
    expect(text).toMatch(/^coredns_cache_misses_total\{[^}]*\} 1$/m);
    expect(text).toMatch(/^coredns_cache_requests_total\{server="dns:\/\/:53",zones=".",view=""\} 2$/m);
    const check = promisify(execFile)('promtool', ['check', 'metrics']);
    check.child.stdin!.end(text);
    const { stdout, stderr } = await check.catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`promtool rejected the metrics: ${e.stdout}${e.stderr}`);
    });
    expect(stdout + stderr).toBe('');
  });

  it('caches NXDOMAIN for the SOA minimum, then asks again', async () => {
    const up = await upstream(() => ({ rcode: 'NXDOMAIN', authorities: [soa('example.com', 900, 60)] }));
    const { f, advance, metric } = forwarder([up.hostPort]);
    await f.handle(query('nope.example.com'));
    advance(59);
    expect(await f.handle(query('nope.example.com'))).toMatchObject({ rcode: 'NXDOMAIN', source: 'cache', authorities: [{ type: 'SOA', ttl: 1 }] });
    expect(up.count()).toBe(1);
    expect(await metric('coredns_cache_hits_total', { type: 'denial' })).toBe(1);
    advance(1);
    await f.handle(query('nope.example.com'));
    expect(up.count()).toBe(2);
  });

  it('caps TTLs by maxTtl and maxNegativeTtl', async () => {
    const up = await upstream((q) => (q.name.startsWith('yes') ? { answers: [a(q.name, '10.0.0.1', 86400)] } : { rcode: 'NXDOMAIN', authorities: [soa('example.com', 86400, 86400)] }));
    const { f, advance } = forwarder([up.hostPort], { cache: { maxTtl: 100, maxNegativeTtl: 10 } });
    expect((await f.handle(query('yes.example.com'))).answers).toMatchObject([{ ttl: 100 }]);
    expect((await f.handle(query('no.example.com'))).authorities).toMatchObject([{ ttl: 10 }]);
    advance(10);
    await f.handle(query('no.example.com'));
    await f.handle(query('yes.example.com'));
    expect(up.count()).toBe(3);
  });

  it("caches an upstream's SERVFAIL for 5 s, as CoreDNS's cache (servfail 5s), counted as denial; never when no upstream replied", async () => {
    const up = await upstream(() => ({ rcode: 'SERVFAIL' }));
    const { f, advance, metric } = forwarder([up.hostPort]);
    expect((await f.handle(query('broken.example.com'))).rcode).toBe('SERVFAIL');
    advance(4);
    expect(await f.handle(query('broken.example.com'))).toMatchObject({ rcode: 'SERVFAIL', source: 'cache' });
    expect(up.count()).toBe(1);
    expect(await metric('coredns_cache_hits_total', { type: 'denial' })).toBe(1);
    advance(1);
    await f.handle(query('broken.example.com'));
    expect(up.count()).toBe(2);
    // --cache-servfail-ttl 0: never.
    const off = forwarder([up.hostPort], { cache: { servfailTtl: 0 } });
    await off.f.handle(query('other.example.com'));
    await off.f.handle(query('other.example.com'));
    expect(up.count()).toBe(4);
  });

  it('sends ten concurrent identical queries upstream once', async () => {
    const up = await upstream((q) => ({ answers: [a(q.name, '10.0.0.1')], delayMs: 50 }));
    const { f } = forwarder([up.hostPort]);
    const answers = await Promise.all(Array.from({ length: 10 }, () => f.handle(query('popular.example.com'))));
    expect(up.count()).toBe(1);
    for (const got of answers) expect(got.answers).toMatchObject([{ data: '10.0.0.1' }]);
  });

  it('prefetches a popular entry before it expires', async () => {
    let ip = '10.0.0.1';
    const up = await upstream((q) => ({ answers: [a(q.name, ip, 100)] }));
    const { f, advance, metric } = forwarder([up.hostPort], { cache: { prefetch: true } });
    await f.handle(query('hot.example.com'));
    advance(50);
    await f.handle(query('hot.example.com'));
    expect(up.count()).toBe(1);
    ip = '10.0.0.2';
    advance(41); // 9 s of 100 left: the hit is served and a refresh goes out
    expect((await f.handle(query('hot.example.com'))).answers).toMatchObject([{ data: '10.0.0.1', ttl: 9 }]);
    const data = async () => (await f.handle(query('hot.example.com'))).answers.map((rr) => rr.type === 'A' && rr.data);
    await waitFor('the prefetched answer', async () => (await data())[0] === '10.0.0.2');
    expect(up.count()).toBe(2);
    expect((await f.handle(query('hot.example.com'))).answers).toMatchObject([{ data: '10.0.0.2', ttl: 100 }]);
    expect(await metric('coredns_cache_prefetch_total')).toBe(1);
  });

  it('serves a stale entry when the upstream is gone, within staleMaxSeconds', async () => {
    const up = await upstream(answerA('10.0.0.1', 30));
    const { f, advance, metric } = forwarder([up.hostPort], { cache: { staleMaxSeconds: 600 } });
    await f.handle(query('www.example.com'));
    await up.close();
    advance(31);
    expect(await f.handle(query('www.example.com'))).toMatchObject({ rcode: 'NOERROR', source: 'cache', answers: [{ data: '10.0.0.1', ttl: 30 }] });
    expect(await metric('coredns_cache_served_stale_total')).toBe(1);
    advance(600);
    expect((await f.handle(query('www.example.com'))).rcode).toBe('SERVFAIL');
  });

  it('serves stale instead of SERVFAIL when the budget runs out', async () => {
    const up = await upstream(answerA('10.0.0.1', 30));
    const { f, advance } = forwarder([up.hostPort], { timeoutMs: 100, budgetMs: 200 });
    await f.handle(query('www.example.com'));
    up.script = () => 'silent';
    advance(31);
    expect(await f.handle(query('www.example.com'))).toMatchObject({ source: 'cache', answers: [{ data: '10.0.0.1', ttl: 30 }] });
  });

  it('after a refresh failed, serves stale at once for the 30 s recheck period and refreshes in the background', async () => {
    const up = await upstream(answerA('10.0.0.1', 30));
    const { f, advance } = forwarder([up.hostPort], { timeoutMs: 500 });
    const timed = async () => {
      const started = performance.now();
      const got = await f.handle(query('www.example.com'));
      return { data: got.answers.map((rr) => rr.type === 'A' && rr.data), source: got.source, ms: performance.now() - started };
    };
    await f.handle(query('www.example.com'));
    up.script = () => 'silent';
    advance(31);
    // RFC 8767's client response timer, once: the upstream drops the query.
    const first = await timed();
    expect(first).toMatchObject({ data: ['10.0.0.1'], source: 'cache' });
    expect(first.ms).toBeGreaterThanOrEqual(1700);
    for (let i = 0; i < 3; i++) {
      const again = await timed();
      expect(again).toMatchObject({ data: ['10.0.0.1'], source: 'cache' });
      expect(again.ms).toBeLessThan(100);
    }
    const asked = up.count();
    up.script = answerA('10.0.0.2', 30);
    await waitFor('the background refresh', async () => (await timed()).data[0] === '10.0.0.2', 5000);
    expect(up.count()).toBeGreaterThan(asked);
    // A new failure after the refresh: the recheck period starts again from the first wait.
    up.script = () => 'silent';
    advance(31);
    expect((await timed()).ms).toBeGreaterThanOrEqual(1700);
    advance(31);
    expect((await timed()).ms).toBeGreaterThanOrEqual(1700);
  }, 15_000);

  it('serves stale when the upstream answers SERVFAIL, and fresh again once it answers', async () => {
    const up = await upstream(answerA('10.0.0.1', 30));
    const { f, advance } = forwarder([up.hostPort]);
    await f.handle(query('www.example.com'));
    up.script = () => ({ rcode: 'SERVFAIL' });
    advance(40);
    expect((await f.handle(query('www.example.com'))).answers).toMatchObject([{ data: '10.0.0.1', ttl: 30 }]);
    up.script = answerA('10.0.0.4', 30);
    // Within the recheck period the stale answer comes at once and the refresh runs behind it.
    expect((await f.handle(query('www.example.com'))).answers).toMatchObject([{ data: '10.0.0.1', ttl: 30 }]);
    await waitFor('the refreshed answer', async () => (await f.handle(query('www.example.com'))).answers.some((rr) => rr.type === 'A' && rr.data === '10.0.0.4'));
    expect((await f.handle(query('www.example.com'))).answers).toMatchObject([{ data: '10.0.0.4', ttl: 30 }]);
  });

  it('counts evictions when full', async () => {
    const up = await upstream(answerA('10.0.0.1'));
    const { f, metric } = forwarder([up.hostPort], { cache: { maxEntries: 2 } });
    for (const n of ['a', 'b', 'c']) await f.handle(query(`${n}.example.com`));
    expect(await metric('coredns_cache_evictions_total', { type: 'success' })).toBe(1);
    expect(await metric('coredns_cache_entries')).toBe(2);
  });
});

describe('DNSSEC records and the DO bit (one entry for both kinds of client, as CoreDNS\'s cache)', () => {
  const sig = (name: string) => ({ name, type: 'RRSIG', class: 'IN', ttl: 300, data: { typeCovered: 'A', algorithm: 13, labels: 3, originalTTL: 300, expiration: 1_900_000_000, inception: 1_700_000_000, keyTag: 1, signersName: 'example.com', signature: Buffer.from([1]) } }) as Answer;
  const signedReply = (ip: string) => (q: SeenQuery) => ({ answers: [a(q.name, ip, 100), ...(q.dnssecOk ? [sig(q.name)] : [])] });
  const types = (got: { answers: Array<{ type: string }> }) => got.answers.map((rr) => rr.type);

  it('refreshes an entry asked with DO with DO, also when a client without DO set the prefetch off', async () => {
    let ip = '10.0.0.1';
    const up = await upstream((q) => signedReply(ip)(q));
    const { f, advance } = forwarder([up.hostPort], { cache: { prefetch: true } });
    expect(types(await f.handle(query('hot.example.com', 'A', { dnssecOk: true })))).toEqual(['A', 'RRSIG']);
    advance(50);
    expect(types(await f.handle(query('hot.example.com')))).toEqual(['A']);
    ip = '10.0.0.2';
    advance(41); // 9 s of 100 left: a plain client's hit sends the refresh
    await f.handle(query('hot.example.com'));
    await waitFor('the prefetch', () => up.count() === 2);
    expect(up.seen[1]).toMatchObject({ dnssecOk: true });
    const first = async () => ((await f.handle(query('hot.example.com'))).answers[0] as { data?: string } | undefined)?.data;
    await waitFor('the refreshed entry', async () => (await first()) === '10.0.0.2');
    // Still one entry, still signed for a DO client, and no further upstream query.
    expect(await f.handle(query('hot.example.com', 'A', { dnssecOk: true }))).toMatchObject({ source: 'cache', answers: [{ type: 'A', data: '10.0.0.2' }, { type: 'RRSIG' }] });
    expect(up.count()).toBe(2);
  });

  it('refreshes an expired entry asked with DO with DO, also for a client without DO', async () => {
    const up = await upstream(signedReply('10.0.0.1'));
    const { f, advance } = forwarder([up.hostPort]);
    await f.handle(query('www.example.com', 'A', { dnssecOk: true }));
    advance(101);
    expect(types(await f.handle(query('www.example.com')))).toEqual(['A']);
    expect(up.seen.map((q) => q.dnssecOk)).toEqual([true, true]);
  });

  it('does not let a DO query wait for a DO=0 one in flight, and a late DO=0 reply does not replace the DO entry', async () => {
    // The DO=0 query is answered after 300 ms, the DO one at once.
    const up = await upstream((q) => ({ ...signedReply(q.dnssecOk ? '10.0.0.2' : '10.0.0.1')(q), delayMs: q.dnssecOk ? 0 : 300 }));
    const { f } = forwarder([up.hostPort]);
    const plain = f.handle(query('race.example.com'));
    const signed = await f.handle(query('race.example.com', 'A', { dnssecOk: true }));
    expect(signed).toMatchObject({ answers: [{ data: '10.0.0.2' }, { type: 'RRSIG' }] });
    // The late DO=0 client is answered from the signed entry, as is everyone after it.
    expect(await plain).toMatchObject({ answers: [{ data: '10.0.0.2' }] });
    expect(types(await plain)).toEqual(['A']);
    expect(await f.handle(query('race.example.com', 'A', { dnssecOk: true }))).toMatchObject({ source: 'cache', answers: [{ data: '10.0.0.2' }, { type: 'RRSIG' }] });
    expect(up.count()).toBe(2);
  });

  it('leaves DNSSEC records out of an uncached answer to a client without DO', async () => {
    const up = await upstream((q) => ({ answers: [a(q.name, '10.0.0.1', 100), sig(q.name)] }));
    const { f } = forwarder([up.hostPort], { cache: { maxEntries: 0 } });
    expect(types(await f.handle(query('www.example.com')))).toEqual(['A']);
    expect(types(await f.handle(query('www.example.com', 'A', { dnssecOk: true })))).toEqual(['A', 'RRSIG']);
  });
});

describe('EDNS options of the client (relayed upstream; cache and single flight per relayed options, ECS shared within its scope)', () => {
  /** An ECS option for a /24; the address bytes of its subnet. */
  const ecs24 = (net: string, scope = 0) => Buffer.from([0, 8, 0, 7, 0, 1, 24, scope, ...net.split('.').map(Number)]);
  const cookie = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
  const first = (x: { answers: readonly unknown[] }) => (x.answers[0] as { data?: unknown } | undefined)?.data;
  /** An upstream that tailors its answer to the subnet: 10.9.<third octet>.1, scope /24, echoing the option. */
  const tailored = (delayMs = 0) => (q: SeenQuery): Reply => {
    const ecs = q.options.find((o) => o.code === 8);
    if (!ecs) return { answers: [a(q.name, '10.9.0.1', 300)], delayMs };
    const echoed = Buffer.from(ecs.data);
    echoed[3] = 24;
    return { answers: [a(q.name, `10.9.${ecs.data[6]}.1`, 300)], ednsOptions: [{ code: 8, data: echoed }], delayMs };
  };

  it('sends ECS and unknown options upstream, never a cookie, NSID, keepalive or padding', async () => {
    const up = await upstream(tailored());
    const { f } = forwarder([up.hostPort]);
    const ednsOptions = Buffer.concat([cookie, ecs24('10.1.1'), Buffer.from([0, 3, 0, 0, 0, 11, 0, 0, 0, 12, 0, 2, 0, 0, 0xfd, 0xe9, 0, 1, 7])]);
    expect(await f.handle(query('www.example.com', 'A', { ednsOptions }))).toMatchObject({ answers: [{ data: '10.9.1.1' }] });
    expect(up.seen[0]!.options).toEqual([
      { code: 8, data: Buffer.from([0, 1, 24, 0, 10, 1, 1]) },
      { code: 65001, data: Buffer.from([7]) },
    ]);
  });

  it('answers two subnets apart, from upstream and then from the cache, each with its ECS scope', async () => {
    const up = await upstream(tailored());
    const { f } = forwarder([up.hostPort]);
    const ask = (...opts: Buffer[]) => f.handle(query('www.example.com', 'A', opts.length ? { ednsOptions: Buffer.concat(opts) } : {}));
    for (const round of ['miss', 'hit']) {
      const one = await ask(cookie, ecs24('10.1.1'));
      const two = await ask(ecs24('10.2.2'));
      const none = await ask(cookie);
      expect([one, two, none].map(first), round).toEqual(['10.9.1.1', '10.9.2.1', '10.9.0.1']);
      expect([one, two, none].map((x) => x.source), round).toEqual(round === 'miss' ? ['forward', 'forward', 'forward'] : ['cache', 'cache', 'cache']);
      expect(one.ednsOptions, round).toEqual(ecs24('10.1.1', 24));
      expect(two.ednsOptions, round).toEqual(ecs24('10.2.2', 24));
      expect(none.ednsOptions, round).toBeUndefined();
    }
    expect(up.count()).toBe(3);
  });

  it('shares a flight only between queries with the same relayed options', async () => {
    const up = await upstream(tailored(50));
    const { f } = forwarder([up.hostPort]);
    const subnets = ['10.1.1', '10.2.2', '10.1.1', '10.2.2', '10.1.1'];
    const answers = await Promise.all(subnets.map((n, i) => f.handle(query('popular.example.com', 'A', { ednsOptions: i % 2 ? ecs24(n) : Buffer.concat([cookie, ecs24(n)]) }))));
    expect(answers.map(first)).toEqual(['10.9.1.1', '10.9.2.1', '10.9.1.1', '10.9.2.1', '10.9.1.1']);
    expect(up.count()).toBe(2);
  });

  it('answers every client within the scope from the cache, each with its own option and the scope (RFC 7871 §7.3.1)', async () => {
    const up = await upstream(tailored());
    const { f } = forwarder([up.hostPort]);
    const ask = (prefix: string) => f.handle(query('www.example.com', 'A', { ednsOptions: ecsOption(prefix) }));
    const rows: Array<[string, string, 'forward' | 'cache', Buffer]> = [
      ['10.1.1.0/24', '10.9.1.1', 'forward', ecsOption('10.1.1.0/24', 24)],
      ['10.1.1.128/25', '10.9.1.1', 'cache', ecsOption('10.1.1.128/25', 24)],
      ['10.1.1.7/32', '10.9.1.1', 'cache', ecsOption('10.1.1.7/32', 24)],
      ['10.1.2.0/24', '10.9.2.1', 'forward', ecsOption('10.1.2.0/24', 24)],
      // A /23 names too few bits to be known inside a cached /24 (10.1.1.0/24 is in it).
      ['10.1.0.0/23', '10.9.0.1', 'forward', ecsOption('10.1.0.0/23', 24)],
    ];
    for (const [prefix, address, source, option] of rows) {
      const got = await ask(prefix);
      expect({ address: first(got), source: got.source, option: got.ednsOptions }, prefix).toEqual({ address, source, option });
    }
    expect(up.count()).toBe(3);
  });

  it('serves an answer with SCOPE 0 to every subnet of its family and to clients without ECS (who get no option)', async () => {
    const up = await upstream((q) => ({ answers: [a(q.name, '10.9.9.9', 300)], ednsOptions: q.options.filter((o) => o.code === 8).map((o) => ({ code: 8, data: o.data })) }));
    const { f } = forwarder([up.hostPort]);
    const one = await f.handle(query('global.example.com', 'A', { ednsOptions: ecsOption('10.1.1.0/24') }));
    const other = await f.handle(query('global.example.com', 'A', { ednsOptions: ecsOption('192.0.2.0/24') }));
    const none = await f.handle(query('global.example.com'));
    expect([one, other, none].map((x) => x.source)).toEqual(['forward', 'cache', 'cache']);
    expect(other.ednsOptions).toEqual(ecsOption('192.0.2.0/24', 0));
    expect(none.ednsOptions).toBeUndefined();
    // IPv6 is another FAMILY: asked again.
    expect((await f.handle(query('global.example.com', 'A', { ednsOptions: ecsOption('2001:db8::/48') }))).source).toBe('forward');
    expect(up.count()).toBe(2);
  });

  it('answers FORMERR to a malformed client subnet and relays nothing (RFC 7871 §6, §7.2.1)', async () => {
    const up = await upstream(tailored());
    const { f } = forwarder([up.hostPort]);
    const rows: Array<[string, string]> = [
      ['SOURCE 33', '00012100c000020100'],
      ['unknown FAMILY', '00030000'],
      ['SCOPE in a query', '00011818c00002'],
      ['a bit past SOURCE', '00011700c00003'],
      ['too many ADDRESS octets', '00011800c0000200'],
    ];
    for (const [what, data] of rows) {
      const option = Buffer.from(`0008${(data.length / 2).toString(16).padStart(4, '0')}${data}`, 'hex');
      expect(await f.handle(query('www.example.com', 'A', { ednsOptions: Buffer.concat([cookie, option]) })), what).toMatchObject({ rcode: 'FORMERR', answers: [] });
    }
    expect(up.count()).toBe(0);
  });
});

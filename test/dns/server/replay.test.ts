// Replayed responses (dns/server/replay.ts): an identical UDP query gets the earlier response with its own ID and
// is counted in the metrics, without the handler being asked; a new version of the handler's data, another letter
// case, TCP, a non-authoritative or asynchronous answer, or a handler without a version are never replayed; the
// forwarder's cache hits are, within the second their TTL stands, counted as hits.
import dnsPacket from 'dns-packet';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult } from '../../../dns/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, frame, readFrames, tcpConnect, udpExchange } from './helpers.ts';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { waitFor } from '../../helpers/wait.ts';
import { a, startUpstream, type FakeUpstream } from '../forward/fake-upstream.ts';

/** A zone-like handler: names under test.local from a table, with a version bumped on every change. */
class VersionedHandler implements DnsHandler {
  readonly name = 'versioned';
  asked = 0;
  #version = 1;
  #answers = new Map<string, DnsAnswer>();
  ip = '10.0.0.1';

  version(): number {
    return this.#version;
  }

  change(ip: string): void {
    this.ip = ip;
    this.#answers.clear();
    this.#version++;
  }

  handle(q: DnsQuery): HandlerResult | Promise<HandlerResult> {
    if (!q.lname.endsWith('test.local')) return 'pass';
    this.asked++;
    if (q.lname.startsWith('async.')) return Promise.resolve(this.#answer(q, true));
    if (q.lname.startsWith('nonauth.')) return { ...this.#answer(q, false) };
    return this.#answer(q, true);
  }

  #answer(q: DnsQuery, authoritative: boolean): DnsAnswer {
    const key = `${q.lname} ${authoritative}`;
    let a = this.#answers.get(key);
    if (!a) {
      a = { rcode: 'NOERROR', authoritative, answers: [{ name: q.name, type: 'A', ttl: 5, data: this.ip }], authorities: [], additionals: [], source: this.name };
      this.#answers.set(key, a);
    }
    return a;
  }
}

/** Answers example.org names without a version (as the forwarder does). */
class UnversionedHandler implements DnsHandler {
  readonly name = 'unversioned';
  asked = 0;
  handle(q: DnsQuery): HandlerResult {
    if (!q.lname.endsWith('example.org')) return 'pass';
    this.asked++;
    return { rcode: 'NOERROR', authoritative: true, answers: [{ name: q.name, type: 'A', ttl: 5, data: '192.0.2.1' }], authorities: [], additionals: [], source: this.name };
  }
}

const versioned = new VersionedHandler();
const unversioned = new UnversionedHandler();
const registry = new Registry();
let server: DnsServer;
let port: number;

beforeAll(async () => {
  server = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [versioned, unversioned], log: silentLogger(), registry, zoneOf: () => 'test.local.' });
  port = (await server.start())[0]!.port;
});
afterAll(() => server.close());

const ask = async (name: string, id: number) => dnsPacket.decode(await udpExchange(port, aQuery(name, id)));
const dataOf = (p: dnsPacket.Packet) => (p.answers ?? []).map((a) => `${a.name} ${(a as { data: string }).data}`);
async function requests(): Promise<number> {
  const text = await registry.metrics();
  return [...text.matchAll(/^coredns_dns_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('replayed responses', () => {
  it('answers an identical query again without asking the handler, with its own ID, counted in the metrics', async () => {
    const before = versioned.asked;
    const counted = await requests();
    const first = await ask('web.test.local', 101);
    const second = await ask('web.test.local', 202);
    expect([first.id, second.id]).toEqual([101, 202]);
    expect(dataOf(second)).toEqual(dataOf(first));
    expect(dataOf(second)).toEqual(['web.test.local 10.0.0.1']);
    expect(second.flags! & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(versioned.asked - before).toBe(1);
    expect((await requests()) - counted).toBe(2);
  });

  it('never replays across a change of the handler data', async () => {
    await ask('db.test.local', 1);
    versioned.change('10.0.0.2');
    const before = versioned.asked;
    expect(dataOf(await ask('db.test.local', 2))).toEqual(['db.test.local 10.0.0.2']);
    expect(versioned.asked - before).toBe(1);
    versioned.change('10.0.0.1');
  });

  it('keeps each letter case its own: a query in another case is answered in that case', async () => {
    await ask('case.test.local', 1);
    expect(dataOf(await ask('CaSe.TeSt.LoCaL', 2))).toEqual(['CaSe.TeSt.LoCaL 10.0.0.1']);
  });

  it('does not replay asynchronous, non-authoritative or unversioned answers, nor over TCP', async () => {
    for (const name of ['async.test.local', 'nonauth.test.local']) {
      const before = versioned.asked;
      await ask(name, 1);
      await ask(name, 2);
      expect([name, versioned.asked - before]).toEqual([name, 2]);
    }
    const before = unversioned.asked;
    await ask('www.example.org', 1);
    await ask('www.example.org', 2);
    expect(unversioned.asked - before).toBe(2);
    // Over TCP the handler is asked every time (only UDP responses are replayed).
    await ask('tcp.test.local', 1);
    const sock = await tcpConnect(port);
    const asked = versioned.asked;
    sock.write(Buffer.concat([frame(aQuery('tcp.test.local', 7)), frame(aQuery('tcp.test.local', 8))]));
    const replies = await readFrames(sock, 2);
    sock.destroy();
    expect(replies.map((r) => dnsPacket.decode(r).id)).toEqual([7, 8]);
    expect(versioned.asked - asked).toBe(2);
  });
});

describe('replayed cache hits of the forwarder', () => {
  const clock = { now: 1_700_000_000_000 };
  const reg = new Registry();
  let upstream: FakeUpstream;
  let forwarder: Forwarder;
  let srv: DnsServer;
  let srvPort: number;
  /** Calls into the forwarder: a replayed query makes none. */
  let asked = 0;

  beforeAll(async () => {
    upstream = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.7', 300)] }));
    forwarder = new Forwarder({ upstreams: [upstream.hostPort], log: silentLogger(), registry: reg, now: () => clock.now });
    const counting: DnsHandler = { name: 'forward', handle: (q) => (asked++, forwarder.handle(q)) };
    srv = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [counting], log: silentLogger(), registry: reg, zoneOf: () => '.' });
    srvPort = (await srv.start())[0]!.port;
  });
  afterAll(async () => {
    await srv.close();
    await forwarder.close();
    await upstream.close();
  });

  const askExt = async (id: number) => dnsPacket.decode(await udpExchange(srvPort, aQuery('ext.example.com', id)));
  const ttlOf = (p: dnsPacket.Packet) => (p.answers ?? []).map((r) => (r as { ttl?: number }).ttl);
  const hits = async () => (await reg.getSingleMetric('coredns_cache_hits_total')!.get()).values.reduce((n, v) => n + v.value, 0);

  it('replays a hit within its TTL second, counted as a hit; the next second is looked up again, one second older', async () => {
    const miss = await askExt(1);
    expect(ttlOf(miss)).toEqual([300]);
    expect([asked, upstream.count()]).toEqual([1, 1]);
    const hit = await askExt(2);
    expect([asked, await hits()]).toEqual([2, 1]);
    const replayed = await askExt(3);
    expect(replayed.id).toBe(3);
    expect(ttlOf(replayed)).toEqual([300]);
    expect((replayed.answers ?? []).map((r) => (r as { data: string }).data)).toEqual(['192.0.2.7']);
    expect([asked, await hits(), upstream.count()]).toEqual([2, 2, 1]);
    expect(ttlOf(hit)).toEqual([300]);

    clock.now += 1000;
    const older = await askExt(4);
    expect(ttlOf(older)).toEqual([299]);
    expect([asked, await hits()]).toEqual([3, 3]);
    clock.now += 300_000;
    await askExt(5);
    // Expired: not replayed, and asked upstream again.
    expect(asked).toBe(4);
    await waitFor('the refresh upstream', () => upstream.count() === 2);
  });
});

describe('replayed cache hits keep the DNSSEC records of their client', () => {
  const reg = new Registry();
  let upstream: FakeUpstream;
  let forwarder: Forwarder;
  let srv: DnsServer;
  let srvPort: number;
  /** Calls into the forwarder: a replayed query makes none. */
  let asked = 0;
  const sig = (name: string) => ({ name, type: 'RRSIG', class: 'IN', ttl: 300, data: { typeCovered: 'A', algorithm: 13, labels: 3, originalTTL: 300, expiration: 1_900_000_000, inception: 1_700_000_000, keyTag: 1, signersName: 'example.com', signature: Buffer.from([1, 2, 3]) } }) as dnsPacket.Answer;

  beforeAll(async () => {
    // Signatures to DO queries only, but always for names under ignores-do. (an upstream that ignores the bit); the
    // address tells which kind of query filled the cache (.10 with DO), so a stale replay would show.
    upstream = await startUpstream((q) => ({ answers: [a(q.name, q.dnssecOk ? '192.0.2.10' : '192.0.2.9', 300), ...(q.dnssecOk || q.name.startsWith('ignores-do.') ? [sig(q.name)] : [])] }));
    forwarder = new Forwarder({ upstreams: [upstream.hostPort], log: silentLogger(), registry: reg, now: () => 1_700_000_000_000 });
    const counting: DnsHandler = { name: 'forward', handle: (q) => (asked++, forwarder.handle(q)) };
    srv = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [counting], log: silentLogger(), registry: reg, zoneOf: () => '.' });
    srvPort = (await srv.start())[0]!.port;
  });
  afterAll(async () => {
    await srv.close();
    await forwarder.close();
    await upstream.close();
  });

  /** Asks `name` A with EDNS0, DO set or not; the answer records as "A address" or their type. */
  const askTypes = async (name: string, id: number, dnssecOk: boolean) => {
    const msg = dnsPacket.encode({ id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnssecOk ? dnsPacket.DNSSEC_OK : 0 }] } as dnsPacket.Packet);
    return (dnsPacket.decode(await udpExchange(srvPort, msg)).answers ?? []).map((r) => (r.type === 'A' ? `A ${r.data}` : r.type));
  };

  // [name, the kinds of client in the order they ask (DO set or not), the address each round gets; each asks three
  // times: miss or hit, hit, replay]
  const cases: Array<[string, Array<[boolean, string]>, number]> = [
    ['do-first.example.com', [[true, '.10'], [false, '.10'], [true, '.10'], [false, '.10']], 1],
    // The DO query replaces the entry its plain predecessors were answered from: their replays end with it.
    ['plain-first.example.com', [[false, '.9'], [true, '.10'], [false, '.10'], [true, '.10']], 2],
    ['ignores-do.example.com', [[false, '.9'], [true, '.10'], [false, '.10']], 2],
  ];
  for (const [name, rounds, upstreamQueries] of cases) {
    it(`${name}: a replay has the records a fresh answer to its client has`, async () => {
      let id = 100;
      for (const [dnssecOk, address] of rounds) {
        const want = dnssecOk ? [`A 192.0.2${address}`, 'RRSIG'] : [`A 192.0.2${address}`];
        expect(await askTypes(name, id++, dnssecOk), `DO=${dnssecOk} first`).toEqual(want);
        expect(await askTypes(name, id++, dnssecOk), `DO=${dnssecOk} second`).toEqual(want);
        const before = asked;
        expect(await askTypes(name, id++, dnssecOk), `DO=${dnssecOk} replayed`).toEqual(want);
        expect(asked, 'the third identical query is a replay').toBe(before);
      }
      expect(upstream.seen.filter((q) => q.name === name).length).toBe(upstreamQueries);
    });
  }
});

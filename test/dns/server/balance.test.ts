// Load balancing (dns/server/balance.ts), as CoreDNS's loadbalance: the regrouping of each section (CNAME, others,
// A/AAAA, MX) and the rotation as tables; then a running server queried over UDP (fresh and replayed responses, a
// response cut to fit), TCP and dig, with `loadBalance: 'off'` keeping the handler's order.
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { planBalance, rotate } from '../../../dns/server/balance.ts';
import { DnsServer } from '../../../dns/server/server.ts';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult, ResourceRecord } from '../../../dns/types.ts';
import { encodeAnswer } from '../../../dns/wire/response.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, dig, frame, readFrames, tcpConnect, udpExchange } from './helpers.ts';
import { a, startUpstream, type FakeUpstream } from '../forward/fake-upstream.ts';

const A = (name: string, ip: string): ResourceRecord => ({ name, type: 'A', ttl: 5, data: ip });
const AAAA = (name: string, ip: string): ResourceRecord => ({ name, type: 'AAAA', ttl: 5, data: ip });
const CNAME = (name: string, to: string): ResourceRecord => ({ name, type: 'CNAME', ttl: 5, data: to });
const MX = (name: string, pref: number, to: string): ResourceRecord => ({ name, type: 'MX', ttl: 5, data: { preference: pref, exchange: to } });
const SRV = (name: string, target: string): ResourceRecord => ({ name, type: 'SRV', ttl: 5, data: { priority: 0, weight: 100, port: 80, target } });
const TXT = (name: string, t: string): ResourceRecord => ({ name, type: 'TXT', ttl: 5, data: t });
const noerror = (answers: ResourceRecord[], additionals: ResourceRecord[] = [], rcode: DnsAnswer['rcode'] = 'NOERROR'): DnsAnswer => ({
  rcode,
  authoritative: true,
  answers,
  authorities: [],
  additionals,
  source: 'test',
});

/** A record as text, for the tables. */
const text = (rr: { type: string; data?: unknown }) => {
  const d = rr.data as string | { exchange?: string; target?: string } | Buffer[];
  return `${rr.type} ${typeof d === 'string' ? d : Array.isArray(d) ? d.join('') : (d.exchange ?? d.target)}`;
};

/** The sections of an encoded answer's body after `turn` rotations, decoded as a response to `qname`. */
function sectionsAfter(answer: DnsAnswer, qname: string, turn: number | null): { answers: string[]; additionals: string[] } {
  const { enc, plan } = planBalance(encodeAnswer(answer, qname));
  const body = Buffer.from(enc.body);
  if (plan && turn !== null) rotate(body, 0, plan, turn);
  const question = dnsPacket.encode({ id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: qname, type: 'A' }] });
  const header = Buffer.from(question);
  header.writeUInt16BE(0x8400, 2);
  header.writeUInt16BE(enc.an, 6);
  header.writeUInt16BE(enc.ns, 8);
  header.writeUInt16BE(enc.ar, 10);
  const p = dnsPacket.decode(Buffer.concat([header, body]));
  return { answers: (p.answers ?? []).map(text), additionals: (p.additionals ?? []).map(text) };
}

describe('planBalance and rotate', () => {
  const q = 'x.test';
  const cases: Array<{ what: string; answer: DnsAnswer; turn: number | null; answers: string[]; additionals?: string[]; plan?: boolean }> = [
    { what: 'four A records, turn 0: as given', answer: noerror(['1', '2', '3', '4'].map((i) => A(q, `10.0.0.${i}`))), turn: 0, answers: ['A 10.0.0.1', 'A 10.0.0.2', 'A 10.0.0.3', 'A 10.0.0.4'] },
    { what: 'four A records, turn 1', answer: noerror(['1', '2', '3', '4'].map((i) => A(q, `10.0.0.${i}`))), turn: 1, answers: ['A 10.0.0.2', 'A 10.0.0.3', 'A 10.0.0.4', 'A 10.0.0.1'] },
    { what: 'four A records, turn 7 (7 mod 4 = 3)', answer: noerror(['1', '2', '3', '4'].map((i) => A(q, `10.0.0.${i}`))), turn: 7, answers: ['A 10.0.0.4', 'A 10.0.0.1', 'A 10.0.0.2', 'A 10.0.0.3'] },
    { what: 'one A record: no plan', answer: noerror([A(q, '10.0.0.1')]), turn: null, answers: ['A 10.0.0.1'], plan: false },
    {
      what: 'A and AAAA rotate together',
      answer: noerror([A(q, '10.0.0.1'), AAAA(q, 'fd00::1'), A(q, '10.0.0.2')]),
      turn: 1,
      answers: ['AAAA fd00::1', 'A 10.0.0.2', 'A 10.0.0.1'],
    },
    {
      what: 'CNAME moved first, then other types, then addresses, then MX (owners of other names too)',
      answer: noerror([A('t.example', '192.0.2.1'), MX(q, 10, 'mx1.test'), CNAME(q, 't.example'), TXT(q, 'hi'), A('t.example', '192.0.2.2'), MX(q, 20, 'mx2.test')]),
      turn: 0,
      answers: ['CNAME t.example', 'TXT hi', 'A 192.0.2.1', 'A 192.0.2.2', 'MX mx1.test', 'MX mx2.test'],
    },
    {
      what: 'the address and MX groups rotate separately',
      answer: noerror([CNAME(q, 't.example'), A('t.example', '192.0.2.1'), A('t.example', '192.0.2.2'), A('t.example', '192.0.2.3'), MX(q, 10, 'mx1.test'), MX(q, 20, 'mx2.test')]),
      turn: 1,
      answers: ['CNAME t.example', 'A 192.0.2.2', 'A 192.0.2.3', 'A 192.0.2.1', 'MX mx2.test', 'MX mx1.test'],
    },
    {
      what: 'SRV answers stay in order; their A glue in the additional section rotates',
      answer: noerror([SRV(q, 'a.test'), SRV(q, 'b.test')], [A('a.test', '10.0.0.1'), A('b.test', '10.0.0.2')]),
      turn: 1,
      answers: ['SRV a.test', 'SRV b.test'],
      additionals: ['A 10.0.0.2', 'A 10.0.0.1'],
    },
  ];
  it.each(cases)('$what', ({ answer, turn, answers, additionals, plan }) => {
    expect(planBalance(encodeAnswer(answer, q)).plan !== null).toBe(plan ?? true);
    const got = sectionsAfter(answer, q, turn);
    expect(got.answers).toEqual(answers);
    if (additionals) expect(got.additionals).toEqual(additionals);
  });

  it('leaves NXDOMAIN and other rcodes alone (CoreDNS balances NOERROR only)', () => {
    const enc = encodeAnswer(noerror([A(q, '10.0.0.1'), A(q, '10.0.0.2')], [], 'SERVFAIL'), q);
    expect(planBalance(enc)).toEqual({ enc, plan: null });
  });
});

/** Versioned (so its answers are replayed): four addresses, a CNAME chain, a 100-address set, and a 3-address one per name. */
class AddressHandler implements DnsHandler {
  readonly name = 'addresses';
  readonly #answers = new Map<string, DnsAnswer>();
  constructor() {
    const four = ['1', '2', '3', '4'].map((i) => A('four.test.local', `10.0.0.${i}`));
    this.#answers.set('four.test.local', noerror(four));
    this.#answers.set('alias.test.local', noerror([A('t.example', '192.0.2.1'), A('t.example', '192.0.2.2'), CNAME('alias.test.local', 't.example')]));
    this.#answers.set('huge.test.local', noerror(Array.from({ length: 100 }, (_, i) => A('huge.test.local', `10.1.0.${i + 1}`))));
  }
  version(): number {
    return 1;
  }
  handle(q: DnsQuery): HandlerResult {
    return this.#answers.get(q.lname) ?? 'pass';
  }
}

const dataOf = (rr: unknown) => (rr as { data: unknown }).data;
const firstAddresses = (responses: Buffer[]) => responses.map((r) => dataOf(dnsPacket.decode(r).answers!.find((a) => a.type === 'A')) as string);
const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());

describe('DnsServer load balancing', () => {
  const servers: DnsServer[] = [];
  let port = 0;
  let offPort = 0;
  const start = async (loadBalance: 'round_robin' | 'off' | undefined) => {
    const s = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [new AddressHandler()], log: silentLogger(), pinRefreshMs: 0, ...(loadBalance ? { loadBalance } : {}) });
    servers.push(s);
    return (await s.start())[0]!.port;
  };
  beforeAll(async () => {
    port = await start(undefined);
    offPort = await start('off');
  });
  afterAll(() => Promise.all(servers.map((s) => s.close())));

  it('spreads the first address evenly over UDP, replayed responses included (the default)', async () => {
    const got: Buffer[] = [];
    // The same query bytes each time: from the second on, the server replays the first response.
    for (let i = 0; i < 40; i++) got.push(await udpExchange(port, aQuery('four.test.local', 7)));
    expect([...count(firstAddresses(got)).values()]).toEqual([10, 10, 10, 10]);
    for (const r of got) expect(dnsPacket.decode(r).answers!.map(dataOf).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('spreads it over TCP too', async () => {
    const sock = await tcpConnect(port);
    const frames = readFrames(sock, 40);
    sock.write(Buffer.concat(Array.from({ length: 40 }, (_, i) => frame(aQuery('four.test.local', i + 1)))));
    const got = await frames;
    sock.destroy();
    expect([...count(firstAddresses(got)).values()]).toEqual([10, 10, 10, 10]);
  });

  it('puts the CNAME first and rotates the addresses after it', async () => {
    const got: Buffer[] = [];
    for (let i = 0; i < 10; i++) got.push(await udpExchange(port, aQuery('alias.test.local', i)));
    for (const r of got) expect(dnsPacket.decode(r).answers![0]!.type).toBe('CNAME');
    expect([...count(firstAddresses(got)).values()]).toEqual([5, 5]);
  });

  it('keeps a different part of a set too big for UDP each time (rotated before it is cut)', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = dnsPacket.decode(await udpExchange(port, aQuery('huge.test.local', 9)));
      expect(r.flags! & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
      seen.add(dataOf(r.answers![0]) as string);
    }
    expect(seen.size).toBe(8);
  });

  it('as dig sees it: the first answer changes from one query to the next', async () => {
    const a = await dig(port, 'four.test.local');
    const b = await dig(port, 'four.test.local');
    expect(a.answers).toHaveLength(4);
    expect(a.answers[0]).not.toEqual(b.answers[0]);
  });

  it("'off' keeps the handler's order", async () => {
    const got: Buffer[] = [];
    for (let i = 0; i < 8; i++) got.push(await udpExchange(offPort, aQuery('four.test.local', 7)));
    expect([...count(firstAddresses(got)).keys()]).toEqual(['10.0.0.1']);
    const alias = dnsPacket.decode(await udpExchange(offPort, aQuery('alias.test.local', 1)));
    expect(alias.answers![0]!.type).toBe('A');
  });
});

describe('DnsServer load balancing of forwarded answers', () => {
  let upstream: FakeUpstream;
  let forwarder: Forwarder;
  let server: DnsServer;
  let port = 0;
  beforeAll(async () => {
    // Six addresses in a fixed order, as an ELB or CDN name gives them; cached for 60 s.
    upstream = await startUpstream((q) => ({ answers: [1, 2, 3, 4, 5, 6].map((i) => a(q.name, `192.0.2.${i}`, 60)) }));
    forwarder = new Forwarder({ upstreams: [upstream.hostPort], log: silentLogger() });
    server = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [forwarder], log: silentLogger(), pinRefreshMs: 0 });
    port = (await server.start())[0]!.port;
  });
  afterAll(async () => {
    await server.close();
    await forwarder.close();
    await upstream.close();
  });

  it('rotates cache hits (replayed or not) over UDP and TCP while upstream is asked once', async () => {
    const got: Buffer[] = [];
    for (let i = 0; i < 12; i++) got.push(await udpExchange(port, aQuery('multi.example.com', i % 2)));
    const sock = await tcpConnect(port);
    const frames = readFrames(sock, 12);
    sock.write(Buffer.concat(Array.from({ length: 12 }, (_, i) => frame(aQuery('multi.example.com', i)))));
    got.push(...(await frames));
    sock.destroy();
    expect(count(firstAddresses(got)).size).toBe(6);
    expect(upstream.count()).toBe(1);
  });
});

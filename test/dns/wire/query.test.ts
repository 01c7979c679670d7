// Table tests of the query parser: well-formed queries (EDNS, case kept, odd types) and each malformed shape with
// the answer it must get (FORMERR, NOTIMP, BADVERS, or dropped).
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { parseQuery, type ParseFailure, type ParsedQuery } from '../../../dns/wire/query.ts';
import { buildResponse, encodeAnswer } from '../../../dns/wire/response.ts';

const client = { address: '127.0.0.1', port: 5353, family: 'IPv4' };

/** A query built with dns-packet; `additionals` may carry an OPT record. */
function query(name: string, type = 'A', extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({ id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }], ...extra });
}
const opt = (o: { udpPayloadSize?: number; ednsVersion?: number; flags?: number; options?: unknown[] } = {}) =>
  ({ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [], ...o }) as unknown as dnsPacket.Answer;
/** Bytes of a name on the wire. */
const wireName = (labels: Array<string | number[]>) =>
  Buffer.concat([...labels.map((l) => (typeof l === 'string' ? Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]) : Buffer.from(l))), Buffer.from([0])]);
/** A header with the given counts and flags, then `body`. */
const raw = (body: Buffer, counts: [number, number, number, number] = [1, 0, 0, 0], flags = 0x0100) => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(7, 0);
  h.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + i * 2));
  return Buffer.concat([h, body]);
};
const typeClass = Buffer.from([0, 1, 0, 1]);

describe('parseQuery: good queries', () => {
  const cases: Array<{ what: string; msg: Buffer; want: Partial<ParsedQuery> }> = [
    {
      what: 'plain A query',
      msg: query('svc1.default.svc.cluster.local'),
      want: { id: 4242, name: 'svc1.default.svc.cluster.local', lname: 'svc1.default.svc.cluster.local', type: 'A', qtype: 1, qclass: 1, rd: true, cd: false, edns: false, udpSize: undefined, dnssecOk: false },
    },
    { what: 'letter case kept in name, lower in lname', msg: query('SVC1.Default.svc.Cluster.LOCAL'), want: { name: 'SVC1.Default.svc.Cluster.LOCAL', lname: 'svc1.default.svc.cluster.local' } },
    { what: 'root name', msg: query('.', 'NS'), want: { name: '', lname: '', type: 'NS', qtype: 2 } },
    { what: 'SRV', msg: query('_http._tcp.web.default.svc.cluster.local', 'SRV'), want: { type: 'SRV', qtype: 33, name: '_http._tcp.web.default.svc.cluster.local' } },
    { what: 'type dns-packet does not name', msg: raw(Buffer.concat([wireName(['x']), Buffer.from([0xff, 0x00, 0, 1])])), want: { type: 'TYPE65280', qtype: 65280 } },
    { what: 'CD bit', msg: query('a.b', 'A', { flags: dnsPacket.CHECKING_DISABLED }), want: { cd: true, rd: false } },
    { what: 'EDNS with 4096', msg: query('a.b', 'AAAA', { additionals: [opt()] }), want: { edns: true, udpSize: 4096, dnssecOk: false, type: 'AAAA' } },
    { what: 'EDNS size under 512 counts as 512', msg: query('a.b', 'A', { additionals: [opt({ udpPayloadSize: 100 })] }), want: { edns: true, udpSize: 512 } },
    { what: 'EDNS DO bit', msg: query('a.b', 'A', { additionals: [opt({ flags: dnsPacket.DNSSEC_OK })] }), want: { edns: true, dnssecOk: true } },
    {
      what: 'EDNS with options (cookie, ECS): kept as on the wire',
      msg: query('a.b', 'A', { additionals: [opt({ options: [{ code: 10, data: Buffer.alloc(8, 1) }, { code: 8, data: Buffer.from([0, 1, 24, 0, 10, 1, 1]) }] })] }),
      want: { edns: true, udpSize: 4096, ednsOptions: Buffer.from([0, 10, 0, 8, 1, 1, 1, 1, 1, 1, 1, 1, 0, 8, 0, 7, 0, 1, 24, 0, 10, 1, 1]) },
    },
    { what: 'EDNS without options: none', msg: query('a.b', 'A', { additionals: [opt()] }), want: { edns: true, ednsOptions: undefined } },
    {
      what: 'OPT after another additional record (slow path)',
      msg: query('a.b', 'A', { additionals: [{ type: 'A', name: 'x.y', ttl: 1, data: '1.2.3.4' }, opt({ udpPayloadSize: 1400 })] }),
      want: { edns: true, udpSize: 1400 },
    },
    { what: 'a dot inside a label, escaped', msg: raw(Buffer.concat([wireName(['A.b', 'c']), typeClass])), want: { name: 'A\\.b.c', lname: 'a\\.b.c' } },
    { what: 'backslash, space and non-ASCII bytes, escaped', msg: raw(Buffer.concat([wireName([[3, 0x5c, 0x20, 0xe9], 'X']), typeClass])), want: { name: '\\\\\\032\\233.X', lname: '\\\\\\032\\233.x' } },
    { what: 'trailing bytes after the message are ignored', msg: Buffer.concat([query('a.b'), Buffer.from([1, 2, 3])]), want: { name: 'a.b', edns: false } },
    { what: 'name of exactly 255 bytes', msg: raw(Buffer.concat([wireName(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)]), typeClass])), want: { qtype: 1 } },
  ];
  it.each(cases)('$what', ({ msg, want }) => {
    const r = parseQuery(msg, 'udp', client);
    expect(r.ok).toBe(true);
    expect(r).toMatchObject(want);
    const q = r as ParsedQuery;
    expect(q.client).toBe(client);
    expect(q.transport).toBe('udp');
    expect(q.wireSize).toBe(msg.length);
    // The question section ends where dns-packet says it does (for names it can re-encode: no escapes).
    if (!q.name.includes('\\')) expect(dnsPacket.encodingLength({ questions: dnsPacket.decode(msg).questions })).toBe(q.questionEnd);
  });
});

describe('parseQuery: malformed and unsupported messages', () => {
  const longName = wireName(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)]); // 256 bytes
  const good = query('a.b');
  const cases: Array<{ what: string; msg: Buffer; rcode: ParseFailure['rcode']; reason?: string; question?: boolean; edns?: boolean }> = [
    { what: 'empty', msg: Buffer.alloc(0), rcode: 'DROP', reason: 'short-header' },
    { what: '11 bytes', msg: good.subarray(0, 11), rcode: 'DROP', reason: 'short-header' },
    { what: 'a response (QR=1)', msg: raw(Buffer.concat([wireName(['a']), typeClass]), [1, 0, 0, 0], 0x8100), rcode: 'DROP', reason: 'not-a-query' },
    { what: 'opcode STATUS', msg: raw(Buffer.concat([wireName(['a']), typeClass]), [1, 0, 0, 0], 2 << 11), rcode: 'NOTIMP' },
    { what: 'opcode UPDATE', msg: raw(Buffer.alloc(0), [0, 0, 0, 0], 5 << 11), rcode: 'NOTIMP' },
    { what: 'no question', msg: raw(Buffer.alloc(0), [0, 0, 0, 0]), rcode: 'FORMERR', reason: 'qdcount' },
    { what: 'two questions', msg: raw(Buffer.concat([wireName(['a']), typeClass, wireName(['b']), typeClass]), [2, 0, 0, 0]), rcode: 'FORMERR', reason: 'qdcount' },
    { what: 'header only, qdcount 1', msg: raw(Buffer.alloc(0)), rcode: 'FORMERR', reason: 'truncated-name' },
    { what: 'label longer than the message', msg: raw(Buffer.from([10, 0x61, 0x62])), rcode: 'FORMERR', reason: 'truncated-name' },
    { what: 'name without its root label', msg: raw(Buffer.from([1, 0x61])), rcode: 'FORMERR', reason: 'truncated-name' },
    { what: 'label type 0x40', msg: raw(Buffer.concat([Buffer.from([0x41]), Buffer.alloc(70)])), rcode: 'FORMERR', reason: 'bad-label-type' },
    { what: 'label type 0x80', msg: raw(Buffer.concat([Buffer.from([0x81]), Buffer.alloc(70)])), rcode: 'FORMERR', reason: 'bad-label-type' },
    { what: 'pointer loop in the question', msg: raw(Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])), rcode: 'FORMERR', reason: 'pointer-in-question' },
    { what: 'pointer after a label', msg: raw(Buffer.from([1, 0x61, 0xc0, 0x0c, 0, 1, 0, 1])), rcode: 'FORMERR', reason: 'pointer-in-question' },
    { what: 'name of 256 bytes', msg: raw(Buffer.concat([longName, typeClass])), rcode: 'FORMERR', reason: 'name-too-long' },
    { what: 'question without class', msg: raw(Buffer.concat([wireName(['a']), Buffer.from([0, 1])])), rcode: 'FORMERR', reason: 'truncated-question' },
    { what: 'EDNS version 1', msg: query('a.b', 'A', { additionals: [opt({ ednsVersion: 1 })] }), rcode: 'BADVERS', question: true, edns: true },
    { what: 'two OPT records', msg: query('a.b', 'A', { additionals: [opt(), opt()] }), rcode: 'FORMERR', reason: 'multiple-opt', question: true },
    { what: 'OPT in the answer section', msg: query('a.b', 'A', { answers: [opt()] }), rcode: 'FORMERR', reason: 'opt-outside-additional', question: true },
    {
      what: 'OPT owned by a name other than the root',
      msg: raw(Buffer.concat([wireName(['a']), typeClass, wireName(['x']), Buffer.from([0, 41, 16, 0, 0, 0, 0, 0, 0, 0])]), [1, 0, 0, 1]),
      rcode: 'FORMERR',
      question: true,
    },
    {
      what: 'OPT option overrunning its rdata',
      msg: raw(Buffer.concat([wireName(['a']), typeClass, Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 8, 1, 1])]), [1, 0, 0, 1]),
      rcode: 'FORMERR',
      reason: 'bad-opt-option',
    },
    { what: 'OPT cut short', msg: raw(Buffer.concat([wireName(['a']), typeClass, Buffer.from([0, 0, 41, 16])]), [1, 0, 0, 1]), rcode: 'FORMERR', reason: 'truncated-opt' },
    {
      what: 'OPT rdata longer than the message',
      msg: raw(Buffer.concat([wireName(['a']), typeClass, Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 50])]), [1, 0, 0, 1]),
      rcode: 'FORMERR',
      reason: 'truncated-opt',
    },
    { what: 'additional count with nothing there', msg: raw(Buffer.concat([wireName(['a']), typeClass]), [1, 0, 0, 2]), rcode: 'FORMERR', reason: 'truncated-record' },
    {
      what: 'pointer loop in an additional record',
      msg: raw(Buffer.concat([wireName(['a']), typeClass, Buffer.from([0xc0, 0x13, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4])]), [1, 0, 0, 1]),
      rcode: 'FORMERR',
    },
    {
      what: 'record rdata longer than the message',
      msg: raw(Buffer.concat([wireName(['a']), typeClass, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 40, 1, 2, 3, 4])]), [1, 0, 1, 0]),
      rcode: 'FORMERR',
    },
  ];
  it.each(cases)('$what: $rcode', ({ msg, rcode, reason, question, edns }) => {
    const r = parseQuery(msg, 'udp', client);
    expect(r.ok).toBe(false);
    const f = r as ParseFailure;
    expect(f.rcode).toBe(rcode);
    if (reason) expect(f.reason).toBe(reason);
    if (question !== undefined) expect(f.question !== undefined).toBe(question);
    if (edns !== undefined) expect(f.edns).toBe(edns);
  });

  it('never throws on truncations of a good EDNS query', () => {
    const msg = query('svc1.default.svc.cluster.local', 'A', { additionals: [opt({ options: [{ code: 10, data: Buffer.alloc(8) }] })] });
    for (let n = 0; n < msg.length; n++) {
      const r = parseQuery(msg.subarray(0, n), 'tcp', client);
      expect(r.ok).toBe(false);
    }
    expect(parseQuery(msg, 'tcp', client)).toMatchObject({ ok: true, transport: 'tcp', edns: true });
  });
});

describe('parseQuery on random mutations', () => {
  it('never throws, and what it accepts makes responses dns-packet decodes', () => {
    let s = 12345;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const int = (n: number) => Math.floor(rand() * n);
    const bases = [
      query('svc1.default.svc.cluster.local'),
      query('A.b.C', 'SRV', { additionals: [opt({ options: [{ code: 10, data: Buffer.alloc(8, 7) }] })] }),
      query('x.y', 'TXT', { additionals: [{ type: 'A', name: 'x.y', ttl: 1, data: '1.2.3.4' }, opt()] }),
    ];
    const answer = { rcode: 'NOERROR' as const, authoritative: true, answers: [], authorities: [], additionals: [], source: 't' };
    let accepted = 0;
    for (let i = 0; i < 200_000; i++) {
      const m = Buffer.from(bases[i % bases.length]!);
      for (let k = 0, n = 1 + int(4); k < n; k++) m[int(m.length)] = int(256);
      const msg = rand() < 0.3 ? m.subarray(0, int(m.length + 1)) : m;
      const r = parseQuery(msg, 'udp', client);
      if (!r.ok) continue;
      accepted++;
      expect(r.questionEnd).toBeLessThanOrEqual(msg.length);
      const out = buildResponse(msg, r, encodeAnswer({ ...answer, answers: [{ name: r.name || '.', type: 'A', ttl: 1, data: '10.0.0.1' }] }, r.lname), 512, 1232, 0);
      let res;
      try {
        res = dnsPacket.decode(out);
      } catch (e) {
        throw new Error(`${(e as Error).message}: query ${msg.toString('hex')} name ${JSON.stringify(r.name)} response ${out.toString('hex')}`);
      }
      expect(res.id).toBe(r.id);
      expect(res.questions).toHaveLength(1);
    }
    expect(accepted).toBeGreaterThan(10_000);
  });
});

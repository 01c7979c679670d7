// Table tests of the response writer, checked by decoding its output with dns-packet: the pointer to the question
// (the client's letter case), header bits, the three sections, OPT echo, truncation, TCP framing, error responses.
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import type { DnsAnswer } from '../../../dns/types.ts';
import { parseQuery, type ParsedQuery } from '../../../dns/wire/query.ts';
import { buildError, buildResponse, EncodeError, encodeAnswer } from '../../../dns/wire/response.ts';

/** dns-packet's decode; its declarations leave out the rcode it fills in. */
const decode = (buf: Buffer) => dnsPacket.decode(buf) as dnsPacket.DecodedPacket & { rcode: string };
const client = { address: '127.0.0.1', port: 5353, family: 'IPv4' };
const opt = (o: { udpPayloadSize?: number; flags?: number; ednsVersion?: number } = {}) =>
  ({ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [], ...o }) as unknown as dnsPacket.Answer;

function query(name: string, type = 'A', o: { edns?: boolean; flags?: number; do?: boolean; size?: number } = {}): { msg: Buffer; q: ParsedQuery } {
  const additionals = o.edns || o.do ? [opt({ udpPayloadSize: o.size ?? 4096, flags: o.do ? dnsPacket.DNSSEC_OK : 0 })] : [];
  const msg = dnsPacket.encode({ id: 0xbeef, flags: o.flags ?? dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }], additionals });
  const q = parseQuery(msg, 'udp', client);
  if (!q.ok) throw new Error(`test query did not parse: ${q.reason}`);
  return { msg, q };
}
const answer = (a: Partial<DnsAnswer>): DnsAnswer => ({ rcode: 'NOERROR', authoritative: true, answers: [], authorities: [], additionals: [], source: 'test', ...a });
const a = (name: string, ip: string) => ({ name, type: 'A' as const, ttl: 30, data: ip });
const soa = {
  name: 'cluster.local',
  type: 'SOA' as const,
  ttl: 5,
  data: { mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 },
};

describe('encodeAnswer + buildResponse', () => {
  it('writes owner names equal to the question as a pointer to it, so the client sees its own letter case', () => {
    const { msg, q } = query('SVC1.Default.svc.cluster.LOCAL');
    const enc = encodeAnswer(answer({ answers: [a('svc1.default.svc.cluster.local', '10.0.0.1'), a('svc1.default.svc.cluster.local.', '10.0.0.2')] }), q.lname);
    expect(enc.pointerName).toBe('svc1.default.svc.cluster.local');
    expect(enc.body.subarray(0, 2)).toEqual(Buffer.from([0xc0, 0x0c]));
    const res = decode(buildResponse(msg, q, enc, 512, 1232, 0));
    expect(res.questions).toEqual([{ name: 'SVC1.Default.svc.cluster.LOCAL', type: 'A', class: 'IN' }]);
    expect(res.answers!.map((r) => [r.name, (r as { data: string }).data])).toEqual([
      ['SVC1.Default.svc.cluster.LOCAL', '10.0.0.1'],
      ['SVC1.Default.svc.cluster.LOCAL', '10.0.0.2'],
    ]);
  });

  it('writes other owner names in full; such bytes fit any question', () => {
    const { msg, q } = query('web.default.svc.cluster.local', 'SRV');
    const srv = { name: '_http._tcp.web.default.svc.cluster.local', type: 'SRV' as const, ttl: 30, data: { priority: 0, weight: 100, port: 80, target: 'web.default.svc.cluster.local' } };
    const enc = encodeAnswer(answer({ answers: [srv], additionals: [a('web.default.svc.cluster.local', '10.0.0.9')] }), 'other.name');
    expect(enc.pointerName).toBeNull();
    const res = decode(buildResponse(msg, q, enc, 512, 1232, 0));
    expect(res.answers![0]).toMatchObject({ name: '_http._tcp.web.default.svc.cluster.local', type: 'SRV', data: { port: 80, target: 'web.default.svc.cluster.local' } });
    expect(res.additionals![0]).toMatchObject({ name: 'web.default.svc.cluster.local', data: '10.0.0.9' });
  });

  const headerCases: Array<{ what: string; flags: number; ans: Partial<DnsAnswer>; want: Record<string, unknown> }> = [
    { what: 'NOERROR, AA, RD copied', flags: dnsPacket.RECURSION_DESIRED, ans: {}, want: { rcode: 'NOERROR', flag_aa: true, flag_rd: true, flag_ra: false, flag_qr: true, flag_tc: false } },
    { what: 'NXDOMAIN with RA', flags: 0, ans: { rcode: 'NXDOMAIN', recursionAvailable: true }, want: { rcode: 'NXDOMAIN', flag_rd: false, flag_ra: true } },
    { what: 'SERVFAIL, not authoritative', flags: dnsPacket.RECURSION_DESIRED, ans: { rcode: 'SERVFAIL', authoritative: false }, want: { rcode: 'SERVFAIL', flag_aa: false } },
    { what: 'REFUSED', flags: 0, ans: { rcode: 'REFUSED', authoritative: false }, want: { rcode: 'REFUSED' } },
    { what: 'CD copied', flags: dnsPacket.CHECKING_DISABLED, ans: {}, want: { flag_cd: true } },
    { what: 'AD from the answer', flags: 0, ans: { authoritative: false, recursionAvailable: true, authenticatedData: true }, want: { flag_ad: true, flag_ra: true } },
    { what: 'no AD otherwise', flags: 0, ans: {}, want: { flag_ad: false } },
    { what: 'YXDOMAIN relayed', flags: 0, ans: { rcode: 'YXDOMAIN', authoritative: false }, want: { rcode: 'YXDOMAIN' } },
  ];
  it.each(headerCases)('header: $what', ({ flags, ans, want }) => {
    const { msg, q } = query('x.cluster.local', 'A', { flags });
    const res = decode(buildResponse(msg, q, encodeAnswer(answer(ans), q.lname), 512, 1232, 0));
    expect(res.id).toBe(0xbeef);
    expect(res.type).toBe('response');
    expect(res).toMatchObject(want);
  });

  it('writes answer, authority and additional sections with their counts', () => {
    const { msg, q } = query('gone.default.svc.cluster.local', 'A');
    const enc = encodeAnswer(answer({ rcode: 'NXDOMAIN', authorities: [soa], additionals: [a('ns.dns.cluster.local', '10.96.0.10')] }), q.lname);
    expect([enc.an, enc.ns, enc.ar]).toEqual([0, 1, 1]);
    const res = decode(buildResponse(msg, q, enc, 512, 1232, 0));
    expect(res.rcode).toBe('NXDOMAIN');
    expect(res.authorities).toEqual([expect.objectContaining({ name: 'cluster.local', type: 'SOA', data: expect.objectContaining({ minimum: 5 }) })]);
    expect(res.additionals).toEqual([expect.objectContaining({ name: 'ns.dns.cluster.local', data: '10.96.0.10' })]);
  });

  it('echoes EDNS with our size and the DO bit, after the answer additionals; leaves handler OPT records out', () => {
    const { msg, q } = query('x.cluster.local', 'A', { do: true, size: 4096 });
    const enc = encodeAnswer(answer({ answers: [a('x.cluster.local', '10.0.0.1')], additionals: [opt(), a('y.cluster.local', '10.0.0.2')] }), q.lname);
    const res = decode(buildResponse(msg, q, enc, 1232, 1232, 0));
    expect(res.additionals).toHaveLength(2);
    expect(res.additionals![0]).toMatchObject({ name: 'y.cluster.local' });
    expect(res.additionals![1]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232, ednsVersion: 0, flag_do: true });
  });

  it('sends no OPT to a query without one', () => {
    const { msg, q } = query('x.cluster.local');
    const res = decode(buildResponse(msg, q, encodeAnswer(answer({}), q.lname), 512, 1232, 0));
    expect(res.additionals).toEqual([]);
  });

  const many = Array.from({ length: 40 }, (_, i) => a('big.cluster.local', `10.1.0.${i}`)); // 40 x 16 bytes after the pointer
  // Header 12, question 23 (big.cluster.local A), OPT 11: as many 16-byte records as fit in the rest, then TC.
  const truncation: Array<{ what: string; limit: number; edns: boolean; tc: boolean; answers: number }> = [
    { what: 'over 512 without EDNS', limit: 512, edns: false, tc: true, answers: 29 },
    { what: 'fits the EDNS size', limit: 1232, edns: true, tc: false, answers: 40 },
    { what: 'over a small EDNS size', limit: 600, edns: true, tc: true, answers: 34 },
    { what: 'TCP limit', limit: 65535, edns: false, tc: false, answers: 40 },
  ];
  it.each(truncation)('truncation: $what', ({ limit, edns, tc, answers }) => {
    const { msg, q } = query('big.cluster.local', 'A', { edns });
    const out = buildResponse(msg, q, encodeAnswer(answer({ answers: many }), q.lname), limit, 1232, 0);
    expect(out.length).toBeLessThanOrEqual(limit);
    const res = decode(out);
    expect(res.flag_tc).toBe(tc);
    expect(res.questions).toHaveLength(1);
    expect(res.answers!.map((r) => (r as { data: string }).data)).toEqual(many.slice(0, answers).map((r) => r.data));
    expect(res.additionals!.filter((r) => r.type === 'OPT')).toHaveLength(edns ? 1 : 0);
  });

  // Six headless endpoints behind a named port: 765 bytes as encoded, so over 512 only compressed.
  const svc = 'six.default.svc.cluster.local';
  const targets = Array.from({ length: 6 }, (_, i) => `10-244-1-${i}.${svc}`);
  const srv = targets.map((target) => ({ name: `_http._tcp.${svc}`, type: 'SRV' as const, ttl: 5, data: { priority: 0, weight: 16, port: 8080, target } }));
  const glue = targets.map((t, i) => a(t, `10.244.1.${i}`));

  it('compresses a response over the limit: owner names, glue owners pointing at SRV targets, SOA names', () => {
    const { msg, q } = query(`_http._tcp.${svc}`, 'SRV');
    const enc = encodeAnswer(answer({ answers: srv, additionals: glue }), q.lname);
    expect(12 + (q.questionEnd - 12) + enc.body.length).toBeGreaterThan(512);
    const out = buildResponse(msg, q, enc, 512, 1232, 0);
    expect(out.length).toBeLessThanOrEqual(512);
    const res = decode(out);
    expect(res.flag_tc).toBe(false);
    expect(res.answers!.map((r) => [r.name, (r as dnsPacket.SrvAnswer).data.target])).toEqual(targets.map((t) => [`_http._tcp.${svc}`, t]));
    // 6 SRV records of 60 bytes after 58 of header and question; 5 of the 16-byte glue records fit after them.
    expect(res.additionals!.map((r) => [r.name, (r as { data: string }).data])).toEqual(glue.slice(0, 5).map((g) => [g.name, g.data]));
    // SRV targets are written in full (RFC 2782); the glue owners point at them.
    for (const t of targets) expect(out.includes(Buffer.concat([...t.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]))).toBe(true);

    const soaQuery = query('x.cluster.local', 'A');
    const neg = encodeAnswer(answer({ rcode: 'NXDOMAIN', answers: many.slice(0, 26), authorities: [soa] }), soaQuery.q.lname);
    // 26 answers (449 bytes with header and question) leave 63 bytes: the SOA takes 93 in full, 54 compressed.
    const negRes = decode(buildResponse(soaQuery.msg, soaQuery.q, neg, 512, 1232, 0));
    expect([negRes.flag_tc, negRes.answers!.length]).toEqual([false, 26]);
    expect(negRes.authorities).toEqual([expect.objectContaining({ name: 'cluster.local', data: expect.objectContaining({ mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', expire: 86400 }) })]);
  });

  it('drops additional records that do not fit without setting TC (RFC 2181 9)', () => {
    const { msg, q } = query(`_http._tcp.${svc}`, 'SRV');
    const extra = Array.from({ length: 30 }, (_, i) => a(`glue-${i}.other.example`, `192.0.2.${i}`));
    const out = buildResponse(msg, q, encodeAnswer(answer({ answers: srv.slice(0, 3), additionals: [...glue.slice(0, 3), ...extra] }), q.lname), 512, 1232, 0);
    const res = decode(out);
    expect(out.length).toBeLessThanOrEqual(512);
    expect(res.flag_tc).toBe(false);
    expect(res.answers).toHaveLength(3);
    expect(res.additionals!.length).toBeGreaterThan(3);
    expect(res.additionals!.length).toBeLessThan(33);
    expect(res.additionals!.slice(3).map((r) => r.name)).toEqual(extra.slice(0, res.additionals!.length - 3).map((r) => r.name));
  });

  it('keeps the whole answers that fit and sets TC when answers must go, additionals then left out', () => {
    const { msg, q } = query(`_http._tcp.${svc}`, 'SRV');
    const lots = Array.from({ length: 40 }, (_, i) => ({ ...srv[0]!, data: { ...srv[0]!.data, target: `host-${i}.${svc}` } }));
    const out = buildResponse(msg, q, encodeAnswer(answer({ answers: lots, additionals: glue }), q.lname), 512, 1232, 0);
    const res = decode(out);
    expect(res.flag_tc).toBe(true);
    expect(res.answers!.length).toBeGreaterThan(5);
    expect(res.answers!.map((r) => (r as dnsPacket.SrvAnswer).data.target)).toEqual(lots.slice(0, res.answers!.length).map((r) => r.data.target));
    expect(res.additionals).toEqual([]);
  });

  it('fits a TCP response over 65,535 bytes, length prefix included', () => {
    const { msg, q } = query('big.cluster.local', 'A');
    const huge = Array.from({ length: 5000 }, (_, i) => a('big.cluster.local', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`));
    const out = buildResponse(msg, q, encodeAnswer(answer({ answers: huge }), q.lname), 65535, 1232, 2);
    expect(out.readUInt16BE(0)).toBe(out.length - 2);
    const res = dnsPacket.streamDecode(out) as dnsPacket.DecodedPacket & { flag_tc: boolean };
    expect(res.flag_tc).toBe(true);
    expect(res.answers!.length).toBe(Math.floor((65535 - 35) / 16));
  });

  it('frames TCP responses with their length', () => {
    const { msg, q } = query('x.cluster.local', 'A', { edns: true });
    const out = buildResponse(msg, q, encodeAnswer(answer({ answers: [a('x.cluster.local', '10.0.0.1')] }), q.lname), 65535, 1232, 2);
    expect(out.readUInt16BE(0)).toBe(out.length - 2);
    expect(dnsPacket.streamDecode(out)).toMatchObject({ id: 0xbeef, answers: [expect.objectContaining({ data: '10.0.0.1' })] });
  });

  it('throws EncodeError for records dns-packet cannot encode and for unknown rcodes', () => {
    expect(() => encodeAnswer(answer({ answers: [{ name: 'x', type: 'SRV', ttl: 1, data: undefined as never }] }), 'x')).toThrow(EncodeError);
    expect(() => encodeAnswer(answer({ rcode: 'BOGUS' as 'NOERROR' }), 'x')).toThrow(EncodeError);
  });

  // dns-packet writes each label's length unchecked: these made malformed packets ("bad label type", a name cut
  // short) before (found by an audit). Now they throw, and the server answers SERVFAIL.
  const label = (n: number) => 'a'.repeat(n);
  const long255 = `${label(63)}.${label(63)}.${label(63)}.${label(61)}`; // 1 + 64 * 3 + 62 = 255 bytes on the wire
  const rr = (type: string, data: unknown, name = 'q.example') => ({ name, type, ttl: 5, data }) as unknown as dnsPacket.Answer;
  const badNames: Array<[string, dnsPacket.Answer]> = [
    ['a CNAME target with a 64-byte label', rr('CNAME', `${label(64)}.example.com`)],
    ['a CNAME target with an empty label', rr('CNAME', 'foo..example.com')],
    ['a PTR name with a 70-byte label', rr('PTR', `${label(70)}.default.svc.cluster.local`)],
    ['an SRV target longer than 255 bytes', rr('SRV', { priority: 0, weight: 100, port: 80, target: `${long255}.b` })],
    ['an NS name with a 2-byte UTF-8 character making 64 bytes', rr('NS', `${label(62)}é.example`)],
    ['an SOA mailbox with a 64-byte label', rr('SOA', { mname: 'ns.example', rname: `${label(64)}.example`, serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 })],
    ['an MX exchange with an empty label', rr('MX', { preference: 10, exchange: 'mx..example' })],
    ['an owner name with a 64-byte label', rr('A', '192.0.2.1', `${label(64)}.example`)],
  ];
  it.each(badNames)('throws EncodeError for %s, never writing a malformed name', (_, record) => {
    expect(() => encodeAnswer(answer({ answers: [record] }), 'q.example')).toThrow(EncodeError);
    expect(() => encodeAnswer(answer({ additionals: [record] }), 'q.example')).toThrow(/cannot encode .* record/);
  });

  it('writes the longest names that fit: 63-byte labels, 255 bytes in all, final dots', () => {
    const { msg, q } = query('q.example', 'SRV');
    const records = [rr('CNAME', `${label(63)}.example.com.`), rr('SRV', { priority: 0, weight: 100, port: 80, target: long255 }), rr('PTR', '.')];
    const res = decode(buildResponse(msg, q, encodeAnswer(answer({ answers: records }), 'q.example'), 65535, 65535, 0));
    expect(res.answers!.map((r) => (r as { data: unknown }).data)).toEqual([`${label(63)}.example.com`, expect.objectContaining({ target: long255 }), '.']);
  });
});

describe('buildError', () => {
  const { msg, q } = query('q.example', 'A', { edns: true });
  const end = q.questionEnd;
  const cases: Array<{ what: string; shape: Parameters<typeof buildError>[1]; want: Record<string, unknown>; questions: number; opt: boolean }> = [
    { what: 'FORMERR without the question', shape: { rcode: 'FORMERR', edns: false, dnssecOk: false }, want: { rcode: 'FORMERR', flag_rd: true }, questions: 0, opt: false },
    { what: 'NOTIMP', shape: { rcode: 'NOTIMP', edns: false, dnssecOk: false }, want: { rcode: 'NOTIMP' }, questions: 0, opt: false },
    { what: 'FORMERR with the question', shape: { rcode: 'FORMERR', question: { end }, edns: false, dnssecOk: false }, want: { rcode: 'FORMERR' }, questions: 1, opt: false },
  ];
  it.each(cases)('$what', ({ shape, want, questions, opt: hasOpt }) => {
    const res = decode(buildError(msg, shape, 1232, 0));
    expect(res).toMatchObject({ id: 0xbeef, type: 'response', ...want });
    expect(res.questions).toHaveLength(questions);
    expect(res.additionals!.length).toBe(hasOpt ? 1 : 0);
  });

  it('reports BADVERS in the OPT record (extended rcode 1, header rcode 0)', () => {
    const out = buildError(msg, { rcode: 'BADVERS', question: { end }, edns: true, dnssecOk: true }, 1232, 2);
    expect(out.readUInt16BE(0)).toBe(out.length - 2);
    const res = decode(out.subarray(2));
    expect(res.rcode).toBe('NOERROR');
    expect(res.questions).toEqual([{ name: 'q.example', type: 'A', class: 'IN' }]);
    expect(res.additionals![0]).toMatchObject({ type: 'OPT', extendedRcode: 1, ednsVersion: 0, udpPayloadSize: 1232, flag_do: true });
  });
});

describe('relayed EDNS options and extended rcodes (an upstream answer, as CoreDNS forward relays it)', () => {
  const ede = Buffer.from([0, 15, 0, 4, 0, 6, 0x68, 0x69]); // EDE 6 "hi"
  const rows: Array<{ what: string; edns: boolean; size?: number; rcode: DnsAnswer['rcode']; opts: Buffer; want: { rcode: string; options: number } }> = [
    { what: 'options to a client with EDNS0', edns: true, rcode: 'SERVFAIL', opts: ede, want: { rcode: 'SERVFAIL', options: 1 } },
    { what: 'no OPT record to a client without EDNS0', edns: false, rcode: 'SERVFAIL', opts: ede, want: { rcode: 'SERVFAIL', options: -1 } },
    { what: 'BADVERS with its upper bits in the OPT record', edns: true, rcode: 'BADVERS', opts: Buffer.alloc(0), want: { rcode: 'BADVERS', options: 0 } },
    { what: 'BADCOOKIE as SERVFAIL without EDNS0 (no OPT record for its upper bits)', edns: false, rcode: 'BADCOOKIE', opts: Buffer.alloc(0), want: { rcode: 'SERVFAIL', options: -1 } },
    { what: 'options too big for the client left out', edns: true, size: 512, rcode: 'SERVFAIL', opts: Buffer.concat([Buffer.from([0, 12, 0x01, 0xf4]), Buffer.alloc(500)]), want: { rcode: 'SERVFAIL', options: 0 } },
  ];
  it.each(rows)('$what', ({ edns, size, rcode, opts, want }) => {
    const { msg, q } = query('x.example', 'A', { edns, size });
    const enc = encodeAnswer(answer({ rcode, authoritative: false, ednsOptions: opts }), q.lname);
    const buf = buildResponse(msg, q, enc, q.udpSize ?? 512, 1232, 0);
    expect(buf.length).toBeLessThanOrEqual(q.udpSize ?? 512);
    const d = dnsPacket.decode(buf) as dnsPacket.DecodedPacket & { rcode: string };
    const o = d.additionals?.find((r) => r.type === 'OPT') as { options: unknown[]; extendedRcode: number } | undefined;
    const full = ((o?.extendedRcode ?? 0) << 4) | ((d.flags ?? 0) & 0xf);
    expect({ rcode: full === 16 ? 'BADVERS' : full === 23 ? 'BADCOOKIE' : d.rcode, options: o ? o.options.length : -1 }).toEqual(want);
  });
});

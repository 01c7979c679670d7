import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import {
  UpstreamReplyError,
  UpstreamTimeoutError,
  UpstreamUnreachableError,
  encodeQuery,
  exchange,
  replyMatches,
  type UpstreamQuestion,
} from '../../../dns/forward/exchange.ts';
import { a, deadUpstream, startUpstream, type FakeUpstream } from './fake-upstream.ts';

const question = (over: Partial<UpstreamQuestion> = {}): UpstreamQuestion => ({ name: 'www.example.com', qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false, ...over });

describe('encodeQuery', () => {
  it('sets RD, CD and DO as asked, advertises 1232 bytes, and writes numeric types', () => {
    const p = dnsPacket.decode(encodeQuery(question({ qtype: 65, dnssecOk: true, checkingDisabled: true }), 4242));
    expect(p).toMatchObject({ id: 4242, flag_rd: true, flag_cd: true, questions: [{ name: 'www.example.com', type: 'UNKNOWN_65', class: 'IN' }] });
    expect(p.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232, flag_do: true });
    expect(dnsPacket.decode(encodeQuery(question(), 1))).toMatchObject({ flag_cd: false, additionals: [{ flag_do: false }] });
  });

  it('writes the options given in its OPT record', () => {
    const p = dnsPacket.decode(encodeQuery(question({ options: Buffer.from([0, 8, 0, 7, 0, 1, 24, 0, 10, 1, 1]) }), 1));
    expect(p.additionals?.[0]).toMatchObject({ type: 'OPT', options: [{ code: 8, sourcePrefixLength: 24, ip: '10.1.1.0' }] });
  });
});

describe('replyMatches', () => {
  const q = encodeQuery(question(), 0x1234);
  const reply = (id: number, name: string, flags = dnsPacket.RECURSION_AVAILABLE) =>
    dnsPacket.encode({ type: 'response', id, flags, questions: [{ name, type: 'A', class: 'IN' }], answers: [a(name, '10.0.0.1')] });
  const cases: Array<[string, Buffer, boolean]> = [
    ['same ID and question', reply(0x1234, 'www.example.com'), true],
    ['question in other letter case', reply(0x1234, 'WWW.Example.COM'), true],
    ['other ID', reply(0x1235, 'www.example.com'), false],
    ['other name', reply(0x1234, 'www.example.org'), false],
    ['longer name', reply(0x1234, 'a.www.example.com'), false],
    ['a query, not a reply', dnsPacket.encode({ type: 'query', id: 0x1234, questions: [{ name: 'www.example.com', type: 'A' }] }), false],
    ['too short', Buffer.from([0x12, 0x34, 0x80]), false],
  ];
  for (const [name, buf, want] of cases) it(name, () => expect(replyMatches(buf, q)).toBe(want));
  it('other type', () => expect(replyMatches(encodeQuery(question({ qtype: 28 }), 0x1234), q)).toBe(false));
  it('a query with options in its OPT record: the question alone is compared', () => {
    const withEcs = encodeQuery(question({ options: Buffer.from([0, 8, 0, 7, 0, 1, 24, 0, 10, 1, 1]) }), 0x1234);
    expect(replyMatches(reply(0x1234, 'www.example.com'), withEcs)).toBe(true);
    expect(replyMatches(reply(0x1234, 'www.example.org'), withEcs)).toBe(false);
    expect(replyMatches(encodeQuery(question({ qtype: 28 }), 0x1234), withEcs)).toBe(false);
  });
});

describe('exchange', () => {
  let fake: FakeUpstream | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('ignores replies with another ID or question and takes the real one', async () => {
    fake = await startUpstream((q) => ({ answers: [a(q.name, '10.0.0.7')], decoysFirst: true }));
    const r = await exchange(fake.hostPort, encodeQuery(question(), 0), { timeoutMs: 1000 });
    expect(r).toMatchObject({ rcode: 'NOERROR', transport: 'udp', answers: [{ data: '10.0.0.7' }], additionals: [] });
  });

  it('retries over TCP when the UDP reply is truncated, with a new ID', async () => {
    fake = await startUpstream((q) => ({ answers: [a(q.name, '10.0.0.8')], truncated: true }));
    const r = await exchange(fake.hostPort, encodeQuery(question(), 0), { timeoutMs: 1000 });
    expect(r).toMatchObject({ transport: 'tcp', answers: [{ data: '10.0.0.8' }] });
    expect(fake.seen.map((s) => s.transport)).toEqual(['udp', 'tcp']);
    expect(fake.seen[0]!.id).not.toBe(fake.seen[1]!.id);
  });

  it('fails with a typed error: timeout, refused, or a TCP reply to another question', async () => {
    fake = await startUpstream(() => 'silent');
    await expect(exchange(fake.hostPort, encodeQuery(question(), 0), { timeoutMs: 50 })).rejects.toBeInstanceOf(UpstreamTimeoutError);
    await expect(exchange(await deadUpstream(), encodeQuery(question(), 0), { timeoutMs: 1000 })).rejects.toBeInstanceOf(UpstreamUnreachableError);
    // An upstream the host cannot route to: connect() fails (EACCES for broadcast, ENETUNREACH without a route).
    await expect(exchange({ ...fake.hostPort, host: '255.255.255.255', text: '255.255.255.255:53' }, encodeQuery(question(), 0), { timeoutMs: 1000 })).rejects.toBeInstanceOf(UpstreamUnreachableError);
    fake.script = (q) => (q.transport === 'udp' ? { truncated: true } : { decoysFirst: true });
    await expect(exchange(fake.hostPort, encodeQuery(question(), 0), { timeoutMs: 1000 })).rejects.toBeInstanceOf(UpstreamReplyError);
  });
});

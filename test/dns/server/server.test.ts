// The DNS server end to end on loopback, queried with dig (UDP, TCP, EDNS, truncation and TCP retry, letter case)
// and with raw sockets (pipelining, idle and garbage TCP connections), plus its metrics through promtool.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, dig, frame, PassingHandler, readFrames, stuckHandler, SyncHandler, tcpConnect, throwingHandler, udpExchange } from './helpers.ts';

const sync = new SyncHandler();
const passing = new PassingHandler();
const registry = new Registry();
let server: DnsServer;
let port: number;

beforeAll(async () => {
  server = new DnsServer({
    listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }],
    handlers: [passing, throwingHandler, stuckHandler, sync],
    log: silentLogger(),
    registry,
    serverLabel: 'dns://127.0.0.1:53',
    zoneOf: (lname) => (lname.endsWith('test.local') ? 'test.local.' : '.'),
    queryTimeoutMs: 500,
    tcpIdleMs: 300,
  });
  const bound = await server.start();
  expect(bound.map((b) => b.transport)).toEqual(['udp', 'tcp']);
  expect(bound[0]!.port).toBe(bound[1]!.port);
  port = bound[0]!.port;
});
afterAll(() => server.close());

describe('DnsServer with dig', () => {
  const cases: Array<{ what: string; args: string[]; status: string; flags?: string[]; notFlags?: string[]; answers?: Array<[string, string, string]>; transport?: string; ednsUdp?: number }> = [
    { what: 'UDP A answer', args: ['svc.test.local', 'A'], status: 'NOERROR', flags: ['qr', 'aa', 'rd'], answers: [['svc.test.local.', 'A', '10.0.0.1']], transport: 'UDP', ednsUdp: 1232 },
    { what: 'TCP A answer', args: ['+tcp', 'svc.test.local', 'A'], status: 'NOERROR', answers: [['svc.test.local.', 'A', '10.0.0.1']], transport: 'TCP' },
    { what: 'mixed case answered in the same case', args: ['SvC.TeSt.LoCaL', 'A'], status: 'NOERROR', answers: [['SvC.TeSt.LoCaL.', 'A', '10.0.0.1']] },
    { what: 'mixed case over TCP', args: ['+tcp', 'SVC.test.LOCAL', 'A'], status: 'NOERROR', answers: [['SVC.test.LOCAL.', 'A', '10.0.0.1']] },
    { what: 'no EDNS: no OPT back', args: ['+noedns', 'svc.test.local'], status: 'NOERROR', ednsUdp: undefined },
    { what: 'RD not asked, not set', args: ['+nordflag', 'svc.test.local'], status: 'NOERROR', notFlags: ['rd', 'ra'] },
    { what: 'NXDOMAIN from the handler', args: ['nope.test.local'], status: 'NXDOMAIN', flags: ['aa'] },
    { what: 'REFUSED when every handler passes', args: ['www.example.org'], status: 'REFUSED' },
    { what: 'SERVFAIL when a handler throws', args: ['boom.fail'], status: 'SERVFAIL' },
    { what: 'async handler answer', args: ['SLOW.fail'], status: 'NOERROR', answers: [['SLOW.fail.', 'A', '10.9.9.9']] },
    { what: '40 records fit the EDNS size', args: ['+bufsize=4096', 'big.test.local'], status: 'NOERROR', notFlags: ['tc'], transport: 'UDP', ednsUdp: 1232 },
    { what: '40 records without EDNS: TC, seen with +ignore', args: ['+noedns', '+ignore', 'big.test.local'], status: 'NOERROR', flags: ['tc'], transport: 'UDP' },
    { what: '40 records without EDNS: dig retries over TCP', args: ['+noedns', 'big.test.local'], status: 'NOERROR', notFlags: ['tc'], transport: 'TCP' },
    { what: '40 records, EDNS 512: TC', args: ['+bufsize=512', '+ignore', 'big.test.local'], status: 'NOERROR', flags: ['tc'], ednsUdp: 1232 },
    { what: '100 records over our 1232 even at +bufsize=4096', args: ['+bufsize=4096', '+ignore', 'huge.test.local'], status: 'NOERROR', flags: ['tc'] },
    { what: '100 records over TCP', args: ['+tcp', 'huge.test.local'], status: 'NOERROR', transport: 'TCP' },
    { what: 'EDNS version 1: BADVERS', args: ['+edns=1', '+noednsnegotiation', 'svc.test.local'], status: 'BADVERS' },
  ];
  it.each(cases)('$what', async ({ args, status, flags, notFlags, answers, transport, ednsUdp }) => {
    const r = await dig(port, ...args);
    expect(r.status, r.raw).toBe(status);
    for (const f of flags ?? []) expect(r.flags, r.raw).toContain(f);
    for (const f of notFlags ?? []) expect(r.flags, r.raw).not.toContain(f);
    if (answers) expect(r.answers).toEqual(answers.map(([n, t, d]) => [n, t, d]));
    if (transport) expect(r.transport).toBe(transport);
    if ('ednsUdp' in (cases.find((c) => c.args === args) ?? {})) expect(r.ednsUdp).toBe(ednsUdp);
  });

  it('answers 100 records over TCP in full', async () => {
    const r = await dig(port, '+tcp', 'huge.test.local');
    expect(r.answers).toHaveLength(100);
  });

  it('answers SERVFAIL within the timeout when a handler never settles', async () => {
    const t0 = performance.now();
    const r = await dig(port, 'stuck.fail');
    expect(r.status).toBe('SERVFAIL');
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('encodes a reused answer object once, whatever the letter case of the query', async () => {
    const before = sync.encodes;
    for (const name of ['svc.test.local', 'SVC.TEST.LOCAL', 'Svc.Test.Local']) {
      const res = dnsPacket.decode(await udpExchange(port, aQuery(name, 9)));
      expect(res.answers![0]).toMatchObject({ name, data: '10.0.0.1' });
    }
    expect(sync.encodes - before).toBeLessThanOrEqual(1);
  });

  it('tries handlers in order: the first one sees every query', () => {
    expect(passing.seen).toBeGreaterThan(10);
  });
});

describe('DnsServer over TCP', () => {
  it('answers pipelined queries on one connection, slow ones after fast ones', async () => {
    const sock = await tcpConnect(port);
    const names = ['slow.fail', 'svc.test.local', 'nope.test.local', 'www.example.org', 'SVC.test.local'];
    const got = readFrames(sock, names.length);
    sock.write(Buffer.concat(names.map((n, i) => frame(aQuery(n, 100 + i)))));
    const res = (await got).map((b) => dnsPacket.decode(b) as dnsPacket.DecodedPacket & { rcode: string });
    sock.destroy();
    const byId = new Map(res.map((r) => [r.id, r]));
    expect([...byId.keys()].sort()).toEqual([100, 101, 102, 103, 104]);
    expect(byId.get(100)!.rcode).toBe('NOERROR');
    expect(byId.get(102)!.rcode).toBe('NXDOMAIN');
    expect(byId.get(103)!.rcode).toBe('REFUSED');
    expect(byId.get(104)!.answers![0]).toMatchObject({ name: 'SVC.test.local' });
    // The slow answer came last: pipelined answers go out as they are ready.
    expect(res.at(-1)!.id).toBe(100);
  });

  it('answers 300 slow queries pipelined past the in-flight limit (reading pauses, then resumes)', async () => {
    const sock = await tcpConnect(port);
    const got = readFrames(sock, 310, 10_000);
    const msgs = Array.from({ length: 310 }, (_, i) => frame(aQuery(i < 300 ? 'slow.fail' : 'svc.test.local', i)));
    sock.write(Buffer.concat(msgs));
    const ids = (await got).map((b) => dnsPacket.decode(b).id!);
    sock.destroy();
    expect(new Set(ids).size).toBe(310);
  });

  it('accepts a query of 4,000 bytes (EDNS padding)', async () => {
    const sock = await tcpConnect(port);
    const msg = dnsPacket.encode({
      id: 11,
      questions: [{ name: 'svc.test.local', type: 'A' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [{ code: 12, data: Buffer.alloc(3950) }] } as unknown as dnsPacket.Answer],
    });
    expect(msg.length).toBeGreaterThan(3990);
    const got = readFrames(sock, 1);
    sock.write(frame(msg));
    expect(dnsPacket.decode((await got)[0]!)).toMatchObject({ id: 11, answers: [expect.objectContaining({ data: '10.0.0.1' })] });
    sock.destroy();
  });

  it('closes idle connections', async () => {
    const sock = await tcpConnect(port);
    const t0 = performance.now();
    await new Promise((r) => sock.once('close', r));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  const garbage: Array<{ what: string; bytes: Buffer }> = [
    { what: 'a length prefix shorter than a header', bytes: Buffer.from([0, 3, 1, 2, 3]) },
    { what: 'a zero length prefix', bytes: Buffer.from([0, 0]) },
    { what: 'a length prefix longer than any query (65,535)', bytes: Buffer.from([0xff, 0xff, 0, 0, 0]) },
    { what: 'a length prefix of 4,097', bytes: Buffer.from([0x10, 0x01]) },
  ];
  it.each(garbage)('closes a connection that sends $what, and serves the others', async ({ bytes }) => {
    const good = await tcpConnect(port);
    const bad = await tcpConnect(port);
    const closed = new Promise((r) => bad.once('close', r));
    bad.on('error', () => {});
    bad.write(bytes);
    await closed;
    const got = readFrames(good, 1);
    good.write(frame(aQuery('svc.test.local', 77)));
    expect(dnsPacket.decode((await got)[0]!).answers![0]).toMatchObject({ data: '10.0.0.1' });
    good.destroy();
  });

  it('skips a response (QR set) in a pipelined stream and answers the queries before and after it', async () => {
    const sock = await tcpConnect(port);
    const got = readFrames(sock, 2);
    const response = aQuery('svc.test.local', 7);
    response[2]! |= 0x80;
    sock.write(Buffer.concat([frame(aQuery('svc.test.local', 6)), frame(response), frame(Buffer.alloc(12, 0xff)), frame(aQuery('nope.test.local', 8))]));
    const res = (await got).map((b) => dnsPacket.decode(b) as dnsPacket.DecodedPacket & { rcode: string });
    expect(res.map((r) => [r.id, r.rcode])).toEqual([
      [6, 'NOERROR'],
      [8, 'NXDOMAIN'],
    ]);
    expect(sock.destroyed).toBe(false);
    sock.destroy();
  });

  it('waits for the rest of a message that comes in pieces', async () => {
    const sock = await tcpConnect(port);
    const bytes = frame(aQuery('svc.test.local', 5));
    const got = readFrames(sock, 1);
    for (const b of bytes) {
      sock.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(dnsPacket.decode((await got)[0]!).id).toBe(5);
    sock.destroy();
  });
});

describe('DnsServer on dgram\'s public API (NETPLANE_DNS_UDP_DIRECT=0)', () => {
  it('answers the same', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const saved = process.env.NETPLANE_DNS_UDP_DIRECT;
    process.env.NETPLANE_DNS_UDP_DIRECT = '0';
    const plain = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '' }], handlers: [new SyncHandler()], log });
    try {
      const p = (await plain.start())[0]!.port;
      expect(lines.join('')).toContain('"udpDirect":false');
      expect((await dig(p, 'SVC.test.local')).answers).toEqual([['SVC.test.local.', 'A', '10.0.0.1']]);
      expect((await dig(p, '+noedns', '+ignore', 'big.test.local')).flags).toContain('tc');
    } finally {
      if (saved === undefined) delete process.env.NETPLANE_DNS_UDP_DIRECT;
      else process.env.NETPLANE_DNS_UDP_DIRECT = saved;
      await plain.close();
    }
  });

  it('takes the direct path by default', async () => {
    const lines: string[] = [];
    const direct = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '' }], handlers: [], log: pino({ level: 'info' }, { write: (l: string) => lines.push(l) }) });
    await direct.start();
    await direct.close();
    expect(lines.join('')).toContain('"udpDirect":true');
  });
});

describe('DnsServer metrics', () => {
  it('exports CoreDNS metric names and labels that promtool accepts', async () => {
    await dig(port, 'svc.test.local');
    const text = await registry.metrics();
    expect(text).toMatch(/coredns_dns_requests_total\{server="dns:\/\/127.0.0.1:53",zone="test.local.",view="",proto="udp",family="1",type="A"\} \d+/);
    expect(text).toMatch(/coredns_dns_responses_total\{server="dns:\/\/127.0.0.1:53",zone="test.local.",view="",rcode="NOERROR",plugin="sync"\} \d+/);
    expect(text).toMatch(/coredns_dns_responses_total\{[^}]*zone=".",[^}]*rcode="REFUSED",plugin=""\}/);
    expect(text).toMatch(/coredns_dns_request_duration_seconds_bucket\{[^}]*type="A",le="0.00025"\}/);
    expect(text).toMatch(/coredns_dns_request_size_bytes_bucket\{[^}]*proto="tcp",le="\+Inf"\}/);
    expect(text).toMatch(/coredns_dns_response_size_bytes_count\{[^}]*proto="udp"\}/);
    const check = promisify(execFile)('promtool', ['check', 'metrics']);
    check.child.stdin!.end(text);
    const { stdout, stderr } = await check.catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`promtool rejected the metrics: ${e.stdout}${e.stderr}`);
    });
    expect(stdout + stderr).toBe('');
  });
});

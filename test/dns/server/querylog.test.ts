// Per-query logging (dns/server/querylog.ts, CoreDNS's log plugin): the class list, the response classification and
// flags as tables; then a real server queried with dig and raw sockets, each answer giving one JSON line with CoreDNS's
// fields (replayed answers and error responses included), filtered by class; then `netplane dns --log-queries`.
import dnsPacket from 'dns-packet';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyResponse, parseQueryClasses, QueryLog, responseFlags, type QueryClass } from '../../../dns/server/querylog.ts';
import { DnsServer } from '../../../dns/server/server.ts';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult } from '../../../dns/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { dig as digProcess, startDns, type DnsProcess } from '../process.ts';
import { aQuery, dig, udpExchange } from './helpers.ts';

describe('parseQueryClasses', () => {
  const all = ['success', 'denial', 'error'];
  it.each([
    ['all', all],
    ['denial', ['denial']],
    ['denial,error', ['denial', 'error']],
    ['success, error', ['success', 'error']],
    ['all,denial', all],
  ])('%s', (raw, want) => expect([...parseQueryClasses(raw)].sort()).toEqual([...want].sort()));
  it.each(['', 'denials', 'all,nope', 'denial error', 'ALL'])('refuses %j', (raw) => expect(() => parseQueryClasses(raw)).toThrow(/must be all, or success, denial and error/));
});

const soa = { name: 'test.local', type: 'SOA' as const, ttl: 5, data: { mname: 'ns.test.local', rname: 'h.test.local', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 5 } };
const rcodes: Record<string, number> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
// dns-packet takes the rcode in the low bits of `flags`.
const response = (rcode: string, sections: { answers?: object[]; authorities?: object[] } = {}) =>
  dnsPacket.encode({ type: 'response', id: 7, flags: dnsPacket.AUTHORITATIVE_ANSWER | rcodes[rcode]!, questions: [{ name: 'a.test.local', type: 'A' }], ...sections } as never);

describe('classifyResponse', () => {
  const cases: Array<[string, Buffer, QueryClass]> = [
    ['NOERROR with an answer', response('NOERROR', { answers: [{ name: 'a.test.local', type: 'A', ttl: 5, data: '10.0.0.1' }] }), 'success'],
    ['NOERROR with nothing', response('NOERROR'), 'success'],
    ['a delegation (NS in authority)', response('NOERROR', { authorities: [{ name: 'test.local', type: 'NS', ttl: 5, data: 'ns.test.local' }] }), 'success'],
    ['NODATA (SOA in authority)', response('NOERROR', { authorities: [soa] }), 'denial'],
    ['NODATA with an NS before the SOA', response('NOERROR', { authorities: [{ name: 'test.local', type: 'NS', ttl: 5, data: 'ns.test.local' }, soa] }), 'denial'],
    ['NXDOMAIN', response('NXDOMAIN', { authorities: [soa] }), 'denial'],
    ['SERVFAIL', response('SERVFAIL'), 'error'],
    ['REFUSED', response('REFUSED'), 'error'],
    ['NOTIMP', response('NOTIMP'), 'error'],
    ['a cut-off message', response('NOERROR').subarray(0, 8), 'error'],
  ];
  it.each(cases)('%s', (_, buf, want) => expect(classifyResponse(buf, 0)).toBe(want));
  it('reads the header after a TCP length prefix', () => {
    const nx = response('NXDOMAIN', { authorities: [soa] });
    expect(classifyResponse(Buffer.concat([Buffer.from([nx.length >> 8, nx.length & 0xff]), nx]), 2)).toBe('denial');
  });
});

describe('responseFlags', () => {
  it.each([
    [0x81, 0x80, 'qr,rd,ra'],
    [0x85, 0x00, 'qr,aa,rd'],
    [0x87, 0x30, 'qr,aa,tc,rd,ad,cd'],
    [0x80, 0x40, 'qr,z'],
    [0x00, 0x00, ''],
  ])('%i %i: %s', (b2, b3, want) => expect(responseFlags(b2, b3)).toBe(want));
});

/** Names under test.local: svc (A), nodata (NODATA), nx (NXDOMAIN), fail (throws); with a version, so replayed. */
class ZoneLike implements DnsHandler {
  readonly name = 'zonelike';
  asked = 0;
  readonly #svc: DnsAnswer = { rcode: 'NOERROR', authoritative: true, answers: [{ name: 'svc.test.local', type: 'A', ttl: 5, data: '10.0.0.1' }], authorities: [], additionals: [], source: 'zonelike' };
  readonly #nodata: DnsAnswer = { rcode: 'NOERROR', authoritative: true, answers: [], authorities: [soa], additionals: [], source: 'zonelike' };
  readonly #nx: DnsAnswer = { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [soa], additionals: [], source: 'zonelike' };
  version(): number {
    return 1;
  }
  handle(q: DnsQuery): HandlerResult {
    if (!q.lname.endsWith('test.local') || q.qclass !== 1) return 'pass';
    this.asked++;
    if (q.lname === 'fail.test.local') throw new Error('boom');
    return q.lname === 'svc.test.local' ? (q.type === 'A' ? this.#svc : this.#nodata) : q.lname === 'nodata.test.local' ? this.#nodata : this.#nx;
  }
}

/** A server logging queries into `lines` (JSON objects), only the wanted classes. */
async function loggingServer(classes?: ReadonlySet<QueryClass>) {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const zone = new ZoneLike();
  const server = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [zone], log: silentLogger(), queryLog: new QueryLog(log, classes), pinRefreshMs: 0 });
  const port = (await server.start())[0]!.port;
  return { server, port, lines, zone };
}

describe('DnsServer with a query log', () => {
  let s: Awaited<ReturnType<typeof loggingServer>>;
  beforeAll(async () => (s = await loggingServer()));
  afterAll(() => s.server.close());

  const cases: Array<{ what: string; args: string[]; want: Record<string, unknown> }> = [
    { what: 'UDP with EDNS', args: ['svc.test.local'], want: { type: 'A', class: 'IN', name: 'svc.test.local.', proto: 'udp', do: false, bufsize: 1232, rcode: 'NOERROR', rflags: 'qr,aa,rd' } },
    { what: 'TCP: bufsize 64K', args: ['+tcp', 'svc.test.local'], want: { proto: 'tcp', bufsize: 65535, rcode: 'NOERROR' } },
    { what: 'the DO bit', args: ['+dnssec', 'svc.test.local'], want: { do: true } },
    { what: 'no EDNS: bufsize 512', args: ['+noedns', 'svc.test.local'], want: { bufsize: 512 } },
    { what: 'an EDNS size of 4096', args: ['+bufsize=4096', 'svc.test.local'], want: { bufsize: 4096 } },
    { what: 'the letter case as asked, another type', args: ['SvC.TEST.local', 'TXT'], want: { name: 'SvC.TEST.local.', type: 'TXT', rcode: 'NOERROR' } },
    { what: 'NXDOMAIN', args: ['nx.test.local'], want: { rcode: 'NXDOMAIN', rflags: 'qr,aa,rd' } },
    { what: 'SERVFAIL from a failing handler', args: ['+nordflag', 'fail.test.local'], want: { rcode: 'SERVFAIL', rflags: 'qr' } },
    { what: 'another class, REFUSED', args: ['-c', 'CH', 'svc.test.local'], want: { class: 'CH', rcode: 'REFUSED' } },
    { what: 'BADVERS, an extended rcode', args: ['+edns=1', '+noednsnegotiation', 'svc.test.local'], want: { rcode: 'BADVERS' } },
  ];
  it.each(cases)('$what', async ({ args, want }) => {
    const before = s.lines.length;
    const r = await dig(s.port, ...args);
    await waitFor('the log line', () => s.lines.length > before);
    expect(s.lines.length).toBe(before + 1);
    const line = s.lines.at(-1)!;
    const id = Number(/id: (\d+)/.exec(r.raw)?.[1]);
    expect(line).toMatchObject({ level: 30, msg: 'query', remote: '127.0.0.1', id, ...want });
    expect(line.port).toBeGreaterThan(0);
    expect(line.size).toBeGreaterThan(12);
    expect(line.rsize).toBeGreaterThan(12);
    expect(line.ms).toBeGreaterThanOrEqual(0);
  });

  it('logs a replayed answer like the first one, with its own ID and the sizes sent', async () => {
    const q1 = aQuery('svc.test.local', 101);
    const q2 = aQuery('svc.test.local', 202);
    const before = s.lines.length;
    const r1 = await udpExchange(s.port, q1);
    const asked = s.zone.asked;
    const r2 = await udpExchange(s.port, q2);
    expect(s.zone.asked).toBe(asked);
    await waitFor('two lines', () => s.lines.length === before + 2);
    const [first, second] = s.lines.slice(before);
    const common = { type: 'A', class: 'IN', name: 'svc.test.local.', proto: 'udp', size: q1.length, do: false, bufsize: 512, rcode: 'NOERROR', rflags: 'qr,aa,rd' };
    expect(first).toMatchObject({ ...common, id: 101, rsize: r1.length });
    expect(second).toMatchObject({ ...common, id: 202, rsize: r2.length });
  });

  it('logs a FORMERR answered to a message it could not parse, with what it could read', async () => {
    const q = aQuery('svc.test.local', 303);
    q.writeUInt16BE(1, 6); // an answer count with no answer after the question
    const before = s.lines.length;
    const r = await udpExchange(s.port, q);
    expect(r[3]! & 0x0f).toBe(1);
    await waitFor('the log line', () => s.lines.length > before);
    expect(s.lines.at(-1)).toMatchObject({ id: 303, name: 'svc.test.local.', type: 'A', class: 'IN', rcode: 'FORMERR', size: q.length, rsize: r.length });
  });
});

describe('DnsServer with a query log of some classes', () => {
  const cases: Array<{ classes: string; logged: string[] }> = [
    { classes: 'denial', logged: ['nodata.test.local. NOERROR', 'nx.test.local. NXDOMAIN'] },
    { classes: 'error', logged: ['fail.test.local. SERVFAIL'] },
    { classes: 'success', logged: ['svc.test.local. NOERROR'] },
    { classes: 'denial,error', logged: ['nodata.test.local. NOERROR', 'nx.test.local. NXDOMAIN', 'fail.test.local. SERVFAIL'] },
    { classes: 'all', logged: ['svc.test.local. NOERROR', 'nodata.test.local. NOERROR', 'nx.test.local. NXDOMAIN', 'fail.test.local. SERVFAIL'] },
  ];
  const servers: Array<Awaited<ReturnType<typeof loggingServer>>> = [];
  afterAll(async () => {
    for (const x of servers) await x.server.close();
  });
  it.each(cases)('class $classes', async ({ classes, logged }) => {
    const s = await loggingServer(parseQueryClasses(classes));
    servers.push(s);
    for (const name of ['svc.test.local', 'nodata.test.local', 'nx.test.local', 'fail.test.local']) await dig(s.port, name);
    // One more query of every class: the lines of the four before it have all been written by the time it is answered.
    await dig(s.port, 'svc.test.local', '+tcp');
    expect(s.lines.map((l) => `${String(l.name)} ${String(l.rcode)}`).slice(0, logged.length)).toEqual(logged);
  });
});

describe('netplane dns --log-queries', () => {
  const running: DnsProcess[] = [];
  afterEach(async () => {
    for (const p of running.splice(0)) await p.stop();
  });

  it('writes a JSON line per answered query, even with --log-level warn', async () => {
    const port = await freePort();
    const dns = await startDns(['--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--log-queries', '--log-level', 'warn']);
    running.push(dns);
    await waitFor('dns answering', async () => (await digProcess(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000);
    await digProcess(port, 'nope.default.svc.cluster.local');
    await waitFor('two query lines', () => dns.logs().includes('"name":"nope.default.svc.cluster.local."'));
    const lines = dns.logs().split('\n').filter((l) => l.includes('"msg":"query"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toMatchObject({ component: 'dns', remote: '127.0.0.1', type: 'A', class: 'IN', name: 'nope.default.svc.cluster.local.', proto: 'udp', rcode: 'NXDOMAIN', rflags: 'qr,aa,rd' });
    expect(lines.some((l) => l.name === 'web.default.svc.cluster.local.' && l.rcode === 'NOERROR')).toBe(true);
  }, 30_000);

  it('logs only the classes of --log-class', async () => {
    const port = await freePort();
    const dns = await startDns(['--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--log-queries', '--log-class', 'denial']);
    running.push(dns);
    await waitFor('dns answering', async () => (await digProcess(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000);
    await digProcess(port, 'nope.default.svc.cluster.local');
    await waitFor('the denial logged', () => dns.logs().includes('"name":"nope.default.svc.cluster.local."'));
    expect(dns.logs()).not.toContain('"name":"web.default.svc.cluster.local."');
  }, 30_000);

  it.each([
    [['--log-class', 'denial'], /--log-class chooses what --log-queries logs; give --log-queries too/],
    [['--log-queries', '--log-class', 'nope'], /--log-class "nope": must be all, or success, denial and error/],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const dns = await startDns(['--listen', '127.0.0.1:0', ...args]);
    running.push(dns);
    expect(await dns.exited).toBe(2);
    expect(dns.logs()).toMatch(message);
  }, 20_000);
});

// Robustness: over 100,000 random and mutated messages (bit flips, truncations, random lengths, pointer loops,
// huge label lengths, overlong names, broken OPT records, bad header counts) over UDP, and random TCP streams (bad
// length prefixes, garbage, messages split anywhere, abandoned frames) — then ordinary queries must still be answered
// correctly, every response sent must decode, and nothing may have thrown. DNS_FUZZ_SEED=n replays a run.
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, frame, readFrames, stuckHandler, SyncHandler, tcpConnect, throwingHandler, udpExchange } from './helpers.ts';

const seed = Number(process.env.DNS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function rng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(seed);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

const opt = (o: Record<string, unknown> = {}) => ({ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [], ...o }) as unknown as dnsPacket.Answer;
const names = ['svc.test.local', 'SVC.Test.Local', 'big.test.local', 'huge.test.local', 'boom.fail', 'slow.fail', 'x.example', '.', 'a.b.c.d.e.f.g'];
const types = ['A', 'AAAA', 'SRV', 'PTR', 'TXT', 'ANY', 'SOA', 'NS'];

/** A valid query of a random shape. */
function validQuery(): Buffer {
  const additionals: dnsPacket.Answer[] = [];
  if (rand() < 0.5) additionals.push(opt({ udpPayloadSize: int(65536), flags: rand() < 0.3 ? dnsPacket.DNSSEC_OK : 0, options: rand() < 0.3 ? [{ code: 10, data: bytes(8) }] : [] }));
  return dnsPacket.encode({ id: int(65536), flags: rand() < 0.8 ? dnsPacket.RECURSION_DESIRED : 0, questions: [{ name: pick(names), type: pick(types) as 'A' }], additionals });
}

/** One hostile message: a valid query mutated in one or more ways, or noise. */
function hostile(): Buffer {
  let m = Buffer.from(validQuery());
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    switch (int(10)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + int(8); i < n && m.length > 0; i++) m[int(m.length)]! ^= 1 << int(8);
        break;
      case 1: // truncation
        m = m.subarray(0, int(m.length + 1));
        break;
      case 2: // noise of a random length
        m = bytes(int(600));
        break;
      case 3: // header counts
        if (m.length >= 12) for (const at of [4, 6, 8, 10]) if (rand() < 0.5) m.writeUInt16BE(pick([0, 1, 2, 3, 255, 65535]), at);
        break;
      case 4: // a pointer loop (to itself or forward) somewhere after the header
        if (m.length > 14) {
          const at = 12 + int(m.length - 13);
          const target = pick([at, at + 2, 12, int(m.length + 50)]);
          m[at] = 0xc0 | ((target >> 8) & 0x3f);
          m[at + 1] = target & 0xff;
        }
        break;
      case 5: // a huge or reserved label length
        if (m.length > 12) m[12 + int(Math.min(20, m.length - 12))] = 63 + int(193);
        break;
      case 6: // an overlong name (up to ~330 bytes)
        m = Buffer.concat([m.subarray(0, 12), ...Array.from({ length: 4 + int(2) }, () => Buffer.concat([Buffer.from([63]), bytes(63)])), Buffer.from([0, 0, 1, 0, 1])]);
        m.writeUInt16BE(1, 4);
        break;
      case 7: // broken or repeated OPT records appended
        m = Buffer.concat([m, ...Array.from({ length: 1 + int(2) }, () => Buffer.concat([Buffer.from([0, 0, 41, int(256), int(256), 0, int(3), int(256), 0]), Buffer.from([0, int(30)]), bytes(int(20))]))]);
        if (m.length >= 12) m.writeUInt16BE((m.readUInt16BE(10) + 1 + int(2)) & 0xffff, 10);
        break;
      case 8: // another opcode or QR set
        if (m.length > 2) m[2] = (m[2]! & 0x87) | (int(16) << 3) | (rand() < 0.2 ? 0x80 : 0);
        break;
      default: // two messages spliced
        m = Buffer.concat([m.subarray(0, int(m.length + 1)), validQuery().subarray(int(20))]);
    }
  }
  return m;
}

const errors: unknown[] = [];
const onError = (e: unknown) => errors.push(e);
let server: DnsServer;
let port: number;
beforeAll(async () => {
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  server = new DnsServer({
    listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }],
    handlers: [throwingHandler, stuckHandler, new SyncHandler()],
    log: silentLogger(),
    queryTimeoutMs: 300,
    tcpIdleMs: 500,
  });
  port = (await server.start())[0]!.port;
});
afterAll(async () => {
  await server.close();
  process.off('uncaughtException', onError);
  process.off('unhandledRejection', onError);
});

describe(`DnsServer under hostile input (DNS_FUZZ_SEED=${seed})`, () => {
  it('survives 100,000+ hostile messages over UDP and TCP and still answers correctly', { timeout: 60_000 }, async () => {
    const t0 = performance.now();
    // UDP: 95,000 messages from one socket, in bursts small enough that the server keeps up (the kernel would drop
    // what overflows its socket buffer, and those would test nothing).
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    client.setRecvBufferSize(4 << 20);
    let replies = 0;
    const undecodable: string[] = [];
    let pong: { name: string; done: () => void } | undefined;
    client.on('message', (m) => {
      replies++;
      try {
        const d = dnsPacket.decode(m);
        if (d.type !== 'response') undecodable.push(`not a response: ${m.toString('hex')}`);
        if (pong && d.questions?.[0]?.name === pong.name) pong.done();
      } catch (e) {
        undecodable.push(`${(e as Error).message}: ${m.toString('hex')}`);
      }
    });
    let sent = 0;
    for (let burst = 0; burst < 950; burst++) {
      for (let i = 0; i < 100; i++, sent++) client.send(hostile(), port, '127.0.0.1');
      // A ping after each burst: its answer comes once the server has read everything before it.
      const name = `ping${burst}.test.local`;
      await new Promise<void>((done) => {
        const timer = setTimeout(done, 1000);
        pong = { name, done: () => (clearTimeout(timer), done()) };
        client.send(aQuery(name), port, '127.0.0.1');
      });
    }

    // TCP: 300 connections of random streams, 20 at a time.
    let tcpMessages = 0;
    const tcpStream = async () => {
      const sock = await tcpConnect(port);
      sock.on('error', () => {});
      sock.on('data', () => {});
      const parts: Buffer[] = [];
      for (let i = 0, n = 10 + int(40); i < n; i++) {
        const k = int(10);
        if (k < 5) parts.push(frame(hostile()));
        else if (k < 7) parts.push(frame(validQuery()));
        else if (k === 7) parts.push(Buffer.from([int(256), int(256)]), bytes(int(100))); // a random length prefix and noise
        else if (k === 8) parts.push(bytes(int(300))); // raw garbage
        else parts.push(Buffer.from([0xff, 0xff]), bytes(int(1000))); // a 65,535-byte frame never finished
        tcpMessages++;
      }
      const stream = Buffer.concat(parts);
      // Written in random pieces, as a slow or hostile client would.
      for (let off = 0; off < stream.length && !sock.destroyed; ) {
        const n = 1 + int(700);
        sock.write(stream.subarray(off, off + n));
        off += n;
      }
      await new Promise((r) => setTimeout(r, int(20)));
      sock.destroy();
    };
    for (let wave = 0; wave < 15; wave++) await Promise.all(Array.from({ length: 20 }, tcpStream));
    await new Promise((r) => setTimeout(r, 200));
    client.close();
    expect(sent + tcpMessages).toBeGreaterThanOrEqual(100_000);

    // Still serving, correctly, over both transports.
    for (const [name, id] of [['svc.test.local', 1], ['SVC.TEST.local', 2]] as const) {
      const res = dnsPacket.decode(await udpExchange(port, aQuery(name, id)));
      expect(res).toMatchObject({ id, type: 'response', answers: [expect.objectContaining({ name, data: '10.0.0.1' })] });
    }
    const sock = await tcpConnect(port);
    const got = readFrames(sock, 2);
    sock.write(Buffer.concat([frame(aQuery('svc.test.local', 3)), frame(aQuery('nope.test.local', 4))]));
    const [a, b] = (await got).map((m) => dnsPacket.decode(m) as dnsPacket.DecodedPacket & { rcode: string });
    sock.destroy();
    expect(a).toMatchObject({ id: 3, answers: [expect.objectContaining({ data: '10.0.0.1' })] });
    expect(b).toMatchObject({ id: 4, rcode: 'NXDOMAIN' });

    expect(undecodable.slice(0, 5)).toEqual([]);
    // About 80% of the hostile messages deserve an answer (the rest are shorter than a header or are responses).
    expect(replies).toBeGreaterThan(sent * 0.6);
    expect(errors).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});

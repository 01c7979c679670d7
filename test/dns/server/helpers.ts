// Shared by the server tests: `dig` run and parsed, raw UDP/TCP clients, and small handlers with known behaviour.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult, ResourceRecord } from '../../../dns/types.ts';

const run = promisify(execFile);

/** What dig printed, in parts. */
export interface DigResult {
  status: string;
  flags: string[];
  /** The question as printed, e.g. "SVC.test.local. IN A". */
  question: string;
  /** Answer records as [owner, type, data]. */
  answers: Array<[string, string, string]>;
  /** The EDNS UDP size of the response, when it had OPT. */
  ednsUdp?: number;
  /** "UDP" or "TCP": how the final answer came. */
  transport: string;
  raw: string;
}

/** Runs `dig @127.0.0.1 -p PORT ...args` (never blocking the event loop: the server may run in this process). */
export async function dig(port: number, ...args: string[]): Promise<DigResult> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 });
  const lines = stdout.split('\n');
  const section = (title: string) => {
    const i = lines.findIndex((l) => l.startsWith(`;; ${title} SECTION:`));
    if (i < 0) return [];
    const out: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j]!.trim() !== ''; j++) out.push(lines[j]!);
    return out;
  };
  const answers = section('ANSWER').map((l) => {
    const [owner = '', , , type = '', ...data] = l.split(/\s+/);
    return [owner, type, data.join(' ')] as [string, string, string];
  });
  return {
    status: /status: (\w+)/.exec(stdout)?.[1] ?? '',
    flags: (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '').trim().split(/\s+/).filter(Boolean),
    question: (section('QUESTION')[0] ?? '').replace(/^;/, '').split(/\s+/).join(' '),
    answers,
    ednsUdp: Number(/EDNS: version: \d+, flags:[^;]*; udp: (\d+)/.exec(stdout)?.[1] ?? NaN) || undefined,
    transport: /;; SERVER: .*\((\w+)\)/.exec(stdout)?.[1] ?? '',
    raw: stdout,
  };
}

/** Sends one UDP message and resolves with the first reply (rejects after `ms`). */
export async function udpExchange(port: number, msg: Buffer, ms = 2000): Promise<Buffer> {
  const s = createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply in ${ms} ms`)), ms);
      s.on('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      s.send(msg, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** An A query for `name` with the given id, as dns-packet encodes it. */
export function aQuery(name: string, id = 1, type = 'A'): Buffer {
  return dnsPacket.encode({ id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }] });
}

/** Frames a message for TCP. */
export const frame = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);

/** Opens a TCP connection to the server. */
export function tcpConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads framed responses from a socket until `count` arrived (rejects after `ms` or on close). */
export function readFrames(sock: Socket, count: number, ms = 5000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${out.length} of ${count} responses in ${ms} ms`)), ms);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const n = buf.readUInt16BE(0);
        out.push(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
      }
      if (out.length >= count) {
        clearTimeout(timer);
        sock.off('data', onData);
        resolve(out);
      }
    };
    sock.on('data', onData);
    sock.once('close', () => {
      clearTimeout(timer);
      if (out.length < count) reject(new Error(`connection closed after ${out.length} of ${count} responses`));
    });
  });
}

const answer = (records: ResourceRecord[], source: string): DnsAnswer => ({ rcode: 'NOERROR', authoritative: true, answers: records, authorities: [], additionals: [], source });

/**
 * Answers under test.local synchronously, the same DnsAnswer object per name each time (counting how often the
 * server reads an answer's records, i.e. encodes it): svc (A), big (40 A records: over 512 bytes, under 1232),
 * huge (100 A records: over 1232). Other names under test.local get NXDOMAIN; names elsewhere pass.
 */
export class SyncHandler implements DnsHandler {
  readonly name = 'sync';
  encodes = 0;
  readonly #answers = new Map<string, DnsAnswer>();
  readonly #nx: DnsAnswer = { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [], additionals: [], source: 'sync' };

  constructor() {
    const many = (name: string, n: number) => Array.from({ length: n }, (_, i) => ({ name, type: 'A' as const, ttl: 30, data: `10.1.${i >> 8}.${i & 255}` }));
    const counting = (a: DnsAnswer): DnsAnswer => {
      const records = a.answers;
      return Object.defineProperty(a, 'answers', {
        get: () => {
          this.encodes++;
          return records;
        },
      });
    };
    this.#answers.set('svc.test.local', counting(answer([{ name: 'svc.test.local', type: 'A', ttl: 30, data: '10.0.0.1' }], 'sync')));
    this.#answers.set('big.test.local', answer(many('big.test.local', 40), 'sync'));
    this.#answers.set('huge.test.local', answer(many('huge.test.local', 100), 'sync'));
  }

  handle(q: DnsQuery): HandlerResult {
    if (!q.lname.endsWith('test.local')) return 'pass';
    return (q.type === 'A' && this.#answers.get(q.lname)) || this.#nx;
  }
}

/** Throws for boom.fail; passes otherwise. */
export const throwingHandler: DnsHandler = {
  name: 'throws',
  handle(q) {
    if (q.lname === 'boom.fail') throw new Error('handler exploded');
    return 'pass';
  },
};

/** Never settles for stuck.fail; answers slow.fail after 100 ms; passes otherwise. */
export const stuckHandler: DnsHandler = {
  name: 'stuck',
  handle(q) {
    if (q.lname === 'stuck.fail') return new Promise<HandlerResult>(() => {});
    if (q.lname === 'slow.fail') {
      return new Promise<HandlerResult>((r) => setTimeout(() => r(answer([{ name: q.name, type: 'A', ttl: 5, data: '10.9.9.9' }], 'stuck')), 100));
    }
    return 'pass';
  },
};

/** Passes everything (and counts the queries it saw). */
export class PassingHandler implements DnsHandler {
  readonly name = 'passes';
  seen = 0;
  handle(): HandlerResult {
    this.seen++;
    return 'pass';
  }
}

// A scripted upstream DNS server for the forwarder's tests: UDP and TCP on the same 127.0.0.1 port, every query
// recorded, every reply decided by the test's script.
import { createSocket } from 'node:dgram';
import { createServer, type Socket as TcpSocket } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';
import type { HostPort } from '../../../runtime/flags.ts';
import type { DnsQuery } from '../../../dns/types.ts';

/** A query as the fake upstream saw it. */
export interface SeenQuery {
  transport: 'udp' | 'tcp';
  id: number;
  name: string;
  type: string;
  qtype: number;
  rd: boolean;
  cd: boolean;
  /** The AD bit of the query (RFC 6840 5.7: the asker wants to know whether the answer was validated). */
  ad: boolean;
  dnssecOk: boolean;
  /** The advertised EDNS0 UDP size, undefined without OPT. */
  udpSize: number | undefined;
  /** The options of the query's OPT record, each as code and data, in order (none without OPT). */
  options: Array<{ code: number; data: Buffer }>;
}

/** What the fake sends back: a reply, or nothing at all. */
export type Reply =
  | 'silent'
  | {
      rcode?: 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED' | 'YXDOMAIN';
      /** A 12-bit rcode (RFC 6891 6.1.3: BADVERS 16, BADCOOKIE 23): its low 4 bits in the header, the rest in the OPT record. */
      extendedRcode?: number;
      /** Options of the reply's OPT record (an extended DNS error is code 15). */
      ednsOptions?: Array<{ code: number; data: Buffer }>;
      /** Set AD (the upstream validated the answer). */
      authenticated?: boolean;
      answers?: Answer[];
      authorities?: Answer[];
      additionals?: Answer[];
      /** Set TC (and, over UDP, it is the only reply). */
      truncated?: boolean;
      /** Send these spoof-like replies first: one with another ID, one for another name. */
      decoysFirst?: boolean;
      delayMs?: number;
    };

/** Decides the reply to one query. */
export type Script = (q: SeenQuery) => Reply;

/** A running fake upstream. */
export interface FakeUpstream {
  hostPort: HostPort;
  seen: SeenQuery[];
  count(transport?: 'udp' | 'tcp'): number;
  /** Replaces the script. */
  script: Script;
  close(): Promise<void>;
}

const rcodeNumber = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6 } as const;

/** Starts a fake upstream on a free 127.0.0.1 port (UDP and TCP). */
export async function startUpstream(script: Script): Promise<FakeUpstream> {
  for (let tries = 0; ; tries++) {
    try {
      return await listen(script);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries > 20) throw e;
    }
  }
}

async function listen(initial: Script): Promise<FakeUpstream> {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, '127.0.0.1', () => resolve());
  });
  const port = udp.address().port;
  const tcp = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    udp.close();
    throw e;
  }
  const conns = new Set<TcpSocket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed: Promise<void> | undefined;
  const fake: FakeUpstream = {
    hostPort: { host: '127.0.0.1', port, text: `127.0.0.1:${port}` },
    seen: [],
    count: (t) => fake.seen.filter((q) => !t || q.transport === t).length,
    script: initial,
    close: () => {
      closed ??= (async () => {
        for (const t of timers) clearTimeout(t);
        for (const c of conns) c.destroy();
        await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
      })();
      return closed;
    },
  };
  const later = (ms: number, f: () => void) => {
    if (!ms) return f();
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };
  udp.on('message', (msg, from) => {
    const q = see(msg, 'udp');
    fake.seen.push(q.seen);
    const reply = fake.script(q.seen);
    if (reply === 'silent') return;
    later(reply.delayMs ?? 0, () => {
      for (const out of replies(q.packet, q.seen, reply, 'udp')) udp.send(out, from.port, from.address);
    });
  });
  tcp.on('connection', (c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => {});
    let got = Buffer.alloc(0);
    c.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        const msg = got.subarray(2, 2 + got.readUInt16BE(0));
        got = got.subarray(2 + msg.length);
        const q = see(msg, 'tcp');
        fake.seen.push(q.seen);
        const reply = fake.script(q.seen);
        if (reply === 'silent') continue;
        later(reply.delayMs ?? 0, () => {
          for (const out of replies(q.packet, q.seen, reply, 'tcp')) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            c.write(Buffer.concat([len, out]));
          }
        });
      }
    });
  });
  return fake;
}

function see(msg: Buffer, transport: 'udp' | 'tcp'): { packet: DecodedPacket; seen: SeenQuery } {
  const packet = dnsPacket.decode(msg);
  const question = packet.questions?.[0];
  const opt = packet.additionals?.find((rr) => rr.type === 'OPT');
  return {
    packet,
    seen: {
      transport,
      id: packet.id ?? 0,
      name: question?.name ?? '',
      type: question?.type ?? '',
      qtype: msg.readUInt16BE(12 + nameLength(msg, 12)),
      rd: packet.flag_rd,
      cd: packet.flag_cd,
      ad: packet.flag_ad,
      dnssecOk: opt?.type === 'OPT' ? opt.flag_do : false,
      udpSize: opt?.type === 'OPT' ? opt.udpPayloadSize : undefined,
      options: opt?.type === 'OPT' ? ((opt.options ?? []) as Array<{ code: number; data?: Buffer }>).map((o) => ({ code: o.code, data: Buffer.from(o.data ?? []) })) : [],
    },
  };
}

function nameLength(msg: Buffer, at: number): number {
  let i = at;
  while (msg[i]) i += msg[i]! + 1;
  return i + 1 - at;
}

function replies(q: DecodedPacket, seen: SeenQuery, r: Exclude<Reply, 'silent'>, transport: 'udp' | 'tcp'): Buffer[] {
  const truncated = r.truncated === true && transport === 'udp';
  const encode = (id: number, name: string) => {
    const buf = dnsPacket.encode({
      type: 'response',
      id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | (r.authenticated ? dnsPacket.AUTHENTIC_DATA : 0) | (r.extendedRcode === undefined ? rcodeNumber[r.rcode ?? 'NOERROR'] : r.extendedRcode & 0x0f),
      questions: [{ name, type: 'A', class: 'IN' }],
      answers: truncated ? [] : (r.answers ?? []),
      authorities: truncated ? [] : (r.authorities ?? []),
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: (r.extendedRcode ?? 0) >> 4, ednsVersion: 0, flags: 0, flag_do: false, options: (r.ednsOptions ?? []) as never }, ...(truncated ? [] : (r.additionals ?? []))],
    });
    buf.writeUInt16BE(seen.qtype, 12 + nameLength(buf, 12));
    return buf;
  };
  const real = encode(q.id ?? 0, seen.name);
  if (!r.decoysFirst) return [real];
  return [encode((q.id ?? 0) ^ 0x5a5a, seen.name), encode(q.id ?? 0, `evil.${seen.name}`), real];
}

const qtypes: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33 };

/** A query as the server would hand it to the chain. */
export function query(name: string, type = 'A', over: Partial<DnsQuery> = {}): DnsQuery {
  return {
    id: 1,
    name,
    lname: name.toLowerCase(),
    type,
    qtype: qtypes[type] ?? Number(type.replace('TYPE', '')),
    qclass: 1,
    rd: true,
    cd: false,
    transport: 'udp',
    dnssecOk: false,
    client: { address: '127.0.0.1', port: 5353 },
    ...over,
  };
}

/** An A record. */
export function a(name: string, ip: string, ttl = 300): Answer {
  return { name, type: 'A', class: 'IN', ttl, data: ip };
}

/** An SOA record for negative answers. */
export function soa(zone: string, ttl: number, minimum: number): Answer {
  return { name: zone, type: 'SOA', class: 'IN', ttl, data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum } };
}

/** A UDP and TCP port on 127.0.0.1 where nothing listens (UDP queries there are refused at once). */
export async function deadUpstream(): Promise<HostPort> {
  const fake = await startUpstream(() => 'silent');
  await fake.close();
  return fake.hostPort;
}

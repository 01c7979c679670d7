// One DNS exchange with one upstream: UDP first, TCP when the UDP reply is truncated (RFC 7766 §5). Hardened
// against off-path spoofing as RFC 5452 asks: a fresh socket per query (the kernel picks a random source port),
// a random ID, a connected UDP socket (the kernel drops datagrams from other addresses), and a reply counts only
// when its ID and question match ours; anything else is ignored while we wait for the real one, but for an error
// rcode with our ID and no question (questionlessError), which fails the exchange at once.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { nameToWire } from '../wire/name.ts';
import { optLength, writeOpt } from '../wire/response.ts';
import type { HostPort } from '../../runtime/flags.ts';
import type { Rcode, ResourceRecord } from '../types.ts';
import { hopByHopCodes } from './options.ts';

/** An exchange that failed; `code` says how. The forwarder then tries the next upstream. */
export class UpstreamError extends Error {
  override readonly name: string = 'UpstreamError';
  readonly code: string = 'NETPLANE_DNS_UPSTREAM';
}

/** No matching reply within the time allowed. */
export class UpstreamTimeoutError extends UpstreamError {
  override readonly name = 'UpstreamTimeoutError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_TIMEOUT';
}

/** The network said no: connection refused (ICMP port unreachable for UDP), reset, or closed before a reply. */
export class UpstreamUnreachableError extends UpstreamError {
  override readonly name = 'UpstreamUnreachableError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_UNREACHABLE';
}

/** A reply that cannot be used: undecodable, or a TCP reply to another question. */
export class UpstreamReplyError extends UpstreamError {
  override readonly name = 'UpstreamReplyError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_REPLY';
}

/** The exchange was cancelled through its scope (the forwarder is closing). */
export class UpstreamAbortedError extends UpstreamError {
  override readonly name = 'UpstreamAbortedError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_ABORTED';
}

/** What is asked of an upstream. Type and class are numbers, so types dns-packet does not name go through too. */
export interface UpstreamQuestion {
  name: string;
  qtype: number;
  qclass: number;
  /** EDNS0 DO bit. */
  dnssecOk: boolean;
  /** CD bit. */
  checkingDisabled: boolean;
  /** EDNS options for our OPT record, on the wire (code, length, data each): the client's that are relayed (options.ts). */
  options?: Buffer | undefined;
}

/** An upstream's reply, its OPT record removed. */
export interface UpstreamReply {
  /** The rcode as the pipeline knows it; rcodes it has no name for become SERVFAIL. */
  rcode: Rcode;
  /** The rcode as received (e.g. YXDOMAIN), for metrics. */
  wireRcode: string;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  transport: 'udp' | 'tcp' | 'tls';
  /** The reply's AD bit. */
  authenticatedData?: boolean;
  /** The options of the reply's OPT record on the wire (code, length, data each) but hop-by-hop ones (options.ts), relayed to the client; absent when none. */
  ednsOptions?: Buffer;
}

/** Limits of one exchange: each leg (UDP, then TCP) gets `timeoutMs`, never past `deadline` (performance.now() ms). */
export interface ExchangeLimits {
  timeoutMs: number;
  deadline?: number;
  /** Cancels the exchange when closed. */
  scope?: ExchangeScope;
}

/**
 * The exchanges of one forwarder, cancelled together by close(). A Set rather than an AbortSignal: EventTarget's
 * add and remove cost O(listeners), which made every exchange slower the more were pending.
 */
export class ExchangeScope {
  #pending = new Set<() => void>();
  #closed = false;

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Exchanges not yet settled. */
  get size(): number {
    return this.#pending.size;
  }

  /** Cancels every pending exchange (each rejects with UpstreamAbortedError) and every later one at once. */
  close(): void {
    this.#closed = true;
    for (const cancel of [...this.#pending]) cancel();
    this.#pending.clear();
  }

  /** Registers a cancel callback; false (and nothing registered) when already closed. */
  add(cancel: () => void): boolean {
    if (this.#closed) return false;
    this.#pending.add(cancel);
    return true;
  }

  delete(cancel: () => void): void {
    this.#pending.delete(cancel);
  }
}

/** The EDNS0 UDP payload size we advertise: DNS Flag Day 2020's value, which avoids IP fragmentation. */
export const ednsUdpSize = 1232;

// An upstream's rcode is passed on as it is (CoreDNS forward relays the message), the extended BADVERS and BADCOOKIE
// included; one outside these (BADKEY and the other TSIG rcodes, which no reply to our queries can carry) is a SERVFAIL.
const pipelineRcodes: ReadonlySet<string> = new Set<Rcode>(['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'BADVERS', 'BADCOOKIE']);

/**
 * The wire form of a query with this ID: RD set (we forward to recursive resolvers), AD set (RFC 6840 5.7: a
 * validating upstream then says whether it validated the answer even without DO; the cached answer serves every
 * client, and the forwarder passes AD on only to clients that set DO or AD), CD and DO as asked, the name's
 * labels exactly as its presentation form spells them (`\.` and `\DDD` escapes included), and the options in our
 * OPT record. Throws NameError for a name that cannot be written.
 */
export function encodeQuery(q: UpstreamQuestion, id: number): Buffer {
  const name = nameToWire(q.name);
  const buf = Buffer.alloc(12 + name.length + 4 + optLength + (q.options?.length ?? 0));
  buf.writeUInt16BE(id, 0);
  buf[2] = 0x01; // RD
  buf[3] = 0x20 | (q.checkingDisabled ? 0x10 : 0); // AD, CD
  buf.writeUInt16BE(1, 4); // QDCOUNT
  buf.writeUInt16BE(1, 10); // ARCOUNT: our OPT
  name.copy(buf, 12);
  let off = 12 + name.length;
  buf.writeUInt16BE(q.qtype, off);
  buf.writeUInt16BE(q.qclass, off + 2);
  off += 4;
  writeOpt(buf, off, ednsUdpSize, 0, q.dnssecOk, q.options);
  return buf;
}

/**
 * Whether `reply` answers `query`: same ID, QR set, one question, and the same question bytes (the name compared
 * without regard to ASCII case; label length bytes are below 64 and so never touched by the case folding).
 */
export function replyMatches(reply: Buffer, query: Buffer): boolean {
  // Our query's question: its name's labels from offset 12, then type and class (the OPT record after it may carry options).
  let end = 12;
  while (end < query.length && query[end] !== 0) end += query[end]! + 1;
  end += 5;
  if (reply.length < end || reply.readUInt16BE(0) !== query.readUInt16BE(0)) return false;
  if ((reply[2]! & 0x80) === 0 || reply.readUInt16BE(4) !== 1) return false;
  for (let i = 12; i < end; i++) {
    let a = reply[i]!;
    let b = query[i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

const rcodeNames = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
// The extended rcodes (RFC 6891 6.1.3: the OPT record's TTL holds the upper 8 of 12 bits) by number, as CoreDNS
// names them in its metrics; 16 is BADVERS in an OPT record's context (BADSIG only in TSIG's).
const extendedRcodeNames: Record<number, string> = { 16: 'BADVERS', 17: 'BADKEY', 18: 'BADTIME', 19: 'BADMODE', 20: 'BADNAME', 21: 'BADALG', 22: 'BADTRUNC', 23: 'BADCOOKIE' };

/**
 * The rcode of `reply` when it is an error answer to `query` without the question (same ID, QR set, QDCOUNT 0, an
 * rcode other than NOERROR), as servers that do not know EDNS0 answer FORMERR; else undefined. Such a reply answers
 * nothing, so it can only fail the exchange: the forwarder then moves on at once instead of timing out. The rcode
 * may be extended (BADVERS, BADCOOKIE): its upper bits are then in an OPT record that comes first after the header.
 */
export function questionlessError(reply: Buffer, query: Buffer): string | undefined {
  if (reply.length < 12 || reply.readUInt16BE(0) !== query.readUInt16BE(0) || (reply[2]! & 0x80) === 0) return undefined;
  if (reply.readUInt16BE(4) !== 0) return undefined;
  let rcode = reply[3]! & 0x0f;
  // No answer or authority records, and an OPT record (root owner, type 41) first among the additional ones.
  if (reply.readUInt32BE(6) === 0 && reply.readUInt16BE(10) > 0 && reply.length >= 23 && reply[12] === 0 && reply.readUInt16BE(13) === 41) {
    rcode |= reply[17]! << 4;
  }
  if (rcode === 0) return undefined;
  return rcodeNames[rcode] ?? extendedRcodeNames[rcode] ?? `rcode ${rcode}`;
}

/**
 * The error for a reply on a stream (TCP, TLS) that does not answer our query: the stream holds no other, so it fails
 * the exchange at once, whether it is an error answered without the question (its rcode is then named) or another
 * question's answer.
 */
export function mismatch(upstream: string, proto: 'TCP' | 'TLS', reply: Buffer, query: Buffer): UpstreamReplyError {
  const rcode = questionlessError(reply, query);
  return new UpstreamReplyError(`DNS upstream ${upstream} over ${proto} answered ${rcode === undefined ? 'another question' : `${rcode} without the question`}`);
}

/**
 * Asks `to` a query (the wire form from encodeQuery; each leg gets a copy with a fresh random ID) over UDP, and again
 * over TCP when the reply is truncated. Rejects only with an UpstreamError subclass.
 */
export async function exchange(to: HostPort, query: Buffer, limits: ExchangeLimits): Promise<UpstreamReply> {
  const viaUdp = await exchangeUdp(to, withRandomId(query), limits);
  if (!viaUdp.flag_tc) return toReply(viaUdp, 'udp');
  return toReply(await exchangeTcp(to, withRandomId(query), limits), 'tcp');
}

function withRandomId(query: Buffer): Buffer {
  const copy = Buffer.from(query);
  copy.writeUInt16BE(randomInt(0x10000), 0);
  return copy;
}

/** Sends a query (wire form) over UDP and waits for its reply; foreign or mismatched datagrams are ignored. */
export function exchangeUdp(to: HostPort, query: Buffer, limits: ExchangeLimits): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(to.host) ? 'udp6' : 'udp4');
    const end = settle(limits, to, 'UDP', reject, () => socket.close());
    socket.on('error', (e) => end.fail(new UpstreamUnreachableError(`DNS upstream ${to.text} over UDP: ${e.message}`, { cause: e })));
    socket.on('message', (msg) => {
      if (!replyMatches(msg, query)) {
        const rcode = questionlessError(msg, query);
        if (rcode !== undefined) end.fail(new UpstreamReplyError(`DNS upstream ${to.text} answered ${rcode} without the question`));
        return;
      }
      const decoded = decode(msg, to);
      if (decoded instanceof UpstreamError) end.fail(decoded);
      else end.ok(() => resolve(decoded));
    });
    if (end.done) return;
    // A failed connect (no route to the upstream: ENETUNREACH, EACCES, ...) is handed to this callback, not emitted
    // as 'error'; sending on the unconnected socket would then throw out of the event loop.
    const connected = (err?: Error | null): void => {
      if (err) end.fail(new UpstreamUnreachableError(`DNS upstream ${to.text} over UDP: ${err.message}`, { cause: err }));
      else if (!end.done) socket.send(query);
    };
    socket.connect(to.port, to.host, connected as () => void);
  });
}

/** Sends a query (wire form) over a new TCP connection, two-byte length first, and reads one reply. */
export function exchangeTcp(to: HostPort, query: Buffer, limits: ExchangeLimits): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: to.host, port: to.port, noDelay: true });
    const end = settle(limits, to, 'TCP', reject, () => socket.destroy());
    let got: Buffer = Buffer.alloc(0);
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.end(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
      const msg = got.subarray(2, 2 + got.readUInt16BE(0));
      if (!replyMatches(msg, query)) return end.fail(mismatch(to.text, 'TCP', msg, query));
      const decoded = decode(msg, to);
      if (decoded instanceof UpstreamError) end.fail(decoded);
      else end.ok(() => resolve(decoded));
    });
    socket.on('error', (e) => end.fail(new UpstreamUnreachableError(`DNS upstream ${to.text} over TCP: ${e.message}`, { cause: e })));
    socket.on('close', () => end.fail(new UpstreamUnreachableError(`DNS upstream ${to.text} over TCP closed the connection without a reply`)));
  });
}

/**
 * The rcode of a decoded reply as received: the header's 4 bits, with the upper 8 bits of the OPT record when it has
 * one (RFC 6891 6.1.3), as miekg/dns reads it. BADVERS (16) has a header rcode of 0: read alone, it would be NOERROR.
 */
export function wireRcodeOf(p: DecodedPacket): string {
  const header = (p as DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR';
  const opt = p.additionals?.find((rr) => rr.type === 'OPT') as { extendedRcode?: number } | undefined;
  const upper = opt?.extendedRcode ?? 0;
  if (upper === 0) return header;
  const full = (upper << 4) | ((p.flags ?? 0) & 0x0f);
  return extendedRcodeNames[full] ?? `RCODE${full}`;
}

/**
 * The pipeline's view of a decoded reply, its OPT record's options kept to relay. An extended rcode (BADVERS,
 * BADCOOKIE) is passed on as CoreDNS's forward relays it (never cached, and a failed refresh for serve-stale); one the
 * pipeline has no name for becomes SERVFAIL.
 */
export function toReply(p: DecodedPacket, transport: UpstreamReply['transport']): UpstreamReply {
  const wireRcode = wireRcodeOf(p);
  const options = optionsOf(p);
  return {
    ...(options ? { ednsOptions: options } : {}),
    rcode: pipelineRcodes.has(wireRcode) ? (wireRcode as Rcode) : 'SERVFAIL',
    wireRcode,
    answers: p.answers ?? [],
    authorities: p.authorities ?? [],
    additionals: (p.additionals ?? []).filter((rr) => rr.type !== 'OPT'),
    transport,
    authenticatedData: (p as DecodedPacket & { flag_ad?: boolean }).flag_ad === true,
  };
}

/** The options of a decoded reply's OPT record on the wire (code, length, data each), hop-by-hop ones left out; undefined when none is left. */
export function optionsOf(p: DecodedPacket): Buffer | undefined {
  const opt = p.additionals?.find((rr) => rr.type === 'OPT') as { options?: Array<{ code: number; data?: Buffer }> } | undefined;
  if (!opt?.options?.length) return undefined;
  const parts: Buffer[] = [];
  for (const o of opt.options) {
    if (hopByHopCodes.has(o.code)) continue;
    const data = o.data ?? Buffer.alloc(0);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(o.code, 0);
    head.writeUInt16BE(data.length, 2);
    parts.push(head, data);
  }
  return parts.length === 0 ? undefined : Buffer.concat(parts);
}

/** Decodes a reply; an UpstreamReplyError (returned, not thrown) when it does not decode. */
export function decode(msg: Buffer, to: HostPort): DecodedPacket | UpstreamError {
  try {
    return dnsPacket.decode(msg);
  } catch (e) {
    return new UpstreamReplyError(`DNS upstream ${to.text} sent a reply that does not decode: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Timer, abort and cleanup shared by every transport: the first outcome wins (ok delivers, fail rejects; later ones
 * are ignored), `release` always runs once, before the outcome is handed on.
 */
export function settle(limits: ExchangeLimits, to: HostPort, proto: string, reject: (e: Error) => void, release: () => void) {
  const left = limits.deadline === undefined ? limits.timeoutMs : Math.min(limits.timeoutMs, limits.deadline - performance.now());
  const state = {
    done: false,
    ok(deliver: () => void) {
      if (finish()) deliver();
    },
    fail(e: Error) {
      if (finish()) reject(e);
    },
  };
  const onAbort = () => state.fail(new UpstreamAbortedError(`DNS query to ${to.text} over ${proto} cancelled`));
  const timer = setTimeout(() => state.fail(new UpstreamTimeoutError(`DNS upstream ${to.text} sent no reply over ${proto} within ${Math.max(0, Math.round(left))} ms`)), Math.max(0, left));
  const registered = limits.scope?.add(onAbort) ?? true;
  function finish(): boolean {
    if (state.done) return false;
    state.done = true;
    clearTimeout(timer);
    limits.scope?.delete(onAbort);
    try {
      release();
    } catch {
      // Already closed: nothing to release.
    }
    return true;
  }
  if (!registered) onAbort();
  return state;
}

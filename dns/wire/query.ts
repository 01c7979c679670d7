// Parsing a DNS query from the wire (RFC 1035 4.1, RFC 6891 6.1): a hand-written fast path for the usual shape
// (one question of plain labels, nothing but an optional OPT record after it) and dns-packet for the rest.
// Never throws: every input gives a query or a failure that says how to answer (or to drop).
import { answerCodec, nameCodec, typeName } from './codec.ts';
import { wireToName } from './name.ts';
import type { DnsQuery } from '../types.ts';

/** A query as parsed from the wire: what handlers see, plus what the response writer needs. */
export interface ParsedQuery extends DnsQuery {
  readonly ok: true;
  /** Offset just past the question: bytes [12, questionEnd) are copied into the response as they are. */
  questionEnd: number;
  /** Whether the query carried an OPT record (then the response carries ours). */
  edns: boolean;
  /** Size of the query message in bytes. */
  wireSize: number;
}

/** Why a message gets no regular answer: an error response (when its header is readable) or nothing at all. */
export interface ParseFailure {
  readonly ok: false;
  /** FORMERR, NOTIMP or BADVERS (an extended rcode, RFC 6891 6.1.3) are answered; DROP is not. */
  rcode: 'FORMERR' | 'NOTIMP' | 'BADVERS' | 'DROP';
  /** A short machine-readable reason, for logs and tests. */
  reason: string;
  /** The parsed question when it was readable (BADVERS, or a malformed section after the question). */
  question?: { end: number; lname: string; qtype: number };
  /** Whether the response gets an OPT record (RFC 6891: BADVERS is reported in one). */
  edns: boolean;
  dnssecOk: boolean;
}

/** The result of parseQuery. */
export type ParseResult = ParsedQuery | ParseFailure;

/** Largest name on the wire, root label included (RFC 1035 2.3.4). */
export const maxNameWireLength = 255;
/** Smallest UDP payload size a client may advertise; smaller ones count as 512 (RFC 6891 6.2.5). */
export const minUdpSize = 512;

const dropShort: ParseFailure = Object.freeze({ ok: false, rcode: 'DROP', reason: 'short-header', edns: false, dnssecOk: false });
const dropResponse: ParseFailure = Object.freeze({ ok: false, rcode: 'DROP', reason: 'not-a-query', edns: false, dnssecOk: false });

/**
 * Byte classes of name bytes for the fast path: 0 = needs the general decoder (dot, backslash, space, control,
 * non-ASCII), 1 = kept as is, 2 = upper-case ASCII letter.
 */
const byteClass = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) byteClass[c] = c >= 0x41 && c <= 0x5a ? 2 : 1;
byteClass[0x2e] = 0;
byteClass[0x5c] = 0;

// Scratch buffers for the name as text (one for the letters as asked, one lower-cased); a name is at most 253 chars.
const nameScratch = Buffer.alloc(256);
const lowerScratch = Buffer.alloc(256);
/** Buffer's own latin1 decoder, without toString's argument handling (the hot path calls it once or twice a query). */
const latin1 = (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, start: number, end: number) => string }).latin1Slice ?? function (this: Buffer, start: number, end: number) {
  return this.toString('latin1', start, end);
};

/** A failure with a readable header. */
function fail(rcode: ParseFailure['rcode'], reason: string, question?: ParseFailure['question'], edns = false, dnssecOk = false): ParseFailure {
  return { ok: false, rcode, reason, question, edns, dnssecOk };
}

/**
 * Parses one DNS query message. `client` is stored by reference (a dgram rinfo will do). Responses (QR=1) and
 * messages too short for a header are dropped; anything else malformed is a FORMERR, an opcode other than QUERY
 * a NOTIMP, an EDNS version above 0 a BADVERS.
 */
export function parseQuery(msg: Buffer, transport: 'udp' | 'tcp', client: { address: string; port: number }): ParseResult {
  const len = msg.length;
  if (len < 12) return dropShort;
  const b2 = msg[2]!;
  if (b2 & 0x80) return dropResponse;
  if ((b2 >> 3) & 0xf) return notImplemented(msg, transport, client);
  if (msg[4]! !== 0 || msg[5]! !== 1) return fail('FORMERR', 'qdcount');
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;

  // The question name: labels only. A compression pointer in the question can only point into the header, which
  // no sane client sends; and it could not be copied into the response as it is.
  let off = 12;
  let n = 0; // characters written to the scratch buffers
  let plain = true;
  let upper = false;
  for (;;) {
    if (off >= len) return fail('FORMERR', 'truncated-name');
    const l = msg[off]!;
    if (l === 0) break;
    if (l > 63) return fail('FORMERR', l >= 0xc0 ? 'pointer-in-question' : 'bad-label-type');
    if (off + 1 + l > len) return fail('FORMERR', 'truncated-name');
    // Wire length so far: this label, the ones before it and the root label.
    if (off - 12 + l + 2 > maxNameWireLength) return fail('FORMERR', 'name-too-long');
    if (n > 0) {
      nameScratch[n] = 0x2e;
      lowerScratch[n++] = 0x2e;
    }
    for (let i = off + 1, end = off + 1 + l; i < end; i++) {
      const c = msg[i]!;
      const k = byteClass[c]!;
      if (k === 0) plain = false;
      else if (k === 2) upper = true;
      nameScratch[n] = c;
      lowerScratch[n++] = k === 2 ? c | 0x20 : c;
    }
    off += 1 + l;
  }
  off++; // the root label
  if (off + 4 > len) return fail('FORMERR', 'truncated-question');
  const qtype = (msg[off]! << 8) | msg[off + 1]!;
  const qclass = (msg[off + 2]! << 8) | msg[off + 3]!;
  const questionEnd = off + 4;

  let name: string;
  let lname: string;
  if (plain) {
    name = latin1.call(nameScratch, 0, n);
    lname = upper ? latin1.call(lowerScratch, 0, n) : name;
  } else {
    // The labels were checked above: a name with dots, backslashes, spaces, control or non-ASCII bytes in a label.
    name = wireToName(msg, 12).name;
    lname = name.toLowerCase();
  }

  let udpSize: number | undefined;
  let dnssecOk = false;
  let edns = false;
  let ednsOptions: Buffer | undefined;
  if (an !== 0 || ns !== 0 || ar !== 0) {
    const question = { end: questionEnd, lname, qtype };
    let optAt = -1;
    if (an === 0 && ns === 0 && ar === 1 && questionEnd + 3 <= len && msg[questionEnd] === 0 && msg[questionEnd + 1] === 0 && msg[questionEnd + 2] === 41) {
      optAt = questionEnd;
    } else {
      const found = findOpt(msg, questionEnd, an, ns, ar);
      if (typeof found === 'string') return fail('FORMERR', found, question);
      optAt = found;
    }
    if (optAt >= 0) {
      const opt = readOpt(msg, optAt);
      if (typeof opt === 'string') return fail('FORMERR', opt, question);
      edns = true;
      dnssecOk = opt.dnssecOk;
      if (opt.version > 0) return fail('BADVERS', 'edns-version', question, true, dnssecOk);
      udpSize = opt.size < minUdpSize ? minUdpSize : opt.size;
      // A copy: the query outlives the message, whose memory a TCP reader may hand on.
      if (opt.end > optAt + 11) ednsOptions = Buffer.from(msg.subarray(optAt + 11, opt.end));
    }
  }

  return {
    ok: true,
    id: (msg[0]! << 8) | msg[1]!,
    name,
    lname,
    type: typeName(qtype),
    qtype,
    qclass,
    rd: (b2 & 1) === 1,
    cd: (msg[3]! & 0x10) !== 0,
    ad: (msg[3]! & 0x20) !== 0,
    transport,
    udpSize,
    dnssecOk,
    ednsOptions,
    client,
    questionEnd,
    edns,
    wireSize: len,
  };
}

/**
 * NOTIMP for an opcode other than QUERY: the rest of the message read as a query's would be (opcode bits cleared in
 * a copy), so that the answer carries the question and, to a client that sent an OPT record, ours (RFC 6891 7: a
 * responder that knows EDNS includes OPT in its answers to EDNS requests). A message that does not read that way
 * (UPDATE's prerequisites, a NOTIFY's answer) gets a bare NOTIMP.
 */
function notImplemented(msg: Buffer, transport: 'udp' | 'tcp', client: { address: string; port: number }): ParseFailure {
  const copy = Buffer.from(msg);
  copy[2] = copy[2]! & 0x87;
  const r = parseQuery(copy, transport, client);
  if (!r.ok) return fail('NOTIMP', 'opcode', undefined, r.rcode === 'BADVERS', r.dnssecOk);
  return fail('NOTIMP', 'opcode', { end: r.questionEnd, lname: r.lname, qtype: r.qtype }, r.edns, r.dnssecOk);
}

/** Walks the answer, authority and additional sections with dns-packet: the OPT record's offset, -1 without one, or why not. */
function findOpt(msg: Buffer, start: number, an: number, ns: number, ar: number): number | string {
  let off = start;
  let optAt = -1;
  const total = an + ns + ar;
  for (let i = 0; i < total; i++) {
    if (off >= msg.length) return 'truncated-record';
    let type: number;
    try {
      nameCodec.decode(msg, off);
      const nameBytes = nameCodec.decode.bytes;
      if (off + nameBytes + 10 > msg.length) return 'truncated-record';
      type = msg.readUInt16BE(off + nameBytes);
      if (type !== 41) {
        answerCodec.decode(msg, off);
        const size = answerCodec.decode.bytes;
        // dns-packet reads rdata by its type; the record's own rdlength is what delimits it on the wire.
        const rdlen = msg.readUInt16BE(off + nameBytes + 8);
        if (off + nameBytes + 10 + rdlen > msg.length || size > nameBytes + 10 + rdlen) return 'bad-rdata';
        off += nameBytes + 10 + rdlen;
        continue;
      }
    } catch {
      return 'bad-record';
    }
    // RFC 6891 6.1.1: OPT only in the additional section, at most once.
    if (i < an + ns) return 'opt-outside-additional';
    if (optAt >= 0) return 'multiple-opt';
    optAt = off;
    const opt = readOpt(msg, off);
    if (typeof opt === 'string') return opt;
    off = opt.end;
  }
  return optAt;
}

/** An OPT record's fields. */
export interface OptFields {
  size: number;
  version: number;
  dnssecOk: boolean;
  /** Offset just past the record. */
  end: number;
}

/** Reads and checks an OPT record at `off` (root owner name, options that exactly fill the rdata), or says why not. */
export function readOpt(msg: Buffer, off: number): OptFields | string {
  if (off + 11 > msg.length) return 'truncated-opt';
  if (msg[off] !== 0) return 'opt-owner-not-root';
  if (msg[off + 1] !== 0 || msg[off + 2] !== 41) return 'not-opt';
  const rdlen = (msg[off + 9]! << 8) | msg[off + 10]!;
  const end = off + 11 + rdlen;
  if (end > msg.length) return 'truncated-opt';
  for (let o = off + 11; o < end; ) {
    if (o + 4 > end) return 'bad-opt-option';
    o += 4 + ((msg[o + 2]! << 8) | msg[o + 3]!);
    if (o > end) return 'bad-opt-option';
  }
  return { size: (msg[off + 3]! << 8) | msg[off + 4]!, version: msg[off + 6]!, dnssecOk: (msg[off + 7]! & 0x80) !== 0, end };
}

// Writing responses (RFC 1035 4.1, RFC 6891 6.1.3, RFC 7766 8): an answer's sections are encoded once with
// dns-packet and reused; a response is then the header, the question copied from the query as it came (letter
// case kept), the cached sections and our OPT record. Only a response too big for its limit is compressed and cut
// (truncate.ts), as CoreDNS does: the usual answer is copied as it was encoded.
import { answerCodec, nameCodec, rcodeNumbers } from './codec.ts';
import type { DnsAnswer, ResourceRecord } from '../types.ts';
import { nameLabels } from './name.ts';
import { buildFitted } from './truncate.ts';

/** An answer's three sections on the wire, for any question with the name it was encoded for. */
export interface EncodedAnswer {
  /** The answer, authority and additional records, in that order. */
  readonly body: Buffer;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
  /**
   * The lower-case question name that the owner-name pointers (to offset 12) stand for, or null when no record
   * has the question's name: then the bytes fit any question.
   */
  readonly pointerName: string | null;
  /** Header byte 3 without CD: RA and the rcode. */
  readonly flags3: number;
  /** AA as header byte 2 carries it. */
  readonly aa: number;
  /** The rcode number (12 bits: its upper 8 go in the OPT record), for metrics. */
  readonly rcode: number;
  /** EDNS options for our OPT record (the answer's ednsOptions); empty when none. */
  readonly options: Buffer;
}

/** What the response writer needs from a parsed query. */
export interface QueryShape {
  questionEnd: number;
  edns: boolean;
  dnssecOk: boolean;
}

/** A record set that dns-packet could not encode: the answer becomes a SERVFAIL. */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
  readonly code = 'NETPLANE_DNS_ENCODE';
}

/** Bytes of our OPT record: root owner, type, size, extended rcode, version 0, DO, no options. */
export const optLength = 11;
/** Largest DNS message (the TCP length prefix is 16 bits). */
export const maxMessage = 65535;
const pointerToQuestion = Buffer.from([0xc0, 0x0c]);
const noOptions = Buffer.alloc(0);

/** A record's owner name as the question's lname is written: lower case, no final dot (an escaped `\.` stays). */
function ownerKey(name: string): string {
  let slashes = 0;
  for (let i = name.length - 2; i >= 0 && name[i] === '\\'; i--) slashes++;
  return (name.endsWith('.') && slashes % 2 === 0 ? name.slice(0, -1) : name).toLowerCase();
}

/**
 * Throws EncodeError unless `name` can be written as a well-formed name (RFC 1035 3.1): no empty label, none over 63
 * bytes, at most 255 bytes in all. The labels are cut as codec.ts's name codec cuts them (nameLabels: escapes read).
 */
function checkName(name: string): void {
  let labels: Buffer[];
  try {
    labels = nameLabels(name);
  } catch (e) {
    throw new EncodeError((e as Error).message, { cause: e });
  }
  let wire = 1;
  for (const label of labels) {
    const bytes = label.length;
    if (bytes === 0) throw new EncodeError(`DNS name ${JSON.stringify(name)}: an empty label`);
    if (bytes > 63) throw new EncodeError(`DNS name ${JSON.stringify(name)}: a label of ${bytes} bytes, longer than 63`);
    wire += bytes + 1;
  }
  if (wire > 255) throw new EncodeError(`DNS name ${JSON.stringify(name.slice(0, 40))}...: ${wire} bytes on the wire, longer than 255`);
}

/** The names in a record's data that dns-packet writes, for the types that have them. Throws EncodeError. */
function checkDataNames(rr: ResourceRecord): void {
  const data = (rr as { data?: unknown }).data;
  if (data === undefined || data === null) return;
  const d = data as Record<string, unknown>;
  const str = (v: unknown) => {
    if (typeof v === 'string') checkName(v);
  };
  switch (rr.type) {
    case 'CNAME':
    case 'DNAME':
    case 'PTR':
    case 'NS':
      str(data);
      break;
    case 'SRV':
      str(d.target);
      break;
    case 'MX':
      str(d.exchange);
      break;
    case 'SOA':
      str(d.mname);
      str(d.rname);
      break;
    case 'NAPTR':
      str(d.replacement);
      break;
    case 'RP':
      str(d.mbox);
      str(d.txt);
      break;
    case 'RRSIG':
      str(d.signersName);
      break;
    case 'NSEC':
      str(d.nextDomain);
      break;
  }
}

/** One record; with `pointer` its owner name is written as a pointer to the question. Throws on a name it cannot write. */
function encodeRecord(rr: ResourceRecord, pointer: boolean): Buffer {
  // An owner name written as a pointer is the question's, read from the wire (its escapes are not dns-packet's).
  if (!pointer) checkName(rr.name);
  checkDataNames(rr);
  const name = rr.name === '' ? '.' : rr.name;
  const record = name === rr.name ? rr : ({ ...rr, name } as ResourceRecord);
  const buf = Buffer.alloc(answerCodec.encodingLength(record));
  answerCodec.encode(record, buf, 0);
  const written = buf.subarray(0, answerCodec.encode.bytes);
  if (!pointer) return written;
  return Buffer.concat([pointerToQuestion, written.subarray(nameCodec.encodingLength(name))]);
}

/**
 * Encodes an answer's sections for a question named `qlname` (lower case, no trailing dot). Records owned by the
 * question name get a pointer to it; OPT records from handlers are left out (the server writes its own).
 * Throws EncodeError when dns-packet cannot encode a record.
 */
export function encodeAnswer(answer: DnsAnswer, qlname: string): EncodedAnswer {
  const parts: Buffer[] = [];
  let pointerUsed = false;
  const section = (rrs: readonly ResourceRecord[]) => {
    let count = 0;
    for (const rr of rrs) {
      if (rr.type === 'OPT') continue;
      const pointer = ownerKey(rr.name) === qlname;
      pointerUsed ||= pointer;
      try {
        parts.push(encodeRecord(rr, pointer));
      } catch (e) {
        throw new EncodeError(`cannot encode ${rr.type} record for ${JSON.stringify(rr.name)}: ${(e as Error).message}`, { cause: e });
      }
      count++;
    }
    return count;
  };
  if (!(answer.rcode in rcodeNumbers)) throw new EncodeError(`unknown rcode ${JSON.stringify(answer.rcode)}`);
  const an = section(answer.answers);
  const ns = section(answer.authorities);
  const ar = section(answer.additionals);
  const rcode = rcodeNumbers[answer.rcode];
  return {
    body: Buffer.concat(parts),
    an,
    ns,
    ar,
    pointerName: pointerUsed ? qlname : null,
    flags3: (answer.recursionAvailable ? 0x80 : 0) | (answer.authenticatedData ? 0x20 : 0) | (rcode & 0xf),
    aa: answer.authoritative ? 0x04 : 0,
    rcode,
    options: answer.ednsOptions ?? noOptions,
  };
}

/**
 * Writes our OPT record at `off` (root owner, type 41, our UDP size, then `options` as they are: optLength bytes plus
 * theirs), for responses and upstream queries.
 */
export function writeOpt(out: Buffer, off: number, ourSize: number, extendedRcode: number, dnssecOk: boolean, options?: Buffer): void {
  out[off] = 0;
  out[off + 1] = 0;
  out[off + 2] = 41;
  out[off + 3] = ourSize >> 8;
  out[off + 4] = ourSize & 0xff;
  out[off + 5] = extendedRcode;
  out[off + 6] = 0;
  // RFC 3225 3: the DO bit of the query is copied into the response.
  out[off + 7] = dnssecOk ? 0x80 : 0;
  out[off + 8] = 0;
  const n = options === undefined ? 0 : options.length;
  out[off + 9] = n >> 8;
  out[off + 10] = n & 0xff;
  if (n > 0) options!.copy(out, off + 11);
}

/** Where response bytes are written: Buffer.allocUnsafe, or a sender's reusable scratch memory. */
export interface Allocator {
  alloc(size: number): Buffer;
}
const pooled: Allocator = { alloc: (size) => Buffer.allocUnsafe(size) };

/** Writes the TCP length prefix (when `prefix` is 2) and the query's ID into a response buffer; returns it. */
function frame(out: Buffer, prefix: 0 | 2, size: number, msg: Buffer): Buffer {
  if (prefix) {
    out[0] = size >> 8;
    out[1] = size & 0xff;
  }
  out[prefix] = msg[0]!;
  out[prefix + 1] = msg[1]!;
  return out;
}

/**
 * Writes a response's header for the query `msg` (after the length prefix, if any): its ID; QR, opcode QUERY, AA
 * from the answer, TC when `tc`, RD copied; RA and rcode from the answer, CD copied; one question; the counts.
 */
export function writeHeader(out: Buffer, prefix: 0 | 2, size: number, msg: Buffer, enc: EncodedAnswer, an: number, ns: number, ar: number, tc: boolean): void {
  frame(out, prefix, size, msg);
  const h = prefix;
  out[h + 2] = 0x80 | enc.aa | (tc ? 0x02 : 0) | (msg[2]! & 0x01);
  out[h + 3] = enc.flags3 | (msg[3]! & 0x10);
  out[h + 4] = 0;
  out[h + 5] = 1;
  out[h + 6] = an >> 8;
  out[h + 7] = an & 0xff;
  out[h + 8] = ns >> 8;
  out[h + 9] = ns & 0xff;
  out[h + 10] = ar >> 8;
  out[h + 11] = ar & 0xff;
}

/**
 * Builds the response to `msg` (whose parse is `q`) from an encoded answer. When the response exceeds `limit`, it is
 * written compressed with the records that fit (truncate.ts: extras dropped first, TC once answers must go).
 * `prefix` is 2 for TCP (the length is written in front), 0 for UDP. Every byte of the returned buffer is written.
 */
export function buildResponse(msg: Buffer, q: QueryShape, enc: EncodedAnswer, limit: number, ourSize: number, prefix: 0 | 2, into: Allocator = pooled): Buffer {
  const qend = q.questionEnd;
  // An extended rcode (an upstream's BADVERS or BADCOOKIE) needs an OPT record for its upper bits: without one its
  // low bits would read NOERROR, so a client that sent none gets SERVFAIL.
  if (enc.rcode > 15 && !q.edns) enc = { ...enc, flags3: (enc.flags3 & 0xf0) | 2, rcode: 2 };
  // Relayed options that leave no room for the question and our OPT record under the limit are left out.
  if (enc.options.length > 0 && q.edns && qend + optLength + enc.options.length > Math.min(limit, maxMessage)) enc = { ...enc, options: noOptions };
  const optLen = q.edns ? optLength + enc.options.length : 0;
  const size = qend + enc.body.length + optLen;
  if (size > limit || size > maxMessage) {
    return buildFitted(msg, q, enc, Math.min(limit, maxMessage), optLen, prefix, into, (out, off) => writeOpt(out, off, ourSize, enc.rcode >> 4, q.dnssecOk, enc.options));
  }
  const out = into.alloc(prefix + size);
  const h = prefix;
  writeHeader(out, prefix, size, msg, enc, enc.an, enc.ns, enc.ar + (q.edns ? 1 : 0), false);
  let off = h + 12;
  for (let i = 12; i < qend; i++) out[off++] = msg[i]!;
  const body = enc.body;
  const n = body.length;
  // Buffer.copy has a fixed cost that outweighs a byte loop for the usual few dozen bytes.
  if (n > 64) {
    body.copy(out, off);
    off += n;
  } else for (let i = 0; i < n; i++) out[off++] = body[i]!;
  if (q.edns) writeOpt(out, off, ourSize, enc.rcode >> 4, q.dnssecOk, enc.options);
  return out;
}

/** What an error response needs: the rcode and whether the question and an OPT record are echoed. */
export interface ErrorShape {
  rcode: keyof typeof rcodeNumbers;
  question?: { end: number };
  edns: boolean;
  dnssecOk: boolean;
}

/**
 * Builds an error response (FORMERR, NOTIMP, BADVERS, ...) to a message with a readable header: ID, opcode, RD and
 * CD copied; the question only when it was readable; an OPT record (carrying the upper rcode bits) when asked.
 */
export function buildError(msg: Buffer, e: ErrorShape, ourSize: number, prefix: 0 | 2): Buffer {
  const rcode = rcodeNumbers[e.rcode];
  const qend = e.question ? e.question.end : 12;
  const size = qend + (e.edns ? optLength : 0);
  const out = frame(Buffer.alloc(prefix + size), prefix, size, msg);
  const h = prefix;
  out[h + 2] = 0x80 | (msg[2]! & 0x79);
  out[h + 3] = (rcode & 0xf) | (msg[3]! & 0x10);
  out[h + 5] = e.question ? 1 : 0;
  out[h + 11] = e.edns ? 1 : 0;
  if (e.question) msg.copy(out, h + 12, 12, qend);
  if (e.edns) writeOpt(out, h + qend, ourSize, rcode >> 4, e.dnssecOk);
  return out;
}

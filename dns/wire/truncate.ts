// Fitting a response that is too big for its limit, as miekg/dns's Msg.Truncate does for CoreDNS: only then are
// names compressed (RFC 1035 4.1.4), and the records are written in order while they fit. Additional records that
// do not fit are left out without TC (RFC 2181 9: TC is for data the client needs, not for extras); once an answer
// or authority record is left out, TC is set and nothing after it is written.
import { writeHeader, type Allocator, type EncodedAnswer, type QueryShape } from './response.ts';

/** Largest offset a compression pointer can hold (14 bits). */
const maxPointerTarget = 0x3fff;

/** How a type's RDATA holds names (RFC 1035 3.3; RFC 3597 4 freezes the list of compressible types). */
type RdataNames = 'whole' | 'mx' | 'soa' | 'srv';
const rdataNames = new Map<number, RdataNames>([
  // NS, CNAME, PTR: the whole RDATA is one name.
  [2, 'whole'],
  [5, 'whole'],
  [12, 'whole'],
  // A 16-bit preference, then a name.
  [15, 'mx'],
  // Two names, then 20 bytes.
  [6, 'soa'],
  // 6 bytes, then a name that must not be compressed (RFC 2782), though later names may point to it.
  [33, 'srv'],
]);

/** Where a name's labels are read from: the encoded body, or the query (an owner written as a pointer to it). */
interface Cursor {
  src: Buffer;
  at: number;
}

/** Names written so far, by their wire labels with ASCII folded to lower case, and the offset they start at. */
class Names {
  readonly #at = new Map<string, number>();
  readonly #msg: Buffer;

  constructor(msg: Buffer) {
    this.#msg = msg;
  }

  /** Follows a pointer at `c` (an encoded answer points only into the question) in place; false when none. */
  follow(c: Cursor): boolean {
    const l = c.src[c.at]!;
    if (l < 0xc0) return false;
    c.at = ((l & 0x3f) << 8) | c.src[c.at + 1]!;
    c.src = this.#msg;
    return true;
  }

  /** The key of the name at `c` (not moved). */
  key(from: Cursor): string {
    const c = { ...from };
    let key = '';
    for (;;) {
      if (this.follow(c)) continue;
      const l = c.src[c.at]!;
      key += String.fromCharCode(l);
      if (l === 0) return key;
      for (let i = c.at + 1; i <= c.at + l; i++) {
        const b = c.src[i]!;
        key += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b | 0x20 : b);
      }
      c.at += l + 1;
    }
  }

  offsetOf(key: string): number | undefined {
    return this.#at.get(key);
  }

  add(key: string, offset: number): void {
    if (offset <= maxPointerTarget && !this.#at.has(key)) this.#at.set(key, offset);
  }
}

/**
 * Writes the name at `from` into `out` at `off` (`base` is where the message starts in `out`), as a pointer to the
 * longest suffix already written when `compress`, and remembers its suffixes for later names. Returns the new offset.
 */
function writeName(names: Names, from: Cursor, out: Buffer, off: number, base: number, compress: boolean): number {
  const c = { ...from };
  for (;;) {
    if (names.follow(c)) continue;
    const l = c.src[c.at]!;
    if (l === 0) {
      out[off++] = 0;
      return off;
    }
    const key = names.key(c);
    const known = compress ? names.offsetOf(key) : undefined;
    if (known !== undefined) {
      out[off++] = 0xc0 | (known >> 8);
      out[off++] = known & 0xff;
      return off;
    }
    names.add(key, off - base);
    c.src.copy(out, off, c.at, c.at + l + 1);
    off += l + 1;
    c.at += l + 1;
  }
}

/** Length of the name at `at` in an encoded body (labels and a zero, or labels and a pointer). */
function nameLength(body: Buffer, at: number): number {
  let i = at;
  for (;;) {
    const l = body[i]!;
    if (l === 0) return i + 1 - at;
    if (l >= 0xc0) return i + 2 - at;
    i += l + 1;
  }
}

/**
 * Writes one record of the body, starting at `rec`, compressed, at `off`; returns the new offset and where the next
 * record starts in the body. `out` must have room for the record uncompressed.
 */
function writeRecord(names: Names, body: Buffer, rec: number, out: Buffer, off: number, base: number): { off: number; next: number } {
  off = writeName(names, { src: body, at: rec }, out, off, base, true);
  let at = rec + nameLength(body, rec);
  const type = (body[at]! << 8) | body[at + 1]!;
  const rdlen = (body[at + 8]! << 8) | body[at + 9]!;
  body.copy(out, off, at, at + 8);
  const rdlenAt = off + 8;
  off += 10;
  at += 10;
  const rdEnd = at + rdlen;
  const kind = rdataNames.get(type);
  const rdStart = off;
  if (kind === undefined) {
    body.copy(out, off, at, rdEnd);
    off += rdlen;
  } else {
    const fixed = kind === 'mx' ? 2 : kind === 'srv' ? 6 : 0;
    body.copy(out, off, at, at + fixed);
    off += fixed;
    // RDATA names in an encoded body are written in full (dns-packet does not compress).
    let name = at + fixed;
    off = writeName(names, { src: body, at: name }, out, off, base, kind !== 'srv');
    if (kind === 'soa') {
      name += nameLength(body, name);
      off = writeName(names, { src: body, at: name }, out, off, base, true);
      name += nameLength(body, name);
      body.copy(out, off, name, rdEnd);
      off += rdEnd - name;
    }
  }
  const written = off - rdStart;
  out[rdlenAt] = written >> 8;
  out[rdlenAt + 1] = written & 0xff;
  return { off, next: rdEnd };
}

/** Where a record is written before it is known to fit (one message at a time: the server is single-threaded). */
const scratch = Buffer.alloc(2 * 65536 + 512);

/** Counts and flags of a fitted response. */
interface Fitted {
  size: number;
  an: number;
  ns: number;
  ar: number;
  tc: boolean;
}

/**
 * Writes header space, question and as many records of `enc` as fit in `limit` bytes (OPT included) into `out`
 * from `base`; the caller writes the header fields and the OPT record.
 */
function fit(msg: Buffer, q: QueryShape, enc: EncodedAnswer, limit: number, optLen: number, out: Buffer, base: number): Fitted {
  const names = new Names(msg);
  // The question's suffixes can be pointed to; it is copied from the query as it came.
  for (let at = 12; msg[at]! !== 0 && at <= maxPointerTarget; at += msg[at]! + 1) names.add(names.key({ src: msg, at }), at);
  msg.copy(out, base + 12, 12, q.questionEnd);
  let off = base + q.questionEnd;
  const counts = [0, 0, 0];
  const total = enc.an + enc.ns + enc.ar;
  const body = enc.body;
  let rec = 0;
  for (let i = 0; i < total; i++) {
    const section = i < enc.an ? 0 : i < enc.an + enc.ns ? 1 : 2;
    // Written to scratch first at the same offset (pointers depend on it), copied when it fits.
    const start = off - base;
    const r = writeRecord(names, body, rec, scratch, start, 0);
    const len = r.off - start;
    if (start + len + optLen > limit) break;
    scratch.copy(out, off, start, r.off);
    off += len;
    rec = r.next;
    counts[section]!++;
  }
  const [an = 0, ns = 0, ar = 0] = counts;
  return { size: off - base, an, ns, ar, tc: an < enc.an || ns < enc.ns };
}

/**
 * The response to `msg` from `enc` when it does not fit `limit` as encoded: names compressed, records kept in order
 * while they fit, TC set when an answer or authority record had to go. Same framing and header rules as
 * buildResponse; the OPT record is written by `writeOpt` at the offset given.
 */
export function buildFitted(
  msg: Buffer,
  q: QueryShape,
  enc: EncodedAnswer,
  limit: number,
  optLen: number,
  prefix: 0 | 2,
  into: Allocator,
  writeOpt: (out: Buffer, off: number) => void,
): Buffer {
  const out = into.alloc(prefix + limit);
  const f = fit(msg, q, enc, limit, optLen, out, prefix);
  const size = f.size + optLen;
  writeHeader(out, prefix, size, msg, enc, f.an, f.ns, f.ar + (optLen > 0 ? 1 : 0), f.tc);
  if (optLen > 0) writeOpt(out, prefix + f.size);
  return out.subarray(0, prefix + size);
}

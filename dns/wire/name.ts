// Names in presentation form (RFC 1035 5.1, RFC 4343 2.1), as dig and CoreDNS print them: labels holding dots,
// backslashes or bytes outside printable ASCII are written with `\.`, `\\` and `\DDD`, so every wire name has one
// text form and back. dns-packet's own codec splits at every dot and reads and writes labels as UTF-8, so `a\.b` would
// become the labels `a\` and `b` and the byte 0xe9 the three bytes of U+FFFD: codec.ts puts these functions in its
// place.
import { maxNameWireLength } from './query.ts';

/** A name that cannot be written on the wire; the message names the name and what is wrong. */
export class NameError extends Error {
  override readonly name = 'NameError';
  readonly code = 'NETPLANE_DNS_NAME';
}

/**
 * The labels of a name in presentation form ("" or "." is the root; one final unescaped dot is dropped), each as its
 * bytes: `\DDD` is that byte, `\X` is X, a character outside ASCII its UTF-8 bytes. Lengths are not checked here (an
 * empty label is an empty Buffer). Throws NameError for a lone final backslash or a `\DDD` above 255.
 */
export function nameLabels(name: string): Buffer[] {
  const end = name.endsWith('.') && !escapedAt(name, name.length - 1) ? name.length - 1 : name.length;
  const labels: Buffer[] = [];
  if (end === 0) return labels;
  let bytes: number[] = [];
  for (let i = 0; i < end; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      labels.push(Buffer.from(bytes));
      bytes = [];
    } else if (c === 0x5c) {
      const d = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (d) {
        const v = Number(d[0]);
        if (v > 255) throw new NameError(`DNS name ${JSON.stringify(name)}: \\${d[0]} is not a byte`);
        bytes.push(v);
        i += 3;
      } else if (i + 1 < name.length) {
        bytes.push(name.charCodeAt(++i) & 0xff);
      } else throw new NameError(`DNS name ${JSON.stringify(name)}: it ends in a lone backslash`);
    } else if (c > 0x7f) {
      // A byte outside ASCII is written \DDD (wireToName writes it so); a character there is text, written as UTF-8.
      const ch = String.fromCodePoint(name.codePointAt(i)!);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length - 1;
    } else bytes.push(c);
  }
  labels.push(Buffer.from(bytes));
  return labels;
}

/** The wire labels of a name in presentation form (see nameLabels), ending in the root label. Throws NameError. */
export function nameToWire(name: string): Buffer {
  const fail = (what: string) => new NameError(`DNS name ${JSON.stringify(name)}: ${what}`);
  const labels = nameLabels(name);
  let size = 1;
  for (const l of labels) {
    if (l.length === 0) throw fail('an empty label');
    if (l.length > 63) throw fail('a label is longer than 63 bytes');
    size += l.length + 1;
  }
  if (size > maxNameWireLength) throw fail(`longer than ${maxNameWireLength} bytes on the wire`);
  const out = Buffer.alloc(size);
  let off = 0;
  for (const l of labels) {
    out[off++] = l.length;
    l.copy(out, off);
    off += l.length;
  }
  out[off] = 0;
  return out;
}

/**
 * The presentation form of the name at `offset` of a message (no trailing dot, "" for the root) and the bytes it
 * takes there, following compression pointers to earlier bytes only (RFC 1035 4.1.4), as dns-packet's decoder does.
 * Throws NameError for an offset that is no byte of the message, a name that runs past it, a pointer that does not
 * point back, a reserved label type or a name over 255 bytes.
 */
export function wireToName(msg: Buffer, offset: number): { name: string; bytes: number } {
  let out = '';
  let at = offset;
  let bytes = -1;
  let floor = offset;
  let total = 1;
  const fail = (what: string) => new NameError(`DNS name at byte ${offset}: ${what}`);
  // dns-packet's record decoders hand on offsets they computed from the data read: past a short record's end, NaN.
  if (!Number.isInteger(offset) || offset < 0) throw fail('runs past the end of the message');
  for (;;) {
    if (at >= msg.length) throw fail('runs past the end of the message');
    const l = msg[at]!;
    if (l === 0) {
      if (bytes < 0) bytes = at + 1 - offset;
      return { name: out, bytes };
    }
    if (l >= 0xc0) {
      if (at + 1 >= msg.length) throw fail('runs past the end of the message');
      const to = ((l & 0x3f) << 8) | msg[at + 1]!;
      if (to >= floor) throw fail('a compression pointer that does not point back');
      if (bytes < 0) bytes = at + 2 - offset;
      at = floor = to;
      continue;
    }
    if (l > 63) throw fail('a reserved label type');
    if (at + 1 + l > msg.length) throw fail('runs past the end of the message');
    total += l + 1;
    if (total > maxNameWireLength) throw fail(`longer than ${maxNameWireLength} bytes`);
    if (out !== '') out += '.';
    out += escapeLabel(msg, at + 1, at + 1 + l);
    at += l + 1;
  }
}

/** One label's bytes [start, end) in presentation form: `\.` and `\\` for dot and backslash, `\DDD` outside 0x21-0x7e. */
export function escapeLabel(msg: Buffer, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = msg[i]!;
    if (c === 0x2e || c === 0x5c) out += `\\${String.fromCharCode(c)}`;
    else if (c < 0x21 || c > 0x7e) out += `\\${String(c).padStart(3, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}

/**
 * Whether the name `lname` (presentation form, lower case, no trailing dot) is `domain` or below it, by whole labels:
 * the dot before `domain` must be a label boundary, not an escaped dot inside a label (`a\.cluster.local` has the
 * labels `a.cluster` and `local`), as CoreDNS's dns.IsSubDomain compares them.
 */
export function inDomain(lname: string, domain: string): boolean {
  if (lname === domain) return true;
  const cut = lname.length - domain.length - 1;
  return cut > 0 && lname.charCodeAt(cut) === 0x2e && lname.endsWith(domain) && !escapedAt(lname, cut);
}

/** Whether the character at `i` is escaped: preceded by an odd number of backslashes. */
export function escapedAt(text: string, i: number): boolean {
  let n = 0;
  for (let j = i - 1; j >= 0 && text.charCodeAt(j) === 0x5c; j--) n++;
  return n % 2 === 1;
}

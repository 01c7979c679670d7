// Names in presentation form (RFC 1035 5.1, RFC 4343 2.1), as wire/query.ts writes them for labels holding dots,
// backslashes or bytes outside printable ASCII: `\.`, `\\` and `\DDD`. dns-packet's encoder splits at every dot and
// writes the rest as UTF-8, so `a\.b` would become the labels `a\` and `b`.
import { maxNameWireLength } from './query.ts';

/** A name that cannot be written on the wire; the message names the name and what is wrong. */
export class NameError extends Error {
  override readonly name = 'NameError';
  readonly code = 'NETPLANE_DNS_NAME';
}

/** The wire labels of a name in presentation form ("" or "." is the root), ending in the root label. Throws NameError. */
export function nameToWire(name: string): Buffer {
  const out = Buffer.alloc(maxNameWireLength + 64);
  let off = 0;
  let lenAt = 0;
  let label = 0;
  const fail = (what: string) => new NameError(`DNS name ${JSON.stringify(name)}: ${what}`);
  const put = (b: number) => {
    if (label === 63) throw fail('a label is longer than 63 bytes');
    if (label === 0) {
      lenAt = off++;
    }
    out[off++] = b;
    out[lenAt] = ++label;
    if (off + 1 > maxNameWireLength) throw fail(`longer than ${maxNameWireLength} bytes on the wire`);
  };
  const end = name.endsWith('.') && !name.endsWith('\\.') ? name.length - 1 : name.length;
  for (let i = 0; i < end; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (label === 0) throw fail('an empty label');
      label = 0;
    } else if (c === 0x5c) {
      const d = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (d) {
        const v = Number(d[0]);
        if (v > 255) throw fail(`\\${d[0]} is not a byte`);
        put(v);
        i += 3;
      } else if (i + 1 < name.length) {
        put(name.charCodeAt(++i));
      } else throw fail('it ends in a lone backslash');
    } else if (c > 0xff) {
      // Presentation form is bytes; characters above U+00FF are written as their UTF-8 bytes.
      for (const b of Buffer.from(name[i]!, 'utf8')) put(b);
    } else put(c);
  }
  out[off++] = 0;
  return Buffer.from(out.subarray(0, off));
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

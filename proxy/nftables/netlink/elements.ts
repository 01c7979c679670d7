// Set elements as the kernel stores them, from the text the renderer writes (`10.96.0.1 . tcp . 80 . 0`,
// `10.244.1.2 . 8080`, `goto cluster-lb-3`). Pure. Only the sets whose declaration is understood here get a codec:
// a plain (non-interval, non-dynamic) set or map whose key and value are concatenations of addresses, protocols,
// ports, marks and 32-bit numbers, or a verdict value. Everything else stays with nft.
//
// nft's layout (checked against nft 1.0.6 by test/proxy/nftables/netlink.test.ts): a lone field takes its own
// size (a protocol 1 byte, a port 2); in a concatenation each field takes a whole number of 32-bit registers,
// zero-padded after its bytes. Addresses and ports are in network byte order, `meta l4proto` is one byte, marks
// and `numgen` results are 32-bit integers in host byte order.
import { endianness } from 'node:os';
import { formatIp, parseIp } from '../../../overlay/kernel/addr.ts';

/** The kind of one field of a concatenation. */
type Field = 'ipv4' | 'ipv6' | 'proto' | 'port' | 'u32';

/** Bytes of a field in a concatenation; alone, a protocol takes 1 and a port 2. */
const fieldBytes: Record<Field, number> = { ipv4: 4, ipv6: 16, proto: 4, port: 4, u32: 4 };
const loneBytes: Record<Field, number> = { ipv4: 4, ipv6: 16, proto: 1, port: 2, u32: 4 };
const length = (fields: readonly Field[]) => (fields.length === 1 ? loneBytes[fields[0]!] : fields.reduce((n, f) => n + fieldBytes[f], 0));
const typeFields: Record<string, Field> = { ipv4_addr: 'ipv4', ipv6_addr: 'ipv6', inet_proto: 'proto', inet_service: 'port', mark: 'u32' };
const typeofFields: Array<[RegExp, Field]> = [
  [/^ip (?:s|d)addr$/, 'ipv4'],
  [/^ip6 (?:s|d)addr$/, 'ipv6'],
  [/^meta l4proto$/, 'proto'],
  [/^th (?:s|d)port$/, 'port'],
  [/^meta mark$/, 'u32'],
  [/^numgen random mod \d+$/, 'u32'],
];
const protocols: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };
const protocolNames: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
const LE = endianness() === 'LE';

/** The kernel's verdict codes (include/uapi/linux/netfilter{,/nf_tables}.h). */
export const verdictCodes = { drop: 0, accept: 1, continue: -1, jump: -3, goto: -4, return: -5 } as const;

/** A verdict: its code and, for jump and goto, the chain. */
export interface Verdict {
  code: number;
  chain?: string;
}

/** Encodes one set's elements; `key` and `value` throw ElementTextError on text that does not fit the set. */
export interface ElementCodec {
  /** Bytes of a key. */
  keyLength: number;
  /** Writes a key's bytes at `off` (keyLength of them, zero-filled beforehand). */
  key(text: string, out: Buffer, off: number): void;
  /** A key's text from its bytes, as nft lists it (kernel.ts); throws ElementTextError for bytes of another length. */
  keyText(bytes: Buffer): string;
  /**
   * A map's values: bytes (valueLength of them, written as keys are), or verdicts (`goto x`, `jump x`, `drop`,
   * `accept`, `return`, `continue`); undefined for a set.
   */
  data: { kind: 'bytes'; length: number; write(text: string, out: Buffer, off: number): void; text(bytes: Buffer): string } | { kind: 'verdict' } | undefined;
}

/** Element text a codec could not read: the transaction goes to nft instead, which says what is wrong. */
export class ElementTextError extends Error {
  override readonly name = 'ElementTextError';
}

/**
 * The codec of a set declared with `spec` (the renderer's text between the braces), or undefined when the set is
 * not one this module encodes (flags, a timeout or size, an unknown type or expression).
 */
export function elementCodec(spec: string): ElementCodec | undefined {
  const decl = /^(type|typeof) ([^;:]+?)(?: : ([^;]+?))?;$/.exec(spec.trim());
  if (!decl) return undefined;
  const fields = (text: string): Field[] | undefined => {
    const out: Field[] = [];
    for (const part of text.split(' . ')) {
      const f = decl[1] === 'type' ? typeFields[part.trim()] : typeofFields.find(([re]) => re.test(part.trim()))?.[1];
      if (!f) return undefined;
      out.push(f);
    }
    return out;
  };
  const keyFields = fields(decl[2]!);
  if (!keyFields) return undefined;
  const keyLength = length(keyFields);
  const key = (text: string, out: Buffer, off: number) => concat(keyFields, text, out, off);
  const keyText = (bytes: Buffer) => split(keyFields, keyLength, bytes);
  if (decl[3] === undefined) return { keyLength, key, keyText, data: undefined };
  if (decl[1] === 'type' && decl[3].trim() === 'verdict') return { keyLength, key, keyText, data: { kind: 'verdict' } };
  const valueFields = fields(decl[3]);
  if (!valueFields) return undefined;
  const valueLength = length(valueFields);
  const data = { kind: 'bytes' as const, length: valueLength, write: (text: string, out: Buffer, off: number) => concat(valueFields, text, out, off), text: (bytes: Buffer) => split(valueFields, valueLength, bytes) };
  return { keyLength, key, keyText, data };
}

/** Verdict names by code, for reading them back. */
const verdictNames = new Map<number, string>(Object.entries(verdictCodes).map(([name, code]) => [code, name]));

/** A verdict's text as nft lists it. */
export function verdictText(v: Verdict): string {
  const name = verdictNames.get(v.code);
  if (name !== undefined && (name === 'goto' || name === 'jump') === (v.chain !== undefined)) return v.chain === undefined ? name : `${name} ${v.chain}`;
  throw new ElementTextError(`verdict ${v.code}${v.chain ? ` ${v.chain}` : ''} is not one netplane writes`);
}

/** The text of the fields in `bytes`, joined by ' . ', as nft lists them. */
function split(fields: readonly Field[], total: number, bytes: Buffer): string {
  if (bytes.length !== total) throw new ElementTextError(`an element of ${bytes.length} bytes where the set has ${total}`);
  const parts: string[] = [];
  let off = 0;
  for (const f of fields) {
    switch (f) {
      case 'ipv4':
        parts.push(`${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`);
        break;
      case 'ipv6':
        parts.push(formatIp(bytes.subarray(off, off + 16)));
        break;
      case 'proto':
        parts.push(protocolNames[bytes[off]!] ?? String(bytes[off]));
        break;
      case 'port':
        parts.push(String((bytes[off]! << 8) | bytes[off + 1]!));
        break;
      case 'u32':
        parts.push(String(LE ? bytes.readUInt32LE(off) : bytes.readUInt32BE(off)));
    }
    off += fields.length === 1 ? loneBytes[f] : fieldBytes[f];
  }
  return parts.join(' . ');
}

/** A verdict map's value. */
export function verdict(text: string): Verdict {
  const m = /^(goto|jump) ([a-z][a-z0-9-]*)$/.exec(text);
  if (m) return { code: verdictCodes[m[1] as 'goto' | 'jump'], chain: m[2] };
  if (text === 'drop' || text === 'accept' || text === 'continue' || text === 'return') return { code: verdictCodes[text] };
  throw new ElementTextError(`"${text}" is not a verdict`);
}

/** Writes the fields of `text` (joined by ' . ') at `off` of a zero-filled `out`. */
function concat(fields: readonly Field[], text: string, out: Buffer, off: number): void {
  let from = 0;
  for (let i = 0; i < fields.length; i++) {
    const next = text.indexOf(' . ', from);
    const last = i === fields.length - 1;
    if (last ? next >= 0 : next < 0) throw new ElementTextError(`"${text}" does not have the set's ${fields.length} fields`);
    const to = last ? text.length : next;
    writeField(fields[i]!, text, from, to, out, off);
    off += fieldBytes[fields[i]!];
    from = to + 3;
  }
}

/** Writes the field text[from, to) at off. */
function writeField(field: Field, text: string, from: number, to: number, out: Buffer, off: number): void {
  switch (field) {
    case 'ipv4':
      if (!writeIPv4(text, from, to, out, off)) throw new ElementTextError(`"${text.slice(from, to)}" is not an IPv4 address`);
      return;
    case 'ipv6': {
      const t = text.slice(from, to);
      const b = t.includes(':') ? parseIp(t) : undefined;
      if (!b) throw new ElementTextError(`"${t}" is not an IPv6 address`);
      out.set(b, off);
      return;
    }
    case 'proto': {
      const t = text.slice(from, to);
      out[off] = protocols[t] ?? integer(t, 0, t.length, 255);
      return;
    }
    case 'port': {
      const v = integer(text, from, to, 0xffff);
      out[off] = v >> 8;
      out[off + 1] = v & 255;
      return;
    }
    case 'u32': {
      const v = integer(text, from, to, 0xffffffff);
      if (LE) out.writeUInt32LE(v, off);
      else out.writeUInt32BE(v, off);
    }
  }
}

/** The decimal or 0x-hexadecimal integer text[from, to), at most max. */
function integer(text: string, from: number, to: number, max: number): number {
  let v = 0;
  const hex = to - from > 2 && text.charCodeAt(from) === 48 && (text.charCodeAt(from + 1) | 32) === 120;
  if (to <= from) throw new ElementTextError('an empty number');
  for (let i = hex ? from + 2 : from; i < to; i++) {
    const c = text.charCodeAt(i) | (hex ? 32 : 0);
    const d = c >= 48 && c <= 57 ? c - 48 : hex && c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) throw new ElementTextError(`"${text.slice(from, to)}" is not a number`);
    v = v * (hex ? 16 : 10) + d;
    if (v > max) throw new ElementTextError(`${text.slice(from, to)} is out of range (at most ${max})`);
  }
  return v;
}

/** Dotted-quad text[from, to) into out at off, by hand: 200,000 of them per initial load. False when it is not one. */
function writeIPv4(text: string, from: number, to: number, out: Buffer, off: number): boolean {
  let octet = 0;
  let digits = 0;
  let index = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || index > 3) return false;
      out[off + index++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      if (digits > 0 && octet === 0) return false; // a leading zero
      octet = octet * 10 + c - 48;
      if (octet > 255) return false;
      digits++;
    } else return false;
  }
  return index === 4;
}

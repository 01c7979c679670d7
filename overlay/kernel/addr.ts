// Text ↔ bytes for the addresses that cross rtnetlink: IPv4/IPv6 (printed the way glibc's inet_ntop and `ip`
// print them), MACs and CIDRs. Pure; every parser returns undefined for text it does not accept.
import { isIPv4, isIPv6 } from 'node:net';

/** The 4 or 16 bytes of an IP address, or undefined when the text is not one. */
export function parseIp(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text)) return undefined;
  let head = text;
  const tail: number[] = [];
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    head = text.slice(0, lastColon + 1) + '0:0';
    tail.push(...v4);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const l = groups(left);
  const r = groups(right);
  const words = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  return out;
}

/** The text of 4 or 16 address bytes: dotted IPv4, or IPv6 compressed as inet_ntop does (RFC 5952). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const b = Buffer.from(bytes);
  const words = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // The longest run of two or more zero words is compressed; the first one wins a tie.
  let best = { base: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len && j - i > 1) best = { base: i, len: j - i };
    i = j;
  }
  // inet_ntop prints the IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms with a dotted tail.
  const dottedTail = best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff));
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (i === best.base) {
      parts.push(i === 0 ? ':' : '');
      i += best.len - 1;
      if (i === 7) parts.push('');
      continue;
    }
    if (dottedTail && i === 6) {
      parts.push(`${b[12]}.${b[13]}.${b[14]}.${b[15]}`);
      break;
    }
    parts.push((words[i] ?? 0).toString(16));
  }
  return parts.join(':');
}

/** The canonical text of an IP address, or undefined when the text is not one. */
export function canonicalIp(text: string): string | undefined {
  const bytes = parseIp(text);
  return bytes && formatIp(bytes);
}

/** The 6 bytes of a MAC written `aa:bb:cc:dd:ee:ff` (either case), or undefined. */
export function parseMac(text: string): Buffer | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return undefined;
  return Buffer.from(text.replaceAll(':', ''), 'hex');
}

/** The lower-case `aa:bb:cc:dd:ee:ff` text of MAC bytes. */
export function formatMac(bytes: Uint8Array | readonly number[]): string {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** A parsed `ip/prefixLength`. */
export interface Cidr {
  ip: Buffer;
  prefixLength: number;
}

/** Parses `ip/prefixLength` (the length within 0..32 or 0..128), or undefined. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  return prefixLength <= ip.length * 8 ? { ip, prefixLength } : undefined;
}

/** Whether bits past the prefix length are set (the kernel rejects such an IPv4 route destination). */
export function hasHostBits(cidr: Cidr): boolean {
  for (let bit = cidr.prefixLength; bit < cidr.ip.length * 8; bit++) {
    if (cidr.ip.readUInt8(bit >> 3) & (0x80 >> (bit & 7))) return true;
  }
  return false;
}

/** Whether `ip` lies inside `cidr` (same family). */
export function contains(cidr: Cidr, ip: Buffer): boolean {
  if (ip.length !== cidr.ip.length) return false;
  for (let bit = 0; bit < cidr.prefixLength; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((cidr.ip.readUInt8(bit >> 3) & mask) !== (ip.readUInt8(bit >> 3) & mask)) return false;
  }
  return true;
}

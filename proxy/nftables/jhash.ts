// The kernel's jhash (Bob Jenkins' lookup3, include/linux/jhash.h) as nft's `jhash ... mod M seed S` computes it
// over its source registers, so that the control plane can tell which Service an IPv6 ClientIP affinity entry
// belongs to: the entry's key carries a hash of the Service's address, protocol and port (layout.ts). In the
// registers every field of a concatenation is padded to 4 bytes with zeros (a protocol is 1 byte + 3, a port 2 + 2),
// and nft passes the padded length. A kernel test checks these values against entries the kernel recorded.
import { parseIPv6 } from './model.ts';

const rol = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
const u32le = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

/** jhash(key, length, initval) of the kernel. */
export function jhash(key: Uint8Array, seed: number): number {
  let len = key.length;
  let a = (0xdeadbeef + len + seed) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  while (len > 12) {
    a = (a + u32le(key, k)) >>> 0;
    b = (b + u32le(key, k + 4)) >>> 0;
    c = (c + u32le(key, k + 8)) >>> 0;
    a = ((a - c) ^ rol(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = ((b - a) ^ rol(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = ((c - b) ^ rol(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = ((a - c) ^ rol(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = ((b - a) ^ rol(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = ((c - b) ^ rol(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    len -= 12;
    k += 12;
  }
  if (len === 0) return c;
  // The last 1..12 bytes, little-endian within each word; missing bytes count as zero.
  const tail = new Uint8Array(12);
  tail.set(key.subarray(k, k + len));
  a = (a + u32le(tail, 0)) >>> 0;
  b = (b + u32le(tail, 4)) >>> 0;
  c = (c + u32le(tail, 8)) >>> 0;
  c = ((c ^ b) - rol(b, 14)) >>> 0;
  a = ((a ^ c) - rol(c, 11)) >>> 0;
  b = ((b ^ a) - rol(a, 25)) >>> 0;
  c = ((c ^ b) - rol(b, 16)) >>> 0;
  a = ((a ^ c) - rol(c, 4)) >>> 0;
  b = ((b ^ a) - rol(a, 14)) >>> 0;
  c = ((c ^ b) - rol(b, 24)) >>> 0;
  return c;
}

/** The modulus netplane's hashes use: the whole 32-bit range but one value. */
export const hashModulus = 4294967295;

/** nft's `jhash <fields> mod M seed S`: the kernel scales the hash into [0, M) with reciprocal_scale. */
export function nftJhash(key: Uint8Array, seed: number, modulus = hashModulus): number {
  return Number((BigInt(jhash(key, seed)) * BigInt(modulus)) >> 32n);
}

const protocols: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** The registers of `meta l4proto . th dport`: the protocol number and the port, each padded to 4 bytes. */
function protoPort(protocol: string, port: number): number[] {
  const p = protocols[protocol.toLowerCase()];
  if (p === undefined) throw new Error(`unknown protocol ${protocol}`);
  return [p, 0, 0, 0, (port >> 8) & 0xff, port & 0xff, 0, 0];
}

/** The registers of `ip6 daddr . meta l4proto . th dport` for a Service address. */
export function addressKeyBytes(address: string, protocol: string, port: number): Uint8Array {
  const bytes = parseIPv6(address).flatMap((g) => [g >> 8, g & 0xff]);
  return new Uint8Array([...bytes, ...protoPort(protocol, port)]);
}

/** The registers of `meta l4proto . th dport` for a NodePort. */
export const nodePortKeyBytes = (protocol: string, port: number): Uint8Array => new Uint8Array(protoPort(protocol, port));

// EDNS Client Subnet options (RFC 7871 §6) for the forwarder's tests, written from a prefix as dig +subnet takes it.
import { isIPv4 } from 'node:net';
import { querySubnet, type ClientSubnet } from '../../../dns/forward/subnet.ts';

/** The 4 or 16 bytes of an IPv4 or IPv6 address. */
function addressBytes(ip: string): number[] {
  if (isIPv4(ip)) return ip.split('.').map(Number);
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/**
 * The whole ECS option (code 8, length, FAMILY, SOURCE, SCOPE, ADDRESS) for `prefix` ("10.1.1.0/24", "2001:db8::/48"):
 * the address truncated to ceil(SOURCE / 8) bytes, bits past SOURCE cleared, as RFC 7871 §6 asks.
 */
export function ecsOption(prefix: string, scope = 0): Buffer {
  const [ip, len] = prefix.split('/') as [string, string];
  const source = Number(len);
  const bytes = addressBytes(ip).slice(0, Math.ceil(source / 8));
  if (source % 8 !== 0) bytes[bytes.length - 1]! &= 0xff << (8 - (source % 8));
  const data = [0, isIPv4(ip) ? 1 : 2, source, scope, ...bytes];
  return Buffer.from([0, 8, 0, data.length, ...data]);
}

/** The checked client subnet of `prefix`, as the forwarder reads it from a query. */
export function subnetOf(prefix: string): ClientSubnet {
  const s = querySubnet(ecsOption(prefix));
  if (s === undefined || s === 'malformed') throw new Error(`test prefix ${prefix} is not a well-formed option`);
  return s;
}

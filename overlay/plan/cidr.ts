// CIDR text as the overlay keys routes by it: the network address canonical, host bits cleared, and the prefix
// length always written — a /32 or /128 too, since the kernel layer takes routes and addresses as `ip/len` only.
// (proxy/nftables/model.ts's canonicalCIDR writes a full-length prefix as a bare address, as nft prints it.)
import { isIPv6 } from 'node:net';
import { formatIp, parseCidr } from '../kernel/addr.ts';

/** `network/length` of a CIDR (a bare address is a full-length prefix), or undefined for text that is not one. Pure. */
export function networkCIDR(text: string): string | undefined {
  const c = parseCidr(text.includes('/') ? text : `${text}/${isIPv6(text) ? 128 : 32}`);
  if (!c) return undefined;
  const ip = Buffer.from(c.ip);
  for (let bit = c.prefixLength; bit < ip.length * 8; bit++) ip[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatIp(ip)}/${c.prefixLength}`;
}

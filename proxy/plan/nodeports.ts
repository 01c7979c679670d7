// Which local addresses accept NodePorts, per family, from `--nodeport-addresses`. Loopback never does: a packet
// to 127.0.0.1 DNATed to a pod is a martian the kernel drops, so the client would wait for a time-out. kube-proxy's
// nftables mode does the same ("localhost NodePorts are not supported"): a loopback CIDR is dropped and a range
// around loopback loses it (0.0.0.0/0 means every local address but loopback). The iptables mode follows suit
// rather than setting route_localnet, so both kernel modes behave alike.
import { isIPv6 } from 'node:net';
import { bigIntToIP, ipToBigInt } from '../nftables/model.ts';
import type { Family } from './types.ts';

const loopback: Record<Family, { net: bigint; len: number }> = { 4: { net: 127n << 24n, len: 8 }, 6: { net: 1n, len: 128 } };
const bitsOf = (f: Family) => (f === 4 ? 32 : 128);

/**
 * The NodePort CIDRs of one family: 'all' (every local address but loopback) when none of this family is
 * configured (even with CIDRs of the other family, as kube-proxy's NewNodePortAddresses adds 0.0.0.0/0 or ::/0) or
 * one is the whole family; else the family's CIDRs with loopback taken out. Pure; expects valid CIDRs.
 */
export function nodePortAddressesOf(cidrs: readonly string[], family: Family): string[] | 'all' {
  const mine = cidrs.filter((cidr) => (isIPv6(cidr.split('/')[0]!) ? 6 : 4) === family);
  if (mine.length === 0) return 'all';
  const out: string[] = [];
  for (const cidr of mine) {
    const [ip = '', lenText] = cidr.split('/');
    const bits = bitsOf(family);
    const len = lenText === undefined ? bits : Number(lenText);
    if (len === 0) return 'all';
    // An IPv4-mapped IPv6 range is far from ::1: kept as given.
    if (ip.includes('.') && family === 6) {
      out.push(cidr);
      continue;
    }
    out.push(...withoutLoopback(cidr, ipToBigInt(ip), len, family));
  }
  return out;
}

/** The prefix addr/len minus the family's loopback range, as prefixes (`cidr` as given when they are apart). */
function withoutLoopback(cidr: string, addr: bigint, len: number, family: Family): string[] {
  const bits = bitsOf(family);
  const mask = (l: number) => ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - l)) - 1n);
  const net = addr & mask(len);
  const lo = loopback[family];
  if (len >= lo.len && (net & mask(lo.len)) === lo.net) return []; // inside loopback
  if (len < lo.len && (lo.net & mask(len)) === net) {
    // Around loopback: at each level below `len`, the half that does not hold loopback is kept.
    const out: string[] = [];
    for (let l = len + 1; l <= lo.len; l++) {
      const half = lo.net & mask(l);
      out.push(`${bigIntToIP(half ^ (1n << BigInt(bits - l)), family === 6)}/${l}`);
    }
    return out;
  }
  return [cidr];
}

// Which local addresses accept NodePorts, per family, from `--nodeport-addresses`. Loopback never does: a packet
// to 127.0.0.1 DNATed to a pod is a martian the kernel drops, so the client would wait for a time-out. kube-proxy's
// nftables mode does the same ("localhost NodePorts are not supported"): a loopback CIDR is dropped and a range
// around loopback loses it (0.0.0.0/0 means every local address but loopback). The iptables mode follows suit
// rather than setting route_localnet, so both kernel modes behave alike.
import { isIPv6 } from 'node:net';
import type { Family } from './types.ts';

const loopback: Record<Family, { net: bigint; len: number }> = { 4: { net: 127n << 24n, len: 8 }, 6: { net: 1n, len: 128 } };
const bitsOf = (f: Family) => (f === 4 ? 32 : 128);

/**
 * The NodePort CIDRs of one family: 'all' (every local address but loopback) when none is configured at all or
 * one is the whole family; else the family's CIDRs with loopback taken out. Pure; expects valid CIDRs.
 */
export function nodePortAddressesOf(cidrs: readonly string[], family: Family): string[] | 'all' {
  if (cidrs.length === 0) return 'all';
  const out: string[] = [];
  for (const cidr of cidrs) {
    const [ip = '', lenText] = cidr.split('/');
    if ((isIPv6(ip) ? 6 : 4) !== family) continue;
    const bits = bitsOf(family);
    const len = lenText === undefined ? bits : Number(lenText);
    if (len === 0) return 'all';
    // An IPv4-mapped IPv6 range is far from ::1: kept as given.
    if (ip.includes('.') && family === 6) {
      out.push(cidr);
      continue;
    }
    out.push(...withoutLoopback(cidr, toBig(ip, family), len, family));
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
      out.push(`${fromBig(half ^ (1n << BigInt(bits - l)), family)}/${l}`);
    }
    return out;
  }
  return [cidr];
}

function toBig(ip: string, family: Family): bigint {
  if (family === 4) return ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
  const [head = '', tail] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : 8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBig(n: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
  return Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16)).join(':');
}

// The canonical form of what netplane keeps in its nftables tables, shared by the renderer (desired state), the
// kernel reader (`nft -j list table`) and the differ. Objects are compared by identity strings: a set by the digest
// of its declaration, a chain by the digests of its rules. nft stores those digests as comments, because the text it
// prints back is not the text it was given (dependencies dropped, `th` printed as `tcp`, `10800s` as `3h`).
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Family } from '../plan/types.ts';

export type { Family } from '../plan/types.ts';

/** The nftables family and table name of an IP family: `ip netplane`, `ip6 netplane`. */
export const tableFamily: Record<Family, 'ip' | 'ip6'> = { 4: 'ip', 6: 'ip6' };
export const tableName = 'netplane';
export const families: readonly Family[] = [4, 6];

/** A named set or map. `elements` maps an element's key text to its value text ('' in a set). */
export interface NftSet {
  kind: 'set' | 'map';
  /** The declaration between the braces, e.g. `type ipv4_addr; flags interval;` (without the comment). */
  spec: string;
  /** Elements netplane owns; undefined for a set the kernel fills itself (the dynamic affinity map). */
  elements: Map<string, string> | undefined;
  /**
   * Rules using this map can only be added in the transaction that creates it: nft 1.0.6 misreads its declaration
   * when loading it back from the kernel (layout.ts). A rewritten user recreates it.
   */
  fragile?: boolean;
}

/** The hook of a base chain, as `nft -j` reports it. */
export interface BaseChain {
  type: 'filter' | 'nat' | 'route';
  hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  prio: number;
  policy: 'accept';
}

/** A chain: its hook (base chains only) and its rules, as nft input text without the comment. */
export interface NftChain {
  base?: BaseChain;
  rules: string[];
}

/** One family's table as rendered. */
export interface NftTable {
  family: Family;
  sets: Map<string, NftSet>;
  chains: Map<string, NftChain>;
}

/** What a table holds, reduced to identities: what the kernel reader returns, and what diff() compares. */
export interface TableState {
  family: Family;
  /** False when the table does not exist. */
  exists: boolean;
  /** Set name → kind, identity (undefined when the kernel object has no netplane comment) and elements. */
  sets: Map<string, { kind: 'set' | 'map'; id: string | undefined; elements: Map<string, string> }>;
  /** Chain name → hook and rule identities (undefined for a rule without a netplane comment). */
  chains: Map<string, { base?: BaseChain; ruleIds: Array<string | undefined> }>;
}

/** The identity of a rule or set declaration: a short digest of its text, stored in the kernel as its comment. */
export function digest(text: string): string {
  let d = digests.get(text);
  if (d === undefined) {
    if (digests.size >= 4096) digests.clear();
    digests.set(text, (d = createHash('sha256').update(text).digest('hex').slice(0, 16)));
  }
  return d;
}
/** Digests of recent texts: every sync digests the same fixed rules and set declarations again. */
const digests = new Map<string, string>();

/** The identity of a set: kind and declaration. */
export const setId = (s: NftSet): string => digest(`${s.kind} ${s.spec}`);

/** Reduces a rendered table to what diff() compares. */
export function stateOf(t: NftTable): TableState {
  const sets: TableState['sets'] = new Map();
  for (const [name, s] of t.sets) sets.set(name, { kind: s.kind, id: setId(s), elements: s.elements ?? new Map() });
  const chains: TableState['chains'] = new Map();
  for (const [name, c] of t.chains) chains.set(name, { ...(c.base ? { base: c.base } : {}), ruleIds: c.rules.map(digest) });
  return { family: t.family, exists: true, sets, chains };
}

/** An empty state: the table does not exist. */
export const absent = (family: Family): TableState => ({ family, exists: false, sets: new Map(), chains: new Map() });

/** An address as nft prints it: IPv6 in the RFC 5952 short form, IPv4 unchanged. */
export function canonicalIP(ip: string): string {
  // The common case, IPv4, without the cost of a full address check.
  if (!ip.includes(':') || !isIPv6(ip)) return ip;
  return formatIPv6(parseIPv6(ip));
}

/** An IPv4 or IPv6 address (an embedded IPv4 tail accepted) as a number: 32 or 128 bits. Expects a valid address. */
export function ipToBigInt(ip: string): bigint {
  return isIPv6(ip) ? toBigInt6(parseIPv6(ip)) : toBigInt4(ip);
}

/** A number of 32 (IPv4) or 128 bits (IPv6) as a canonical address. */
export function bigIntToIP(n: bigint, v6: boolean): string {
  return v6 ? formatIPv6(fromBigInt6(n)) : fromBigInt4(n);
}

/** A CIDR as nft prints it in an interval set: host bits cleared, a full-length prefix as a plain address. */
export function canonicalCIDR(cidr: string): string {
  const [ip = '', lenText] = cidr.split('/');
  const v6 = isIPv6(ip);
  const bits = v6 ? 128 : 32;
  const len = lenText === undefined ? bits : Number(lenText);
  if (len >= bits) return canonicalIP(ip);
  const n = maskBits(v6 ? toBigInt6(parseIPv6(ip)) : toBigInt4(ip), bits, len);
  return `${v6 ? formatIPv6(fromBigInt6(n)) : fromBigInt4(n)}/${len}`;
}

/** The first host address of a CIDR (its network address + 1), canonical: a bridge's usual gateway address. */
export function firstHost(cidr: string): string {
  const [ip = '', lenText = ''] = cidr.split('/');
  const v6 = isIPv6(ip);
  const bits = v6 ? 128 : 32;
  const n = maskBits(v6 ? toBigInt6(parseIPv6(ip)) : toBigInt4(ip), bits, lenText === '' ? bits : Number(lenText)) + 1n;
  return v6 ? formatIPv6(fromBigInt6(n)) : fromBigInt4(n);
}

/** CIDRs as an interval set accepts them: canonical, without duplicates or prefixes inside another one, sorted. */
export function normalizeCIDRs(cidrs: readonly string[]): string[] {
  const parsed = [...new Set(cidrs.map(canonicalCIDR))].map((c) => ({ c, ...range(c) }));
  // nft refuses overlapping intervals (without auto-merge); a prefix inside another adds nothing.
  const kept = parsed.filter((a) => !parsed.some((b) => b !== a && b.lo <= a.lo && a.hi <= b.hi && (b.lo !== a.lo || b.hi !== a.hi)));
  return kept.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0)).map((x) => x.c);
}

function range(cidr: string): { lo: bigint; hi: bigint } {
  const [ip = '', lenText] = cidr.split('/');
  const v6 = isIPv6(ip);
  const bits = v6 ? 128 : 32;
  const len = lenText === undefined ? bits : Number(lenText);
  const lo = v6 ? toBigInt6(parseIPv6(ip)) : toBigInt4(ip);
  return { lo, hi: lo | ((1n << BigInt(bits - len)) - 1n) };
}

function maskBits(n: bigint, bits: number, len: number): bigint {
  const host = (1n << BigInt(bits - len)) - 1n;
  return n & ~host & ((1n << BigInt(bits)) - 1n);
}

function toBigInt4(ip: string): bigint {
  return ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
}

function fromBigInt4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail is accepted). */
export function parseIPv6(ip: string): number[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = Number(toBigInt4(v4[1]!));
    text = `${text.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

function formatIPv6(groups: number[]): string {
  // RFC 5952: the longest run (first if tied) of two or more zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function toBigInt6(groups: number[]): bigint {
  return groups.reduce((n, g) => (n << 16n) | BigInt(g), 0n);
}

function fromBigInt6(n: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((n >> BigInt((7 - i) * 16)) & 0xffffn));
}

/** The first and last address of a CIDR as numbers, with its family; for overlap checks. */
export function cidrRange(cidr: string): { family: 4 | 6; lo: bigint; hi: bigint } {
  const [ip = '', lenText] = cidr.split('/');
  const v6 = isIPv6(ip);
  const bits = v6 ? 128 : 32;
  const len = lenText === undefined ? bits : Number(lenText);
  const n = ipToBigInt(ip);
  const host = (1n << BigInt(bits - len)) - 1n;
  return { family: v6 ? 6 : 4, lo: n & ~host, hi: (n & ~host) | host };
}

/** True when two CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
  const x = cidrRange(a);
  const y = cidrRange(b);
  return x.family === y.family && x.lo <= y.hi && y.lo <= x.hi;
}

/** True when `ip` lies inside `cidr`. */
export function contains(cidr: string, ip: string): boolean {
  return overlaps(cidr, ip);
}

// EDNS Client Subnet (RFC 7871) in the forwarder's cache: which queries carry a well-formed option, where an answer
// to one is cached, and which cached answers may serve a later one. Pure.
//
// RFC 7871 §7.3.1, for an answer to a query with SOURCE PREFIX-LENGTH s whose reply has SCOPE PREFIX-LENGTH n:
// - n <= s: stored for the first n bits of ADDRESS, and valid for every address in that network;
// - n > s: stored for the first s bits, and valid only for queries with exactly the same SOURCE PREFIX-LENGTH (we
//   have no maximum cacheable prefix length below the address's own, so the rule for s at that maximum never applies);
// - an answer cached as /0 because the query's SOURCE was 0 serves only other /0 queries, while one whose reply had
//   SCOPE 0 is "suitable as a response for all networks".
// §7.3.2: among the matching answers the longest prefix wins. A query's network is known only to its SOURCE bits, so
// a network of n bits serves queries with SOURCE >= n. A reply without an option counts as SCOPE 0 (§7.3).
import { ecsCode, findOption } from './options.ts';

/** A query's well-formed ECS option. */
export interface ClientSubnet {
  /** 1 IPv4, 2 IPv6. */
  readonly family: number;
  /** SOURCE PREFIX-LENGTH. */
  readonly source: number;
  /** ADDRESS: exactly ceil(source / 8) bytes, no bit set past `source`. */
  readonly address: Buffer;
  /** The whole option as the query carried it (code, length, data). */
  readonly option: Buffer;
}

/** What a cached entry answered for a query with ECS. */
export interface EntrySubnet {
  /** The FAMILY asked. */
  readonly family: number;
  /** The SCOPE PREFIX-LENGTH the upstream gave (0 when its reply had no option), given back to every client served. */
  readonly scope: number;
  /** For an entry valid for a network of `bits` bits (0 < bits): the cache's index of such lengths, and its own. */
  readonly lengths: string | undefined;
  readonly bits: number;
}

/** Where an answer goes in the cache: its key, and what it answered (undefined: a query without ECS). */
export interface Placement {
  readonly key: string;
  readonly subnet: EntrySubnet | undefined;
}

/** Returned by querySubnet for an option that must be answered FORMERR. */
export const malformed = 'malformed';

/** Address bits of each family RFC 7871 defines (IANA address family numbers 1 and 2). */
const familyBits: Readonly<Record<number, number>> = { 1: 32, 2: 128 };

/**
 * The ECS option of a query's options, checked; undefined when there is none; `malformed` when a server should
 * answer FORMERR: an unknown FAMILY (RFC 7871 §7.2.1: a wrongly formatted option, e.g. an unknown FAMILY, MUST get
 * FORMERR), SOURCE PREFIX-LENGTH past the family's address length, SCOPE PREFIX-LENGTH not 0 (§6: in queries it MUST
 * be 0), ADDRESS with too few or too many octets or a bit set past SOURCE PREFIX-LENGTH (§6: SHOULD return FORMERR),
 * or a second ECS option (which network would the answer be for?).
 */
export function querySubnet(options: Buffer): ClientSubnet | typeof malformed | undefined {
  const option = findOption(options, ecsCode);
  if (option === undefined) return undefined;
  if (findOption(options.subarray(option.byteOffset - options.byteOffset + option.length), ecsCode) !== undefined) return malformed;
  if (option.length < 8 || option.readUInt16BE(2) !== option.length - 4) return malformed;
  const family = option.readUInt16BE(4);
  const source = option[6]!;
  const max = familyBits[family];
  if (max === undefined || source > max || option[7] !== 0) return malformed;
  const address = option.subarray(8);
  if (address.length !== Math.ceil(source / 8)) return malformed;
  if (source % 8 !== 0 && (address[address.length - 1]! & (0xff >> source % 8)) !== 0) return malformed;
  return { family, source, address, option };
}

/** The first `bits` bits of `address` in hex, the rest of the last octet cleared (`address` holds at least them). */
export function prefixHex(address: Buffer, bits: number): string {
  const bytes = Buffer.from(address.subarray(0, Math.ceil(bits / 8)));
  if (bits % 8 !== 0) bytes[bytes.length - 1]! &= 0xff << (8 - (bits % 8));
  return bytes.toString('hex');
}

// Keys add to the base key (cache.ts cacheKey, which holds no ECS option) after a space, which a name never holds:
// " e<family>/<bits>/<prefix>" for a network, " x<family>/<source>/<address>" for one SOURCE PREFIX-LENGTH only.
/** The key of the index of network lengths cached for `family` under `base`. */
export const lengthsKey = (base: string, family: number): string => `${base} e${family}`;
const networkKey = (base: string, family: number, bits: number, address: Buffer) => `${lengthsKey(base, family)}/${bits}/${prefixHex(address, bits)}`;
const exactKey = (base: string, s: ClientSubnet) => `${base} x${s.family}/${s.source}/${s.address.toString('hex')}`;

/**
 * Where the answer to a question with base key `base`, asked with `asked` (or without ECS), is cached, its reply's
 * SCOPE being `scope`. Without ECS, and for a reply with SCOPE 0 to a SOURCE above 0, under the base key itself: the
 * key a query without ECS looks up, as such an answer suits every network (RFC 7871 §7.3.1).
 */
export function placement(base: string, asked: ClientSubnet | undefined, scope: number): Placement {
  if (asked === undefined) return { key: base, subnet: undefined };
  const { family, source } = asked;
  if (source > 0 && scope === 0) return { key: base, subnet: { family, scope, lengths: undefined, bits: 0 } };
  if (source > 0 && scope <= source) {
    return { key: networkKey(base, family, scope, asked.address), subnet: { family, scope, lengths: lengthsKey(base, family), bits: scope } };
  }
  return { key: exactKey(base, asked), subnet: { family, scope, lengths: undefined, bits: source } };
}

/**
 * The keys whose entries may answer a query with ECS `q`, most specific first: its own SOURCE PREFIX-LENGTH's entry,
 * then the networks of each length in `lengths` (the cache's index under lengthsKey) that q's SOURCE covers, longest
 * first, then the base key, whose entry serves only when it answered ECS of q's FAMILY with SCOPE 0 (RFC 7871 §7.2.1:
 * SCOPE 0 is an answer "suitable for all addresses in FAMILY"; an entry asked without ECS may be tailored to our own
 * address, and is not given to a client that named its network).
 */
export function lookupKeys(base: string, q: ClientSubnet, lengths: ReadonlyMap<number, number> | undefined): string[] {
  const keys = [exactKey(base, q)];
  if (lengths !== undefined) {
    const bits = [...lengths.keys()].filter((b) => b <= q.source).sort((x, y) => y - x);
    for (const b of bits) keys.push(networkKey(base, q.family, b, q.address));
  }
  keys.push(base);
  return keys;
}

/** q's own option with SCOPE PREFIX-LENGTH `scope`: what a client served from an entry gets (RFC 7871 §7.2.1–7.2.2). */
export function echo(q: ClientSubnet, scope: number): Buffer {
  const out = Buffer.from(q.option);
  out[7] = scope;
  return out;
}

/**
 * Whether an answer to `asked` with SCOPE `scope` may serve query `q` (undefined: without ECS), by the keys the cache
 * stores and looks up. For tests and reasoning; the cache applies the same rule through placement and lookupKeys.
 */
export function serves(asked: ClientSubnet | undefined, scope: number, q: ClientSubnet | undefined): boolean {
  const p = placement('n', asked, scope);
  if (q === undefined) return p.key === 'n';
  const lengths = p.subnet?.lengths === lengthsKey('n', q.family) ? new Map([[p.subnet.bits, 1]]) : undefined;
  const at = lookupKeys('n', q, lengths).indexOf(p.key);
  if (at < 0) return false;
  return p.key !== 'n' || p.subnet?.family === q.family;
}

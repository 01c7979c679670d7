// Who the client is: the socket's peer, or, behind trusted proxies (a load balancer in front of the gateway), the
// address they recorded in X-Forwarded-For. Only hops added by trusted proxies are believed: the list is walked
// from the right (the most recent hop) past trusted addresses, as nginx's `real_ip_recursive on` does. With
// --proxy-protocol the PROXY header's address is the client and X-Forwarded-For is never read for it, as
// ingress-nginx's use-proxy-protocol makes $the_real_ip $proxy_protocol_addr (server/gateway.ts).
import { BlockList, isIP } from 'node:net';

// ::ffff:0:0/96, IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2), in whatever spelling.
const ipv4Mapped = new BlockList();
ipv4Mapped.addSubnet('::ffff:0.0.0.0', 96, 'ipv6');

/** A trusted-proxy entry that is neither an IP address nor a CIDR block. */
export class TrustedProxiesError extends Error {
  override readonly name = 'TrustedProxiesError';
  readonly code = 'NETPLANE_INGRESS_TRUSTED_PROXIES';
}

/** A set of addresses and CIDR blocks, IPv4 and IPv6: the trusted proxies, an Ingress's allowed or denied sources. */
export class AddressSet {
  readonly #list: BlockList;
  readonly #empty: boolean;

  private constructor(list: BlockList, empty: boolean) {
    this.#list = list;
    this.#empty = empty;
  }

  /** Parses addresses and CIDR blocks (IPv4 or IPv6); throws TrustedProxiesError naming the first bad entry. */
  static parse(cidrs: readonly string[]): AddressSet {
    const list = new BlockList();
    for (const entry of cidrs) {
      const block = addressBlock(entry);
      if (!block) {
        throw new TrustedProxiesError(`trusted proxy ${JSON.stringify(entry)} is not allowed: it must be ${addressBlockText}`);
      }
      list.addSubnet(block.ip, block.prefix, block.family === 4 ? 'ipv4' : 'ipv6');
    }
    return new AddressSet(list, cidrs.length === 0);
  }

  /** Whether `ip` (any spelling normalizeIP accepts) is trusted; false for anything that is not an address. */
  has(ip: string): boolean {
    if (this.#empty) return false;
    const a = normalizeIP(ip);
    if (a === undefined) return false;
    return this.#list.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The addresses whose X-Forwarded-For is believed. */
export { AddressSet as TrustedProxies };

const parsedSets = new WeakMap<readonly string[], AddressSet>();

/**
 * The AddressSet of a list from a compiled policy (already checked, immutable), parsed once per list; throws
 * TrustedProxiesError for an entry that is not an address or CIDR block.
 */
export function addressSetOf(list: readonly string[]): AddressSet {
  let set = parsedSets.get(list);
  if (set === undefined) parsedSets.set(list, (set = AddressSet.parse(list)));
  return set;
}

/** What addressBlock() accepts, for messages. */
export const addressBlockText = 'an IPv4 or IPv6 address or CIDR block (like 10.0.0.0/8 or fd00::/8)';

/** An address or CIDR block as BlockList takes it; undefined when `entry` is neither. */
export function addressBlock(entry: string): { ip: string; family: 4 | 6; prefix: number } | undefined {
  const [address = '', prefix, extra] = entry.trim().split('/');
  const ip = normalizeIP(address);
  const family = ip === undefined ? 0 : isIP(ip);
  const bits = family === 4 ? 32 : 128;
  const n = prefix === undefined ? bits : /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
  if (ip === undefined || family === 0 || extra !== undefined || n < 0 || n > bits) return undefined;
  return { ip, family: family as 4 | 6, prefix: n };
}

/**
 * An address as text in one spelling: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes IPv4, IPv6 is in the canonical
 * form of socket addresses (canonicalIPv6), so a client is one key for the limits however a proxy wrote it, and
 * brackets or a port (`[::1]:80`, `1.2.3.4:80`, as some proxies write X-Forwarded-For) are removed. Undefined when
 * it is not an IP address.
 */
export function normalizeIP(text: string): string | undefined {
  let s = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracketed) s = bracketed[1] ?? '';
  else if (/^[\d.]+:\d+$/.test(s)) s = s.slice(0, s.indexOf(':'));
  s = s.toLowerCase();
  const family = isIP(s);
  if (family === 0) return undefined;
  if (family === 4 || s.includes('%')) return s;
  if (ipv4Mapped.check(s, 'ipv6')) return mappedIPv4(s);
  return canonicalIPv6(s);
}

/**
 * An IPv6 address (lower-case, valid, without a zone index) in the one form libuv gives socket addresses: RFC 5952
 * (no leading zeros, the longest run of two or more zero groups as `::`), an IPv4-compatible address's low 32 bits
 * dotted. `2001:0db8:0::1` and `2001:db8::1` are one client, as nginx's $binary_remote_addr makes them.
 */
function canonicalIPv6(s: string): string {
  // Groups are read into a fixed array; `::` stands for the zeros between what is left and right of it.
  const groups = [0, 0, 0, 0, 0, 0, 0, 0];
  let n = 0;
  let gap = -1;
  let i = 0;
  const end = s.length;
  while (i < end) {
    if (s.charCodeAt(i) === 58 /* : */) {
      if (i + 1 < end && s.charCodeAt(i + 1) === 58) gap = n;
      i += i === 0 || s.charCodeAt(i + 1) === 58 ? 2 : 1;
      continue;
    }
    let j = i;
    while (j < end && s.charCodeAt(j) !== 58 && s.charCodeAt(j) !== 46) j++;
    if (j < end && s.charCodeAt(j) === 46) {
      const [a = 0, b = 0, c = 0, d = 0] = s.slice(i).split('.').map(Number);
      groups[n++] = (a << 8) | b;
      groups[n++] = (c << 8) | d;
      break;
    }
    groups[n++] = parseInt(s.slice(i, j), 16);
    i = j;
  }
  if (gap >= 0 && n < 8) {
    const shift = 8 - n;
    for (let k = n - 1; k >= gap; k--) groups[k + shift] = groups[k]!;
    for (let k = gap; k < gap + shift; k++) groups[k] = 0;
  }
  let best = -1;
  let bestLength = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let j = k;
    while (j < 8 && groups[j] === 0) j++;
    if (j - k > bestLength) {
      best = k;
      bestLength = j - k;
    }
    k = j;
  }
  // libuv (BIND's inet_ntop6), which writes socket addresses, writes an IPv4-compatible address's last 32 bits dotted.
  if (best === 0 && bestLength === 6) return `::${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === best) {
      out += '::';
      k += bestLength - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += groups[k]!.toString(16);
  }
  return out;
}

// The IPv4 address in the low 32 bits of a mapped address, written dotted (`::ffff:1.2.3.4`) or in hex (`::ffff:102:304`).
function mappedIPv4(s: string): string {
  const tail = s.slice(s.lastIndexOf(':') + 1);
  if (tail.includes('.')) return tail;
  const groups = s.split(':');
  const hi = parseInt(groups.at(-2) || '0', 16);
  const lo = parseInt(groups.at(-1) || '0', 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/**
 * The client address of a request: the socket's, or from X-Forwarded-For when the socket's address is trusted
 * (walking from the right past trusted hops; all trusted: the leftmost; an unparseable hop stops the walk at the
 * last good one). Normalised as normalizeIP does; '' when the socket has no address (it has closed). Not for a
 * connection that came with a PROXY protocol header: its header's address is the client, whatever the headers say.
 */
export function clientIP(remoteAddress: string | undefined, xForwardedFor: string | string[] | undefined, trusted: AddressSet): string {
  const socket = remoteAddress === undefined ? '' : (normalizeIP(remoteAddress) ?? remoteAddress);
  if (xForwardedFor === undefined || !trusted.has(socket)) return socket;
  const hops = [xForwardedFor].flat().join(',').split(',');
  let address = socket;
  for (let i = hops.length - 1; i >= 0; i--) {
    const raw = (hops[i] ?? '').trim();
    if (raw === '') continue;
    const hop = normalizeIP(raw);
    if (hop === undefined) return address;
    address = hop;
    if (!trusted.has(hop)) return hop;
  }
  return address;
}

// Pure parsing of a query name inside the cluster zone, the way CoreDNS's kubernetes plugin reads it
// (plugin/kubernetes/parse.go): what a name asks for, by its labels right to left.
import { isIPv6 } from 'node:net';
import { escapedAt } from '../wire/name.ts';

/** What a name in the zone refers to. Names it cannot refer to anything are `none`. */
export type ZoneName =
  | { kind: 'apex' }
  | { kind: 'dns-version' }
  | { kind: 'nameserver' }
  | { kind: 'svc-root' }
  | { kind: 'namespace'; namespace: string }
  | { kind: 'service'; namespace: string; service: string }
  | { kind: 'endpoint'; namespace: string; service: string; endpoint: string }
  | { kind: 'srv'; namespace: string; service: string; port: string; protocol: string }
  | { kind: 'pod-root' }
  | { kind: 'pod-namespace'; namespace: string }
  | { kind: 'pod'; namespace: string; address: string }
  | { kind: 'none' };

/**
 * Reads `lname` (lower case, no trailing dot) relative to `zone`; undefined when the name is not in the zone.
 * `_port._proto.svc.ns.svc` is an SRV name (the underscores are required); `host.svc.ns.svc` an endpoint;
 * `a-b-c-d.ns.pod` a pod.
 */
export function parseZoneName(lname: string, zone: string): ZoneName | undefined {
  if (lname === zone) return { kind: 'apex' };
  // Every forwarded query asks this first: no string is built for the check.
  const cut = lname.length - zone.length - 1;
  if (cut < 0 || lname.charCodeAt(cut) !== 0x2e || !lname.endsWith(zone) || (lname.charCodeAt(cut - 1) === 0x5c && escapedAt(lname, cut))) return undefined;
  const labels = lname.slice(0, cut).split('.');
  const n = labels.length;
  const last = labels[n - 1]!;
  if (n === 1 && last === 'dns-version') return { kind: 'dns-version' };
  if (n === 2 && labels[0] === 'ns' && last === 'dns') return { kind: 'nameserver' };
  if (last === 'svc') {
    if (n === 1) return { kind: 'svc-root' };
    const namespace = labels[n - 2]!;
    if (n === 2) return { kind: 'namespace', namespace };
    const service = labels[n - 3]!;
    if (n === 3) return { kind: 'service', namespace, service };
    if (n === 4) return { kind: 'endpoint', namespace, service, endpoint: labels[0]! };
    if (n === 5 && labels[0]!.startsWith('_') && labels[1]!.startsWith('_') && labels[0]!.length > 1 && labels[1]!.length > 1) {
      return { kind: 'srv', namespace, service, port: labels[0]!.slice(1), protocol: labels[1]!.slice(1) };
    }
    return { kind: 'none' };
  }
  if (last === 'pod') {
    if (n === 1) return { kind: 'pod-root' };
    if (n === 2) return { kind: 'pod-namespace', namespace: labels[0]! };
    if (n === 3) return { kind: 'pod', namespace: labels[1]!, address: labels[0]! };
    return { kind: 'none' };
  }
  return { kind: 'none' };
}

/**
 * The IP a pod label spells (`10-244-1-5`, IPv6 `fd00--1`), or undefined when it spells none. Octets with leading
 * zeros (`010-244-001-005`) spell none, as Go's net.ParseIP that CoreDNS uses rejects them.
 */
export function podLabelIP(label: string): string | undefined {
  if (/^\d{1,3}(-\d{1,3}){3}$/.test(label)) {
    const parts = label.split('-');
    return parts.every(isOctetLabel) ? parts.join('.') : undefined;
  }
  const v6 = label.replace(/-/g, ':');
  return isIPv6(v6) ? v6 : undefined;
}

/** The endpoint label for an address: IPv4 dots and IPv6 colons become dashes (`172-0-0-2`, `5678-abcd--1`). */
export function dashedIP(ip: string): string {
  return ip.replace(/[.:]/g, '-');
}

/**
 * The IP a reverse name spells (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`), or undefined for names that
 * are reverse but not a whole address (a zone cut such as `96.10.in-addr.arpa`).
 */
export function parseReverseName(lname: string): { ip: string } | undefined {
  if (lname.endsWith('.in-addr.arpa')) {
    const parts = lname.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every(isOctetLabel)) return undefined;
    return { ip: parts.reverse().join('.') };
  }
  if (lname.endsWith('.ip6.arpa')) {
    const nibbles = lname.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((x) => /^[0-9a-f]$/.test(x))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
    return { ip: compressIPv6(groups) };
  }
  return undefined;
}

/** The reverse name of an address (in-addr.arpa or ip6.arpa), lower case, no trailing dot. */
export function reverseName(ip: string): string {
  if (ip.includes(':')) return `${expandIPv6(ip).replace(/:/g, '').split('').reverse().join('.')}.ip6.arpa`;
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** The full 8-group form of an IPv6 address, each group 4 hex digits. */
export function expandIPv6(ip: string): string {
  const [head = '', tail] = ip.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join(':');
}

/** Canonical RFC 5952 text for eight groups (longest run of zero groups, if two or more, becomes ::). */
function compressIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * The reverse zones a CIDR's addresses fall in, as CoreDNS derives them: the prefix rounded up to whole octets
 * (in-addr.arpa) or nibbles (ip6.arpa), one zone per resulting network (10.96.0.0/12 gives 96.10 ... 111.10).
 * `cidr` must be valid (the flag parser checked it).
 */
export function reverseZones(cidr: string): string[] {
  const [addr = '', len = '0'] = cidr.split('/');
  const prefix = Number(len);
  const v6 = isIPv6(addr);
  const step = v6 ? 4 : 8;
  const aligned = Math.ceil(prefix / step) * step;
  // Digits (octets or nibbles) of the address, most significant first.
  const digits = v6 ? expandIPv6(addr).replace(/:/g, '').split('').map((h) => parseInt(h, 16)) : addr.split('.').map(Number);
  const kept = aligned / step;
  const suffix = v6 ? 'ip6.arpa' : 'in-addr.arpa';
  const zones: string[] = [];
  // The free bits between the prefix and the aligned prefix all lie in the last kept digit.
  const free = aligned - prefix;
  for (let i = 0; i < 1 << free; i++) {
    const d = digits.slice(0, kept);
    if (kept > 0) d[kept - 1] = (d[kept - 1]! & ~((1 << free) - 1)) | i;
    const labels = d.reverse().map((x) => (v6 ? x.toString(16) : String(x)));
    zones.push([...labels, suffix].join('.'));
  }
  return zones;
}

/**
 * Where a reverse name stands in reverse zone `zone` (which it is at or under): the apex, a name above a whole
 * address that addresses may be under (`0.96.10.in-addr.arpa`), or `none` when no address can be under it (a label
 * that is not an octet or nibble, or more labels than an address has). Whole addresses are parseReverseName's.
 */
export function reversePlace(lname: string, zone: string): 'apex' | 'inner' | 'none' {
  if (lname === zone) return 'apex';
  const v6 = zone.endsWith('ip6.arpa');
  const labels = lname.slice(0, lname.length - zone.length - 1).split('.');
  const zoneDigits = zone.split('.').length - 2;
  if (labels.length + zoneDigits >= (v6 ? 32 : 4)) return 'none';
  const ok = v6 ? labels.every((x) => /^[0-9a-f]$/.test(x)) : labels.every(isOctetLabel);
  return ok ? 'inner' : 'none';
}

/** A label holding one IPv4 octet in decimal, without leading zeros. */
function isOctetLabel(p: string): boolean {
  return /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255;
}

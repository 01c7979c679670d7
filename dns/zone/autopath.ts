// autopath (CoreDNS's `autopath @kubernetes`): the server walks a client Pod's search path itself, so that a Pod with
// `ndots:5` gets in one round trip what its resolver would find after several. Pure: which queries are a Pod's first
// search-path query, which names are tried, when the walk stops, and what the client is answered. The handler
// (autopath-handler.ts) runs the rest of the chain on those names.
import type { DnsAnswer, Rcode, ResourceRecord } from '../types.ts';

/** One name the walk asks: as the client wrote it (letter case kept) and in lower case. */
export interface Candidate {
  name: string;
  lname: string;
}

/**
 * The search path of a Pod of `namespace`, as CoreDNS's kubernetes plugin builds it for autopath (and as the kubelet
 * writes it into the Pod's resolv.conf): `<ns>.svc.<zone>`, `svc.<zone>`, `<zone>`, then "" for the name itself.
 */
export function searchPath(namespace: string, zone: string): readonly string[] {
  return [`${namespace}.svc.${zone}`, `svc.${zone}`, zone, ''];
}

/**
 * Whether `lname` is `<base>.<ns>.svc.<zone>` for some namespace: the first search-path query of a Pod of `<ns>`.
 * The answer to such a name may depend on who asks (a Pod of `<ns>` gets the walk), so its negative answers must
 * never be replayed to another client.
 */
export function inSomeSearchPath(lname: string, zone: string): boolean {
  const suffix = `.svc.${zone}`;
  if (!lname.endsWith(suffix)) return false;
  const rest = lname.length - suffix.length;
  // At least "b.n": a base and a namespace label, both non-empty.
  const dot = lname.lastIndexOf('.', rest - 1);
  return dot > 0 && dot < rest - 1;
}

/**
 * The names the walk asks, in order, for a query `name` from a Pod of `namespace`: the base (what the client's
 * resolver put the first search domain after) with each element of the search path. Undefined when `name` is not
 * under that Pod's first search domain, or is that domain itself (no base: CoreDNS fails those with SERVFAIL;
 * here they are answered as without autopath).
 */
export function candidates(name: string, namespace: string, zone: string): Candidate[] | undefined {
  const [first, ...rest] = searchPath(namespace, zone);
  const lname = name.toLowerCase();
  if (!lname.endsWith(`.${first!}`)) return undefined;
  const base = name.slice(0, name.length - first!.length - 1);
  if (base === '' || base.endsWith('.')) return undefined;
  return [{ name, lname }, ...rest.map((s) => (s === '' ? base : `${base}.${s}`)).map((n) => ({ name: n, lname: n.toLowerCase() }))];
}

/** Whether the walk goes on to the next name after an answer with this rcode: only NXDOMAIN does (as CoreDNS). */
export function walksOn(rcode: Rcode): boolean {
  return rcode === 'NXDOMAIN';
}

/**
 * A client's address as the Pod index holds it: an IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, from a dual-stack
 * socket) as the IPv4 address.
 */
export function clientAddress(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

/**
 * The answer to `asked` (lower case) from `found`, the answer for a later name of the walk, as CoreDNS's autopath
 * writes it: a CNAME from the asked name to the owner of the first answer record that is not the asked name, with
 * that record's TTL, put before found's answer records; found's rcode, flags and other sections. No answer records
 * (NODATA, SERVFAIL): no CNAME. Marked clientBound: it holds for this client's namespace only.
 */
export function answerFor(asked: string, found: DnsAnswer): DnsAnswer {
  const to = found.answers.find((rr) => rr.name.toLowerCase() !== asked);
  const answers: ResourceRecord[] = to === undefined ? found.answers : [{ name: asked, type: 'CNAME', class: 'IN', ttl: (to as { ttl?: number }).ttl ?? 0, data: to.name } as ResourceRecord, ...found.answers];
  const out: DnsAnswer = { rcode: found.rcode, authoritative: found.authoritative, answers, authorities: found.authorities, additionals: found.additionals, source: 'autopath', clientBound: true };
  if (found.recursionAvailable !== undefined) out.recursionAvailable = found.recursionAvailable;
  return out;
}

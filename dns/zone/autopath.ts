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

/** The longest name in presentation form, without the final dot, that fits the wire's 255 octets. */
const maxName = 253;

/** Why a search domain of the node's resolv.conf is not walked. */
export type SkipReason = 'not a domain name' | "in every Pod's search path already" | 'given twice';

/**
 * The node's search domains (resolvconf.ts parseSearchDomains) as the walk takes them: in lower case, in order, without
 * those it cannot ask or would ask twice. The kubelet appends the node's search domains to a ClusterFirst Pod's search
 * list and drops those equal to one before them, so `<zone>` and `svc.<zone>` are skipped here, and
 * `<ns>.svc.<zone>` per Pod (searchPath). Other names inside the zone stay: they are in the Pod's list too.
 */
export function nodeSearchDomains(raw: readonly string[], zone: string): { domains: string[]; skipped: Array<{ domain: string; reason: SkipReason }> } {
  const domains: string[] = [];
  const skipped: Array<{ domain: string; reason: SkipReason }> = [];
  for (const domain of raw) {
    const d = domain.toLowerCase().replace(/\.$/, '');
    const reason: SkipReason | undefined = !isDomainName(d) ? 'not a domain name' : d === zone || d === `svc.${zone}` ? "in every Pod's search path already" : domains.includes(d) ? 'given twice' : undefined;
    if (reason === undefined) domains.push(d);
    else skipped.push({ domain, reason });
  }
  return { domains, skipped };
}

/** Labels of 1 to 63 characters, no space, at most 253 characters in all (a name that fits the wire). */
function isDomainName(d: string): boolean {
  return d.length > 0 && d.length <= maxName && !/\s/.test(d) && d.split('.').every((l) => l.length > 0 && l.length <= 63);
}

/**
 * The search path of a Pod of `namespace`, as CoreDNS's kubernetes plugin builds it for autopath (and as the kubelet
 * writes it into the Pod's resolv.conf): `<ns>.svc.<zone>`, `svc.<zone>`, `<zone>`, the node's search domains
 * (nodeSearchDomains) but `<ns>.svc.<zone>`, then "" for the name itself.
 */
export function searchPath(namespace: string, zone: string, node: readonly string[] = []): readonly string[] {
  const first = `${namespace}.svc.${zone}`;
  return [first, `svc.${zone}`, zone, ...node.filter((d) => d !== first), ''];
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
 * resolver put the first search domain after) with each element of the search path, `node` being the node's search
 * domains (nodeSearchDomains). A name longer than a DNS name can be is left out (it could not be asked). Undefined
 * when `name` is not under that Pod's first search domain, or is that domain itself (no base: CoreDNS fails those with
 * SERVFAIL; here they are answered as without autopath).
 */
export function candidates(name: string, namespace: string, zone: string, node: readonly string[] = []): Candidate[] | undefined {
  const [first, ...rest] = searchPath(namespace, zone, node);
  const lname = name.toLowerCase();
  if (!lname.endsWith(`.${first!}`)) return undefined;
  const base = name.slice(0, name.length - first!.length - 1);
  if (base === '' || base.endsWith('.')) return undefined;
  const names = rest.map((s) => (s === '' ? base : `${base}.${s}`)).filter((n) => n.length <= maxName);
  return [{ name, lname }, ...names.map((n) => ({ name: n, lname: n.toLowerCase() }))];
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

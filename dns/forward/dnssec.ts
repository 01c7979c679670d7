// What a client that did not set the DO bit gets of a DNSSEC answer (RFC 3225 §3, RFC 4035 §3.2.1): the same
// records without the DNSSEC ones, unless it asked for that type, and the AD bit only when it asked with AD set
// (RFC 6840 §5.7–5.8). CoreDNS's cache does the same (its filterDNSSEC and toMsg), so that one entry, asked
// upstream with DO, serves both kinds of client. Pure.
import type { ResourceRecord } from '../types.ts';

/** The record types a DO=0 client does not get unasked: CoreDNS's filterDNSSEC list. */
const dnssecTypes: ReadonlySet<string> = new Set(['RRSIG', 'NSEC', 'NSEC3', 'DS', 'DNSKEY']);

/**
 * `rrs` without DNSSEC records, keeping those of type `asked` (the question's type name in the answer section;
 * '' for authority and additional records; 'ANY' keeps every one). The same array when nothing goes.
 */
export function withoutDnssec(rrs: readonly ResourceRecord[], asked: string): readonly ResourceRecord[] {
  if (asked === 'ANY') return rrs;
  let kept: ResourceRecord[] | undefined;
  for (let i = 0; i < rrs.length; i++) {
    const rr = rrs[i]!;
    const drop = rr.type !== asked && dnssecTypes.has(rr.type);
    if (drop && kept === undefined) kept = rrs.slice(0, i);
    else if (!drop && kept !== undefined) kept.push(rr);
  }
  return kept ?? rrs;
}

/** A reply's three sections. */
export interface Sections {
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  readonly additionals: readonly ResourceRecord[];
}

/** The sections a DO=0 client gets for a question of type `asked`; undefined when they are the sections as they are. */
export function plainSections(s: Sections, asked: string): Sections | undefined {
  const answers = withoutDnssec(s.answers, asked);
  const authorities = withoutDnssec(s.authorities, '');
  const additionals = withoutDnssec(s.additionals, '');
  if (answers === s.answers && authorities === s.authorities && additionals === s.additionals) return undefined;
  return { answers, authorities, additionals };
}

/** What a client asked with that changes what it gets: its DO bit and its AD bit. */
export interface ClientBits {
  readonly dnssecOk: boolean;
  readonly ad?: boolean;
}

/**
 * Which view of a reply a client gets: 0 the reply as it is (a DO client, or one for which nothing differs), 1 the
 * plain sections with the reply's AD bit (a DO=0 client that set AD), 2 the plain sections (or the sections as they
 * are when nothing is DNSSEC) without AD.
 */
export type View = 0 | 1 | 2;

/** The view for `client` of a reply whose plain sections are `plain` (undefined: none differ) and AD bit `ad`. */
export function viewFor(client: ClientBits, plain: Sections | undefined, ad: boolean): View {
  if (client.dnssecOk) return 0;
  if (client.ad === true) return plain === undefined ? 0 : 1;
  return plain === undefined && !ad ? 0 : 2;
}

// What a client without DO gets of a DNSSEC answer (dns/forward/dnssec.ts): CoreDNS's filterDNSSEC list left out
// unless asked for by type, and the AD bit only for clients that asked with AD or DO.
import { describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import { plainSections, viewFor, withoutDnssec } from '../../../dns/forward/dnssec.ts';

const rr = (type: string) => ({ name: 'x.example.com', type, class: 'IN', ttl: 60, data: {} }) as unknown as Answer;
const types = (rrs: readonly Answer[]) => rrs.map((r) => r.type);

describe('withoutDnssec', () => {
  const all = ['A', 'RRSIG', 'NSEC', 'NSEC3', 'DS', 'DNSKEY', 'CNAME', 'SOA'].map(rr);
  const cases: Array<[string, string, string[]]> = [
    ['an A question', 'A', ['A', 'CNAME', 'SOA']],
    ['an RRSIG question keeps the RRSIG', 'RRSIG', ['A', 'RRSIG', 'CNAME', 'SOA']],
    ['an NSEC3 question keeps the NSEC3', 'NSEC3', ['A', 'NSEC3', 'CNAME', 'SOA']],
    ['a DNSKEY question keeps the DNSKEY', 'DNSKEY', ['A', 'DNSKEY', 'CNAME', 'SOA']],
    ['ANY keeps every record', 'ANY', ['A', 'RRSIG', 'NSEC', 'NSEC3', 'DS', 'DNSKEY', 'CNAME', 'SOA']],
    ['authority and additional ("")', '', ['A', 'CNAME', 'SOA']],
  ];
  for (const [name, asked, want] of cases) it(name, () => expect(types(withoutDnssec(all, asked))).toEqual(want));

  it('hands back the same array when nothing goes, and never changes its input', () => {
    const plain = [rr('A'), rr('CNAME')];
    expect(withoutDnssec(plain, 'A')).toBe(plain);
    withoutDnssec(all, 'A');
    expect(all).toHaveLength(8);
  });
});

describe('plainSections and viewFor', () => {
  it('is undefined when no section holds a DNSSEC record; else each section filtered, the asked type kept in the answer only', () => {
    expect(plainSections({ answers: [rr('A')], authorities: [rr('SOA')], additionals: [] }, 'A')).toBeUndefined();
    const p = plainSections({ answers: [rr('RRSIG')], authorities: [rr('SOA'), rr('RRSIG'), rr('NSEC')], additionals: [rr('RRSIG')] }, 'RRSIG');
    expect(p && [types(p.answers), types(p.authorities), types(p.additionals)]).toEqual([['RRSIG'], ['SOA'], []]);
  });

  const signed = { answers: [], authorities: [], additionals: [] };
  const cases: Array<[string, { dnssecOk: boolean; ad?: boolean }, boolean, boolean, 0 | 1 | 2]> = [
    ['DO: the reply as it is', { dnssecOk: true }, true, true, 0],
    ['AD set, nothing to leave out', { dnssecOk: false, ad: true }, false, true, 0],
    ['AD set, records to leave out', { dnssecOk: false, ad: true }, true, true, 1],
    ['neither bit, unsigned and no AD: as it is', { dnssecOk: false }, false, false, 0],
    ['neither bit, AD in the reply: without AD', { dnssecOk: false }, false, true, 2],
    ['neither bit, records to leave out', { dnssecOk: false }, true, false, 2],
  ];
  for (const [name, client, hasPlain, ad, want] of cases) it(name, () => expect(viewFor(client, hasPlain ? signed : undefined, ad)).toBe(want));
});

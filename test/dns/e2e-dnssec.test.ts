// netplane dns as users run it, forwarding to a scripted upstream that returns signed-looking answers (RRSIG, NSEC;
// nothing is really signed), queried with `dig +dnssec` and plain `dig` in both orders: as CoreDNS's cache does, a
// client without DO gets no RRSIG/NSEC it did not ask for — on the first answer, on cache hits and on replays alike —
// and a client with DO gets them, also when a client without DO filled the cache; one entry serves both once it was
// asked with DO.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Answer } from 'dns-packet';
import { waitFor } from '../helpers/wait.ts';
import { HostRunner } from '../../runtime/exec.ts';
import { a, soa, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { startDns, type DnsProcess } from './process.ts';

const host = new HostRunner();

/** dig's status, AD flag and the types of its answer and authority records (TTLs left out). */
async function dig(port: number, name: string, type: string, ...opts: string[]) {
  // +nocookie: identical queries are identical bytes, so the third of a kind is replayed (dns/server/replay.ts).
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=3', '+tries=1', '+nocookie', '+nocmd', '+nostats', ...opts, name, type]);
  const section = (title: string) => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/)[3] ?? '');
  };
  const flags = (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '').trim().split(/\s+/);
  return { status: /status: (\w+)/.exec(stdout)?.[1], ad: flags.includes('ad'), answer: section('ANSWER'), authority: section('AUTHORITY'), raw: stdout };
}

const rrsig = (name: string, covered: string): Answer =>
  ({ name, type: 'RRSIG', class: 'IN', ttl: 300, data: { typeCovered: covered, algorithm: 13, labels: 3, originalTTL: 300, expiration: 1_900_000_000, inception: 1_700_000_000, keyTag: 4711, signersName: 'example.com', signature: Buffer.from('c2lnbmF0dXJl', 'base64') } }) as Answer;
const nsec = (name: string): Answer => ({ name, type: 'NSEC', class: 'IN', ttl: 300, data: { nextDomain: `zz.${name}`, rrtypes: ['RRSIG', 'NSEC'] } }) as Answer;

/**
 * A signed zone's upstream: DNSSEC records only to queries with DO, as RFC 3225 asks, except under `always.`, where
 * they come whatever the query (an upstream that ignores DO). `neg*` names are NXDOMAIN with the SOA (and with
 * DNSSEC: NSEC and the SOA's RRSIG); a question for RRSIG gets the RRSIG alone. Answers with DNSSEC records have
 * the AD bit (the upstream validated them).
 */
function signed(q: { name: string; type: string; dnssecOk: boolean }) {
  const dnssec = q.dnssecOk || q.name.toLowerCase().includes('always.');
  if (q.type === 'RRSIG') return { answers: [rrsig(q.name, 'A')] };
  if (/^neg/i.test(q.name)) return { rcode: 'NXDOMAIN' as const, authenticated: dnssec, authorities: [soa('example.com', 60, 60), ...(dnssec ? [nsec(q.name), rrsig('example.com', 'SOA')] : [])] };
  return { authenticated: dnssec, answers: [a(q.name, '192.0.2.53'), ...(dnssec ? [rrsig(q.name, 'A')] : [])] };
}

describe('DNSSEC records and the DO bit, through the cache', () => {
  let up: FakeUpstream;
  let dns: DnsProcess;
  let port: number;
  beforeAll(async () => {
    up = await startUpstream(signed);
    dns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', '--upstream', up.hostPort.text]);
    port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  });
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });
  const asked = (name: string) => up.seen.filter((q) => q.name.toLowerCase() === name).length;
  const all = (r: { answer: string[]; authority: string[] }) => [...r.answer, ...r.authority];

  // [name, first client, then the other kind; what each kind gets; upstream queries in all]
  const cases: Array<[string, 'do' | 'plain', { do: string[]; plain: string[] }, number]> = [
    // A DO answer fills the cache; plain clients get it without the signature and cost no upstream query.
    ['do-first.example.com', 'do', { do: ['A', 'RRSIG'], plain: ['A'] }, 1],
    // An entry asked without DO is no answer for a DO client: it is asked with DO, and that entry then serves both.
    ['plain-first.example.com', 'plain', { do: ['A', 'RRSIG'], plain: ['A'] }, 2],
    // An upstream that sends RRSIGs to queries without DO: a plain client still gets none (it did before).
    ['always.example.com', 'plain', { do: ['A', 'RRSIG'], plain: ['A'] }, 2],
    ['do.always.example.com', 'do', { do: ['A', 'RRSIG'], plain: ['A'] }, 1],
    // Denial: NSEC and the SOA's RRSIG in the authority section are left out for plain clients too.
    ['neg-do-first.example.com', 'do', { do: ['SOA', 'NSEC', 'RRSIG'], plain: ['SOA'] }, 1],
    ['neg-plain.always.example.com', 'plain', { do: ['SOA', 'NSEC', 'RRSIG'], plain: ['SOA'] }, 2],
  ];
  for (const [name, first, want, upstreamQueries] of cases) {
    it(`${name}: ${first} first, then the other kind; miss, hit and replay alike`, async () => {
      const order: Array<'do' | 'plain'> = first === 'do' ? ['do', 'plain'] : ['plain', 'do'];
      for (const kind of [...order, ...order]) {
        // Three in a row: the first a miss or a hit, the second a hit, the third a replay of the second's bytes.
        for (let i = 0; i < 3; i++) {
          const r = await dig(port, name, 'A', ...(kind === 'do' ? ['+dnssec'] : []));
          expect(all(r), `${kind} query ${i + 1}\n${r.raw}`).toEqual(want[kind]);
        }
      }
      expect(asked(name)).toBe(upstreamQueries);
    });
  }

  it('gives the AD bit of a validated answer to clients that set DO or AD (dig does by default), not to those that set neither (RFC 6840 5.8, as CoreDNS)', async () => {
    const name = 'ad.example.com';
    const rows: Array<[string[], boolean, string[]]> = [
      [['+dnssec'], true, ['A', 'RRSIG']],
      [[], true, ['A']],
      [['+noadflag'], false, ['A']],
    ];
    for (const [opts, ad, answer] of rows) {
      for (let i = 0; i < 3; i++) {
        const r = await dig(port, name, 'A', ...opts);
        expect({ ad: r.ad, answer: r.answer }, `${opts.join(' ')} query ${i + 1}\n${r.raw}`).toEqual({ ad, answer });
      }
    }
    expect(asked(name)).toBe(1);
  });

  it('asks upstream with AD set, so that a validating upstream reports validation to clients without DO (RFC 6840 5.7)', async () => {
    // An upstream that sets AD only when the query asked with AD or DO, as RFC 6840 5.7 lets it (unbound does so).
    const strict = await startUpstream((q) => ({ authenticated: q.ad || q.dnssecOk, answers: [a(q.name, '192.0.2.54')] }));
    const d = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', '--upstream', strict.hostPort.text]);
    try {
      const p = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(d.logs())?.[1], 15_000));
      // dig sets AD by default, without DO: it is told that the answer was validated, first answer and cache hit.
      for (let i = 0; i < 2; i++) expect((await dig(p, 'validated.example.com', 'A')).ad, `query ${i + 1}`).toBe(true);
      expect(await dig(p, 'validated.example.com', 'A', '+noadflag')).toMatchObject({ ad: false, answer: ['A'] });
      const asks = strict.seen.filter((q) => q.name === 'validated.example.com');
      expect(asks.map((q) => ({ ad: q.ad, dnssecOk: q.dnssecOk }))).toEqual([{ ad: true, dnssecOk: false }]);
    } finally {
      await d.stop();
      await strict.close();
    }
  });

  it('keeps an RRSIG a plain client asked for by type, as CoreDNS keeps the asked type', async () => {
    for (let i = 0; i < 3; i++) expect((await dig(port, 'sig.example.com', 'RRSIG')).answer).toEqual(['RRSIG']);
  });
});

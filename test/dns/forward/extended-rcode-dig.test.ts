// `netplane dns` as users run it, forwarding to an upstream that answers BADVERS (rcode 16: 0 in the header, 1 in
// its OPT record's extended rcode) with an SOA, or SERVFAIL with an extended DNS error (RFC 8914, option 15), queried
// with dig. CoreDNS's forward relays the upstream's message, its OPT record's rcode bits and options included (its
// request.SizeAndDo keeps an upstream's options). Before: BADVERS became SERVFAIL (a NOERROR NODATA, cached for the
// SOA's minimum, before that) and the extended error was dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { HostRunner } from '../../../runtime/exec.ts';
import { soa, startUpstream, type FakeUpstream } from './fake-upstream.ts';
import { startDns, type DnsProcess } from '../process.ts';

const host = new HostRunner();
const listen = 63610;

/** An extended DNS error option: INFO-CODE, then EXTRA-TEXT (RFC 8914 §2). */
const ede = (code: number, text: string) => ({ code: 15, data: Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(text)]) });

describe('dig through netplane dns to an upstream answering an extended rcode or an extended error', () => {
  let up: FakeUpstream;
  let dns: DnsProcess;
  beforeAll(async () => {
    up = await startUpstream((q) =>
      q.name.startsWith('bogus') ? { rcode: 'SERVFAIL', ednsOptions: [ede(6, 'signature expired')] } : { extendedRcode: 16, authorities: [soa('example.com', 60, 60)] },
    );
    dns = await startDns(['--listen', `127.0.0.1:${listen}`, '--lameduck', '0s', '--upstream', up.hostPort.text]);
    await waitFor('dns listening', () => dns.logs().includes(`udp://127.0.0.1:${listen}`), 15_000);
  });
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });

  const dig = async (...args: string[]) => (await host.run('dig', ['@127.0.0.1', '-p', String(listen), '+time=3', '+tries=1', ...args])).stdout;

  it('gets BADVERS relayed (SERVFAIL without EDNS0), never a cached NOERROR', async () => {
    expect(/status: (\w+)/.exec(await dig('www.example.com', 'A'))?.[1]).toBe('BADVERS');
    expect(/status: (\w+)/.exec(await dig('+tcp', 'www.example.com', 'A'))?.[1]).toBe('BADVERS');
    expect(/status: (\w+)/.exec(await dig('+noedns', 'www.example.com', 'A'))?.[1]).toBe('SERVFAIL');
    const asked = up.seen.filter((q) => q.name === 'www.example.com').length;
    expect(asked).toBe(3);
    const metrics = (await dns.admin('/metrics')).body;
    expect(metrics).toMatch(/coredns_forward_responses_total\{rcode="BADVERS",to="127\.0\.0\.1:\d+"\} 3/);
    expect(metrics).toMatch(/coredns_dns_responses_total\{[^}]*rcode="BADVERS"[^}]*\} 2/);
    expect(metrics).toMatch(/coredns_cache_entries\{[^}]*type="denial"\} 0/);
  });

  it("relays the upstream's extended DNS error with its SERVFAIL", async () => {
    const out = await dig('bogus.example.com', 'A');
    expect(/status: (\w+)/.exec(out)?.[1]).toBe('SERVFAIL');
    expect(out).toMatch(/EDE: 6 \(DNSSEC Bogus\): \(signature expired\)/);
  });
});

// `netplane dns` as users run it, forwarding to an upstream that answers BADVERS (rcode 16: 0 in the header, 1 in
// its OPT record's extended rcode) with an SOA, queried with dig: the client gets SERVFAIL both times (it read as a
// NOERROR NODATA before, cached for the SOA's minimum), and the forward metrics count BADVERS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { HostRunner } from '../../../runtime/exec.ts';
import { soa, startUpstream, type FakeUpstream } from './fake-upstream.ts';
import { startDns, type DnsProcess } from '../process.ts';

const host = new HostRunner();
const listen = 63610;

describe('dig through netplane dns to an upstream answering BADVERS', () => {
  let up: FakeUpstream;
  let dns: DnsProcess;
  beforeAll(async () => {
    up = await startUpstream(() => ({ extendedRcode: 16, authorities: [soa('example.com', 60, 60)] }));
    dns = await startDns(['--listen', `127.0.0.1:${listen}`, '--lameduck', '0s', '--upstream', up.hostPort.text]);
    await waitFor('dns listening', () => dns.logs().includes(`udp://127.0.0.1:${listen}`), 15_000);
  });
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });

  it('gets SERVFAIL, never a cached NOERROR', async () => {
    for (let i = 0; i < 2; i++) {
      const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(listen), '+time=3', '+tries=1', 'www.example.com', 'A']);
      expect(/status: (\w+)/.exec(stdout)?.[1]).toBe('SERVFAIL');
    }
    const asked = up.seen.filter((q) => q.name === 'www.example.com').length;
    expect(asked).toBe(2);
    const metrics = (await dns.admin('/metrics')).body;
    expect(metrics).toMatch(/coredns_forward_responses_total\{rcode="BADVERS",to="127\.0\.0\.1:\d+"\} 2/);
    expect(metrics).toMatch(/coredns_cache_entries\{[^}]*type="denial"\} 0/);
  });
});

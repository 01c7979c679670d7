// `netplane dns` as users run it, forwarding to an upstream that tailors its answers to the EDNS Client Subnet
// (RFC 7871, option 8), queried with dig +subnet. CoreDNS's forward relays the client's OPT record, options included,
// but its cache keys on name, type, class, DO and CD alone, so one subnet's answer is served to every other. Here
// the subnet goes upstream, and the cache and single flight keep subnets apart. Before: the upstream saw no option
// and every subnet got the answer for none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { HostRunner } from '../../../runtime/exec.ts';
import { a, startUpstream, type FakeUpstream, type Reply, type SeenQuery } from './fake-upstream.ts';
import { startDns, type DnsProcess } from '../process.ts';

const host = new HostRunner();

/** Answers 10.9.<third octet of the subnet>.1 with SCOPE /24 and the option echoed; 10.9.0.1 without a subnet. */
function tailored(q: SeenQuery): Reply {
  const ecs = q.options.find((o) => o.code === 8);
  if (!ecs) return { answers: [a(q.name, '10.9.0.1', 300)] };
  const echoed = Buffer.from(ecs.data);
  echoed[3] = 24;
  return { answers: [a(q.name, `10.9.${ecs.data[6] ?? 0}.1`, 300)], ednsOptions: [{ code: 8, data: echoed }] };
}

describe('dig +subnet through netplane dns to an upstream that tailors answers to the client subnet', () => {
  let up: FakeUpstream;
  let dns: DnsProcess;
  let port: number;
  beforeAll(async () => {
    up = await startUpstream(tailored);
    dns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', '--upstream', up.hostPort.text]);
    port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  });
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });

  /** The answer's address and the CLIENT-SUBNET dig read in the response ('' without one). */
  const dig = async (name: string, ...opts: string[]) => {
    const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=3', '+tries=1', '+cookie', ...opts, name, 'A']);
    return { address: /ANSWER SECTION:\n\S+\s+\d+\s+IN\s+A\s+(\S+)/.exec(stdout)?.[1], subnet: /CLIENT-SUBNET: (\S+)/.exec(stdout)?.[1] ?? '', raw: stdout };
  };

  it('sends the subnet upstream (no cookie), and answers each subnet its own answer, from upstream and then from the cache', async () => {
    const rows: Array<[string[], string, string]> = [
      [['+subnet=10.1.1.0/24'], '10.9.1.1', '10.1.1.0/24/24'],
      [['+subnet=10.2.2.0/24'], '10.9.2.1', '10.2.2.0/24/24'],
      [[], '10.9.0.1', ''],
      [['+tcp', '+subnet=10.3.3.0/24'], '10.9.3.1', '10.3.3.0/24/24'],
    ];
    for (const round of ['miss', 'hit']) {
      for (const [opts, address, subnet] of rows) {
        const got = await dig('www.example.com', ...opts);
        expect({ address: got.address, subnet: got.subnet }, `${round} ${opts.join(' ')}\n${got.raw}`).toEqual({ address, subnet });
      }
    }
    // Each subnet (and no subnet) asked upstream once: the second round came from the cache.
    // ECS is FAMILY 1, SOURCE 24, SCOPE 0, then the subnet's three address bytes (the loop probe at start is left out).
    const asked = up.seen.filter((q) => q.name === 'www.example.com');
    expect(asked.map((q) => q.options.map((o) => `${o.code}:${o.data.toString('hex')}`).join(' '))).toEqual(['8:000118000a0101', '8:000118000a0202', '', '8:000118000a0303']);
    const metrics = (await dns.admin('/metrics')).body;
    expect(metrics).toMatch(/coredns_cache_hits_total\{[^}]*type="success"[^}]*\} 4/);
  });
});

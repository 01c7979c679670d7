// `netplane dns` as users run it, forwarding to an upstream that tailors its answers to the EDNS Client Subnet
// (RFC 7871, option 8), queried with dig +subnet. CoreDNS's forward relays the client's OPT record, options included,
// but its cache keys on name, type, class, DO and CD alone, so one subnet's answer is served to every other. Here
// the subnet goes upstream, an answer is shared only within the SCOPE the upstream gave (RFC 7871 §7.3.1), and a
// malformed subnet gets FORMERR instead of being relayed.
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

  it('answers another client of the same /24 from the cache (SCOPE 24, RFC 7871 §7.3.1), with its own subnet echoed', async () => {
    const rows: Array<[string, string, string]> = [
      ['+subnet=10.5.5.0/24', '10.9.5.1', '10.5.5.0/24/24'],
      ['+subnet=10.5.5.128/25', '10.9.5.1', '10.5.5.128/25/24'],
      ['+subnet=10.6.6.0/24', '10.9.6.1', '10.6.6.0/24/24'],
    ];
    for (const [opt, address, subnet] of rows) {
      const got = await dig('share.example.com', opt);
      expect({ address: got.address, subnet: got.subnet }, `${opt}\n${got.raw}`).toEqual({ address, subnet });
    }
    // The /25 inside 10.5.5.0/24 came from the cache; 10.6.6.0/24 is outside the scope and was asked.
    const asked = up.seen.filter((q) => q.name === 'share.example.com');
    expect(asked.map((q) => q.options.map((o) => o.data.toString('hex')).join(' '))).toEqual(['000118000a0505', '000118000a0606']);
  });

  it('answers FORMERR, with an OPT record, to a malformed client subnet, and asks no upstream', async () => {
    // dig +subnet clamps /33 to /32, so the options are written raw: SOURCE 33, a bit set past SOURCE /23, FAMILY 3.
    for (const raw of ['00012100c000020100', '00011700c00003', '00030000']) {
      const got = await dig('bad.example.com', `+ednsopt=8:${raw}`);
      expect(got.raw, raw).toMatch(/status: FORMERR/);
      expect(got.raw, raw).toMatch(/OPT PSEUDOSECTION/);
    }
    expect(up.seen.filter((q) => q.name === 'bad.example.com')).toEqual([]);
  });
});

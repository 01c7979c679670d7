// netplane dns as users run it, forwarding to scripted upstreams and queried with dig: the TTLs clients get for
// forwarded answers (CoreDNS `cache 30` and its success/denial TTLs), the upstream policy, and REFUSED above
// --max-concurrent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { HostRunner } from '../../runtime/exec.ts';
import { a, soa, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { silentUpstream, startDns, type DnsProcess } from './process.ts';

const host = new HostRunner();

/** dig's status and its answer and authority records as [name, ttl, type]. */
async function dig(port: number, name: string, ...opts: string[]) {
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=3', '+tries=1', '+nocmd', '+nostats', ...opts, name, 'A']);
  const section = (title: string) => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => {
      const [owner = '', ttl = '', , type = ''] = l.split(/\s+/);
      return { owner, ttl: Number(ttl), type };
    });
  };
  return { status: /status: (\w+)/.exec(stdout)?.[1], answer: section('ANSWER'), authority: section('AUTHORITY'), raw: stdout };
}

/** Starts `netplane dns` on 127.0.0.1 port 0 and resolves with the UDP port it logged. */
async function serve(args: string[]): Promise<{ dns: DnsProcess; port: number }> {
  const dns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', ...args]);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  return { dns, port };
}

/** TTLs by name: `ttlN.` answers A with TTL N, `negN.` NXDOMAIN with an SOA of TTL and MINIMUM N. */
const byTtl = (q: { name: string }) => {
  const m = /^(ttl|neg)(\d+)\./.exec(q.name.toLowerCase());
  const n = Number(m?.[2] ?? 60);
  return m?.[1] === 'neg' ? { rcode: 'NXDOMAIN' as const, authorities: [soa('example.com', n, n)] } : { answers: [a(q.name, '192.0.2.7', n)] };
};

describe('forwarded TTLs', () => {
  let up: FakeUpstream;
  const running: DnsProcess[] = [];
  beforeAll(async () => {
    up = await startUpstream(byTtl);
  });
  afterAll(async () => {
    await Promise.all(running.map((d) => d.stop()));
    await up?.close();
  });
  const start = async (...args: string[]) => {
    const s = await serve(['--upstream', up.hostPort.text, ...args]);
    running.push(s.dns);
    return s.port;
  };

  it('caps positive and negative TTLs at 30 s by default, as `cache 30`, and raises short ones to 5 s, on misses and hits', async () => {
    const port = await start();
    const cases: Array<[string, string, number]> = [
      ['ttl86400.example.com', 'answer', 30],
      ['ttl300.example.com', 'answer', 30],
      ['ttl20.example.com', 'answer', 20],
      ['ttl1.example.com', 'answer', 5],
      ['neg3600.example.com', 'authority', 30],
      ['neg1.example.com', 'authority', 5],
    ];
    for (const [name, where, ttl] of cases) {
      for (const round of ['miss', 'hit']) {
        const r = await dig(port, name);
        const rr = (where === 'answer' ? r.answer : r.authority)[0];
        // A hit may be a second older.
        expect(rr?.ttl, `${name} ${round}\n${r.raw}`).toBeGreaterThanOrEqual(ttl - 1);
        expect(rr?.ttl, `${name} ${round}\n${r.raw}`).toBeLessThanOrEqual(ttl);
      }
    }
  });

  it('--cache-ttl sets both caps; --cache-success-ttl and --cache-denial-ttl MAX[:MIN] set each', async () => {
    const port = await start('--cache-ttl', '100', '--cache-denial-ttl', '10:2');
    expect((await dig(port, 'ttl86400.one.example.com')).answer[0]?.ttl).toBe(100);
    expect((await dig(port, 'neg3600.one.example.com')).authority[0]?.ttl).toBe(10);
    expect((await dig(port, 'neg1.one.example.com')).authority[0]?.ttl).toBe(2);
    expect((await dig(port, 'ttl1.one.example.com')).answer[0]?.ttl).toBe(5);
    const other = await start('--cache-success-ttl', '3600:0');
    expect((await dig(other, 'ttl86400.two.example.com')).answer[0]?.ttl).toBe(3600);
    expect((await dig(other, 'neg3600.two.example.com')).authority[0]?.ttl).toBe(30);
  });

  it('refuses a cap of 0 with one sentence naming the flag', async () => {
    const dns = await startDns(['--listen', '127.0.0.1:0', '--upstream', up.hostPort.text, '--cache-success-ttl', '0']);
    running.push(dns);
    expect(await dns.exited).not.toBe(0);
    expect(dns.logs()).toMatch(/--cache-success-ttl "0": must be SECONDS\[:MINSECONDS\]/);
  });
});

describe('upstream policy', () => {
  const running: Array<{ close(): Promise<void> } | DnsProcess> = [];
  afterAll(async () => {
    await Promise.all(running.map((r) => ('stop' in r ? r.stop() : r.close())));
  });
  const run = async (...args: string[]) => {
    const ups = [await startUpstream(byTtl), await startUpstream(byTtl)];
    running.push(...ups);
    const { dns, port } = await serve([...ups.flatMap((u) => ['--upstream', u.hostPort.text]), ...args]);
    running.push(dns);
    for (let i = 0; i < 20; i++) expect((await dig(port, `n${i}.example.com`)).status).toBe('NOERROR');
    // The loop check's HINFO probe goes to each upstream once.
    return ups.map((u) => u.seen.filter((q) => q.type === 'A').length);
  };

  it('spreads distinct names over the upstreams at random by default, as CoreDNS forward', async () => {
    const counts = await run();
    expect(counts[0]! + counts[1]!).toBe(20);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('--forward-policy round_robin alternates; sequential keeps to the first', async () => {
    expect(await run('--forward-policy', 'round_robin')).toEqual([10, 10]);
    expect(await run('--forward-policy', 'sequential')).toEqual([20, 0]);
  });
});

describe('--max-concurrent', () => {
  it('answers REFUSED at once above it, as CoreDNS forward, and counts it', async () => {
    const silent = await silentUpstream();
    const { dns, port } = await serve(['--upstream', `127.0.0.1:${silent.port}`, '--max-concurrent', '1']);
    try {
      // Never answered upstream: it holds the one slot (dig gives up before the server's 5 s budget ends).
      const pending = dig(port, 'first.example.com').catch(() => undefined);
      await waitFor('the first query upstream', () => silent.received() >= 2);
      const started = performance.now();
      const r = await dig(port, 'second.example.com');
      expect(r.status, r.raw).toBe('REFUSED');
      expect(performance.now() - started).toBeLessThan(1000);
      expect((await dns.admin('/metrics')).body).toMatch(/^coredns_forward_max_concurrent_rejects_total(\{[^}]*\})? 1$/m);
      await pending;
    } finally {
      await dns.stop();
      silent.socket.close();
    }
  });
});

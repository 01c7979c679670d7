// netplane dns forwarding over DNS over TLS (CoreDNS `forward . tls://ADDR { tls_servername NAME }`) to a real
// DoT server, Unbound, on 127.0.0.1, queried with dig: certificate checks, connections shared and expired,
// failover when an upstream dies, and bad flag values.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { relay, serverCert, testCa, startUnbound, type DotServer, type Relay } from './forward/dot-upstream.ts';
import { digAddresses as dig, metricValue, startDns, type DnsProcess } from './process.ts';

let dir: string;
/** The CA that signed every server certificate, and one that signed none. */
let caFile: string;
let otherCaFile: string;
let serverPems: Awaited<ReturnType<typeof serverCert>>;
/** Unbound with a certificate for dot.test only, answering 192.0.2.1; one for 127.0.0.1 (and dot.test), 192.0.2.2. */
let byName: DotServer;
let byAddress: DotServer;
const running: Array<DnsProcess | DotServer | Relay> = [];

/** Starts `netplane dns` on 127.0.0.1 port 0 and resolves with the UDP port it logged. */
async function serve(args: string[]): Promise<{ dns: DnsProcess; port: number }> {
  const dns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s', ...args]);
  running.push(dns);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  return { dns, port };
}

const stopAll = async () => {
  const items = running.splice(0).reverse();
  for (const r of items) await ('proc' in r ? r.stop() : 'start' in r ? r.stop() : r.close());
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-dot-'));
  const ca = await testCa();
  caFile = join(dir, 'ca.pem');
  otherCaFile = join(dir, 'other-ca.pem');
  await writeFile(caFile, ca.cert);
  await writeFile(otherCaFile, (await testCa('another test CA')).cert);
  serverPems = await serverCert(ca, ['dot.test']);
  byName = await startUnbound(serverPems, '192.0.2.1');
  byAddress = await startUnbound(await serverCert(ca, ['dot.test'], ['127.0.0.1']), '192.0.2.2');
}, 30_000);

afterAll(async () => {
  await stopAll();
  await byName?.stop();
  await byAddress?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the upstream certificate', () => {
  afterEach(stopAll);
  // [case, flags, answer wanted; or the reason logged]
  const cases: Array<[string, () => string[], string | RegExp]> = [
    ['matches --upstream-tls-servername', () => ['--upstream', `tls://127.0.0.1:${byName.port}`, '--upstream-tls-servername', 'dot.test', '--upstream-tls-ca', caFile], '192.0.2.1'],
    ['matches the #NAME of the upstream', () => ['--upstream', `tls://127.0.0.1:${byName.port}#dot.test`, '--upstream-tls-ca', caFile], '192.0.2.1'],
    ['matches the address without a name', () => ['--upstream', `tls://127.0.0.1:${byAddress.port}`, '--upstream-tls-ca', caFile], '192.0.2.2'],
    [
      "matches a stub domain's #NAME",
      () => ['--upstream', '127.0.0.1:9', '--stub-domain', `test=tls://127.0.0.1:${byName.port}#dot.test`, '--upstream-tls-ca', caFile],
      '192.0.2.1',
    ],
    ['names another host', () => ['--upstream', `tls://127.0.0.1:${byName.port}#other.test`, '--upstream-tls-ca', caFile], /Host: other\.test\. is not in the cert's altnames: DNS:dot\.test/],
    ['lacks the address when no name is given', () => ['--upstream', `tls://127.0.0.1:${byName.port}`, '--upstream-tls-ca', caFile], /IP: 127\.0\.0\.1 is not in the cert's list/],
    ['is signed by a CA the system store does not hold', () => ['--upstream', `tls://127.0.0.1:${byName.port}#dot.test`], /unable to verify the first certificate|unable to get local issuer certificate/],
    ['is signed by another CA than --upstream-tls-ca', () => ['--upstream', `tls://127.0.0.1:${byName.port}#dot.test`, '--upstream-tls-ca', otherCaFile], /unable to verify the first certificate|unable to get local issuer certificate/],
  ];
  for (const [name, flags, want] of cases) {
    it(name, async () => {
      const { dns, port } = await serve(flags());
      if (typeof want === 'string') {
        const r = await dig(port, 'www.test');
        expect(r.status, r.raw).toBe('NOERROR');
        expect(r.addresses).toEqual([want]);
        return;
      }
      // Never accepted: SERVFAIL, every time; the reason logged once, the failures counted.
      for (const n of ['a.test', 'b.test', 'c.test']) expect((await dig(port, n)).status).toBe('SERVFAIL');
      const logged = dns.logs().split('\n').filter((l) => l.includes('TLS certificate does not verify'));
      expect(logged, dns.logs()).toHaveLength(1);
      expect(logged[0]).toMatch(want);
      const to = `to="127.0.0.1:${byName.port}"`;
      expect(await metricValue(dns, 'coredns_forward_requests_total', to)).toBeGreaterThanOrEqual(3);
      expect(await metricValue(dns, 'coredns_forward_responses_total', to)).toBe(0);
      // Down after two failures and probed over TLS every 0.5 s, each probe failing.
      await waitFor('failed health checks', async () => (await metricValue(dns, 'coredns_proxy_healthcheck_failures_total', to)) >= 2);
    });
  }
});

describe('connections to a TLS upstream', () => {
  afterEach(stopAll);

  it('many concurrent queries share one kept-open connection, their replies matched by ID', async () => {
    const counted = await relay(byName.port);
    running.push(counted);
    const { dns, port } = await serve(['--upstream', `tls://127.0.0.1:${counted.port}#dot.test`, '--upstream-tls-ca', caFile]);
    expect((await dig(port, 'first.test')).status).toBe('NOERROR');
    const names = Array.from({ length: 40 }, (_, i) => `n${i}.many.test`);
    // Each dig gets a source port of its own: dig sets SO_REUSEADDR on its UDP socket, so Linux may give two digs
    // running at once the same ephemeral port, and both replies then reach the later one (seen in a packet capture:
    // one dig timed out while another printed "ID mismatch" with the first one's answer). Ports 20000-29999 lie
    // below Linux's ephemeral range, where the other tests' sockets are.
    const base = 20_000 + Math.floor(Math.random() * 9_900);
    const results = await Promise.all(names.map((n, i) => dig(port, n, base + i)));
    const failed = results.filter((r) => r.status !== 'NOERROR').map((r) => r.raw);
    expect(results.map((r) => `${r.status} ${r.addresses.join()}`), `${failed.join('\n')}\n${dns.logs()}`).toEqual(names.map(() => 'NOERROR 192.0.2.1'));
    expect(counted.accepted()).toBe(1);
    expect(await metricValue(dns, 'coredns_proxy_conn_cache_hits_total', `to="127.0.0.1:${counted.port}"`)).toBeGreaterThanOrEqual(40);
  });

  it('closes a connection unused for --upstream-tls-expire and opens a new one for the next query', async () => {
    const counted = await relay(byName.port);
    running.push(counted);
    const { port } = await serve(['--upstream', `tls://127.0.0.1:${counted.port}#dot.test`, '--upstream-tls-ca', caFile, '--upstream-tls-expire', '1s']);
    // The loop check at start may have opened the first connection already: wait until that one has expired too.
    await waitFor('no connection open', () => counted.open() === 0, 5000);
    const before = counted.accepted();
    expect((await dig(port, 'one.test')).status).toBe('NOERROR');
    expect(counted.accepted()).toBe(before + 1);
    expect(counted.open()).toBe(1);
    const opened = performance.now();
    await waitFor('the idle connection closed', () => counted.open() === 0, 5000);
    expect(performance.now() - opened).toBeGreaterThan(800);
    // netplane closed it, not Unbound (whose idle timeout is 30 s).
    expect(counted.closedBy().at(-1)).toBe('client');
    const r = await dig(port, 'two.test');
    expect(r.status, r.raw).toBe('NOERROR');
    expect(counted.accepted()).toBe(before + 2);
  });

  it('an upstream that dies: the next one answers; once it is back it is used again', async () => {
    const first = await startUnbound(serverPems, '192.0.2.10');
    running.push(first);
    const upstreams = [first.port, byName.port].flatMap((p) => ['--upstream', `tls://127.0.0.1:${p}#dot.test`]);
    const { port } = await serve([...upstreams, '--upstream-tls-ca', caFile, '--forward-policy', 'sequential']);
    expect((await dig(port, 'before.test')).addresses).toEqual(['192.0.2.10']);
    await first.stop(true);
    for (const n of ['dead1.test', 'dead2.test', 'dead3.test']) {
      const r = await dig(port, n);
      expect(`${r.status} ${r.addresses.join()}`, r.raw).toBe('NOERROR 192.0.2.1');
    }
    await first.start();
    let i = 0;
    await waitFor('the first upstream answering again', async () => (await dig(port, `back${i++}.test`)).addresses[0] === '192.0.2.10', 10_000);
  });
});

describe('bad flag values', () => {
  afterEach(stopAll);
  // [flags, the sentence printed]
  const cases: Array<[string[], RegExp]> = [
    [['--upstream', 'tls://dns.google'], /--upstream "tls:\/\/dns\.google": ADDR must be an IP address/],
    [['--upstream', 'tls://1.1.1.1:0'], /--upstream "tls:\/\/1\.1\.1\.1:0": PORT must be from 1 to 65535/],
    [['--upstream', 'tls://[1.1.1.1]:853'], /ADDR must be an IP address \(IPv6 in brackets/],
    [['--upstream', 'tls://1.1.1.1#1.1.1.1'], /NAME must be a host name, not an IP address/],
    [['--upstream', 'tls://1.1.1.1#bad_name'], /NAME must be a host name such as cloudflare-dns\.com/],
    [['--upstream', 'https://1.1.1.1'], /must be ADDR:PORT \(plain DNS\), tcp:\/\/ADDR\[:PORT\] \(plain DNS over TCP only\) or tls:\/\/ADDR\[:PORT\]\[#NAME\]/],
    [['--upstream', 'tcp://1.1.1.1#dns.example'], /#NAME is for DNS over TLS only: write tls:\/\/ADDR\[:PORT\]\[#NAME\], or tcp:\/\/ADDR\[:PORT\] without a name/],
    [['--upstream', 'tcp://one.one'], /ADDR must be an IP address .* in tcp:\/\/ADDR\[:PORT\], e\.g\. tcp:\/\/10\.96\.0\.10/],
    [['--upstream', 'tls://1.1.1.1', '--upstream-expire', '5s', '--upstream-tls-expire', '5s'], /--upstream-tls-expire is the older name of --upstream-expire; give one of them/],
    [['--upstream', '1.1.1.1:53#dns.example'], /#NAME is for DNS over TLS only/],
    [['--stub-domain', 'corp.example=tls://corp-dns'], /--stub-domain "corp\.example=tls:\/\/corp-dns": ADDR must be an IP address/],
    [['--upstream', '1.1.1.1:53', '--upstream-tls-servername', 'dns.example'], /--upstream-tls-servername dns\.example names the certificate of tls:\/\/ --upstream servers, and none is given/],
    [['--upstream', 'tls://1.1.1.1', '--upstream-tls-ca', '/nonexistent/ca.pem'], /--upstream-tls-ca "\/nonexistent\/ca\.pem": cannot be read/],
    [['--upstream', 'tls://1.1.1.1', '--upstream-tls-ca', 'NO-CERTS'], /--upstream-tls-ca "[^"]*no-certs\.pem": holds no PEM certificate/],
  ];
  for (const [flags, sentence] of cases) {
    it(flags.join(' '), async () => {
      // NO-CERTS: a file that holds no certificate.
      const noCerts = join(dir, 'no-certs.pem');
      await writeFile(noCerts, 'not a certificate\n');
      const dns = await startDns(['--listen', '127.0.0.1:0', ...flags.map((f) => (f === 'NO-CERTS' ? noCerts : f))]);
      running.push(dns);
      expect(await dns.exited).toBe(2);
      expect(dns.logs()).toMatch(sentence);
    });
  }
});

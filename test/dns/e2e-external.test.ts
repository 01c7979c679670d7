// netplane dns answering an external zone (--external-zone, CoreDNS k8s_external) to dig: a LoadBalancer Service's
// ingress address and SRV, the apex's SOA, a name that is not there; and a Corefile's k8s_external.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';
import { dig, startDns, type DnsProcess } from './process.ts';

const objects = [
  service('shop', { type: 'LoadBalancer', clusterIP: '10.96.1.1', ports: [{ name: 'https', port: 443 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } } }),
  service('legacy', { clusterIP: '10.96.1.2', externalIPs: ['198.51.100.7'], ports: [{ name: 'http', port: 8080 }] }),
];
const running: DnsProcess[] = [];
let dir: string;

async function serve(args: string[]): Promise<number> {
  const dns = await startDns(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--lameduck', '0s', ...args], objects);
  running.push(dns);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  // SERVFAIL until the manifests are loaded.
  await waitFor('the view loaded', async () => (await dig(port, 'shop.default.example.org')).status !== 'SERVFAIL', 10_000);
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-external-'));
});
afterAll(async () => {
  await Promise.all(running.map((d) => d.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('--external-zone', () => {
  it("answers a Service's external addresses and ports, the apex's SOA, and NXDOMAIN for the rest", async () => {
    const port = await serve(['--external-zone', 'example.org', '--external-ttl', '30']);
    expect(await dig(port, 'shop.default.example.org')).toEqual({ status: 'NOERROR', answer: ['shop.default.example.org. IN A 203.0.113.10'] });
    expect(await dig(port, 'legacy.default.example.org')).toEqual({ status: 'NOERROR', answer: ['legacy.default.example.org. IN A 198.51.100.7'] });
    expect(await dig(port, '_https._tcp.shop.default.example.org', 'SRV')).toEqual({ status: 'NOERROR', answer: ['_https._tcp.shop.default.example.org. IN SRV 0 100 443 shop.default.example.org.'] });
    expect((await dig(port, 'example.org', 'SOA')).answer).toEqual(['example.org. IN SOA ns1.dns.example.org. hostmaster.example.org. 12345 14400 3600 604800 30']);
    expect(await dig(port, 'nothing.default.example.org')).toEqual({ status: 'NXDOMAIN', answer: [] });
    // The cluster zone is answered as before.
    expect((await dig(port, 'shop.default.svc.cluster.local')).answer).toEqual(['shop.default.svc.cluster.local. IN A 10.96.1.1']);
  });

  it("is read from a Corefile's k8s_external, with its apex and TTL", async () => {
    const conf = join(dir, 'Corefile');
    await writeFile(conf, '.:53 {\n  kubernetes cluster.local\n  k8s_external example.org {\n    apex ns\n    ttl 60\n  }\n  forward . 127.0.0.1:9\n}\n');
    const port = await serve(['--conf', conf]);
    expect((await dig(port, 'example.org', 'SOA')).answer).toEqual(['example.org. IN SOA ns1.ns.example.org. hostmaster.example.org. 12345 14400 3600 604800 60']);
    expect(await dig(port, 'shop.default.example.org')).toEqual({ status: 'NOERROR', answer: ['shop.default.example.org. IN A 203.0.113.10'] });
  });

  it('refuses a zone that overlaps the cluster zone, in one sentence, exit code 2', async () => {
    const dns = await startDns(['--listen', '127.0.0.1:0', '--external-zone', 'svc.cluster.local']);
    running.push(dns);
    expect(await dns.exited).toBe(2);
    expect(dns.logs().trim()).toBe('netplane dns: --external-zone svc.cluster.local overlaps the cluster zone cluster.local: give a zone of its own, such as example.org');
  });
});

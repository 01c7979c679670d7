// netplane dns run on NodeLocal DNSCache's Corefile (the node-local-dns ConfigMap of kubernetes/kubernetes'
// cluster/addons/dns/nodelocaldns, its placeholders filled as node-cache fills them): no kubernetes plugin, so no
// cluster zone and no cluster read at all (no --manifests, no kubeconfig), the cluster zone and in-addr.arpa asked of
// the cluster's DNS over TCP only (force_tcp), every other name of another upstream; each block's cache. The cluster's
// DNS is a netplane dns answering from manifests, behind a relay that carries TCP only and counts connections; the
// other upstream is Unbound.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { relay, startUnbound, type DotServer, type Relay } from './forward/dot-upstream.ts';
import { nodeLocalCorefile } from './nodelocal-corefile.ts';
import { dig, metricValue, startDns, type DnsProcess } from './process.ts';

let dir: string;
let unbound: DotServer;
let clusterDns: DnsProcess;
let toCluster: Relay;
let nodeLocal: DnsProcess;
let port: number;
let healthPort: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-nodelocal-'));
  unbound = await startUnbound(undefined, '192.0.2.7');
  // The cluster's DNS: default/web is 10.96.0.10.
  clusterDns = await startDns(['--listen', '127.0.0.1:0', '--lameduck', '0s']);
  const clusterPort = Number(await waitFor('cluster DNS listening', () => /"tcp:\/\/127\.0\.0\.1:(\d+)"/.exec(clusterDns.logs())?.[1], 15_000));
  toCluster = await relay(clusterPort);
  port = await freePort();
  healthPort = await freePort();
  const conf = join(dir, 'Corefile');
  await writeFile(conf, nodeLocalCorefile({ domain: 'cluster.local', local: '127.0.0.1', dnsServer: '', port, clusterDns: `127.0.0.1:${toCluster.port}`, upstreams: `127.0.0.1:${unbound.port}`, healthPort }));
  nodeLocal = await startDns(['--conf', conf, '--lameduck', '0s'], [], { noSource: true });
  await waitFor('node-local DNS listening', () => nodeLocal.logs().includes(`udp://127.0.0.1:${port}`) || nodeLocal.proc.exitCode !== null, 15_000);
  expect(nodeLocal.proc.exitCode, nodeLocal.logs()).toBeNull();
  // The loop check at start asks through each block's forwarder: a connection each for the three blocks of the cluster's DNS.
  await waitFor('the loop checks', () => toCluster.accepted() === 3, 10_000);
}, 60_000);

afterAll(async () => {
  await nodeLocal?.stop();
  await toCluster?.close();
  await clusterDns?.stop();
  await unbound?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("NodeLocal DNSCache's Corefile", () => {
  it('reads no cluster: no source named, ready at once, its health where the Corefile says', async () => {
    expect(nodeLocal.logs()).toMatch(/"source":"none"/);
    expect((await nodeLocal.admin('/readyz')).status).toBe(200);
    const health = await fetch(`http://127.0.0.1:${healthPort}/health`);
    expect(health.status).toBe(200);
  });

  it("asks the cluster's DNS for the cluster zone over TCP only, and caches the answer", async () => {
    const r = await dig(port, 'web.default.svc.cluster.local');
    expect(r, nodeLocal.logs()).toEqual({ status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'] });
    // The relay carries TCP only: the answer came over it, on the block's connection its loop check opened.
    expect(toCluster.accepted()).toBe(3);
    const to = `to="127.0.0.1:${toCluster.port}"`;
    expect(await metricValue(nodeLocal, 'coredns_proxy_conn_cache_hits_total', `${to},proto="tcp"`)).toBeGreaterThanOrEqual(1);
    expect(await metricValue(nodeLocal, 'coredns_forward_requests_total', to)).toBe(1);
    // Again: from the cluster zone block's cache, not asked again.
    expect((await dig(port, 'web.default.svc.cluster.local')).answer).toEqual(['web.default.svc.cluster.local. IN A 10.96.0.10']);
    expect(await metricValue(nodeLocal, 'coredns_forward_requests_total', to)).toBe(1);
    expect(await metricValue(nodeLocal, 'coredns_cache_hits_total', 'zones="cluster.local."')).toBeGreaterThanOrEqual(1);
  });

  it("passes on the cluster's answers as they are: NXDOMAIN for a Service that does not exist, PTR for a cluster IP", async () => {
    expect((await dig(port, 'nothing.default.svc.cluster.local')).status).toBe('NXDOMAIN');
    expect(await dig(port, '10.0.96.10.in-addr.arpa', 'PTR')).toEqual({ status: 'NOERROR', answer: ['10.0.96.10.in-addr.arpa. IN PTR web.default.svc.cluster.local.'] });
    expect(await metricValue(nodeLocal, 'coredns_forward_requests_total', `to="127.0.0.1:${toCluster.port}"`)).toBe(3);
    expect(toCluster.accepted()).toBe(3);
  });

  it('forwards every other name to the upstreams of the root block, over UDP', async () => {
    expect(await dig(port, 'www.example.test')).toEqual({ status: 'NOERROR', answer: ['www.example.test. IN A 192.0.2.7'] });
    expect(await metricValue(nodeLocal, 'coredns_forward_requests_total', `to="127.0.0.1:${unbound.port}"`)).toBe(1);
  });
});

describe('--forward-only', () => {
  it('refuses the flags of a cluster zone it does not answer, in one sentence, exit code 2', async () => {
    const dns = await startDns(['--listen', '127.0.0.1:0', '--forward-only', '--upstream', '127.0.0.1:9', '--autopath', '--pods', 'verified'], [], { noSource: true });
    try {
      expect(await dns.exited).toBe(2);
      expect(dns.logs()).toMatch(/netplane dns: --autopath, --pods verified are about the cluster zone, which --forward-only does not answer/);
    } finally {
      await dns.stop();
    }
  });
});

// netplane started as NodeLocal DNSCache's node-cache, with the args, environment and ConfigMap of the node-local-dns
// DaemonSet (kubernetes/kubernetes cluster/addons/dns/nodelocaldns, prepared with sed as its documentation says for
// kube-proxy's iptables mode), in a network namespace of the test's own: the local addresses on their interface, the
// template's placeholders filled from -localip and the kube-dns-upstream Service's variable, the cluster zone asked of
// the cluster's DNS (a netplane dns in the same namespace) over TCP, the health address of the Corefile, the rules
// kept out of conntrack; all of it removed at SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRunner } from '../../runtime/exec.ts';
import { service } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';
import { nodeLocalCorefile } from './nodelocal-corefile.ts';

const host = new HostRunner();
const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const ns = `np-nodecache-${process.pid}`;
const inNs = (cmd: string, args: string[], input?: string) => host.run('ip', ['netns', 'exec', ns, cmd, ...args], input);

/** The node-local-dns ConfigMap's Corefile after the documentation's sed: domain, local address and DNS server filled. */
const corefileBase = nodeLocalCorefile({ domain: 'cluster.local', local: '169.254.20.10', dnsServer: '10.96.0.10' });

interface Proc {
  proc: ChildProcess;
  logs(): string;
  exited: Promise<number | null>;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return { proc, logs: () => out, exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))) };
}

async function stop(p: Proc | undefined): Promise<number | null | undefined> {
  if (p === undefined) return undefined;
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
  return p.exited;
}

const dig = (server: string, name: string, type = 'A') => inNs('dig', [`@${server}`, '+time=2', '+tries=1', '+short', name, type]).then((o) => o.stdout.trim(), () => 'no reply');

let dir: string;
let clusterDns: Proc;
let nodeCache: Proc | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-nodecache-'));
  await writeFile(join(dir, 'web.yaml'), JSON.stringify(service('web', { clusterIP: '10.96.5.5', ports: [{ name: 'http', port: 80 }] })));
  await writeFile(join(dir, 'Corefile.base'), corefileBase);
  await host.run('ip', ['netns', 'add', ns]);
  await host.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // The cluster's DNS, behind the kube-dns-upstream Service's address (here a loopback one of the namespace).
  clusterDns = run(['dns', '--manifests', dir, '--listen', '127.0.0.2:53', '--admin', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--lameduck', '0s']);
  await waitFor('the cluster DNS answering', async () => (await dig('127.0.0.2', 'web.default.svc.cluster.local')) === '10.96.5.5', 15_000);
}, 30_000);

afterAll(async () => {
  await stop(nodeCache);
  await stop(clusterDns);
  await host.run('ip', ['netns', 'del', ns]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('netplane as node-cache', () => {
  it("runs the DaemonSet's args: addresses on nodelocaldns, the cluster zone from the cluster's DNS, its health, its metrics", async () => {
    // The DaemonSet's args, but for -basecorefile, which is /etc/coredns/Corefile.base in the pod (the ConfigMap's mount).
    nodeCache = run(['node-cache', '-localip', '169.254.20.10,10.96.0.10', '-conf', '/etc/Corefile', '-upstreamsvc', 'kube-dns-upstream', '-pidfile', '/tmp/node-cache.pid', '-basecorefile', join(dir, 'Corefile.base')], { KUBE_DNS_UPSTREAM_SERVICE_HOST: '127.0.0.2' });
    await waitFor('node-cache answering', async () => nodeCache!.proc.exitCode !== null || (await dig('169.254.20.10', 'web.default.svc.cluster.local')) === '10.96.5.5', 15_000);
    expect(nodeCache.proc.exitCode, nodeCache.logs()).toBeNull();
    // Both local addresses answer, the kube-dns one too.
    expect(await dig('10.96.0.10', 'web.default.svc.cluster.local')).toBe('10.96.5.5');
    expect(await dig('169.254.20.10', '5.5.96.10.in-addr.arpa', 'PTR')).toBe('web.default.svc.cluster.local.');

    const addresses = JSON.parse((await inNs('ip', ['-j', 'addr', 'show', 'dev', 'nodelocaldns'])).stdout) as Array<{ addr_info: Array<{ local: string }> }>;
    expect(addresses[0]?.addr_info.map((a) => a.local).filter((a) => !a.startsWith('fe80:')).sort()).toEqual(['10.96.0.10', '169.254.20.10']);
    const rules = (await inNs('nft', ['list', 'table', 'ip', 'netplane-dns'])).stdout;
    expect(rules).toContain('ip daddr { 10.96.0.10, 169.254.20.10 } udp dport 53 notrack');
    expect(rules).toContain('ip daddr { 10.96.0.10, 169.254.20.10 } tcp dport 8080 notrack');

    const health = await inNs('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://169.254.20.10:8080/health']);
    expect(health.stdout).toBe('200');
    const metrics = (await inNs('curl', ['-s', 'http://127.0.0.1:9253/metrics'])).stdout;
    expect(metrics).toMatch(/^coredns_nodecache_setup_errors_total\{errortype="interface_add"\} 0$/m);
    expect(metrics).toMatch(/^coredns_proxy_conn_cache_misses_total\{proxy_name="forward",to="127\.0\.0\.2:53",proto="tcp"\} [1-9]/m);

    // It read the template, wrote no Corefile, and said what it does not do: no warning about the Corefile itself.
    await expect(readFile('/etc/Corefile')).rejects.toThrow();
    const warnings = nodeCache.logs().split('\n').filter((l) => l.includes('"level":40')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(warnings).toEqual([
      "node-cache's -conf \"/etc/Corefile\": node-cache writes the Corefile it runs there; netplane reads -basecorefile with its placeholders filled, and writes none",
      "node-cache's -pidfile \"/tmp/node-cache.pid\": netplane writes no pid file; ignored",
      ...(warnings.some((w) => w.startsWith('this kernel has no dummy devices')) ? ['this kernel has no dummy devices (CONFIG_DUMMY): a bridge without ports holds the node-local addresses on nodelocaldns instead'] : []),
    ]);

    expect(await stop(nodeCache)).toBe(0);
    nodeCache = undefined;
    await expect(inNs('ip', ['link', 'show', 'nodelocaldns'])).rejects.toThrow();
    await expect(inNs('nft', ['list', 'table', 'ip', 'netplane-dns'])).rejects.toThrow();
  });

  it('without the Service variable, says which placeholder is left unfilled and where: exit code 2', async () => {
    const p = run(['node-cache', '-localip', '169.254.20.10', '-basecorefile', join(dir, 'Corefile.base')], { KUBE_DNS_SERVICE_HOST: '' });
    expect(await p.exited).toBe(2);
    expect(p.logs().trim().split('\n')).toHaveLength(1);
    expect(p.logs()).toMatch(/line 10: __PILLAR__CLUSTER__DNS__ is a placeholder of NodeLocal DNSCache's Corefile, and nothing filled it \(started as node-cache, netplane fills it with the cluster IP of -upstreamsvc's Service \(kube-dns unless given\) from the Service's <NAME>_SERVICE_HOST variable/);
  });
});

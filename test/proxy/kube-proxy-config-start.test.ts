// netplane proxy started as kube-proxy's DaemonSet starts kube-proxy: `--config FILE --hostname-override NAME` and
// nothing else, in a node namespace. The file's settings take effect in the kernel (its mode, masquerade-all, the
// conntrack time-outs of the namespace), on the process (oom_score_adj) and on the admin address; what netplane
// does not do is logged; a flag on the command line wins; a file that cannot be used ends the start in one sentence.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { onLogLines, type LogRecord } from '../../lab/log-lines.ts';
import { NetnsLab } from '../../lab/netns.ts';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

describe('netplane proxy --config (a KubeProxyConfiguration), in a node namespace', () => {
  let lab: NetnsLab;
  let node: string;
  let dir: string;
  let child: ChildProcess | undefined;
  let logs: LogRecord[] = [];

  const config = (more: object = {}) => ({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' },
    hostnameOverride: 'from-the-file',
    metricsBindAddress: '127.0.0.1:10249',
    healthzBindAddress: '127.0.0.1',
    mode: 'iptables',
    clusterCIDR: '10.244.0.0/16',
    iptables: { masqueradeAll: false, minSyncPeriod: '0s', syncPeriod: '0s', localhostNodePorts: false },
    nftables: { masqueradeAll: true, minSyncPeriod: '50ms', syncPeriod: '30s' },
    conntrack: { maxPerCore: 0, udpTimeout: '17s', udpStreamTimeout: '1m17s', tcpCloseWaitTimeout: '0s', tcpEstablishedTimeout: null },
    oomScoreAdj: 500,
    featureGates: { SomeGate: true },
    ...more,
  });
  const start = (args: string[]) => {
    logs = [];
    const p = lab.spawn(node, process.execPath, [bin, 'proxy', ...args]);
    onLogLines(p.stdout!, (r) => logs.push(r));
    child = p;
    return p;
  };
  const sysctl = async (name: string) => (await lab.exec(node, 'cat', [`/proc/sys/net/netfilter/${name}`])).stdout.trim();

  beforeAll(async () => {
    lab = NetnsLab.create({ id: `kpc${randomBytes(3).toString('hex')}` });
    node = await lab.ns('node');
    await lab.veth({ ns: node, ifname: 'eth0', addrs: ['192.168.51.1/24'] }, { ns: await lab.ns('peer'), ifname: 'eth0', addrs: ['192.168.51.2/24'] });
    await lab.exec(node, 'ip', ['link', 'set', 'lo', 'up']);
    dir = await mkdtemp(join(tmpdir(), 'netplane-kpc-start-'));
    await mkdir(join(dir, 'manifests'));
    await writeManifests(join(dir, 'manifests'), [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.51.1' }] } },
      svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      eps('web', 4, [['10.244.1.11', 'node1']]),
    ]);
  }, 30_000);
  afterEach(async () => {
    const p = child;
    child = undefined;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("takes its mode, node, admin address and settings from the file, the command line's --mode and --manifests winning", async () => {
    const file = join(dir, 'config.conf');
    await writeFile(file, stringify(config()));
    const p = start(['--config', file, '--hostname-override', 'node1', '--mode', 'nftables', '--manifests', join(dir, 'manifests')]);
    await waitFor('the first sync', () => logs.some((l) => l.msg === 'rules synced') || p.exitCode !== null, 15_000);
    expect(p.exitCode).toBeNull();
    const warned = logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warned).toEqual(expect.arrayContaining([
      `${file}: featureGates (SomeGate): netplane has no feature gates; ignored`,
      `${file}: mode (iptables) is overridden by --mode on the command line`,
      `${file}: hostnameOverride is overridden by --hostname-override on the command line`,
      `${file}: clientConnection.kubeconfig is overridden by --manifests on the command line`,
    ]));
    const running = logs.find((l) => l.msg === 'proxy running')!;
    expect(running).toMatchObject({ mode: 'nftables', clusterCIDRs: ['10.244.0.0/16'] });
    expect(logs.find((l) => l.msg === 'netplane proxy starting')).toMatchObject({ admin: '127.0.0.1:10249', node: 'node1' });
    // The nftables section's masqueradeAll: cluster-IP traffic marked whatever its source (no "not from pods" test).
    const rules = (await lab.exec(node, 'nft', ['list', 'ruleset'])).stdout;
    expect(rules).toMatch(/^\s*ip daddr \. meta l4proto \. th dport @cluster-vips meta mark set meta mark \| 0x00004000/m);
    // conntrack: the UDP time-outs set in this namespace, the explicit 0s CLOSE_WAIT left as the kernel has it.
    expect(await sysctl('nf_conntrack_udp_timeout')).toBe('17');
    expect(await sysctl('nf_conntrack_udp_timeout_stream')).toBe('77');
    expect(await sysctl('nf_conntrack_tcp_timeout_close_wait')).toBe('60');
    // Raising it needs no privilege.
    expect(logs.find((l) => l.msg === 'oom_score_adj set')).toMatchObject({ oomScoreAdj: 500 });
    const pids = (await lab.exec(node, 'ip', ['netns', 'pids', node])).stdout.trim().split('\n');
    const pid = (await Promise.all(pids.map(async (id) => ((await readFile(`/proc/${id}/cmdline`, 'utf8').catch(() => '')).includes('--hostname-override') ? id : '')))).find(Boolean);
    expect((await readFile(`/proc/${pid}/oom_score_adj`, 'utf8')).trim()).toBe('500');
    // The admin address from metricsBindAddress, and kube-proxy's /healthz on healthzBindAddress with its port added.
    expect((await lab.exec(node, 'curl', ['-s', 'http://127.0.0.1:10249/proxyMode'])).stdout).toBe('nftables');
    expect((await lab.exec(node, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:10256/livez'])).stdout).toBe('200');
  });

  it('takes the mode from the file when the command line has none: iptables, and its section', async () => {
    const file = join(dir, 'iptables.conf');
    await writeFile(file, stringify(config({ hostnameOverride: 'node1', metricsBindAddress: '127.0.0.1:0', healthzBindAddress: '127.0.0.1:0', oomScoreAdj: -999 })));
    const p = start(['--config', file, '--manifests', join(dir, 'manifests')]);
    await waitFor('the first sync', () => logs.some((l) => l.msg === 'rules synced') || p.exitCode !== null, 15_000);
    expect(p.exitCode).toBeNull();
    expect(logs.find((l) => l.msg === 'proxy running')).toMatchObject({ mode: 'iptables' });
    // kubeadm's -999: lowering needs CAP_SYS_RESOURCE (bit 24), which some sandboxes' root lacks; without it, a
    // warning, and the start goes on.
    const mayLower = (BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;
    expect(logs.find((l) => l.oomScoreAdj === -999)?.msg).toBe(mayLower ? 'oom_score_adj set' : 'cannot set oom_score_adj; leaving it as it is');
    expect((await lab.exec(node, 'iptables-save', ['-t', 'nat'])).stdout).toContain('NETPLANE-SERVICES');
    await lab.exec(node, process.execPath, [bin, 'proxy', '--cleanup']);
  });

  it.each<[string, object | string, RegExp]>([
    ['mode ipvs', config({ mode: 'ipvs' }), /^netplane proxy: --config .*bad\.conf: mode: ipvs is not a mode of netplane proxy, which programs nftables \(the default\) or iptables, or proxies in userspace; write mode: nftables, or give --mode$/],
    ['a CIDR that is none', config({ clusterCIDR: '10.244.0.0/33' }), /^netplane proxy: .*bad\.conf: clusterCIDR "10\.244\.0\.0\/33": "10\.244\.0\.0\/33" is not a CIDR such as 10\.244\.0\.0\/16 or fd00::\/64$/],
    ['not YAML', 'mode: [iptables\n', /^netplane proxy: --config ".*bad\.conf": not YAML or JSON: /],
  ])('refuses %s: exit code 2, one sentence on stderr, nothing programmed', async (_what, doc, sentence) => {
    const file = join(dir, 'bad.conf');
    await writeFile(file, typeof doc === 'string' ? doc : stringify(doc));
    const before = (await lab.exec(node, 'nft', ['list', 'ruleset'])).stdout;
    const r = spawnSync('ip', ['netns', 'exec', node, process.execPath, bin, 'proxy', '--config', file, '--manifests', join(dir, 'manifests'), '--node-name', 'node1'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(sentence);
    expect((await lab.exec(node, 'nft', ['list', 'ruleset'])).stdout).toBe(before);
  });
});

// kube-proxy's command line read as netplane proxy's (pure): the command lines DaemonSets write, flag by flag, what is
// warned of and what is refused; then netplane proxy started with such a command line in a node namespace, taking
// its mode, addresses and log level from it.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onLogLines, type LogRecord } from '../../lab/log-lines.ts';
import { NetnsLab } from '../../lab/netns.ts';
import { proxyComponent as proxy } from '../../proxy/component.ts';
import { kubeProxyFlags } from '../../proxy/kube-proxy-flags.ts';
import { translateAnchorFlags } from '../../runtime/anchor-flags.ts';
import { commonFlags } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { parseFlags } from '../../runtime/flags.ts';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const specs = { ...commonFlags(proxy.defaultAdmin), ...proxy.flags };
const translate = (argv: string[]) => translateAnchorFlags('netplane proxy', specs, kubeProxyFlags, argv);

describe("kube-proxy's command line", () => {
  it.each<[string, string[], string[]]>([
    [
      "k3s's embedded kube-proxy",
      ['--proxy-mode=iptables', '--healthz-bind-address=127.0.0.1', '--conntrack-max-per-core=0', '--conntrack-tcp-timeout-established=0s', '--conntrack-tcp-timeout-close-wait=0s', '--metrics-bind-address=127.0.0.1', '--cluster-cidr=10.42.0.0/16', '--hostname-override=node1', '--kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig'],
      ['--mode=iptables', '--healthz-bind-address=127.0.0.1:10256', '--conntrack-max-per-core=0', '--conntrack-tcp-timeout-established=0s', '--conntrack-tcp-timeout-close-wait=0s', '--admin=127.0.0.1:10249', '--cluster-cidr=10.42.0.0/16', '--hostname-override=node1', '--kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig'],
    ],
    [
      "kops's",
      ['--cluster-cidr=100.96.0.0/11', '--conntrack-max-per-core=131072', '--hostname-override=i-0abc', '--kubeconfig=/var/lib/kube-proxy/kubeconfig', '--master=https://api.internal.example.com', '--oom-score-adj=-998', '--v=2', '--logtostderr=false', '--alsologtostderr', '--log-file=/var/log/kube-proxy.log'],
      ['--cluster-cidr=100.96.0.0/11', '--conntrack-max-per-core=131072', '--hostname-override=i-0abc', '--kubeconfig=/var/lib/kube-proxy/kubeconfig', '--oom-score-adj=-998', '--log-level=info'],
    ],
    [
      'a hand-written one',
      ['--proxy-mode', 'nftables', '--metrics-bind-address', '0.0.0.0:10249', '--iptables-sync-period', '1m0s', '--iptables-min-sync-period', '0', '--masquerade-all=true', '--oom-score-adj', '-999', '--v', '4'],
      ['--mode=nftables', '--admin=0.0.0.0:10249', '--sync-period=1m0s', '--min-sync-period=0', '--masquerade-all', '--oom-score-adj=-999', '--log-level=debug'],
    ],
    ['an IPv6 metrics address without a port', ['--metrics-bind-address=::'], ['--admin=[::]:10249']],
    ['the deprecated --metrics-port filling in the address', ['--metrics-bind-address=0.0.0.0', '--metrics-port=10999'], ['--admin=0.0.0.0:10999']],
    ['the deprecated --healthz-port alone, on kube-proxy\'s default host', ['--healthz-port', '10266'], ['--healthz-bind-address=0.0.0.0:10266']],
    ['--cleanup as Go writes a switch', ['--cleanup=true'], ['--cleanup']],
    ["--masquerade-all=false, kube-proxy's default", ['--masquerade-all=false'], []],
    ['klog flags written with underscores', ['--log_dir=/var/log', '--skip_headers'], []],
  ])('%s', (_what, argv, want) => {
    const got = translate(argv);
    expect(got.argv).toEqual(want);
    // What comes out is a command line netplane takes.
    expect(parseFlags('netplane proxy', specs, got.argv)).not.toBeNull();
  });

  it('warns of what netplane does not do, naming the flag and why', () => {
    const argv = [
      '--master=https://api.internal.example.com', '--v=2', '--logtostderr=false', '--log-file=/var/log/kube-proxy.log', '--feature-gates=NFTablesProxyMode=true', '--profiling', '--iptables-masquerade-bit=14',
      '--iptables-masquerade-bit=15', '--ipvs-scheduler=rr', '--ipvs-strict-arp', '--iptables-localhost-nodeports=false', '--bind-address-hard-fail', '--kube-api-qps=20', '--config-sync-period=15m', '--proxy-mode=', '--metrics-port=0',
    ];
    expect(translate(argv).notes).toEqual([
      `kube-proxy's --master "https://api.internal.example.com": netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored`,
      `kube-proxy's --logtostderr "false": netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored`,
      `kube-proxy's --log-file "/var/log/kube-proxy.log": netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored`,
      `kube-proxy's --feature-gates "NFTablesProxyMode=true": netplane has no feature gates; ignored`,
      "kube-proxy's --profiling: netplane serves no profiling handlers; ignored",
      `kube-proxy's --iptables-masquerade-bit "15": netplane marks packets to masquerade with bit 14 (0x4000), kube-proxy's default; ignored`,
      `kube-proxy's --ipvs-scheduler "rr": only kube-proxy's ipvs mode reads it, and netplane has no ipvs mode; ignored, as kube-proxy ignores it in its other modes`,
      "kube-proxy's --ipvs-strict-arp: only kube-proxy's ipvs mode reads it, and netplane has no ipvs mode; ignored, as kube-proxy ignores it in its other modes",
      "kube-proxy's --bind-address-hard-fail: netplane ends when it cannot bind --admin, and carries on without /healthz when it cannot bind --healthz-bind-address (the rules matter more); ignored",
      `kube-proxy's --kube-api-qps "20": netplane's API client keeps its own request settings; ignored`,
      `kube-proxy's --config-sync-period "15m": netplane watches the cluster and never lists it again on a timer; ignored`,
      `kube-proxy's --proxy-mode "": empty, which is iptables for kube-proxy; netplane takes its own default, nftables (give --proxy-mode=iptables to keep iptables)`,
      `kube-proxy's --metrics-port "0": kube-proxy serves no metrics with it; netplane serves its admin endpoints (/metrics, /healthz, /readyz) on --admin all the same, 127.0.0.1:10249 unless given; ignored`,
    ]);
  });

  it.each<[string, string[], string]>([
    ['--proxy-mode=ipvs', ['--proxy-mode=ipvs'], '--proxy-mode "ipvs": ipvs is not a mode of netplane proxy, which programs nftables (the default) or iptables, or proxies in userspace; give --proxy-mode=nftables or --proxy-mode=iptables'],
    ['--proxy-mode kernelspace', ['--proxy-mode', 'kernelspace'], '--proxy-mode "kernelspace": kernelspace is not a mode of netplane proxy, which programs nftables (the default) or iptables, or proxies in userspace; give --proxy-mode=nftables or --proxy-mode=iptables'],
    ['an unknown mode', ['--proxy-mode=ebpf'], '--proxy-mode "ebpf": "ebpf" is not one of nftables, iptables, userspace'],
    ['no /healthz (an empty address)', ['--healthz-bind-address='], `--healthz-bind-address "": kube-proxy serves no /healthz with it, and netplane proxy serves kube-proxy's /healthz in the kernel modes; give --healthz-bind-address an ADDR:PORT, such as 127.0.0.1:10256`],
    ['no /healthz (port 0)', ['--healthz-port=0'], `--healthz-port "0": kube-proxy serves no /healthz with it, and netplane proxy serves kube-proxy's /healthz in the kernel modes; give --healthz-bind-address an ADDR:PORT, such as 127.0.0.1:10256`],
    ['--init-only', ['--init-only'], '--init-only: netplane proxy has no separate step that needs more privileges; run it without --init-only (it needs CAP_NET_ADMIN in the kernel modes)'],
    ['--write-config-to', ['--write-config-to=/tmp/c.yaml'], `--write-config-to "/tmp/c.yaml": netplane proxy writes no configuration file; it reads kube-proxy's with --config`],
    ['a metrics address that is none', ['--metrics-bind-address=metrics.local'], '--metrics-bind-address "metrics.local": must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153'],
    ['a sync period netplane cannot keep', ['--iptables-sync-period=500ms'], '--iptables-sync-period "500ms": must be from 1s to 24h'],
    ['the mode in both spellings', ['--proxy-mode=iptables', '--mode', 'nftables'], "--mode is given twice (kube-proxy's --proxy-mode, --mode); give it once"],
    ['the sync period in both spellings', ['--sync-period=1m', '--iptables-sync-period=30s'], "--sync-period is given twice (--sync-period, kube-proxy's --iptables-sync-period); give it once"],
    ['the admin address in both spellings', ['--metrics-bind-address=0.0.0.0', '--admin', '127.0.0.1:9999'], "--admin is given twice (kube-proxy's --metrics-bind-address, --admin); give it once"],
  ])('refuses %s: one sentence', (_what, argv, why) => {
    expect(() => translate(argv)).toThrow(new UsageError(`netplane proxy: ${why}`));
  });
});

describe('netplane proxy started with a kube-proxy DaemonSet command line, in a node namespace', () => {
  let lab: NetnsLab;
  let node: string;
  let dir: string;
  let child: ChildProcess | undefined;
  const logs: LogRecord[] = [];

  beforeAll(async () => {
    lab = NetnsLab.create({ id: `kpf${randomBytes(3).toString('hex')}` });
    node = await lab.ns('node');
    await lab.veth({ ns: node, ifname: 'eth0', addrs: ['192.168.52.1/24'] }, { ns: await lab.ns('peer'), ifname: 'eth0', addrs: ['192.168.52.2/24'] });
    await lab.exec(node, 'ip', ['link', 'set', 'lo', 'up']);
    dir = await mkdtemp(join(tmpdir(), 'netplane-kpf-'));
    await writeManifests(dir, [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.52.1' }] } },
      svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      eps('web', 4, [['10.244.1.11', 'node1']]),
    ]);
  }, 30_000);
  afterAll(async () => {
    child?.kill('SIGKILL');
    if (lab) await lab.exec(node, process.execPath, [bin, 'proxy', '--cleanup=true']).catch(() => undefined);
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('programs iptables, serves its metrics and /healthz where the flags say, logs at --v, and warns of what it ignores', async () => {
    // The DaemonSet's flags as written, but --kubeconfig: the cluster comes from manifests here.
    const daemonSet = [
      '--proxy-mode=iptables', '--cluster-cidr=10.244.0.0/16', '--hostname-override=node1', '--metrics-bind-address=0.0.0.0', '--healthz-bind-address=127.0.0.1', '--iptables-sync-period=30s',
      '--iptables-min-sync-period=1s', '--conntrack-max-per-core=0', '--v=2', '--feature-gates=NFTablesProxyMode=true', '--oom-score-adj', '-999', '--logtostderr=false',
    ];
    const p = lab.spawn(node, process.execPath, [bin, 'proxy', ...daemonSet, '--manifests', dir]);
    child = p;
    onLogLines(p.stdout!, (r) => logs.push(r));
    await waitFor('the first sync', () => logs.some((l) => l.msg === 'rules synced') || p.exitCode !== null, 15_000);
    expect(p.exitCode).toBeNull();
    expect(logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(expect.arrayContaining([
      `kube-proxy's --feature-gates "NFTablesProxyMode=true": netplane has no feature gates; ignored`,
      `kube-proxy's --logtostderr "false": netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored`,
    ]));
    // --v=2 is info: nothing below it is logged.
    expect(logs.every((l) => (l.level as number) >= 30)).toBe(true);
    expect(logs.find((l) => l.msg === 'netplane proxy starting')).toMatchObject({ admin: '0.0.0.0:10249', node: 'node1' });
    expect(logs.find((l) => l.msg === 'proxy running')).toMatchObject({ mode: 'iptables', clusterCIDRs: ['10.244.0.0/16'] });
    expect((await lab.exec(node, 'iptables-save', ['-t', 'nat'])).stdout).toContain('NETPLANE-SERVICES');
    // The metrics address without a port took kube-proxy's 10249, on every address; /healthz took 10256, on loopback only.
    const curl = async (url: string) => (await lab.exec(node, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url]).catch(() => ({ stdout: 'no answer' }))).stdout;
    expect((await lab.exec(node, 'curl', ['-s', 'http://192.168.52.1:10249/proxyMode'])).stdout).toBe('iptables');
    expect(await curl('http://192.168.52.1:10249/metrics')).toBe('200');
    expect(await curl('http://127.0.0.1:10256/livez')).toBe('200');
    expect(await curl('http://192.168.52.1:10256/livez')).toBe('no answer');
  });

  it('refuses --proxy-mode=ipvs: exit code 2, one sentence on stderr, nothing programmed', async () => {
    const exited = child && child.exitCode === null ? new Promise((r) => child!.once('exit', r)) : undefined;
    child?.kill('SIGTERM');
    await exited;
    await lab.exec(node, process.execPath, [bin, 'proxy', '--cleanup=true']);
    const before = (await lab.exec(node, 'iptables-save', [])).stdout.replace(/^#.*\n/gm, '');
    const r = spawnSync('ip', ['netns', 'exec', node, process.execPath, bin, 'proxy', '--proxy-mode=ipvs', '--ipvs-scheduler=rr', '--hostname-override=node1', '--manifests', dir], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'netplane proxy: --proxy-mode "ipvs": ipvs is not a mode of netplane proxy, which programs nftables (the default) or iptables, or proxies in userspace; give --proxy-mode=nftables or --proxy-mode=iptables',
    ]);
    expect((await lab.exec(node, 'iptables-save', [])).stdout.replace(/^#.*\n/gm, '')).toBe(before);
  });
});

// kube-proxy's configuration file read as netplane proxy's flags: a kubeadm-style file field by field, what is
// noted instead of done, what is refused (naming the field), and the command line winning over the file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { proxyComponent as proxy } from '../../proxy/component.ts';
import { kubeProxyConfigSettings, readKubeProxyConfig, type CommandLine } from '../../proxy/kube-proxy-config.ts';
import { commonFlags } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { flagGiven, parseFlags } from '../../runtime/flags.ts';
import { withSettings } from '../../runtime/settings.ts';

/** The shape of the file kubeadm writes into the kube-proxy ConfigMap (config.conf): every section, at zero values. */
const kubeadmDefaults = {
  apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
  kind: 'KubeProxyConfiguration',
  bindAddress: '0.0.0.0',
  bindAddressHardFail: false,
  clientConnection: { acceptContentTypes: '', burst: 0, contentType: '', kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', qps: 0 },
  clusterCIDR: '10.244.0.0/16',
  configSyncPeriod: '0s',
  conntrack: { maxPerCore: null, min: null, tcpBeLiberal: false, tcpCloseWaitTimeout: null, tcpEstablishedTimeout: null, udpStreamTimeout: '0s', udpTimeout: '0s' },
  detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
  detectLocalMode: '',
  enableProfiling: false,
  healthzBindAddress: '',
  hostnameOverride: '',
  iptables: { localhostNodePorts: null, masqueradeAll: false, masqueradeBit: null, minSyncPeriod: '0s', syncPeriod: '0s' },
  ipvs: { excludeCIDRs: null, minSyncPeriod: '0s', scheduler: '', strictARP: false, syncPeriod: '0s', tcpFinTimeout: '0s', tcpTimeout: '0s', udpTimeout: '0s' },
  logging: { flushFrequency: 0, options: { json: { infoBufferSize: '0' } }, verbosity: 0 },
  metricsBindAddress: '',
  mode: '',
  nftables: { masqueradeAll: false, masqueradeBit: null, minSyncPeriod: '0s', syncPeriod: '0s' },
  nodePortAddresses: null,
  oomScoreAdj: null,
  portRange: '',
  showHiddenMetricsForVersion: '',
  winkernel: { enableDSR: false, forwardHealthCheckVip: false, networkName: '', rootHnsEndpointName: '', sourceVip: '' },
};

const none: CommandLine = { given: () => false, mode: 'nftables' };
const settingsOf = (doc: object, line = none) => kubeProxyConfigSettings(doc, 'config.conf', line);
const flat = (doc: object, line = none) => settingsOf(doc, line).settings.map((s) => `--${s.flag}${s.value === true ? '' : `=${s.value}`}`);

describe('kubeProxyConfigSettings', () => {
  it("reads kubeadm's file: its kubeconfig and cluster CIDR, and says that its empty mode is nftables here", () => {
    const got = settingsOf(kubeadmDefaults);
    expect(got.settings.map((s) => [s.flag, s.value, s.from])).toEqual([
      ['kubeconfig', '/var/lib/kube-proxy/kubeconfig.conf', 'config.conf: clientConnection.kubeconfig'],
      ['cluster-cidr', '10.244.0.0/16', 'config.conf: clusterCIDR'],
    ]);
    expect(got.settings[0]!.yieldsTo).toEqual(['manifests']);
    expect(got.notes).toEqual(['config.conf: mode: empty, which is iptables for kube-proxy; netplane takes its own default, nftables (write mode: iptables to keep iptables)']);
  });

  it('maps every field with a meaning here to its flag, from the section of the mode in use', () => {
    const doc = {
      ...kubeadmDefaults,
      mode: 'iptables',
      hostnameOverride: 'node-7',
      healthzBindAddress: '0.0.0.0:10256',
      metricsBindAddress: '::',
      iptables: { masqueradeAll: true, masqueradeBit: 14, localhostNodePorts: false, minSyncPeriod: '1s', syncPeriod: '1m0s' },
      nftables: { masqueradeAll: false, minSyncPeriod: '5s', syncPeriod: '2h22m' },
      detectLocalMode: 'BridgeInterface',
      detectLocal: { bridgeInterface: 'cni0', interfaceNamePrefix: 'veth' },
      clusterCIDR: '10.244.0.0/16,fd00:10:244::/56',
      nodePortAddresses: ['primary'],
      oomScoreAdj: -999,
      conntrack: { maxPerCore: 0, min: 131072, tcpEstablishedTimeout: '24h0m0s', tcpCloseWaitTimeout: '1h0m0s', tcpBeLiberal: true, udpTimeout: '30s', udpStreamTimeout: '2m0s' },
    };
    expect(flat(doc)).toEqual([
      '--mode=iptables',
      '--node-name=node-7',
      '--kubeconfig=/var/lib/kube-proxy/kubeconfig.conf',
      '--healthz-bind-address=0.0.0.0:10256',
      '--admin=[::]:10249',
      '--masquerade-all',
      '--sync-period=60000ms',
      '--min-sync-period=1000ms',
      '--detect-local-mode=BridgeInterface',
      '--pod-bridge-interface=cni0',
      '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56',
      '--nodeport-addresses=primary',
      '--oom-score-adj=-999',
      '--conntrack-max-per-core=0',
      '--conntrack-min=131072',
      '--conntrack-tcp-timeout-established=86400000ms',
      '--conntrack-tcp-timeout-close-wait=3600000ms',
      '--conntrack-udp-timeout=30000ms',
      '--conntrack-udp-timeout-stream=120000ms',
      '--conntrack-tcp-be-liberal',
    ]);
    expect(settingsOf(doc).notes).toEqual([]);
  });

  it('says what it does not do: localhost NodePorts, another masquerade bit, feature gates, profiling, unknown fields', () => {
    const doc = {
      ...kubeadmDefaults,
      mode: 'iptables',
      bindAddress: '192.168.1.5',
      enableProfiling: true,
      featureGates: { KubeProxyDrainingTerminatingNodes: true },
      iptables: { masqueradeBit: 15, snatNodeInternalIP: true },
      nodePortAddresses: ['localhost', '10.0.0.0/8'],
      udpIdleTimeout: '250ms',
    };
    const got = settingsOf(doc);
    expect(got.notes).toEqual([
      'config.conf: udpIdleTimeout: not a field of KubeProxyConfiguration; ignored',
      'config.conf: bindAddress (192.168.1.5): not used; netplane takes this node\'s addresses from its Node object',
      'config.conf: enableProfiling: netplane serves no profiling handlers',
      'config.conf: featureGates (KubeProxyDrainingTerminatingNodes): netplane has no feature gates; ignored',
      'config.conf: iptables.masqueradeBit (15): netplane marks packets to masquerade with bit 14 (0x4000), kube-proxy\'s default; ignored',
      "config.conf: iptables.localhostNodePorts (true, kube-proxy's default in iptables mode): netplane serves no NodePort on loopback addresses; a connection to one is refused",
      'config.conf: iptables.snatNodeInternalIP: not supported; masquerade takes the outgoing interface\'s address',
      'config.conf: nodePortAddresses: localhost: netplane serves no NodePort on loopback addresses; left out',
    ]);
    expect(flat(doc)).toContain('--nodeport-addresses=10.0.0.0/8');
  });

  it("reads logging.verbosity as the command line's --v: klog's levels as --log-level, kubeadm's 0 as netplane's default", () => {
    expect(flat({ ...kubeadmDefaults, logging: { verbosity: 4 } })).toContain('--log-level=debug');
    expect(flat({ ...kubeadmDefaults, logging: { verbosity: 2 } })).toContain('--log-level=info');
    expect(flat(kubeadmDefaults).some((f) => f.startsWith('--log-level'))).toBe(false);
  });

  it("takes 'all' as every local address but loopback (no flag), and a bridge name only with its detect-local mode", () => {
    expect(flat({ ...kubeadmDefaults, nodePortAddresses: ['all', '10.0.0.0/8'] }).some((f) => f.startsWith('--nodeport-addresses'))).toBe(false);
    expect(flat({ ...kubeadmDefaults, detectLocalMode: 'ClusterCIDR', detectLocal: { bridgeInterface: 'cni0' } })).not.toContain('--pod-bridge-interface=cni0');
  });

  it('leaves out what the command line gives: its --mode picks the section, --hostname-override wins over hostnameOverride', () => {
    const doc = { ...kubeadmDefaults, mode: 'iptables', hostnameOverride: 'from-file', iptables: { masqueradeAll: true }, nftables: { masqueradeAll: false, syncPeriod: '10s' } };
    const line: CommandLine = { given: (f) => f === 'mode' || f === 'hostname-override', mode: 'nftables' };
    const got = settingsOf(doc, line);
    expect(got.settings.map((s) => s.flag)).toEqual(['kubeconfig', 'sync-period', 'cluster-cidr']);
    expect(got.notes).toEqual(['config.conf: mode (iptables) is overridden by --mode on the command line', 'config.conf: hostnameOverride is overridden by --hostname-override on the command line']);
  });

  it.each<[string, object, string]>([
    ['another kind', { apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration' }, 'apiVersion "kubelet.config.k8s.io/v1beta1" kind "KubeletConfiguration": netplane reads kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration'],
    ['mode ipvs', { ...kubeadmDefaults, mode: 'ipvs' }, 'mode: ipvs is not a mode of netplane proxy, which programs nftables (the default) or iptables, or proxies in userspace; write mode: nftables, or give --mode'],
    ['an unknown mode', { ...kubeadmDefaults, mode: 'ebpf' }, 'mode: "ebpf" is not one of nftables, iptables, userspace'],
    ['a duration that is not one', { ...kubeadmDefaults, nftables: { syncPeriod: '30 seconds' } }, 'nftables.syncPeriod: "30 seconds" is not a duration such as 30s, 1m0s or 24h0m0s'],
    ['a number for a string', { ...kubeadmDefaults, clusterCIDR: 10 }, 'clusterCIDR: must be a string'],
    ['a string for a number', { ...kubeadmDefaults, conntrack: { maxPerCore: '32768' } }, 'conntrack.maxPerCore: must be a whole number'],
    ['primary beside CIDRs', { ...kubeadmDefaults, nodePortAddresses: ['primary', '10.0.0.0/8'] }, 'nodePortAddresses: primary together with CIDRs: netplane takes either the keyword or CIDRs'],
  ])('refuses %s in one sentence naming the field', (_what, doc, why) => {
    expect(() => settingsOf(doc)).toThrow(new UsageError(`netplane proxy: --config config.conf: ${why}`));
  });

  it('lets --mode on the command line stand in for a mode the file has and netplane has not', () => {
    expect(flat({ ...kubeadmDefaults, mode: 'ipvs' }, { given: (f) => f === 'mode', mode: 'iptables' })).toContain('--cluster-cidr=10.244.0.0/16');
  });
});

describe('readKubeProxyConfig', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-kpc-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads YAML and JSON, and refuses a missing or unreadable file in one sentence', async () => {
    await writeFile(join(dir, 'a.yaml'), stringify(kubeadmDefaults));
    await writeFile(join(dir, 'a.json'), JSON.stringify(kubeadmDefaults));
    await writeFile(join(dir, 'bad.yaml'), 'kind: [unclosed\n');
    for (const f of ['a.yaml', 'a.json']) expect((await readKubeProxyConfig(join(dir, f), none)).settings).toHaveLength(2);
    await expect(readKubeProxyConfig(join(dir, 'none.yaml'), none)).rejects.toThrow(`netplane proxy: --config "${join(dir, 'none.yaml')}": cannot read it (ENOENT)`);
    await expect(readKubeProxyConfig(join(dir, 'bad.yaml'), none)).rejects.toThrow(/^netplane proxy: --config ".*bad\.yaml": not YAML or JSON: /);
  });

  it('merges into the command line: flags written there win, and a value the flag refuses names the field', async () => {
    const file = join(dir, 'merge.yaml');
    await writeFile(file, stringify({ ...kubeadmDefaults, metricsBindAddress: '127.0.0.1:19249', clusterCIDR: '10.1.0.0/16', nftables: { syncPeriod: '45s' } }));
    const specs = { ...commonFlags(proxy.defaultAdmin), ...proxy.flags };
    const argv = ['--config', file, '--cluster-cidr', '10.9.0.0/16', '--manifests', dir];
    const first = parseFlags('netplane proxy', specs, argv)!;
    const given = (n: string) => flagGiven(first, n);
    const fileSettings = await proxy.settings!(first as never, given);
    const merged = withSettings('netplane proxy', specs, argv, given, fileSettings!.settings);
    expect(merged.notes).toEqual([`${file}: clientConnection.kubeconfig is overridden by --manifests on the command line`, `${file}: clusterCIDR is overridden by --cluster-cidr on the command line`]);
    const flags = parseFlags('netplane proxy', specs, merged.argv)!;
    expect(flags.admin.text).toBe('127.0.0.1:19249');
    expect(flags['sync-period']).toBe(45_000);
    expect(flags['cluster-cidr'].flat()).toEqual(['10.9.0.0/16']);
    expect(flags.kubeconfig).toBeUndefined();

    await writeFile(file, stringify({ ...kubeadmDefaults, clusterCIDR: '10.1.0.0/33' }));
    const bad = await proxy.settings!(first as never, () => false);
    expect(() => withSettings('netplane proxy', specs, [], () => false, bad!.settings)).toThrow(`netplane proxy: ${file}: clusterCIDR "10.1.0.0/33": "10.1.0.0/33" is not a CIDR such as 10.244.0.0/16 or fd00::/64`);
  });

  it('takes --hostname-override as --node-name, and refuses both naming different nodes', async () => {
    const specs = { ...commonFlags(proxy.defaultAdmin), ...proxy.flags };
    const run = async (argv: string[]) => {
      const first = parseFlags('netplane proxy', specs, argv)!;
      const given = (n: string) => flagGiven(first, n);
      const s = await proxy.settings!(first as never, given);
      return parseFlags('netplane proxy', specs, withSettings('netplane proxy', specs, argv, given, s!.settings).argv)!['node-name'];
    };
    expect(await run(['--hostname-override', 'Node-3'])).toBe('node-3');
    expect(await run(['--hostname-override', 'node-3', '--node-name', 'NODE-3'])).toBe('node-3');
    await expect(run(['--hostname-override', 'node-3', '--node-name', 'node-4'])).rejects.toThrow('netplane proxy: --hostname-override and --node-name name different nodes; give one');
  });
});

// kube-proxy's configuration file (kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration, what kubeadm's
// `kube-proxy` ConfigMap holds as config.conf) read as netplane proxy's flags, so that a kube-proxy DaemonSet's
// `--config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME)` works as it is. Each field with a
// meaning here becomes the flag kube-proxy's flag of the same meaning is named after; what netplane does not do is
// said in a note (a warning at start), never silently dropped; a value that cannot be read is a usage error naming
// the field. kube-proxy ignores most flags beside --config; here a flag on the command line wins over the file.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { parse } from 'yaml';
import { isMapping, readSettingsFile, typedReader, type FileSettings, type Setting } from '../runtime/settings.ts';
import { UsageError } from '../runtime/errors.ts';
import { hostPortText, parseDuration } from '../runtime/flags.ts';
import { klogLevel } from '../runtime/anchor-flags.ts';

const apiVersion = 'kubeproxy.config.k8s.io/v1alpha1';
const kind = 'KubeProxyConfiguration';

// kube-proxy's ports for an address written without one (its AppendPortIfNeeded).
/** kube-proxy's /healthz port. */
export const healthzPort = 10256;
/** kube-proxy's metrics port. */
export const metricsPort = 10249;

/** The modes a file may ask for that netplane has; '' is kube-proxy's default (iptables), netplane's is nftables. */
const modes = ['nftables', 'iptables', 'userspace'] as const;
type Mode = (typeof modes)[number];

/**
 * Why a kube-proxy mode is not netplane's, for the file's `mode` and the command line's --proxy-mode alike (each adds
 * how to write one that is); undefined for one of netplane's modes. '' is kube-proxy's default, for the caller.
 */
export function foreignMode(mode: string): string | undefined {
  if (mode === 'ipvs' || mode === 'kernelspace') return `${mode} is not a mode of netplane proxy, which programs nftables (the default) or iptables, or proxies in userspace`;
  if (mode !== '' && !(modes as readonly string[]).includes(mode)) return `${JSON.stringify(mode)} is not one of ${modes.join(', ')}`;
  return undefined;
}

/** kube-proxy's default mode, taken as netplane's own instead: what the file's empty mode and an empty --proxy-mode are told. */
export const emptyMode = "empty, which is iptables for kube-proxy; netplane takes its own default, nftables";

/** Why settings kube-proxy has and netplane does not do are ignored: the file's fields and the command line's flags say the same. */
export const ignoredBecause = {
  featureGates: 'netplane has no feature gates; ignored',
  profiling: 'netplane serves no profiling handlers',
  masqueradeBit: "netplane marks packets to masquerade with bit 14 (0x4000), kube-proxy's default; ignored",
  localhostNodePorts: 'netplane serves no NodePort on loopback addresses; a connection to one is refused',
} as const;

// Top-level fields that change nothing netplane does: no note even when set (client tuning, logging but its
// verbosity, Windows, the ConfigMap refresh period that kubeadm always writes).
const quiet = new Set(['apiVersion', 'kind', 'logging', 'bindAddressHardFail', 'showHiddenMetricsForVersion', 'configSyncPeriod', 'portRange', 'windowsRunAsService', 'winkernel', 'ipvs']);
const known = new Set([...quiet, 'featureGates', 'clientConnection', 'hostnameOverride', 'bindAddress', 'healthzBindAddress', 'metricsBindAddress', 'enableProfiling', 'mode', 'iptables', 'nftables', 'detectLocalMode', 'detectLocal', 'clusterCIDR', 'nodePortAddresses', 'oomScoreAdj', 'conntrack']);


/** What the caller knows of the command line: which flags it gives, and its --mode when given. */
export interface CommandLine {
  given(flag: string): boolean;
  mode: Mode;
}

/** Reads FILE (YAML or JSON) and returns its settings; a file that cannot be read or used is a UsageError. */
export async function readKubeProxyConfig(file: string, line: CommandLine): Promise<FileSettings> {
  const text = await readSettingsFile('netplane proxy', 'config', file);
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UsageError(`netplane proxy: --config ${JSON.stringify(file)}: not YAML or JSON: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  return { ...kubeProxyConfigSettings(doc, file, line), fingerprint: createHash('sha256').update(text).digest('hex') };
}

/** The settings of a parsed KubeProxyConfiguration. Pure. Throws UsageError naming the field that cannot be used. */
export function kubeProxyConfigSettings(doc: unknown, file: string, line: CommandLine): FileSettings {
  const fail = (field: string, why: string) => new UsageError(`netplane proxy: --config ${file}: ${field}: ${why}`);
  if (!isMapping(doc)) throw new UsageError(`netplane proxy: --config ${file}: not a ${kind} (a YAML or JSON mapping)`);
  if (doc.apiVersion !== apiVersion || doc.kind !== kind) {
    throw new UsageError(`netplane proxy: --config ${file}: apiVersion ${JSON.stringify(doc.apiVersion ?? '')} kind ${JSON.stringify(doc.kind ?? '')}: netplane reads ${apiVersion} ${kind}`);
  }
  const settings: Setting[] = [];
  const notes: string[] = [];
  const at = (field: string) => `${file}: ${field}`;
  const set = (field: string, flag: string, value: string | true, yieldsTo?: string[]) => settings.push({ flag, value, from: at(field), ...(yieldsTo ? { yieldsTo } : {}) });
  const read = reader(doc, fail);

  for (const name of Object.keys(doc)) if (!known.has(name)) notes.push(`${at(name)}: not a field of ${kind}; ignored`);

  const fileMode = read.string('mode') ?? '';
  let mode: Mode = line.mode;
  if (!line.given('mode')) {
    const foreign = foreignMode(fileMode);
    if (foreign !== undefined) throw fail('mode', fileMode === 'ipvs' || fileMode === 'kernelspace' ? `${foreign}; write mode: nftables, or give --mode` : foreign);
    if (fileMode !== '') {
      mode = fileMode as Mode;
      set('mode', 'mode', fileMode);
    } else if (doc.mode !== undefined) notes.push(`${at('mode')}: ${emptyMode} (write mode: iptables to keep iptables)`);
  } else if (fileMode !== '' && fileMode !== line.mode) notes.push(`${at('mode')} (${fileMode}) is overridden by --mode on the command line`);

  const host = read.string('hostnameOverride');
  if (host) {
    if (line.given('hostname-override')) notes.push(`${at('hostnameOverride')} is overridden by --hostname-override on the command line`);
    else set('hostnameOverride', 'node-name', host);
  }
  const kubeconfig = read.string('clientConnection.kubeconfig');
  if (kubeconfig) set('clientConnection.kubeconfig', 'kubeconfig', kubeconfig, ['manifests']);
  const healthz = read.string('healthzBindAddress');
  if (healthz) set('healthzBindAddress', 'healthz-bind-address', withPort(healthz, healthzPort));
  const metrics = read.string('metricsBindAddress');
  if (metrics) set('metricsBindAddress', 'admin', withPort(metrics, metricsPort));
  const bind = read.string('bindAddress');
  if (bind && bind !== '0.0.0.0' && bind !== '::') notes.push(`${at('bindAddress')} (${bind}): not used; netplane takes this node's addresses from its Node object`);
  if (read.bool('enableProfiling') === true) notes.push(`${at('enableProfiling')}: ${ignoredBecause.profiling}`);
  // klog's verbosity, as the command line's --v: kubeadm writes 0, which is netplane's default level too.
  const verbosity = read.int('logging.verbosity');
  if (verbosity !== undefined && verbosity !== 0) set('logging.verbosity', 'log-level', klogLevel(String(verbosity)));
  const gates = doc.featureGates;
  if (isMapping(gates) && Object.keys(gates).length > 0) notes.push(`${at('featureGates')} (${Object.keys(gates).join(', ')}): ${ignoredBecause.featureGates}`);

  // The section of the mode in use: iptables or nftables (userspace mode has none).
  if (mode !== 'userspace') {
    const section = mode;
    if (read.bool(`${section}.masqueradeAll`) === true) set(`${section}.masqueradeAll`, 'masquerade-all', true);
    // 0 is unset, as kube-proxy's defaulting takes it (30 s and 1 s, netplane's defaults too); kubeadm writes 0s.
    const sync = read.duration(`${section}.syncPeriod`);
    if (sync) set(`${section}.syncPeriod`, 'sync-period', `${sync}ms`);
    const minSync = read.duration(`${section}.minSyncPeriod`);
    if (minSync) set(`${section}.minSyncPeriod`, 'min-sync-period', `${minSync}ms`);
    const bit = read.int(`${section}.masqueradeBit`);
    if (bit !== undefined && bit !== 14) notes.push(`${at(`${section}.masqueradeBit`)} (${bit}): ${ignoredBecause.masqueradeBit}`);
    if (section === 'iptables' && read.bool('iptables.localhostNodePorts') !== false) {
      notes.push(`${at('iptables.localhostNodePorts')} (true, kube-proxy's default in iptables mode): ${ignoredBecause.localhostNodePorts}`);
    }
    if (section === 'iptables' && read.bool('iptables.snatNodeInternalIP') === true) notes.push(`${at('iptables.snatNodeInternalIP')}: not supported; masquerade takes the outgoing interface's address`);
  }

  const detect = read.string('detectLocalMode');
  if (detect) set('detectLocalMode', 'detect-local-mode', detect);
  const bridge = read.string('detectLocal.bridgeInterface');
  if (bridge && detect === 'BridgeInterface') set('detectLocal.bridgeInterface', 'pod-bridge-interface', bridge);
  const prefix = read.string('detectLocal.interfaceNamePrefix');
  if (prefix && detect === 'InterfaceNamePrefix') set('detectLocal.interfaceNamePrefix', 'pod-interface-name-prefix', prefix);
  const cidr = read.string('clusterCIDR');
  if (cidr) set('clusterCIDR', 'cluster-cidr', cidr);

  const nodePorts = read.strings('nodePortAddresses');
  if (nodePorts !== undefined && nodePorts.length > 0) {
    const words = nodePorts.map((w) => w.trim());
    if (words.includes('localhost')) notes.push(`${at('nodePortAddresses')}: localhost: netplane serves no NodePort on loopback addresses; left out`);
    const cidrs = words.filter((w) => w !== 'localhost' && w !== 'all' && w !== 'primary');
    if (words.includes('all')) {
      // Every local address but loopback: netplane's default.
    } else if (words.includes('primary')) {
      if (cidrs.length > 0) throw fail('nodePortAddresses', 'primary together with CIDRs: netplane takes either the keyword or CIDRs');
      set('nodePortAddresses', 'nodeport-addresses', 'primary');
    } else if (cidrs.length > 0) set('nodePortAddresses', 'nodeport-addresses', cidrs.join(','));
  }

  const oom = read.int('oomScoreAdj');
  if (oom !== undefined) set('oomScoreAdj', 'oom-score-adj', String(oom));
  const perCore = read.int('conntrack.maxPerCore');
  if (perCore !== undefined) set('conntrack.maxPerCore', 'conntrack-max-per-core', String(perCore));
  const min = read.int('conntrack.min');
  if (min !== undefined) set('conntrack.min', 'conntrack-min', String(min));
  const timeouts: Array<[string, string]> = [
    ['tcpEstablishedTimeout', 'conntrack-tcp-timeout-established'],
    ['tcpCloseWaitTimeout', 'conntrack-tcp-timeout-close-wait'],
    ['udpTimeout', 'conntrack-udp-timeout'],
    ['udpStreamTimeout', 'conntrack-udp-timeout-stream'],
  ];
  for (const [field, flag] of timeouts) {
    // An explicit 0s leaves the kernel's value, as in kube-proxy; absent (null) is the flag's default.
    const ms = read.duration(`conntrack.${field}`);
    if (ms !== undefined && (ms > 0 || field.startsWith('tcp'))) set(`conntrack.${field}`, flag, `${ms}ms`);
  }
  if (read.bool('conntrack.tcpBeLiberal') === true) set('conntrack.tcpBeLiberal', 'conntrack-tcp-be-liberal', true);
  return { settings, notes };
}

/** kube-proxy's AppendPortIfNeeded: an address without a port gets `port`; an IPv6 one its brackets. */
export function withPort(addr: string, port: number): string {
  const a = addr.trim();
  return isIP(a) === 0 ? a : hostPortText(a, port);
}

/** Typed reads of dotted paths (Go's zero values, null, are undefined); a wrong type throws via `fail`. */
function reader(doc: Record<string, unknown>, fail: (field: string, why: string) => Error) {
  const typed = typedReader((path) => path.split('.').reduce<unknown>((v, key) => (isMapping(v) ? v[key] : undefined), doc), fail);
  return {
    ...typed,
    /** A metav1.Duration ("30s", "1m0s", "24h0m0s"), in milliseconds. */
    duration(path: string): number | undefined {
      const v = typed.string(path);
      if (v === undefined) return undefined;
      try {
        return Math.round(parseDuration(v));
      } catch {
        throw fail(path, `${JSON.stringify(v)} is not a duration such as 30s, 1m0s or 24h0m0s`);
      }
    },
  };
}

// kube-proxy's command line (cmd/kube-proxy/app/options.go, and klog's flags) taken as netplane proxy's, so that a
// DaemonSet that starts kube-proxy with flags rather than --config (kops, k3s, hand-written manifests) starts
// netplane as it is. Flags of the same name and meaning are netplane's own (--cluster-cidr, --hostname-override,
// --conntrack-*, --masquerade-all ...) and are listed only so that kube-proxy's forms of them work
// (`--oom-score-adj -999`, `--masquerade-all=true`); kube-proxy's --bind-address is not: netplane's flag of that name
// is the userspace mode's listen address. The mappings kube-proxy's configuration file shares (ports added to an
// address, the modes, why a setting is ignored) come from kube-proxy-config.ts.
import { ignored, klogLevel, portNumber, klogOutput, refused, renamed, same, type AnchorFlag, type AnchorFlags, type Taken } from '../runtime/anchor-flags.ts';
import { emptyMode, foreignMode, healthzPort, ignoredBecause, metricsPort, withPort } from './kube-proxy-config.ts';

/** kube-proxy's --healthz-bind-address default host (its health server listens on every IPv4 address). */
const healthzHost = '0.0.0.0';
/** kube-proxy's --metrics-bind-address default host. */
const metricsHost = '127.0.0.1';

/**
 * An address flag (--healthz-bind-address, --metrics-bind-address) with kube-proxy's deprecated port flag beside it
 * (--healthz-port, --metrics-port): that port fills in an address written without one, else kube-proxy's port does.
 * An empty address asks for no server at all: `empty` says what becomes of it.
 */
function addressFlag(as: string, portFlag: string, port: number, empty: Taken | string): AnchorFlag {
  return {
    takes: 'value',
    as,
    take(value, line) {
      if (value.trim() === '') return emptyOr(empty);
      const given = line.value(portFlag);
      return { argv: [`--${as}=${withPort(value, given === undefined ? port : portNumber(given))}`] };
    },
  };
}

/** A deprecated port flag alone: the port on kube-proxy's default host; 0 asks for no server, as an empty address. */
function portFlag(as: string, addressFlag: string, host: string, off: Taken | string): AnchorFlag {
  return {
    takes: 'value',
    as,
    take(value, line) {
      const port = portNumber(value);
      if (port === 0) return emptyOr(off);
      // Beside the address flag, the address takes the port (addressFlag).
      if (line.value(addressFlag) !== undefined) return {};
      return { argv: [`--${as}=${withPort(host, port)}`] };
    },
  };
}

/** A refusal (why, thrown) or what is done instead. */
function emptyOr(instead: Taken | string): Taken {
  if (typeof instead === 'string') throw new Error(instead);
  return instead;
}

// An open port on every address that was asked to stay closed: refused. The admin port, on loopback unless told
// otherwise, serves netplane's own probes: it stays, with a warning.
const noHealthz = "kube-proxy serves no /healthz with it, and netplane proxy serves kube-proxy's /healthz in the kernel modes; give --healthz-bind-address an ADDR:PORT, such as 127.0.0.1:10256";
const noMetrics = { ignored: "kube-proxy serves no metrics with it; netplane serves its admin endpoints (/metrics, /healthz, /readyz) on --admin all the same, 127.0.0.1:10249 unless given; ignored" };
const ipvsOnly = "only kube-proxy's ipvs mode reads it, and netplane has no ipvs mode; ignored, as kube-proxy ignores it in its other modes";
const apiClient = "netplane's API client keeps its own request settings; ignored";
const apiServer = 'netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored';

const flags: Record<string, AnchorFlag> = {
  'proxy-mode': {
    takes: 'value',
    as: 'mode',
    take(mode) {
      const foreign = foreignMode(mode);
      if (foreign !== undefined) throw new Error(mode === 'ipvs' || mode === 'kernelspace' ? `${foreign}; give --proxy-mode=nftables or --proxy-mode=iptables` : foreign);
      if (mode === '') return { ignored: `${emptyMode} (give --proxy-mode=iptables to keep iptables)` };
      return { argv: [`--mode=${mode}`] };
    },
  },
  'metrics-bind-address': addressFlag('admin', 'metrics-port', metricsPort, noMetrics),
  'healthz-bind-address': addressFlag('healthz-bind-address', 'healthz-port', healthzPort, noHealthz),
  // Deprecated in kube-proxy, and hidden from its help, but still read.
  'metrics-port': portFlag('admin', 'metrics-bind-address', metricsHost, noMetrics),
  'healthz-port': portFlag('healthz-bind-address', 'healthz-bind-address', healthzHost, noHealthz),
  // kube-proxy's sync periods of the iptables mode are those of its nftables mode too (its options.go).
  'iptables-sync-period': renamed('sync-period'),
  'iptables-min-sync-period': renamed('min-sync-period'),
  v: renamed('log-level', klogLevel),

  'cluster-cidr': same('value', 'cluster-cidr'),
  'nodeport-addresses': same('value', 'nodeport-addresses'),
  'detect-local-mode': same('value', 'detect-local-mode'),
  'pod-bridge-interface': same('value', 'pod-bridge-interface'),
  'pod-interface-name-prefix': same('value', 'pod-interface-name-prefix'),
  'hostname-override': same('value', 'hostname-override'),
  kubeconfig: same('value', 'kubeconfig'),
  config: same('value', 'config'),
  'oom-score-adj': same('value', 'oom-score-adj'),
  'conntrack-max-per-core': same('value', 'conntrack-max-per-core'),
  'conntrack-min': same('value', 'conntrack-min'),
  'conntrack-tcp-timeout-established': same('value', 'conntrack-tcp-timeout-established'),
  'conntrack-tcp-timeout-close-wait': same('value', 'conntrack-tcp-timeout-close-wait'),
  'conntrack-udp-timeout': same('value', 'conntrack-udp-timeout'),
  'conntrack-udp-timeout-stream': same('value', 'conntrack-udp-timeout-stream'),
  'masquerade-all': same('bool', 'masquerade-all'),
  'conntrack-tcp-be-liberal': same('bool', 'conntrack-tcp-be-liberal'),
  cleanup: same('bool', 'cleanup'),

  'feature-gates': ignored('value', ignoredBecause.featureGates),
  profiling: ignored('bool', `${ignoredBecause.profiling}; ignored`),
  'iptables-masquerade-bit': ignored('value', (bit) => (bit.trim() === '14' ? undefined : ignoredBecause.masqueradeBit)),
  'iptables-localhost-nodeports': ignored('bool', `${ignoredBecause.localhostNodePorts} (kube-proxy's default, true, allows them in iptables mode)`),
  'bind-address-hard-fail': ignored('bool', 'netplane ends when it cannot bind --admin, and carries on without /healthz when it cannot bind --healthz-bind-address (the rules matter more); ignored'),
  master: ignored('value', apiServer),
  'kube-api-content-type': ignored('value', apiClient),
  'kube-api-burst': ignored('value', apiClient),
  'kube-api-qps': ignored('value', apiClient),
  'config-sync-period': ignored('value', 'netplane watches the cluster and never lists it again on a timer; ignored'),
  'show-hidden-metrics-for-version': ignored('value', "netplane's metrics have no hidden ones; ignored"),
  'ipvs-sync-period': ignored('value', ipvsOnly),
  'ipvs-min-sync-period': ignored('value', ipvsOnly),
  'ipvs-scheduler': ignored('value', ipvsOnly),
  'ipvs-exclude-cidrs': ignored('value', ipvsOnly),
  'ipvs-strict-arp': ignored('bool', ipvsOnly),
  'ipvs-tcp-timeout': ignored('value', ipvsOnly),
  'ipvs-tcpfin-timeout': ignored('value', ipvsOnly),
  'ipvs-udp-timeout': ignored('value', ipvsOnly),
  'logging-format': ignored('value', (format) => (format === 'json' ? undefined : `${klogOutput.why}; ignored`)),
  'log-text-split-stream': ignored('bool', `${klogOutput.why}; ignored`),
  'log-text-info-buffer-size': ignored('value', `${klogOutput.why}; ignored`),
  'log-json-split-stream': ignored('bool', `${klogOutput.why}; ignored`),
  'log-json-info-buffer-size': ignored('value', `${klogOutput.why}; ignored`),
  ...Object.fromEntries(klogOutput.values.map((n) => [n, ignored('value', `${klogOutput.why}; ignored`)])),
  ...Object.fromEntries(klogOutput.bools.map((n) => [n, ignored('bool', `${klogOutput.why}; ignored`, true)])),

  'init-only': refused('bool', 'netplane proxy has no separate step that needs more privileges; run it without --init-only (it needs CAP_NET_ADMIN in the kernel modes)'),
  'write-config-to': refused('value', "netplane proxy writes no configuration file; it reads kube-proxy's with --config"),
};

/** kube-proxy's flags, as netplane proxy takes them. */
export const kubeProxyFlags: AnchorFlags = { program: 'kube-proxy', flags };

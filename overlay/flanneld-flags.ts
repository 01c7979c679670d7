// flanneld's command line (flannel's main.go, Go's flag package, and the klog flags it copies: -v, -vmodule,
// -log_backtrace_at) taken as netplane overlay's, so that a Flannel DaemonSet's `--ip-masq --kube-subnet-mgr
// --iface=eth1 -v=2` starts netplane as it is. Flags of the same name and meaning are netplane's own (--iface,
// --iface-regex, --public-ip, --subnet-file, --net-config-path ...) and are listed so that Go's forms of them work
// (`-iface eth1`, `--kube-subnet-mgr=true`). Without --kube-subnet-mgr flanneld takes each node's subnet from etcd:
// netplane takes it from the Node's podCIDR, as flanneld --kube-subnet-mgr, so an etcd flag without it is refused.
import { goBool, ignored, klogLevel, klogOutput, portNumber, renamed, same, type AnchorFlag, type AnchorFlags, type AnchorLine } from '../runtime/anchor-flags.ts';
import { hostPortText } from '../runtime/flags.ts';

/** flanneld's annotation prefix, the one netplane reads and (with --flannel-annotations) writes. */
const annotationPrefix = 'flannel.alpha.coreos.com';

/** flanneld's --healthz-ip default. */
const healthzIP = '0.0.0.0';

/** Whether the command line runs flanneld's Kubernetes subnet manager (--kube-subnet-mgr, true). */
const kubeSubnetMgr = (line: AnchorLine) => line.value('kube-subnet-mgr') === 'true';

/** An etcd subnet manager's flag: ignored beside --kube-subnet-mgr (as flanneld ignores it), refused without. */
const etcd: AnchorFlag = {
  takes: 'value',
  take(_value, line) {
    if (!kubeSubnetMgr(line)) {
      throw new Error("it is for flanneld's etcd subnet manager, which runs without --kube-subnet-mgr, and netplane overlay takes each node's pod network from its Node's podCIDR, as flanneld --kube-subnet-mgr does; give --kube-subnet-mgr");
    }
    return { ignored: "only flanneld's etcd subnet manager reads it, and with --kube-subnet-mgr flanneld ignores it too; ignored" };
  },
};

/** --healthz-port: flanneld's /healthz there (0, its default, serves none); netplane serves /healthz on --admin. */
const healthzPort: AnchorFlag = {
  takes: 'value',
  as: 'admin',
  take(value, line) {
    const port = portNumber(value);
    if (port === 0) return {};
    return { argv: [`--admin=${hostPortText(line.value('healthz-ip') ?? healthzIP, port)}`] };
  },
};

const flags: Record<string, AnchorFlag> = {
  'kubeconfig-file': renamed('kubeconfig'),
  'iptables-resync': renamed('resync-period', (seconds) => {
    if (!/^\d+$/.test(seconds.trim()) || Number(seconds) < 1) throw new Error('must be a whole number of seconds, at least 1');
    return `${Number(seconds)}s`;
  }),
  'healthz-port': healthzPort,
  'healthz-ip': {
    takes: 'value',
    as: 'admin',
    take(ip, line) {
      // The address goes with --healthz-port (above); without a port flanneld serves no /healthz.
      if (Number(line.value('healthz-port') ?? '0') > 0) return {};
      return ip === healthzIP ? {} : { ignored: 'without --healthz-port, flanneld serves no /healthz; ignored' };
    },
  },
  v: renamed('log-level', klogLevel),

  'kube-subnet-mgr': same('bool', 'kube-subnet-mgr', "flanneld then takes each node's subnet from etcd, and netplane overlay takes each node's pod network from its Node's podCIDR, as flanneld --kube-subnet-mgr does; give --kube-subnet-mgr"),
  'ip-masq': same('bool', 'ip-masq', 'netplane overlay always masquerades pod traffic that leaves the pod network, and cannot leave it as it is; leave --ip-masq=false out'),
  iface: same('value', 'iface'),
  'iface-regex': same('value', 'iface-regex'),
  'iface-can-reach': same('value', 'iface-can-reach'),
  'public-ip': same('value', 'public-ip'),
  'public-ipv6': same('value', 'public-ipv6'),
  'subnet-file': same('value', 'subnet-file'),
  'net-config-path': same('value', 'net-config-path'),
  // A Go boolean in flanneld, a true|false value in netplane: both forms.
  'set-node-network-unavailable': { takes: 'bool-or-value', as: 'set-node-network-unavailable', take: (value) => ({ argv: [`--set-node-network-unavailable=${goBool(value)}`] }) },

  'etcd-endpoints': etcd,
  'etcd-prefix': etcd,
  'etcd-keyfile': etcd,
  'etcd-certfile': etcd,
  'etcd-cafile': etcd,
  'etcd-username': etcd,
  'etcd-password': etcd,
  'subnet-lease-renew-margin': etcd,
  'kube-api-url': ignored('value', 'netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored'),
  'kube-annotation-prefix': {
    takes: 'value',
    take(prefix) {
      if (prefix.replace(/\/$/, '') === annotationPrefix) return {};
      throw new Error(`netplane overlay reads Flannel's annotations under ${annotationPrefix} only (and writes them there with --flannel-annotations), so Flannel nodes annotated under another prefix would not be reached`);
    },
  },
  'iptables-forward-rules': {
    takes: 'bool',
    take(on) {
      if (on === 'true') return {};
      throw new Error("netplane overlay accepts pod traffic in FORWARD wherever the host's firewall could drop it (its chain NETPLANE-OVERLAY-FWD, as Flannel's FLANNEL-FWD), and cannot leave FORWARD alone");
    },
  },
  'use-multi-cluster-cidr': ignored('bool', "the MultiClusterCIDR API (removed in Kubernetes 1.29) is not read: each node's pod network is its Node's podCIDR; ignored"),
  'persistent-mac': ignored('bool', "netplane derives the VXLAN device's MAC from this node's address, so it stays the same across reboots anyway; ignored"),
  vmodule: ignored('value', `${klogOutput.why}; ignored`),
  'log-backtrace-at': ignored('value', `${klogOutput.why}; ignored`),
};

/** flanneld's flags, as netplane overlay takes them. */
export const flanneldFlags: AnchorFlags = { program: 'flanneld', flags };

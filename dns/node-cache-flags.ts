// NodeLocal DNSCache's node-cache command line (kubernetes/dns cmd/node-cache; Go's flag package) taken as netplane
// dns's, so that the node-local-dns DaemonSet of kubernetes/kubernetes' cluster/addons/dns/nodelocaldns runs with
// only the image swapped: `args: [-localip, 169.254.20.10,10.96.0.10, -conf, /etc/Corefile, -upstreamsvc,
// kube-dns-upstream]`. node-cache fills the placeholders of the Corefile template mounted at -basecorefile, writes
// the result to -conf and runs CoreDNS on it; netplane reads the template itself with those placeholders filled
// (--corefile-placeholder), and sets up what node-cache sets up around CoreDNS: the dummy interface of the local
// addresses (--local-interface) and their NOTRACK rules (--notrack), removed at exit unless -skipteardown.
import { isIP } from 'node:net';
import { ignored, refused, renamed, type AnchorFlag, type AnchorFlags } from '../runtime/anchor-flags.ts';
import { corednsFlags } from './coredns-flags.ts';

/** node-cache's defaults for what its DaemonSet leaves out, as netplane takes them too. */
const defaults: Record<string, string> = {
  basecorefile: '/etc/coredns/Corefile.base',
  upstreamsvc: 'kube-dns',
  setupinterface: 'true',
  setupiptables: 'true',
};

/** The environment variable of a Service's cluster IP in a pod started after it (kube-dns-upstream: KUBE_DNS_UPSTREAM_SERVICE_HOST). */
export function serviceHostVariable(service: string): string {
  return `${service.replaceAll('-', '_').toUpperCase()}_SERVICE_HOST`;
}

/**
 * The flags of the placeholders of NodeLocal DNSCache's Corefile that the Service's cluster IP and the upstream
 * servers fill: node-cache's __PILLAR__CLUSTER__DNS__ (from the Service's environment variable) and
 * __PILLAR__UPSTREAM__SERVERS__ (/etc/resolv.conf, without a kube-dns ConfigMap's upstreamNameservers).
 */
function upstreamService(env: NodeJS.ProcessEnv): AnchorFlag {
  return {
    takes: 'value',
    as: 'corefile-placeholder',
    take(service) {
      const variable = serviceHostVariable(service);
      const ip = env[variable]?.trim() ?? '';
      const argv = ['--corefile-placeholder=__PILLAR__UPSTREAM__SERVERS__=/etc/resolv.conf'];
      if (isIP(ip) !== 0) return { argv: [...argv, `--corefile-placeholder=__PILLAR__CLUSTER__DNS__=${ip}`] };
      return { argv, ignored: `$${variable} holds no IP address (Kubernetes sets it in pods started after the Service ${service} exists), so __PILLAR__CLUSTER__DNS__ is left unfilled` };
    },
  };
}

/** node-cache's flags, as netplane dns takes them; `env` gives the Service addresses, as to node-cache. */
export function nodeCacheFlags(env: NodeJS.ProcessEnv = process.env): AnchorFlags {
  return {
    program: 'node-cache',
    dashes: '-',
    flags: {
      ...corednsFlags.flags,
      localip: {
        takes: 'value',
        as: 'local-ip',
        take(value) {
          const ips = value.split(',').map((ip) => ip.trim());
          if (ips.some((ip) => isIP(ip) === 0)) throw new Error('must be IP addresses separated by commas, e.g. 169.254.20.10,10.96.0.10');
          if (new Set(ips.map((ip) => isIP(ip))).size > 1) throw new Error('the addresses must be of one family, as node-cache requires');
          return {
            argv: [
              ...ips.map((ip) => `--local-ip=${ip}`),
              `--corefile-placeholder=__PILLAR__LOCAL__DNS__=${ips.join(' ')}`,
              // node-cache puts every address in __PILLAR__LOCAL__DNS__ and drops this one.
              '--corefile-placeholder=__PILLAR__DNS__SERVER__=',
            ],
          };
        },
      },
      basecorefile: renamed('conf'),
      conf: ignored('value', 'node-cache writes the Corefile it runs there; netplane reads -basecorefile with its placeholders filled, and writes none'),
      corefile: ignored('value', 'node-cache writes the Corefile it runs there; netplane reads -basecorefile with its placeholders filled, and writes none'),
      upstreamsvc: upstreamService(env),
      setupinterface: {
        takes: 'bool',
        as: 'local-interface',
        take: (value, line) => (value === 'true' ? { argv: [`--local-interface=${line.value('interfacename') ?? 'nodelocaldns'}`] } : {}),
      },
      // Read by -setupinterface.
      interfacename: { takes: 'value', as: 'local-interface', take: () => ({}) },
      setupiptables: { takes: 'bool', as: 'notrack', take: (value) => (value === 'true' ? { argv: ['--notrack'] } : {}) },
      skipteardown: { takes: 'bool', as: 'keep-local-setup', take: (value) => (value === 'true' ? { argv: ['--keep-local-setup'] } : {}) },
      setupebtables: refused('bool', 'netplane sets no ebtables rules (node-cache -setupebtables redirects bridged traffic to the local addresses): leave it false'),
      syncinterval: ignored('value', 'the interface and the rules are checked every 60 s'),
      initialdelay: ignored('value', 'the rules go in once the server answers'),
      'metrics-listen-address': ignored('value', "node-cache's coredns_nodecache_setup_errors_total is served with the other metrics, at the Corefile's prometheus address"),
      'health-port': ignored('value', "the health port kept out of conntrack is the one of the Corefile's health address"),
      kubednscm: ignored('value', "a kube-dns ConfigMap's stubDomains and upstreamNameservers are not read: write them in the Corefile as server blocks with forward"),
    },
  };
}

/** node-cache's command line with its defaults written out where it leaves them out (Go's flag package: as given). */
export function withNodeCacheDefaults(argv: readonly string[]): string[] {
  const given = (name: string) => argv.some((w) => new RegExp(`^--?${name}(=|$)`).test(w));
  const added = Object.entries(defaults).filter(([name]) => !given(name)).map(([name, value]) => `-${name}=${value}`);
  return [...added, ...argv];
}

/** Whether a command line starts as node-cache's DaemonSet starts it: with one of node-cache's own flags. */
export function startsAsNodeCache(first: string): boolean {
  return /^--?(localip|basecorefile|upstreamsvc|setupinterface|setupiptables|skipteardown|interfacename|kubednscm|syncinterval)(=|$)/.test(first);
}

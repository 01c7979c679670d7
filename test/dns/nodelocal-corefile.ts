// The Corefile of NodeLocal DNSCache's node-local-dns ConfigMap (kubernetes/kubernetes cluster/addons/dns/nodelocaldns),
// with its placeholders filled by what is given and left as they are otherwise, for node-cache (or netplane as
// node-cache) to fill: the cluster zone, in-addr.arpa and ip6.arpa asked of the cluster's DNS over TCP, the rest of
// the upstream servers; the health address in the cluster zone's block.

/** What fills the placeholders; each left out stays a placeholder. */
export interface NodeLocalValues {
  /** __PILLAR__DNS__DOMAIN__ (replaced by sed, as the documentation says). */
  domain?: string;
  /** __PILLAR__LOCAL__DNS__ and __PILLAR__DNS__SERVER__ (sed in kube-proxy's iptables mode). */
  local?: string;
  dnsServer?: string;
  /** __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ (node-cache's own). */
  clusterDns?: string;
  upstreams?: string;
  /** The server blocks' port (53 in the ConfigMap) and the health port (8080). */
  port?: number;
  healthPort?: number;
}

/** The ConfigMap's Corefile with these values. */
export function nodeLocalCorefile(v: NodeLocalValues = {}): string {
  const port = v.port ?? 53;
  const local = v.local ?? '__PILLAR__LOCAL__DNS__';
  const bind = `bind ${local} ${v.dnsServer ?? '__PILLAR__DNS__SERVER__'}`.trimEnd();
  const toCluster = `forward . ${v.clusterDns ?? '__PILLAR__CLUSTER__DNS__'} {\n            force_tcp\n    }`;
  const block = (zone: string, cache: string, forward: string, extra: string[] = []) =>
    [`${zone}:${port} {`, '    errors', `    ${cache}`, '    reload', '    loop', `    ${bind}`, `    ${forward}`, '    prometheus :9253', ...extra.map((l) => `    ${l}`), '    }'].join('\n');
  const successDenial = 'cache {\n            success 9984 30\n            denial 9984 5\n    }';
  return [
    block(v.domain ?? '__PILLAR__DNS__DOMAIN__', successDenial, toCluster, [`health ${local}:${v.healthPort ?? 8080}`]),
    block('in-addr.arpa', 'cache 30', toCluster),
    block('ip6.arpa', 'cache 30', toCluster),
    block('.', 'cache 30', `forward . ${v.upstreams ?? '__PILLAR__UPSTREAM__SERVERS__'}`),
    '',
  ].join('\n');
}

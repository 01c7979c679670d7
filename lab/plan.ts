// The lab's addresses and names, as a pure function of the node count and the underlay subnet it claimed:
//
//   host ── nplab<S> 192.168.S.254/24 ──┐
//                                       underlay namespace: br0
//   node1 eth0 192.168.S.1/24 ──────────┤   cni0 10.244.1.1/24 ─┬─ web-11 10.244.1.11
//                                       │                       └─ web-12 10.244.1.12
//   node2 eth0 192.168.S.2/24 ──────────┤   cni0 10.244.2.1/24 ── ...
//   ...
//
// Every node runs overlay, proxy and dns (on 10.244.N.1:53, behind the kube-dns ClusterIP with
// internalTrafficPolicy Local); node1 also runs the ingress gateway on 0.0.0.0:80 and :443.

/** The components a node runs; the ingress runs on the first node only. */
export const labComponents = ['overlay', 'proxy', 'dns', 'ingress'] as const;
/** One of the lab's components. */
export type LabComponent = (typeof labComponents)[number];

/** Where each component's admin server listens on the node's underlay address (the components' usual ports). */
export const adminPorts: Readonly<Record<LabComponent, number>> = { overlay: 10247, proxy: 10249, dns: 9153, ingress: 10254 };

/**
 * The log message each component prints once it serves (its /readyz only says the cluster view is loaded; the
 * listeners and the first programming come after).
 */
export const servingMessages: Readonly<Record<LabComponent, string>> = { overlay: 'overlay synced', proxy: 'rules synced', dns: 'dns serving', ingress: 'ingress serving' };

/** The fixed cluster-wide settings of every lab. */
export const labCluster = {
  clusterCIDR: '10.244.0.0/16',
  webClusterIP: '10.96.0.100',
  dnsClusterIP: '10.96.0.10',
  zone: 'cluster.local',
  ingressHost: 'web.lab',
  backendPort: 8080,
  podsPerNode: 2,
  /** Pods leave room for the VXLAN header, as Flannel's CNI configuration does. */
  podMTU: 1450,
  /** The underlay subnets tried, 192.168.<S>.0/24, first free one wins. */
  firstSubnet: 200,
  subnets: 20,
} as const;

/** One pod: name (also its namespace's suffix), node and address. */
export interface LabPod {
  name: string;
  node: string;
  ip: string;
}

/** One node: name (also its namespace's suffix), underlay address, pod network and its gateway, pods. */
export interface LabNode {
  name: string;
  index: number;
  ip: string;
  podCIDR: string;
  gateway: string;
  pods: LabPod[];
  components: LabComponent[];
}

/** The whole lab's layout. */
export interface LabPlan {
  /** The lab's id: namespaces are named `np<id>-<name>`. */
  id: string;
  subnet: number;
  underlayCIDR: string;
  hostLink: string;
  hostIP: string;
  nodes: LabNode[];
}

/** The layout of a lab with `nodeCount` nodes on 192.168.<subnet>.0/24. */
export function planLab(nodeCount: number, subnet: number): LabPlan {
  const nodes: LabNode[] = [];
  for (let i = 1; i <= nodeCount; i++) {
    const name = `node${i}`;
    const pods = Array.from({ length: labCluster.podsPerNode }, (_, j) => ({ name: `web-${i}${j + 1}`, node: name, ip: `10.244.${i}.${11 + j}` }));
    const components = labComponents.filter((c) => c !== 'ingress' || i === 1);
    nodes.push({ name, index: i, ip: `192.168.${subnet}.${i}`, podCIDR: `10.244.${i}.0/24`, gateway: `10.244.${i}.1`, pods, components });
  }
  return { id: `lab${subnet}`, subnet, underlayCIDR: `192.168.${subnet}.0/24`, hostLink: `nplab${subnet}`, hostIP: `192.168.${subnet}.254`, nodes };
}

/** Every pod of the lab, node by node. */
export function labPods(plan: LabPlan): LabPod[] {
  return plan.nodes.flatMap((n) => n.pods);
}

/** The node that runs the ingress gateway. */
export function ingressNode(plan: LabPlan): LabNode {
  return plan.nodes.find((n) => n.components.includes('ingress'))!;
}

/** The command-line arguments (after `netplane`) of one component on one node. */
export function componentArgs(plan: LabPlan, node: LabNode, component: LabComponent, manifests: string): string[] {
  const common = ['--manifests', manifests, '--node-name', node.name, '--admin', `${node.ip}:${adminPorts[component]}`];
  switch (component) {
    case 'overlay':
      return ['overlay', ...common, '--cluster-cidr', labCluster.clusterCIDR, '--iface', 'eth0'];
    case 'proxy':
      // Endpoint changes reach the kernel within a second: 100 ms batching instead of the default 1 s.
      return ['proxy', ...common, '--mode', 'nftables', '--cluster-cidr', labCluster.clusterCIDR, '--min-sync-period', '100ms'];
    case 'dns':
      // Names outside the cluster are forwarded to the host's end of the underlay, where a resolver may listen.
      return ['dns', ...common, '--listen', `${node.gateway}:53`, '--upstream', `${plan.hostIP}:53`, '--reverse-cidr', labCluster.clusterCIDR];
    case 'ingress':
      return ['ingress', ...common, '--http', '0.0.0.0:80', '--https', '0.0.0.0:443', '--drain-timeout', '1s'];
  }
}

/** Whether two IPv4 CIDRs share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [pa, la] = parseCIDR(a);
  const [pb, lb] = parseCIDR(b);
  const len = Math.min(la, lb);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((pa & mask) >>> 0) === ((pb & mask) >>> 0);
}

function parseCIDR(cidr: string): [number, number] {
  const [addr = '', len] = cidr.split('/');
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return [n >>> 0, len === undefined ? 32 : Number(len)];
}

// The cluster every component of a lab reads: the Nodes, the web Service with its pods, the Ingress for web.lab and
// the cluster DNS Service, as manifest files. Pure: file name → text.
import { stringify } from 'yaml';
import { labCluster, labPods, type LabPlan, type LabPod } from './plan.ts';

/** The file holding the web Service's EndpointSlice; rewrite it to change who answers. */
export const webEndpointsFile = 'web-endpoints.yaml';

const yamlDocs = (header: string, docs: readonly object[]) => `# ${header}\n${docs.map((d) => stringify(d)).join('---\n')}`;

/** The EndpointSlice of the web Service listing `pods` (ready, with their nodes). */
export function webEndpointSlice(pods: readonly LabPod[]): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-lab', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: labCluster.backendPort, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: true },
      nodeName: p.node,
      targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
    })),
  };
}

/** The text of the web EndpointSlice file listing `pods`. */
export function webEndpointsText(pods: readonly LabPod[]): string {
  return yamlDocs(`The endpoints of the web Service: ${pods.map((p) => p.name).join(', ') || 'none'}.`, [webEndpointSlice(pods)]);
}

/** Every manifest file of the lab, by file name. */
export function labManifests(plan: LabPlan): Map<string, string> {
  const nodes = plan.nodes.map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name },
    spec: { podCIDR: n.podCIDR },
    status: { addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }] },
  }));
  const web = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP: labCluster.webClusterIP, ports: [{ name: 'http', port: 80, targetPort: labCluster.backendPort, protocol: 'TCP' }] },
  };
  const ingressClass = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: { name: 'netplane', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
    spec: { controller: 'netplane.io/ingress' },
  };
  const backend = { service: { name: 'web', port: { name: 'http' } } };
  const ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      ingressClassName: 'netplane',
      rules: [
        { host: labCluster.ingressHost, http: { paths: [{ path: '/', pathType: 'Prefix', backend }] } },
        { http: { paths: [{ path: '/web', pathType: 'Prefix', backend }] } },
      ],
    },
  };
  const dns = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system' },
    spec: {
      clusterIP: labCluster.dnsClusterIP,
      // Each node's pods ask the dns of their own node (like node-local DNS).
      internalTrafficPolicy: 'Local',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ],
    },
  };
  const dnsSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kube-dns-lab', namespace: 'kube-system', labels: { 'kubernetes.io/service-name': 'kube-dns' } },
    addressType: 'IPv4',
    ports: [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ],
    endpoints: plan.nodes.map((n) => ({ addresses: [n.gateway], conditions: { ready: true }, nodeName: n.name })),
  };
  return new Map([
    ['nodes.yaml', yamlDocs(`The lab's ${plan.nodes.length} nodes on the underlay ${plan.underlayCIDR}.`, nodes)],
    ['web.yaml', yamlDocs(`The web Service, answered by the pods in ${webEndpointsFile}, and its Ingress (host ${labCluster.ingressHost}, and /web on any host).`, [web, ingressClass, ingress])],
    [webEndpointsFile, webEndpointsText(labPods(plan))],
    ['dns.yaml', yamlDocs("The cluster DNS Service: every node's dns listens on its pod gateway address.", [dns, dnsSlice])],
  ]);
}

/** The resolv.conf of a lab pod: the cluster DNS and the search path of the default namespace. */
export function podResolvConf(): string {
  const z = labCluster.zone;
  return `nameserver ${labCluster.dnsClusterIP}\nsearch default.svc.${z} svc.${z} ${z}\noptions ndots:5\n`;
}

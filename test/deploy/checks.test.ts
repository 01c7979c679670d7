// The checks catch real defects: each row breaks a copy of deploy/ in one way and names the rule that must fire.
import { describe, expect, it } from 'vitest';
import { checkDocument, checkNetplaneAccepts, type Doc, type Rule } from './checks.ts';
import { deployChecks } from './deploy-checks.ts';
import { loadTree, parseText } from './load.ts';

const base = loadTree('deploy');

// Manifests are untyped data; edits reach into them freely.
type Any = any;
type Edit = (get: (kind: string, name: string) => Any, docs: Doc[], files: string[]) => void;

function rulesAfter(edit: Edit): Rule[] {
  const docs = structuredClone(base.docs);
  const files = [...base.files];
  const get = (kind: string, name: string) => {
    const d = docs.find((x) => x.body.kind === kind && (x.body.metadata as Any)?.name === name);
    if (!d) throw new Error(`test setup: ${kind}/${name} is not in deploy/`);
    return d.body;
  };
  edit(get, docs, files);
  const problems = [
    ...docs.flatMap((d) => [...checkDocument(d), ...checkNetplaneAccepts(d.at, d.body)]),
    ...deployChecks.flatMap((c) => c.check(docs, files)),
  ];
  return problems.map((p) => p.rule);
}

const node = (get: (k: string, n: string) => Any) => get('DaemonSet', 'netplane-node').spec.template;
const dns = (get: (k: string, n: string) => Any) => get('Deployment', 'netplane-dns').spec.template;

const cases: { name: string; rule: Rule; edit: Edit }[] = [
  { name: 'a document without metadata.name', rule: 'identity', edit: (get) => delete get('Service', 'netplane-dns').metadata.name },
  { name: 'a selector label missing from the pod template', rule: 'selector', edit: (get) => delete node(get).metadata.labels['app.kubernetes.io/component'] },
  { name: 'an empty selector', rule: 'selector', edit: (get) => (get('Deployment', 'netplane-dns').spec.selector = {}) },
  { name: 'a pod without containers', rule: 'containers', edit: (get) => (dns(get).spec.containers = []) },
  { name: 'a container without an image', rule: 'containers', edit: (get) => delete node(get).spec.containers[1].image },
  { name: 'two containers with one name', rule: 'containers', edit: (get) => (node(get).spec.containers[1].name = 'proxy') },
  { name: 'a port name used twice in the pod', rule: 'ports', edit: (get) => (node(get).spec.containers[1].ports[0].name = 'proxy-metrics') },
  { name: 'a port name over 15 characters', rule: 'ports', edit: (get) => (dns(get).spec.containers[0].ports[2].name = 'dns-admin-metrics') },
  { name: 'a probe on an undeclared port name', rule: 'probe-port', edit: (get) => (dns(get).spec.containers[0].readinessProbe.httpGet.port = 'admin') },
  { name: "a probe on another container's port", rule: 'probe-port', edit: (get) => (node(get).spec.containers[1].livenessProbe.httpGet.port = 'proxy-metrics') },
  { name: '$(NODE_NAME) in args without the env var', rule: 'env-ref', edit: (get) => delete node(get).spec.containers[0].env },
  { name: 'a Service port without a number', rule: 'service-ports', edit: (get) => delete get('Service', 'netplane-dns').spec.ports[0].port },
  { name: 'a Service protocol that is not TCP/UDP/SCTP', rule: 'service-ports', edit: (get) => (get('Service', 'netplane-ingress').spec.ports[0].protocol = 'HTTP') },
  { name: 'an unnamed port in a multi-port Service', rule: 'service-ports', edit: (get) => delete get('Service', 'netplane-dns').spec.ports[1].name },
  { name: 'a Service netplane cannot parse', rule: 'netplane-parse', edit: (get) => (get('Service', 'netplane-dns').spec.clusterIP = '10.96.0') },
  { name: 'a role granting get', rule: 'rbac-grant', edit: (get) => get('ClusterRole', 'netplane-node').rules[0].verbs.push('get') },
  { name: 'a role using a wildcard resource', rule: 'rbac-grant', edit: (get) => (get('ClusterRole', 'netplane-dns').rules[1].resources = ['*']) },
  { name: 'patch granted beyond nodes/status', rule: 'rbac-grant', edit: (get) => get('ClusterRole', 'netplane-node').rules[2].resources.push('services') },
  { name: 'patch granted on nodes themselves (the overlay writes through nodes/status)', rule: 'rbac-grant', edit: (get) => get('ClusterRole', 'netplane-node').rules[2].resources.push('nodes') },
  { name: 'DNS granted Secrets it does not read', rule: 'rbac-grant', edit: (get) => get('ClusterRole', 'netplane-dns').rules[0].resources.push('secrets') },
  { name: 'ingress lacking watch on endpointslices', rule: 'rbac-missing', edit: (get) => (get('ClusterRole', 'netplane-ingress').rules[1].verbs = ['list']) },
  { name: 'the node agent lacking its patch rule', rule: 'rbac-missing', edit: (get) => get('ClusterRole', 'netplane-node').rules.pop() },
  { name: 'the node agent with patch on nodes in place of nodes/status', rule: 'rbac-missing', edit: (get) => (get('ClusterRole', 'netplane-node').rules[2].resources = ['nodes']) },
  { name: 'the ingress gateway lacking patch on ingresses/status', rule: 'rbac-missing', edit: (get) => get('ClusterRole', 'netplane-ingress').rules.pop() },
  { name: 'the ingress gateway lacking its Lease', rule: 'rbac-missing', edit: (get, docs) => docs.splice(docs.findIndex((d) => d.body.kind === 'RoleBinding' && (d.body.metadata as Any).name === 'netplane-ingress-leader'), 1) },
  { name: 'a workload running under another workload\'s ServiceAccount', rule: 'rbac-grant', edit: (get) => (dns(get).spec.serviceAccountName = 'netplane-ingress') },
  { name: 'a binding to a role not in deploy/', rule: 'binding-ref', edit: (get) => (get('ClusterRoleBinding', 'netplane-dns').roleRef.name = 'netplane-reader') },
  { name: 'a binding subject in another namespace', rule: 'binding-ref', edit: (get) => (get('ClusterRoleBinding', 'netplane-node').subjects[0].namespace = 'kube-system') },
  { name: 'an object outside netplane-system', rule: 'namespace', edit: (get) => (get('Service', 'netplane-dns').metadata.namespace = 'kube-system') },
  { name: 'an object with no namespace', rule: 'namespace', edit: (get) => delete get('Deployment', 'netplane-ingress').metadata.namespace },
  { name: 'a cluster-scoped object naming a namespace', rule: 'namespace', edit: (get) => (get('IngressClass', 'netplane').metadata.namespace = 'netplane-system') },
  { name: 'a pod on the default ServiceAccount', rule: 'service-account', edit: (get) => delete dns(get).spec.serviceAccountName },
  { name: 'a Service selecting no pods', rule: 'service-selector', edit: (get) => (get('Service', 'netplane-dns').spec.selector['app.kubernetes.io/component'] = 'coredns') },
  { name: 'a Service targetPort naming no pod port', rule: 'service-selector', edit: (get) => (get('Service', 'netplane-ingress').spec.ports[1].targetPort = 'tls') },
  { name: 'a ServiceMonitor selecting no Service', rule: 'monitor-selector', edit: (get) => (get('ServiceMonitor', 'netplane-ingress').spec.selector.matchLabels['app.kubernetes.io/component'] = 'gateway') },
  { name: 'a ServiceMonitor scraping an unknown port', rule: 'monitor-selector', edit: (get) => (get('ServiceMonitor', 'netplane-node').spec.endpoints[1].port = 'metrics') },
  { name: 'the proxy not privileged', rule: 'privileges', edit: (get) => (node(get).spec.containers[0].securityContext.privileged = false) },
  { name: 'the proxy without a securityContext', rule: 'privileges', edit: (get) => delete node(get).spec.containers[0].securityContext },
  { name: 'the proxy on the default API server address', rule: 'apiserver-address', edit: (get) => delete node(get).spec.containers[0].envFrom },
  { name: 'the overlay on the default API server address', rule: 'apiserver-address', edit: (get) => delete node(get).spec.containers[1].envFrom },
  { name: 'the API server ConfigMap without a port', rule: 'apiserver-address', edit: (get) => delete get('ConfigMap', 'netplane-apiserver').data.KUBERNETES_SERVICE_PORT },
  { name: 'the API server ConfigMap with an empty host', rule: 'apiserver-address', edit: (get) => (get('ConfigMap', 'netplane-apiserver').data.KUBERNETES_SERVICE_HOST = '') },
  { name: 'envFrom naming a ConfigMap not in deploy/', rule: 'env-ref', edit: (get) => (node(get).spec.containers[1].envFrom[0].configMapRef.name = 'apiserver') },
  { name: 'the overlay without NET_RAW', rule: 'capabilities', edit: (get) => (node(get).spec.containers[1].securityContext.capabilities.add = ['NET_ADMIN']) },
  { name: 'the overlay without NET_ADMIN', rule: 'capabilities', edit: (get) => (node(get).spec.containers[1].securityContext.capabilities.add = ['CAP_NET_RAW']) },
  { name: 'the overlay without a securityContext', rule: 'capabilities', edit: (get) => delete node(get).spec.containers[1].securityContext },
  { name: 'the proxy with the default --detect-local-mode and no --cluster-cidr', rule: 'local-traffic', edit: (get) => node(get).spec.containers[0].args.pop() },
  { name: 'the proxy with --detect-local-mode ClusterCIDR and no --cluster-cidr', rule: 'local-traffic', edit: (get) => (node(get).spec.containers[0].args.splice(-1, 1, '--detect-local-mode', 'ClusterCIDR')) },
  { name: 'the proxy with --detect-local-mode BridgeInterface and no bridge', rule: 'local-traffic', edit: (get) => (node(get).spec.containers[0].args.splice(-1, 1, '--detect-local-mode=BridgeInterface')) },
  { name: 'a flag the proxy does not take', rule: 'args', edit: (get) => node(get).spec.containers[0].args.push('--cluster-cidrs=10.244.0.0/16') },
  { name: 'a DNS flag value dns refuses', rule: 'args', edit: (get) => dns(get).spec.containers[0].args.push('--pods=maybe') },
  { name: 'a file left out of the kustomization', rule: 'kustomization', edit: (_get, _docs, files) => files.push('deploy/extra.yaml') },
  { name: 'a kustomization listing a missing file', rule: 'kustomization', edit: (_get, _docs, files) => files.splice(files.indexOf('deploy/monitoring.yaml'), 1) },
];

describe('checks on a broken copy of deploy/', () => {
  it('find nothing in the unbroken copy', () => {
    expect(rulesAfter(() => {})).toEqual([]);
  });

  it.each(cases)('$name → $rule', ({ edit, rule }) => {
    expect(rulesAfter(edit)).toContain(rule);
  });

  it.each<[string, Edit]>([
    ['in env', (get) => {
      const proxy = node(get).spec.containers[0];
      delete proxy.envFrom;
      proxy.env.push({ name: 'KUBERNETES_SERVICE_HOST', value: '192.168.1.10' }, { name: 'KUBERNETES_SERVICE_PORT', value: '6443' });
    }],
    ['by a kubeconfig', (get) => {
      const proxy = node(get).spec.containers[0];
      delete proxy.envFrom;
      proxy.args.push('--kubeconfig=/var/lib/netplane/kubeconfig');
    }],
  ])('take the API server address given %s', (_name, edit) => {
    expect(rulesAfter(edit)).toEqual([]);
  });

  it.each<[string, string[]]>([
    ['--cluster-cidr with the default mode', ['--cluster-cidr=10.244.0.0/16']],
    ['ClusterCIDR with --cluster-cidr, as two arguments each', ['--detect-local-mode', 'ClusterCIDR', '--cluster-cidr', '10.244.0.0/16,fd00:244::/56']],
    ['InterfaceNamePrefix with its prefix', ['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix=veth']],
  ])('take a proxy that tells local traffic by %s', (_name, args) => {
    expect(rulesAfter((get) => node(get).spec.containers[0].args.splice(-1, 1, ...args))).toEqual([]);
  });
});

describe('parseText', () => {
  it.each([
    { name: 'a duplicate key', text: 'apiVersion: v1\nkind: Service\nkind: Pod\n' },
    { name: 'bad indentation', text: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   namespace: b\n' },
    { name: 'an unterminated JSON object', text: '{"apiVersion": "v1", "kind": "Service"' },
  ])('reports $name as a yaml problem', ({ text }) => {
    const rules = parseText('x.yaml', text).problems.map((p) => p.rule);
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules)).toEqual(new Set(['yaml']));
  });

  it('spreads List items into documents and skips empty ones', () => {
    // The first document is empty (only `---`), so the List is document 2.
    const text = '---\n---\napiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Service, metadata: {name: a}}\n  - {kind: Service}\n';
    const { docs, problems } = parseText('x.yaml', text);
    expect(problems).toEqual([]);
    expect(docs.map((d) => d.at)).toEqual(['x.yaml#2.items[0]', 'x.yaml#2.items[1]']);
    expect(docs.flatMap(checkDocument).map((p) => [p.at, p.rule])).toContainEqual(['x.yaml#2.items[1]', 'identity']);
  });
});

// Every manifest in deploy/ and examples/ parses and is a valid, self-consistent Kubernetes object;
// examples/ must also be accepted by netplane's own parser, since `netplane up --manifests` reads them.
import { describe, expect, it } from 'vitest';
import { checkDocument, checkNetplaneAccepts, podSpecOf, ref } from './checks.ts';
import { deployChecks } from './deploy-checks.ts';
import { loadTree } from './load.ts';

const deploy = loadTree('deploy');
const examples = loadTree('examples');

describe('deploy/', () => {
  it('holds the manifests', () => {
    expect(deploy.files).toEqual(expect.arrayContaining(['deploy/rbac.yaml', 'deploy/daemonset.yaml', 'deploy/dns.yaml', 'deploy/ingress.yaml', 'deploy/monitoring.yaml']));
  });

  it('parses without YAML errors or warnings', () => {
    expect(deploy.problems).toEqual([]);
  });

  // netplane reads its own Services and IngressClass through the API, so its parser must take them too.
  it.each(deploy.docs.map((d) => ({ name: `${d.at} ${ref(d)}`, d })))('$name is well-formed', ({ d }) => {
    expect([...checkDocument(d), ...checkNetplaneAccepts(d.at, d.body)]).toEqual([]);
  });

  it.each(deployChecks)('$name', ({ check }) => {
    expect(check(deploy.docs, deploy.files)).toEqual([]);
  });

  // The image runs as root unless told otherwise (for the anchors' manifests, which name no user): each of netplane's
  // own containers names its user, in its own securityContext or the pod's, and only the node agents are root.
  it('names the user of every container, root only for proxy, overlay and the node-local DNS', () => {
    const users = deploy.docs.flatMap((d) => {
      const spec = podSpecOf(d) as { securityContext?: { runAsUser?: number }; containers?: Array<{ name: string; args?: string[]; securityContext?: { runAsUser?: number } }>; initContainers?: Array<{ name: string; args?: string[]; securityContext?: { runAsUser?: number } }> } | undefined;
      return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => [`${ref(d)} ${c.name}`, c.securityContext?.runAsUser ?? spec?.securityContext?.runAsUser] as const);
    });
    expect(users.filter(([, uid]) => uid === undefined)).toEqual([]);
    expect(users.filter(([, uid]) => uid === 0).map(([name]) => name).sort()).toEqual(users.filter(([name]) => /netplane-node|nodelocal/.test(name)).map(([name]) => name).sort());
  });

  // checkRbac grants each workload what its components read; every component must run in some workload.
  it('runs every component somewhere', () => {
    const run = deploy.docs.flatMap((d) => (podSpecOf(d)?.containers as Array<{ args?: string[] }> | undefined) ?? []).map((c) => c.args?.[0]);
    expect(new Set(run)).toEqual(new Set(['proxy', 'dns', 'ingress', 'overlay']));
  });
});

// What tools written for CoreDNS look for: its label on the pods and the Service (NetworkPolicies allowing DNS egress
// select it), and its toleration of the control-plane taint (kubeadm), so that DNS runs before any worker joins.
describe('deploy/dns.yaml', () => {
  const get = (kind: string) => deploy.docs.find((d) => d.body.kind === kind && (d.body.metadata as { name?: string }).name === 'netplane-dns')!.body as Record<string, any>;

  it('labels the DNS pods and Service k8s-app: kube-dns, keeping the selector a live Deployment already has', () => {
    const dns = get('Deployment');
    expect(dns.spec.template.metadata.labels).toMatchObject({ 'k8s-app': 'kube-dns' });
    expect(get('Service').metadata.labels).toMatchObject({ 'k8s-app': 'kube-dns' });
    // spec.selector is immutable: a changed one makes `kubectl apply` fail on every cluster already running netplane.
    expect(dns.spec.selector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'netplane', 'app.kubernetes.io/component': 'dns' } });
  });

  it("tolerates the control-plane taint, as CoreDNS's Deployment does", () => {
    expect(get('Deployment').spec.template.spec.tolerations).toContainEqual({ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' });
  });
});

// examples/ is written separately and may not exist yet; the checks apply to whatever is there.
describe('examples/', () => {
  it('parses without YAML errors or warnings', () => {
    expect(examples.problems).toEqual([]);
  });

  it('has well-formed documents', () => {
    expect(examples.docs.flatMap(checkDocument)).toEqual([]);
  });

  it("is accepted by netplane's parser", () => {
    expect(examples.raw.flatMap((r) => checkNetplaneAccepts(r.at, r.body))).toEqual([]);
  });
});

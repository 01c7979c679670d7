// Checks across all documents of deploy/: least-privilege RBAC, references between objects that must resolve,
// one namespace, and a kustomization that lists every file.
import { basename, dirname, relative } from 'node:path';
import type { Kind } from '../../cluster/model/index.ts';
import { dnsComponent } from '../../dns/component.ts';
import { ingressComponent } from '../../ingress/component.ts';
import { overlayComponent } from '../../overlay/component.ts';
import { proxyComponent } from '../../proxy/component.ts';
import type { Component } from '../../runtime/component.ts';
import { arr, isKustomization, obj, podSpecOf, ref, str, templateLabels, type Doc, type Obj, type Problem } from './checks.ts';
import { checkApiServerAddress, checkArgs, checkEnvFrom, checkLocalTraffic, checkOverlayCapabilities } from './node-checks.ts';

/** The namespace everything namespaced in deploy/ lives in. */
export const namespace = 'netplane-system';

const clusterScoped = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'IngressClass', 'PriorityClass', 'CustomResourceDefinition',
  'StorageClass', 'PersistentVolume', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration',
]);

const meta = (d: Doc) => obj(d.body.metadata);
const find = (docs: Doc[], kind: string, name: unknown, ns?: unknown) =>
  docs.find((d) => d.body.kind === kind && meta(d).name === name && (ns === undefined || meta(d).namespace === ns));
const subset = (small: unknown, big: unknown) => Object.entries(obj(small)).every(([k, v]) => obj(big)[k] === v);

/** The API group and resource of each kind the store reads, as RBAC names them (`group/resource`). */
const resourceOf: Readonly<Record<Kind, string>> = {
  Service: '/services',
  EndpointSlice: 'discovery.k8s.io/endpointslices',
  Ingress: 'networking.k8s.io/ingresses',
  IngressClass: 'networking.k8s.io/ingressclasses',
  Secret: '/secrets',
  ConfigMap: '/configmaps',
  Node: '/nodes',
  Namespace: '/namespaces',
  Pod: '/pods',
};

const componentsByName = new Map<string, Component>(
  [proxyComponent, dnsComponent, ingressComponent, overlayComponent].map((c) => [c.name, c]),
);

/**
 * What one pod needs, from the components its containers run (the first argument): list and watch on each
 * kind the component reads, and patch on nodes/status for the overlay, which publishes its VTEP annotations and
 * clears its Node's NetworkUnavailable condition both through that subresource; patch on ingresses/status and its Lease for the
 * ingress gateway, which writes the status of the Ingresses it serves from the replica elected by that Lease.
 */
export function neededGrants(pod: Obj): Set<string> {
  const need = new Set<string>();
  for (const c of arr(pod.containers).map(obj)) {
    const component = componentsByName.get(String(arr(c.args)[0]));
    for (const kind of component?.kinds ?? []) for (const v of ['list', 'watch']) need.add(`${resourceOf[kind]}:${v}`);
    if (component === overlayComponent) need.add('/nodes/status:patch');
    if (component === ingressComponent) {
      for (const g of ['networking.k8s.io/ingresses/status:patch', 'coordination.k8s.io/leases:create', 'coordination.k8s.io/leases:get', 'coordination.k8s.io/leases:update']) need.add(g);
    }
  }
  return need;
}

/** Every `group/resource:verb` a role grants; wildcards stay as written so they never match a need. */
function roleGrants(role: Doc): Set<string> {
  const out = new Set<string>();
  for (const r of arr(role.body.rules).map(obj)) {
    for (const g of arr(r.apiGroups)) for (const res of arr(r.resources)) for (const v of arr(r.verbs)) out.add(`${String(g)}/${String(res)}:${String(v)}`);
  }
  return out;
}

/** Each workload's ServiceAccount is granted exactly what its components read: nothing more, nothing less. */
export function checkRbac(docs: Doc[]): Problem[] {
  const out: Problem[] = [];
  for (const d of docs.filter((x) => x.body.kind === 'ClusterRole' || x.body.kind === 'Role')) {
    if (d.body.aggregationRule !== undefined) out.push({ rule: 'rbac-grant', at: d.at, detail: `${ref(d)}: aggregationRule grants whatever other roles grant` });
    if (arr(d.body.rules).some((r) => obj(r).nonResourceURLs !== undefined)) out.push({ rule: 'rbac-grant', at: d.at, detail: `${ref(d)}: nonResourceURLs are not needed` });
  }
  for (const d of docs) {
    const pod = podSpecOf(d);
    if (!pod) continue;
    const sa = pod.serviceAccountName;
    const ns = meta(d).namespace;
    const bound = docs.filter((b) => (b.body.kind === 'ClusterRoleBinding' || b.body.kind === 'RoleBinding') && arr(b.body.subjects).map(obj).some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === ns));
    const given = new Set<string>();
    for (const b of bound) {
      const role = obj(b.body.roleRef);
      const r = find(docs, String(role.kind), role.name, role.kind === 'Role' ? meta(b).namespace : undefined);
      if (r) for (const g of roleGrants(r)) given.add(g);
    }
    const need = neededGrants(pod);
    for (const g of given) if (!need.has(g)) out.push({ rule: 'rbac-grant', at: d.at, detail: `${ref(d)}: ServiceAccount ${String(sa)} is granted ${g}, which its components do not need` });
    for (const g of need) if (!given.has(g)) out.push({ rule: 'rbac-missing', at: d.at, detail: `${ref(d)}: ServiceAccount ${String(sa)} lacks ${g}` });
  }
  return out;
}

/** Each (Cluster)RoleBinding names a role and ServiceAccounts that exist in deploy/. */
export function checkBindings(docs: Doc[]): Problem[] {
  const out: Problem[] = [];
  for (const d of docs.filter((x) => x.body.kind === 'ClusterRoleBinding' || x.body.kind === 'RoleBinding')) {
    const say = (detail: string) => out.push({ rule: 'binding-ref', at: d.at, detail: `${ref(d)}: ${detail}` });
    const role = obj(d.body.roleRef);
    if (role.apiGroup !== 'rbac.authorization.k8s.io') say(`roleRef.apiGroup must be rbac.authorization.k8s.io`);
    const roleNs = role.kind === 'Role' ? meta(d).namespace : undefined;
    if (!find(docs, String(role.kind), role.name, roleNs)) say(`roleRef ${String(role.kind)}/${String(role.name)} is not in deploy/`);
    const subjects = arr(d.body.subjects).map(obj);
    if (subjects.length === 0) say('has no subjects');
    for (const s of subjects.filter((x) => x.kind === 'ServiceAccount')) {
      if (!find(docs, 'ServiceAccount', s.name, s.namespace)) say(`subject ServiceAccount ${String(s.namespace)}/${String(s.name)} is not in deploy/`);
    }
  }
  return out;
}

/** Namespaced objects are in `namespace`, cluster-scoped ones name none, and the Namespace itself is defined. */
export function checkNamespaces(docs: Doc[]): Problem[] {
  const out: Problem[] = [];
  if (!find(docs, 'Namespace', namespace)) out.push({ rule: 'namespace', at: 'deploy/', detail: `Namespace ${namespace} is not defined` });
  for (const d of docs.filter((x) => !isKustomization(x))) {
    const ns = meta(d).namespace;
    const scoped = clusterScoped.has(String(d.body.kind));
    if (scoped && ns !== undefined) out.push({ rule: 'namespace', at: d.at, detail: `${ref(d)} is cluster-scoped but names namespace ${String(ns)}` });
    if (!scoped && ns !== namespace) out.push({ rule: 'namespace', at: d.at, detail: `${ref(d)} is in namespace ${String(ns ?? '(none)')}, not ${namespace}` });
  }
  return out;
}

/** Pods run as a ServiceAccount defined in deploy/ (the `default` one has none of netplane's grants). */
export function checkServiceAccounts(docs: Doc[]): Problem[] {
  return docs.flatMap((d) => {
    const pod = podSpecOf(d);
    if (!pod) return [];
    const sa = pod.serviceAccountName;
    return find(docs, 'ServiceAccount', sa, meta(d).namespace)
      ? []
      : [{ rule: 'service-account' as const, at: d.at, detail: `${ref(d)}: serviceAccountName ${String(sa ?? '(unset: default)')} is not in deploy/` }];
  });
}

/**
 * A container running `proxy` in a kernel mode is privileged, as kube-proxy's is: it writes the conntrack sysctls
 * under /proc/sys/net/netfilter and /sys/module/nf_conntrack/parameters/hashsize, which a container runtime mounts
 * read-only for unprivileged containers whatever their capabilities.
 */
export function checkPrivileges(docs: Doc[]): Problem[] {
  return docs.flatMap((d) =>
    arr(podSpecOf(d)?.containers).map(obj).flatMap((c) => {
      const args = arr(c.args).map(String);
      const mode = args.find((a) => a.startsWith('--mode='))?.slice('--mode='.length) ?? 'nftables';
      if (args[0] !== 'proxy' || mode === 'userspace' || obj(c.securityContext).privileged === true) return [];
      return [{ rule: 'privileges' as const, at: d.at, detail: `${ref(d)}: container ${String(c.name)} runs proxy in ${mode} mode without privileged: true (the conntrack sysctls are read-only)` }];
    }),
  );
}

/** Each Service with a selector selects a workload, and its named targetPorts are ports of that workload. */
export function checkServiceSelectors(docs: Doc[]): Problem[] {
  const out: Problem[] = [];
  for (const d of docs.filter((x) => x.body.kind === 'Service' && obj(x.body.spec).selector !== undefined)) {
    const spec = obj(d.body.spec);
    const selected = docs.filter((w) => meta(w).namespace === meta(d).namespace && templateLabels(w) && subset(spec.selector, templateLabels(w)));
    if (selected.length === 0) out.push({ rule: 'service-selector', at: d.at, detail: `${ref(d)}: selector matches no workload in deploy/` });
    const names = new Set(selected.flatMap((w) => arr(podSpecOf(w)?.containers).flatMap((c) => arr(obj(c).ports).map((p) => obj(p).name))));
    for (const p of arr(spec.ports).map(obj)) {
      if (typeof p.targetPort === 'string' && selected.length > 0 && !names.has(p.targetPort)) {
        out.push({ rule: 'service-selector', at: d.at, detail: `${ref(d)}: targetPort ${p.targetPort} is not a port of the selected pods` });
      }
    }
  }
  return out;
}

/** Each ServiceMonitor selects a Service in its namespace that has every port it scrapes. */
export function checkMonitors(docs: Doc[]): Problem[] {
  const out: Problem[] = [];
  for (const d of docs.filter((x) => x.body.kind === 'ServiceMonitor')) {
    const spec = obj(d.body.spec);
    const match = obj(obj(spec.selector).matchLabels);
    const services = docs.filter((s) => s.body.kind === 'Service' && meta(s).namespace === meta(d).namespace && subset(match, meta(s).labels));
    if (Object.keys(match).length === 0 || services.length === 0) out.push({ rule: 'monitor-selector', at: d.at, detail: `${ref(d)}: selects no Service in deploy/` });
    const endpoints = arr(spec.endpoints).map(obj);
    if (endpoints.length === 0) out.push({ rule: 'monitor-selector', at: d.at, detail: `${ref(d)}: has no endpoints` });
    for (const e of endpoints) {
      const missing = services.filter((s) => !arr(obj(s.body.spec).ports).some((p) => obj(p).name === e.port));
      for (const s of missing) out.push({ rule: 'monitor-selector', at: d.at, detail: `${ref(d)}: ${ref(s)} has no port named ${String(e.port)}` });
    }
  }
  return out;
}

/** A kustomization lists exactly the other manifest files of its folder. */
export function checkKustomization(docs: Doc[], files: string[]): Problem[] {
  return docs.filter(isKustomization).flatMap((d) => {
    const dir = dirname(d.file);
    const listed = new Set(arr(d.body.resources).map(String));
    const present = files.filter((f) => f !== d.file && dirname(f) === dir).map((f) => relative(dir, f));
    const unlisted = present.filter((f) => !listed.has(f)).map((f) => `${f} is not listed`);
    const absent = [...listed].filter((f) => !present.includes(f)).map((f) => `${f} does not exist`);
    return [...unlisted, ...absent].map((detail) => ({ rule: 'kustomization' as const, at: d.at, detail: `${basename(d.file)}: ${detail}` }));
  });
}

/** Every cross-document check of deploy/, by name. */
export const deployChecks: readonly { name: string; check: (docs: Doc[], files: string[]) => Problem[] }[] = [
  { name: "each workload's ServiceAccount gets exactly what its components read", check: checkRbac },
  { name: 'bindings reference roles and ServiceAccounts in deploy/', check: checkBindings },
  { name: `namespaced objects are in ${namespace}`, check: checkNamespaces },
  { name: 'pods use a ServiceAccount from deploy/', check: checkServiceAccounts },
  { name: 'Service selectors and targetPorts resolve to pods', check: checkServiceSelectors },
  { name: 'ServiceMonitors select Services with the scraped ports', check: checkMonitors },
  { name: 'kustomization lists every file', check: checkKustomization },
  { name: 'the proxy in a kernel mode runs privileged', check: checkPrivileges },
  { name: '$(VAR) in args of containers with envFrom is set by env or a ConfigMap of deploy/', check: checkEnvFrom },
  { name: 'the node agent reaches the API server at an address it is given, not the kubernetes Service', check: checkApiServerAddress },
  { name: 'the overlay has NET_ADMIN and NET_RAW', check: checkOverlayCapabilities },
  { name: "each component accepts its container's args", check: checkArgs },
  { name: 'the proxy can tell local traffic (--cluster-cidr or a --detect-local-mode other than ClusterCIDR)', check: checkLocalTraffic },
];

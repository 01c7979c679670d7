// Pure checks of one Kubernetes document: each returns the problems found (empty when fine), never throws,
// and tolerates any shape, since the input is whatever a manifest file holds.
import { parseObject } from '../../cluster/model/index.ts';

/** What a check found wrong; `rule` is stable so tests can assert which check fired. */
export interface Problem {
  rule: Rule;
  /** `file#document` (1-based), plus `.items[i]` inside a List. */
  at: string;
  detail: string;
}

/** The checks, by name. */
export type Rule =
  | 'yaml'
  | 'identity'
  | 'selector'
  | 'containers'
  | 'ports'
  | 'probe-port'
  | 'env-ref'
  | 'service-ports'
  | 'netplane-parse'
  | 'rbac-grant'
  | 'rbac-missing'
  | 'binding-ref'
  | 'namespace'
  | 'service-account'
  | 'service-selector'
  | 'monitor-selector'
  | 'kustomization'
  | 'privileges'
  | 'apiserver-address'
  | 'capabilities'
  | 'args'
  | 'local-traffic';

/** One parsed manifest document. */
export interface Doc {
  file: string;
  at: string;
  body: Obj;
}

export type Obj = Record<string, unknown>;

/** `v` as a plain object, or `{}`. */
export const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
/** `v` as an array, or `[]`. */
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** `v` if it is a non-empty string. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** `kind/name` of a document, for messages and lookups. */
export const ref = (d: Doc): string => `${str(d.body.kind) ?? '?'}/${str(obj(d.body.metadata).name) ?? '?'}`;

/** Kinds that only wrap other files (kustomize) and are not Kubernetes API objects. */
export const isKustomization = (d: Doc): boolean => d.body.kind === 'Kustomization';

/** Every document names its apiVersion, kind and metadata.name. */
export function checkIdentity(d: Doc): Problem[] {
  if (isKustomization(d)) return [];
  const missing = ['apiVersion', 'kind'].filter((k) => !str(d.body[k]));
  if (!str(obj(d.body.metadata).name)) missing.push('metadata.name');
  return missing.map((m) => ({ rule: 'identity', at: d.at, detail: `${m} is missing` }));
}

const controllers = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet']);

/** The pod template's spec of a workload (or a Pod's own spec); undefined for other kinds. */
export function podSpecOf(d: Doc): Obj | undefined {
  const spec = obj(d.body.spec);
  if (d.body.kind === 'Pod') return spec;
  if (controllers.has(String(d.body.kind)) || d.body.kind === 'Job') return obj(obj(spec.template).spec);
  if (d.body.kind === 'CronJob') return obj(obj(obj(obj(spec.jobTemplate).spec).template).spec);
  return undefined;
}

/** Pod template labels of a controller, or undefined for other kinds. */
export function templateLabels(d: Doc): Obj | undefined {
  if (!controllers.has(String(d.body.kind))) return undefined;
  return obj(obj(obj(obj(d.body.spec).template).metadata).labels);
}

/** A controller's selector is non-empty and every matchLabels pair is on its pod template. */
export function checkSelector(d: Doc): Problem[] {
  const labels = templateLabels(d);
  if (!labels) return [];
  const match = obj(obj(obj(d.body.spec).selector).matchLabels);
  if (Object.keys(match).length === 0) return [{ rule: 'selector', at: d.at, detail: `${ref(d)}: spec.selector.matchLabels is empty` }];
  return Object.entries(match)
    .filter(([k, v]) => labels[k] !== v)
    .map(([k, v]) => ({ rule: 'selector', at: d.at, detail: `${ref(d)}: selector ${k}=${String(v)} is not a template label` }));
}

// IANA_SVC_NAME as Kubernetes validates port names: at most 15 characters, a letter somewhere, no "--".
const portName = /^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;
const protocols = new Set(['TCP', 'UDP', 'SCTP']);
const isPort = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/** Containers have unique names and an image; ports and probes are valid; `$(VAR)` in args is a declared env. */
export function checkPodSpec(d: Doc): Problem[] {
  const pod = podSpecOf(d);
  if (!pod) return [];
  const out: Problem[] = [];
  const say = (rule: Rule, detail: string) => out.push({ rule, at: d.at, detail: `${ref(d)}: ${detail}` });
  const containers = arr(pod.containers).map(obj);
  if (containers.length === 0) say('containers', 'the pod has no containers');
  const all = [...arr(pod.initContainers).map(obj), ...containers];
  const names = new Set<string>();
  const portNames = new Set<string>();
  for (const [i, c] of all.entries()) {
    const name = str(c.name) ?? `#${i}`;
    if (!str(c.name)) say('containers', `container ${name} has no name`);
    else if (names.has(name)) say('containers', `container name ${name} is used twice`);
    names.add(name);
    if (!str(c.image)) say('containers', `container ${name} has no image`);
    const own = new Set<string>();
    for (const p of arr(c.ports).map(obj)) {
      if (!isPort(p.containerPort)) say('ports', `container ${name}: containerPort ${String(p.containerPort)} is not 1-65535`);
      if (p.protocol !== undefined && !protocols.has(String(p.protocol))) say('ports', `container ${name}: protocol ${String(p.protocol)} is not TCP, UDP or SCTP`);
      if (p.name === undefined) continue;
      const n = String(p.name);
      if (!portName.test(n)) say('ports', `container ${name}: port name "${n}" is not a valid IANA service name (max 15)`);
      // Named ports must be unique in the whole pod, or Services and probes cannot tell them apart.
      if (portNames.has(n)) say('ports', `port name ${n} is used twice in the pod`);
      portNames.add(n);
      own.add(n);
    }
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      if (c[probe] === undefined) continue;
      const p = obj(c[probe]);
      const handler = [p.httpGet, p.tcpSocket, p.grpc].find((h) => h !== undefined);
      const exec = p.exec !== undefined;
      if (handler === undefined && !exec) say('probe-port', `container ${name}: ${probe} has no handler`);
      if (handler === undefined) continue;
      const port = obj(handler).port;
      // A named probe port resolves against the same container's ports only.
      const ok = typeof port === 'string' ? own.has(port) : isPort(port);
      if (!ok) say('probe-port', `container ${name}: ${probe} port ${String(port)} is not a declared port name or 1-65535`);
    }
    // Kubernetes expands $(VAR) only for variables declared in env; an undeclared one reaches the process verbatim.
    if (c.envFrom === undefined) {
      const env = new Set(arr(c.env).map((e) => str(obj(e).name)));
      for (const a of [...arr(c.command), ...arr(c.args)]) {
        for (const m of String(a).matchAll(/(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!env.has(m[1])) say('env-ref', `container ${name}: $(${m[1]}) in args is not declared in env`);
        }
      }
    }
  }
  return out;
}

const serviceTypes = new Set(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);

/** A Service has a known type and ports with numbers, valid protocols, and names when there are several. */
export function checkService(d: Doc): Problem[] {
  if (d.body.kind !== 'Service') return [];
  const out: Problem[] = [];
  const say = (detail: string) => out.push({ rule: 'service-ports', at: d.at, detail: `${ref(d)}: ${detail}` });
  const spec = obj(d.body.spec);
  const type = spec.type ?? 'ClusterIP';
  if (!serviceTypes.has(String(type))) say(`type ${String(type)} is not one of ${[...serviceTypes].join(', ')}`);
  if (type === 'ExternalName') {
    if (!str(spec.externalName)) say('ExternalName without spec.externalName');
    return out;
  }
  const ports = arr(spec.ports).map(obj);
  // Only a headless Service may have no ports.
  if (ports.length === 0 && spec.clusterIP !== 'None') say('has no ports');
  const seen = new Set<string>();
  for (const [i, p] of ports.entries()) {
    const name = str(p.name) ?? `#${i}`;
    if (!isPort(p.port)) say(`port ${name}: port ${String(p.port)} is not 1-65535`);
    if (p.protocol !== undefined && !protocols.has(String(p.protocol))) say(`port ${name}: protocol ${String(p.protocol)} is not TCP, UDP or SCTP`);
    const t = p.targetPort;
    if (t !== undefined && !(typeof t === 'string' ? portName.test(t) : isPort(t))) say(`port ${name}: targetPort ${String(t)} is invalid`);
    if (ports.length > 1 && !str(p.name)) say(`port #${i} needs a name: the Service has several ports`);
    const key = `${String(p.port)}/${String(p.protocol ?? 'TCP')}`;
    if (seen.has(key)) say(`port ${key} is listed twice`);
    seen.add(key);
  }
  return out;
}

/** netplane's own parser accepts the document (kinds it does not read pass as zero objects). */
export function checkNetplaneAccepts(at: string, raw: unknown): Problem[] {
  try {
    parseObject(raw);
    return [];
  } catch (e) {
    return [{ rule: 'netplane-parse', at, detail: (e as Error).message }];
  }
}

/** Every single-document check. */
export function checkDocument(d: Doc): Problem[] {
  return [checkIdentity, checkSelector, checkPodSpec, checkService].flatMap((check) => check(d));
}

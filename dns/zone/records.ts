// The record index: slim, indexed views of the service map built as Services change (CoreDNS's
// plugin/kubernetes/object): Services by `name.namespace`, endpoints by hostname, and names by IP for PTR.
import { isIPv6 } from 'node:net';
import type { ServiceInfo, ServiceMap } from '../../cluster/servicemap/index.ts';
import type { Store } from '../../cluster/store.ts';
import { dashedIP, expandIPv6 } from './parse.ts';

/** One published endpoint of a Service: ready, or any with publishNotReadyAddresses. */
export interface EndpointRecord {
  ip: string;
  family: 4 | 6;
  /** The endpoint's DNS label: its hostname, else (with endpoint pod names) its Pod's name, else its address with dashes. */
  label: string;
  /**
   * Port numbers by `portname/protocol` (lower case; `/tcp` for an unnamed port), from the Service's ports. Endpoints
   * of a Service with the same ports share one map: read it, never change it.
   */
  ports: ReadonlyMap<string, number>;
}

/** What DNS knows of one Service. */
export interface ServiceRecords {
  namespace: string;
  name: string;
  kind: 'cluster-ip' | 'headless' | 'external-name';
  clusterIPs: string[];
  externalName?: string;
  /**
   * Ports: name ("" for the one unnamed port) and protocol in lower case, and the Service port. Unnamed ports have
   * no `_port._proto` name but are in the Service name's SRV answer, as CoreDNS answers it.
   */
  ports: Array<{ name: string; protocol: string; port: number }>;
  /**
   * Published endpoints of every Service but ExternalNames, sorted by address. A headless Service's name answers
   * with them; every Service's `<endpoint>.<svc>` names and the PTR of their addresses come from them, as CoreDNS
   * answers an endpoint query and `serviceRecordForIP` for ClusterIP Services too.
   */
  endpoints: EndpointRecord[];
  /** The Service's external addresses (spec.externalIPs, then its load balancers' ingress IPs), when it has any: the external zone's answers. */
  externalIPs?: string[];
}

/** The key of an address in the PTR index: IPv6 fully expanded, so any spelling finds it. */
export function addressKey(ip: string): string {
  return isIPv6(ip) ? expandIPv6(ip) : ip;
}

/** How endpoints are named. */
export interface NamingOptions {
  /**
   * An endpoint without a hostname is named after the Pod behind it (its targetRef) instead of its address, as
   * CoreDNS's `endpoint_pod_names`; a name longer than a label is not used.
   */
  endpointPodNames?: boolean;
  /**
   * Only these namespaces' names are answered (CoreDNS kubernetes `namespaces`): a Service, endpoint, pod or PTR
   * name of another is as if it did not exist. Absent: every namespace.
   */
  namespaces?: readonly string[];
}

/** The DNS label of an endpoint, as CoreDNS's endpointHostname: hostname, else Pod name (when asked), else dashed IP. */
export function endpointLabel(a: ServiceInfo['addresses'][number], naming: NamingOptions = {}): string {
  if (a.hostname) return a.hostname.toLowerCase();
  const ref = a.targetRef?.name;
  if (naming.endpointPodNames && ref !== undefined && ref.length > 0 && ref.length < 64) return ref.toLowerCase();
  return dashedIP(a.ip).toLowerCase();
}

/** Builds the records of a Service (pure). */
export function serviceRecords(svc: ServiceInfo, naming: NamingOptions = {}): ServiceRecords {
  const kind = svc.type === 'ExternalName' ? 'external-name' : svc.headless ? 'headless' : 'cluster-ip';
  const rec: ServiceRecords = {
    namespace: svc.namespace,
    name: svc.name,
    kind,
    clusterIPs: kind === 'cluster-ip' ? svc.clusterIPs : [],
    ports: svc.ports.map((p) => ({ name: p.portName.toLowerCase(), protocol: p.protocol.toLowerCase(), port: p.port })),
    endpoints: [],
  };
  if (svc.externalName !== undefined) rec.externalName = svc.externalName.replace(/\.$/, '');
  if (kind === 'external-name') return rec;
  const external = [...new Set([...svc.externalIPs, ...svc.loadBalancerIngressIPs])];
  if (external.length > 0) rec.externalIPs = external;
  // One record per address and name, its ports from the slice rows of that endpoint that are published, as
  // CoreDNS walks each slice's endpoints with that slice's ports: an address in two slices (hostNetwork pods of one
  // node, each with its own port and hostname) is two endpoints, each with its own port and readiness.
  const byEndpoint = new Map<string, Omit<EndpointRecord, 'ports'> & { ports: Map<string, number> }>();
  const add = (a: ServiceInfo['addresses'][number], portKey?: string, port?: number) => {
    if (!a.ready && !svc.publishNotReadyAddresses) return;
    const label = endpointLabel(a, naming);
    const key = `${a.ip}|${label}`;
    let r = byEndpoint.get(key);
    if (r === undefined) byEndpoint.set(key, (r = { ip: a.ip, family: a.family, label, ports: new Map() }));
    if (portKey !== undefined && !r.ports.has(portKey)) r.ports.set(portKey, port!);
  };
  for (const p of svc.ports) {
    const portKey = `${p.portName.toLowerCase()}/${p.protocol.toLowerCase()}`;
    for (const e of p.endpoints) add(e, portKey, e.port);
  }
  // Addresses without a port row (a headless Service without ports) still have their names.
  for (const a of svc.addresses) add(a);
  // Endpoints of one Service nearly always have the same ports: one map for each distinct set (a map per endpoint
  // was a third of the index's memory at 50,000 endpoints).
  const shared = new Map<string, ReadonlyMap<string, number>>();
  const endpoints: EndpointRecord[] = [];
  for (const r of byEndpoint.values()) {
    let signature = '';
    for (const [k, v] of r.ports) signature += `${k}=${v};`;
    let ports = shared.get(signature);
    if (ports === undefined) shared.set(signature, (ports = r.ports));
    endpoints.push({ ip: r.ip, family: r.family, label: r.label, ports });
  }
  rec.endpoints = endpoints.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  return rec;
}

/** The index the zone is answered from, kept current from the service map. */
export class RecordIndex {
  readonly zone: string;
  #services = new Map<string, ServiceRecords>();
  /** Services per namespace. */
  #namespaces = new Map<string, number>();
  /** Names of the Namespace objects. */
  #namespaceObjects = new Set<string>();
  /** With --pods verified: by address (addressKey), how many Pods of each namespace have it. */
  #podIPs = new Map<string, Map<string, number>>();
  /** With --pods verified: by namespace, how many distinct addresses its Pods have. */
  #podNamespaces = new Map<string, number>();
  /**
   * The Services of each cluster IP. The PTR names are written when asked, from the records: holding them as
   * strings, in a set per address, was a third of the index's memory.
   */
  #ptr = new Map<string, Holders>();
  /** The Services each endpoint IP is published by: asked only when no cluster IP matches, as CoreDNS's serviceRecordForIP. */
  #epPtr = new Map<string, Holders>();
  #naming: NamingOptions;
  #generation = 0;
  #changedAt = Math.floor(Date.now() / 1000);

  /** The namespaces answered; undefined: every one. */
  #exposed: ReadonlySet<string> | undefined;

  constructor(zone: string, naming: NamingOptions = {}) {
    this.zone = zone;
    this.#naming = naming;
    this.#exposed = naming.namespaces === undefined || naming.namespaces.length === 0 ? undefined : new Set(naming.namespaces);
  }

  /** Whether names of `namespace` are answered. */
  exposed(namespace: string): boolean {
    return this.#exposed === undefined || this.#exposed.has(namespace);
  }

  /** Bumped on every change; answers built from an older generation are stale. */
  get generation(): number {
    return this.#generation;
  }

  /** Unix seconds of the last change (the SOA serial). */
  get changedAt(): number {
    return this.#changedAt;
  }

  /** The Service `name` in `namespace` (lower case), if any. */
  service(namespace: string, name: string): ServiceRecords | undefined {
    return this.exposed(namespace) ? this.#services.get(`${name}.${namespace}`) : undefined;
  }

  /**
   * Whether the namespace exists: its Namespace object does, or some Service lives in it. Against an API server the
   * two agree (a Service cannot outlive its namespace), so this is CoreDNS's check; a manifest directory seldom
   * holds Namespace objects, and there the namespaces of its Services (and, with --pods verified, of its Pods)
   * exist too.
   */
  hasNamespace(namespace: string): boolean {
    if (!this.exposed(namespace)) return false;
    return this.#namespaceObjects.has(namespace) || this.#namespaces.has(namespace) || this.#podNamespaces.has(namespace);
  }

  /** Whether a Pod of `namespace` has the address `ip` (any spelling of it), as CoreDNS's `pods verified` asks. */
  hasPodIP(namespace: string, ip: string): boolean {
    return this.exposed(namespace) && this.#podIPs.get(addressKey(ip))?.has(namespace) === true;
  }

  /**
   * The namespace of the Pods that have the address `ip` (any spelling of it), as autopath finds a client's;
   * undefined when no Pod has it, or Pods of several namespaces do (host network: the node's address names no one).
   */
  podNamespace(ip: string): string | undefined {
    const byNamespace = this.#podIPs.get(addressKey(ip));
    if (byNamespace?.size !== 1) return undefined;
    for (const namespace of byNamespace.keys()) return this.exposed(namespace) ? namespace : undefined;
    return undefined;
  }

  /**
   * Counts the addresses of one Pod of `namespace` in (`delta` 1) or out (-1). A new generation only when an
   * address of the namespace appears or goes: a second Pod with the same address (host network) changes no answer.
   */
  countPodIPs(namespace: string, ips: readonly string[], delta: 1 | -1): void {
    let changed = false;
    for (const ip of ips) {
      const key = addressKey(ip);
      let byNamespace = this.#podIPs.get(key);
      if (byNamespace === undefined) {
        if (delta < 0) continue;
        this.#podIPs.set(key, (byNamespace = new Map()));
      }
      const n = (byNamespace.get(namespace) ?? 0) + delta;
      if (n > 0) byNamespace.set(namespace, n);
      else if (byNamespace.delete(namespace) && byNamespace.size === 0) this.#podIPs.delete(key);
      if (n === 0 || (n === 1 && delta > 0)) {
        changed = true;
        const addresses = (this.#podNamespaces.get(namespace) ?? 0) + (n === 0 ? -1 : 1);
        if (addresses > 0) this.#podNamespaces.set(namespace, addresses);
        else this.#podNamespaces.delete(namespace);
      }
    }
    if (changed) {
      this.#generation++;
      this.#changedAt = Math.floor(Date.now() / 1000);
    }
  }

  /** Records that the Namespace object `name` exists (`present`) or is gone. */
  setNamespace(name: string, present: boolean): void {
    if (this.#namespaceObjects.has(name) === present) return;
    if (present) this.#namespaceObjects.add(name);
    else this.#namespaceObjects.delete(name);
    this.#generation++;
    this.#changedAt = Math.floor(Date.now() / 1000);
  }

  /**
   * The names an address has: the Service FQDN of a cluster IP; else the endpoint FQDNs of every Service the
   * address is a published endpoint of (CoreDNS's serviceRecordForIP: cluster IPs first, then all endpoints).
   */
  namesOf(ip: string): string[] {
    const key = addressKey(ip);
    // As CoreDNS's serviceRecordForIP: the Services of exposed namespaces with that cluster IP, else endpoints.
    const services = holders(this.#ptr.get(key)).filter((r) => this.exposed(r.namespace));
    if (services.length > 0) return services.map((r) => this.#fqdn(r)).sort();
    const names = new Set<string>();
    for (const r of holders(this.#epPtr.get(key))) {
      if (!this.exposed(r.namespace)) continue;
      const fqdn = this.#fqdn(r);
      for (const e of r.endpoints) if (addressKey(e.ip) === key) names.add(`${e.label}.${fqdn}`);
    }
    return [...names].sort();
  }

  /** Number of Services indexed. */
  get size(): number {
    return this.#services.size;
  }

  /** Re-indexes the given Services (`namespace/name`) from the service map; all of them when `keys` is absent. */
  update(map: ServiceMap, keys?: Iterable<string>): void {
    const todo = keys ? [...keys] : [...new Set([...map.services.keys(), ...[...this.#services.values()].map((s) => `${s.namespace}/${s.name}`)])];
    for (const key of todo) {
      const [namespace = '', name = ''] = key.split('/');
      this.#remove(namespace, name);
      const svc = map.services.get(key);
      if (svc) this.#add(serviceRecords(svc, this.#naming));
    }
    if (todo.length > 0) {
      this.#generation++;
      this.#changedAt = Math.floor(Date.now() / 1000);
    }
  }

  #fqdn(r: ServiceRecords): string {
    return `${r.name}.${r.namespace}.svc.${this.zone}`;
  }

  #add(r: ServiceRecords): void {
    this.#services.set(`${r.name}.${r.namespace}`, r);
    this.#namespaces.set(r.namespace, (this.#namespaces.get(r.namespace) ?? 0) + 1);
    for (const ip of r.clusterIPs) hold(this.#ptr, addressKey(ip), r);
    for (const e of r.endpoints) hold(this.#epPtr, addressKey(e.ip), r);
  }

  #remove(namespace: string, name: string): void {
    const r = this.#services.get(`${name}.${namespace}`);
    if (!r) return;
    this.#services.delete(`${name}.${namespace}`);
    const left = (this.#namespaces.get(namespace) ?? 1) - 1;
    if (left === 0) this.#namespaces.delete(namespace);
    else this.#namespaces.set(namespace, left);
    for (const ip of r.clusterIPs) release(this.#ptr, addressKey(ip), r);
    for (const e of r.endpoints) release(this.#epPtr, addressKey(e.ip), r);
  }
}

/** Keeps the index's Namespace objects those of the store, now and on every change; returns a function that stops. */
export function followNamespaces(store: Store, index: RecordIndex): () => void {
  const stop = store.subscribe((changes) => {
    for (const c of changes) if (c.kind === 'Namespace') index.setNamespace(c.key, c.object !== undefined);
  });
  for (const ns of store.list('Namespace')) index.setNamespace(ns.metadata.name, true);
  return stop;
}

/** The Services an address belongs to: nearly always one, held without an array. */
type Holders = ServiceRecords | ServiceRecords[];

function holders(h: Holders | undefined): readonly ServiceRecords[] {
  return h === undefined ? [] : Array.isArray(h) ? h : [h];
}

/** Adds `r` to the Services of `key` (once: a Service with an address twice, under two names, holds it once). */
function hold(index: Map<string, Holders>, key: string, r: ServiceRecords): void {
  const h = index.get(key);
  if (h === undefined) index.set(key, r);
  else if (Array.isArray(h)) {
    if (!h.includes(r)) h.push(r);
  } else if (h !== r) index.set(key, [h, r]);
}

function release(index: Map<string, Holders>, key: string, r: ServiceRecords): void {
  const h = index.get(key);
  if (h === r) index.delete(key);
  else if (Array.isArray(h)) {
    const left = h.filter((x) => x !== r);
    index.set(key, left.length === 1 ? left[0]! : left);
  }
}

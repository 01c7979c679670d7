// What `netplane up` reads once from a manifests directory, with the same code the components use: the Service
// ports the userspace proxy will listen on, the Ingress hosts the gateway will serve, and the loopback endpoints
// that `--example-backends` runs examples/backend.ts on.
import { isIP } from 'node:net';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { nodeZone } from '../../cluster/node.ts';
import { ServiceMap, type ServicePortInfo } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import { compileRoutes } from '../../ingress/routes/compile.ts';
import { planProxy } from '../../proxy/plan/plan.ts';
import { listenerSpecs } from '../../proxy/userspace/listeners.ts';
import { silentLogger } from '../../runtime/logger.ts';

/** A Service port as `up` announces it: where the userspace proxy listens for it, and its first cluster IP. */
export interface AnnouncedPort {
  /** `namespace/name`. */
  service: string;
  portName: string;
  protocol: 'TCP' | 'UDP';
  /** The port the userspace proxy listens on: the nodePort when the Service has one, else the Service port. */
  listenPort: number;
  servicePort: number;
  clusterIP?: string;
  endpoints: number;
}

/** One example backend: a TCP endpoint on loopback, named after its Pod (targetRef), else `<service>-<n>`. */
export interface ExampleBackend {
  name: string;
  host: string;
  port: number;
  /** `namespace/name` of the first Service it serves. */
  service: string;
}

/** What `up` learned from the manifests. */
export interface UpView {
  /** Sorted by key; only ports the userspace proxy can open (not SCTP, not a port another Service took). */
  ports: AnnouncedPort[];
  /** Hosts of the Ingress rules the gateway serves, in namespace/name and rule order; '' for a rule without host. */
  hosts: string[];
  backends: ExampleBackend[];
  /** Services with a cluster IP (what DNS answers for them), with the endpoints of their busiest port; sorted by key. */
  services: Array<{ namespace: string; name: string; endpoints: number }>;
}

/** Reads `dir` once, as `node`'s components see it (bad files left out); rejects with ManifestDirectoryError. */
export async function readUpView(dir: string, node: string, ingressClass: string): Promise<UpView> {
  const store = new Store(['Service', 'EndpointSlice', 'Ingress', 'IngressClass', 'Node']);
  const source = new ManifestsSource(dir, { log: silentLogger() });
  try {
    await source.start(store);
  } finally {
    await source.stop();
  }
  const map = new ServiceMap(store, { nodeName: node });
  const byKey = <T extends { key: string }>(a: T, b: T) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  try {
    return {
      ports: announcedPorts(map, store, node),
      hosts: ingressHosts(store, ingressClass),
      backends: exampleBackends([...map.ports.values()].sort(byKey)),
      services: [...map.services.values()]
        .filter((s) => s.clusterIPs.length > 0)
        .sort(byKey)
        .map((s) => ({ namespace: s.namespace, name: s.name, endpoints: Math.max(0, ...s.ports.map((p) => p.endpoints.length)) })),
    };
  } finally {
    map.close();
  }
}

/** The userspace proxy's listeners for this view, from the planner and listenerSpecs the proxy itself runs. */
function announcedPorts(map: ServiceMap, store: Store, node: string): AnnouncedPort[] {
  const zone = nodeZone(store, node);
  const plan = planProxy(map.ports.values(), { nodeName: node, ...(zone !== undefined ? { zone } : {}), clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: [] });
  const byKey = new Map(plan.ports.map((p) => [p.key, p]));
  return listenerSpecs(plan, 4).specs.map((l) => {
    const p = byKey.get(l.key)!;
    return {
      service: l.service,
      portName: p.portName,
      protocol: l.protocol,
      listenPort: l.port,
      servicePort: p.port,
      ...(p.clusterIPs[0] !== undefined ? { clusterIP: p.clusterIPs[0] } : {}),
      endpoints: l.endpoints.length,
    };
  });
}

/** Hosts of the Ingresses that the gateway of `className` serves (compileRoutes decides which those are). */
function ingressHosts(store: Store, className: string): string[] {
  const { served } = compileRoutes({
    ingresses: store.list('Ingress'),
    classes: store.list('IngressClass'),
    className,
    lastGood: new Map(),
    defaults: { connectTimeoutMs: 5000, readTimeoutMs: 60_000 },
  });
  const hosts = [...served.values()].flatMap((i) => i.spec.rules.filter((r) => r.http).map((r) => r.host ?? ''));
  return [...new Set(hosts)];
}

/**
 * The TCP endpoints on a loopback address (127.0.0.0/8, ::1), one per address and port even when several Services
 * share it, in the order of the Service ports given.
 */
export function exampleBackends(ports: Iterable<ServicePortInfo>): ExampleBackend[] {
  const out = new Map<string, ExampleBackend>();
  const count = new Map<string, number>();
  for (const p of ports) {
    if (p.protocol !== 'TCP') continue;
    for (const e of p.endpoints) {
      if (!isLoopback(e.ip)) continue;
      const at = `${e.ip}/${e.port}`;
      if (out.has(at)) continue;
      const n = (count.get(p.service.key) ?? 0) + 1;
      count.set(p.service.key, n);
      out.set(at, { name: e.targetRef?.name ?? e.hostname ?? `${p.service.name}-${n}`, host: e.ip, port: e.port, service: p.service.key });
    }
  }
  return [...out.values()];
}

function isLoopback(ip: string): boolean {
  return isIP(ip) === 6 ? ip === '::1' : ip.startsWith('127.');
}

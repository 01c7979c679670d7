// ClientIP affinity entries the kernel recorded in the `affinity` maps that must go when their endpoint leaves the
// Service, or the Service drops affinity: otherwise the client would keep being sent to an endpoint that is gone.
// IPv4 entries name their Service (client . address . protocol . port → endpoint address . port); IPv6 entries
// carry a hash of it (hash of client and Service . hash of Service → endpoint address, layout.ts), which
// jhash.ts computes here for every affinity Service. Pure functions; the backend lists and deletes.
import type { PortPlan, ProxyPlan, Target } from '../plan/types.ts';
import { addressKeyBytes, nftJhash, nodePortKeyBytes } from './jhash.ts';
import { serviceHashSeed } from './layout.ts';
import { canonicalIP, type Family } from './model.ts';

/** For each affinity frontend, the endpoints its entries may point at. */
export interface AffinityIndex {
  /** IPv4 `address . proto . port` → endpoints (`ip . port`). */
  addresses: Map<string, Set<string>>;
  /** IPv4 NodePorts: `proto . port` → endpoints. */
  nodePorts: Map<string, Set<string>>;
  /** IPv6: the Service hash of an address or NodePort → endpoint addresses. */
  hashed: Map<string, Set<string>>;
}

/**
 * The one port all endpoints of an IPv6 Service port listen on, which its affinity entries (addresses only) need;
 * undefined when they differ or there are none.
 */
export function endpointsPort(p: PortPlan): number | undefined {
  let port: number | undefined;
  for (const e of [...p.clusterEndpoints, ...p.externalEndpoints, ...p.shortcutEndpoints]) {
    if (port !== undefined && e.port !== port) return undefined;
    port = e.port;
  }
  return port;
}

/** The affinity frontends of a plan and their endpoints. Pure. */
export function affinityIndex(plan: ProxyPlan): AffinityIndex {
  const index: AffinityIndex = { addresses: new Map(), nodePorts: new Map(), hashed: new Map() };
  // Two frontends whose IPv6 hashes collide keep only the endpoints both have: an entry is never kept for an
  // endpoint that left its Service.
  const owner = new Map<string, string>();
  const add = (m: Map<string, Set<string>>, key: string, eps: readonly Target[], text: (e: Target) => string, frontend = key) => {
    const now = new Set(eps.map(text));
    const had = m.get(key);
    if (!had) {
      m.set(key, now);
      owner.set(key, frontend);
    } else if (owner.get(key) === frontend) for (const e of now) had.add(e);
    else for (const e of had) if (!now.has(e)) had.delete(e);
  };
  const v4 = (e: Target) => `${canonicalIP(e.ip)} . ${e.port}`;
  const v6 = (e: Target) => canonicalIP(e.ip);
  for (const p of plan.ports) {
    if (p.affinitySeconds === 0) continue;
    if (p.family === 6 && endpointsPort(p) === undefined) continue;
    const proto = p.protocol.toLowerCase();
    // External traffic takes externalEndpoints, or shortcutEndpoints from a pod or the node under the Local policy.
    const external = p.externalLocal ? [...p.externalEndpoints, ...p.shortcutEndpoints] : p.externalEndpoints;
    const addresses: Array<[string, readonly Target[]]> = [
      ...p.clusterIPs.map((ip): [string, readonly Target[]] => [ip, p.clusterEndpoints]),
      ...[...p.externalIPs, ...p.loadBalancerIPs].map((ip): [string, readonly Target[]] => [ip, external]),
    ];
    for (const [ip, eps] of addresses) {
      const key = `${canonicalIP(ip)} . ${proto} . ${p.port}`;
      if (p.family === 4) add(index.addresses, key, eps, v4);
      else add(index.hashed, String(nftJhash(addressKeyBytes(ip, proto, p.port), serviceHashSeed)), eps, v6, key);
    }
    if (p.nodePort === undefined) continue;
    const key = `${proto} . ${p.nodePort}`;
    if (p.family === 4) add(index.nodePorts, key, external, v4);
    else add(index.hashed, String(nftJhash(nodePortKeyBytes(proto, p.nodePort), serviceHashSeed)), external, v6, key);
  }
  return index;
}

/** True when some entry valid under `prev` may be invalid under `next` (a frontend or an endpoint went away). */
export function affinityShrank(prev: AffinityIndex | undefined, next: AffinityIndex): boolean {
  if (!prev) return true;
  const shrank = (a: Map<string, Set<string>>, b: Map<string, Set<string>>) => {
    for (const [key, eps] of a) {
      const now = b.get(key);
      if (!now) return true;
      for (const e of eps) if (!now.has(e)) return true;
    }
    return false;
  };
  return shrank(prev.addresses, next.addresses) || shrank(prev.nodePorts, next.nodePorts) || shrank(prev.hashed, next.hashed);
}

/** Keys of recorded entries of a family's map (key text → endpoint text) that are no longer valid. */
export function staleAffinity(family: Family, entries: ReadonlyMap<string, string>, index: AffinityIndex): string[] {
  const stale: string[] = [];
  for (const [key, endpoint] of entries) {
    const parts = key.split(' . ');
    const allowed =
      family === 4
        ? (index.addresses.get(parts.slice(1).join(' . ')) ?? index.nodePorts.get(parts.slice(2).join(' . ')))
        : index.hashed.get(parts[1] ?? '');
    if (!allowed?.has(endpoint)) stale.push(key);
  }
  return stale;
}

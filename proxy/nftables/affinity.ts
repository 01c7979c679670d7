// ClientIP affinity entries the kernel recorded (IPv4 `affinity` map: client . Service address . protocol . port →
// endpoint) that must go when their endpoint leaves the Service, or the Service drops affinity: otherwise the
// client would keep being sent to an endpoint that is gone. Pure functions; the backend lists and deletes.
import type { ProxyPlan } from '../plan/types.ts';
import { canonicalIP } from './model.ts';

/** For each affinity frontend (IPv4), the endpoints (`ip . port`) its entries may point at. */
export interface AffinityIndex {
  /** `address . proto . port` → endpoints. */
  addresses: Map<string, Set<string>>;
  /** NodePorts: `proto . port` → endpoints. */
  nodePorts: Map<string, Set<string>>;
}

/** The affinity frontends of a plan and their endpoints. Pure. */
export function affinityIndex(plan: ProxyPlan): AffinityIndex {
  const index: AffinityIndex = { addresses: new Map(), nodePorts: new Map() };
  const add = (m: Map<string, Set<string>>, key: string, eps: ReadonlyArray<{ ip: string; port: number }>) => {
    const s = m.get(key) ?? new Set<string>();
    for (const e of eps) s.add(`${canonicalIP(e.ip)} . ${e.port}`);
    m.set(key, s);
  };
  for (const p of plan.ports) {
    if (p.family !== 4 || p.affinitySeconds === 0) continue;
    const proto = p.protocol.toLowerCase();
    for (const ip of p.clusterIPs) add(index.addresses, `${ip} . ${proto} . ${p.port}`, p.clusterEndpoints);
    // External traffic takes externalEndpoints, or clusterEndpoints from a pod or the node under the Local policy.
    const external = p.externalLocal ? [...p.externalEndpoints, ...p.clusterEndpoints] : p.externalEndpoints;
    for (const ip of [...p.externalIPs, ...p.loadBalancerIPs]) add(index.addresses, `${ip} . ${proto} . ${p.port}`, external);
    if (p.nodePort !== undefined) add(index.nodePorts, `${proto} . ${p.nodePort}`, external);
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
  return shrank(prev.addresses, next.addresses) || shrank(prev.nodePorts, next.nodePorts);
}

/** Keys of recorded entries (`client . address . proto . port` → `ip . port`) that are no longer valid. */
export function staleAffinity(entries: ReadonlyMap<string, string>, index: AffinityIndex): string[] {
  const stale: string[] = [];
  for (const [key, endpoint] of entries) {
    const parts = key.split(' . ');
    const allowed = index.addresses.get(parts.slice(1).join(' . ')) ?? index.nodePorts.get(parts.slice(2).join(' . '));
    if (!allowed?.has(endpoint)) stale.push(key);
  }
  return stale;
}

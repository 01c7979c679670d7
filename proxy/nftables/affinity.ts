// ClientIP affinity per Service port (layout.ts): every endpoint list of an affinity port (the Cluster policy's
// list, and this node's under a Local policy) has a 32-bit ID, which every address and NodePort of the port maps
// to and every recorded entry carries (IPv4: client . ID → endpoint address . port; IPv6: hash . ID → endpoint
// address). IDs are hashes of the port key and list, so they survive restarts; the rare collision is settled over
// the whole plan, the same way every time. Entries whose endpoint left their list, or whose port dropped affinity,
// are found here and deleted by the backend. Pure functions.
import type { PortPlan, ProxyPlan, Target } from '../plan/types.ts';
import { canonicalIP } from './model.ts';

/** Which endpoint list of a port an affinity ID stands for: the Cluster policy's, or another (a Local policy's). */
export type AffinityRole = 'all' | 'local' | 'cluster';

/** The role of one of a port's endpoint lists (the planner hands the same array for lists that are the same). */
export function roleOf(p: PortPlan, list: readonly Target[]): AffinityRole {
  if (list === p.shortcutEndpoints) return 'all';
  return list === p.externalEndpoints ? 'local' : 'cluster';
}

/** The endpoint lists an affinity port's addresses and NodePort use, by role. */
export function affinityLists(p: PortPlan): Map<AffinityRole, readonly Target[]> {
  const lists = new Map<AffinityRole, readonly Target[]>();
  lists.set(roleOf(p, p.clusterEndpoints), p.clusterEndpoints);
  lists.set(roleOf(p, p.externalEndpoints), p.externalEndpoints);
  // Pods and the node reach Local-policy external addresses through the Cluster policy's list.
  if (p.externalLocal) lists.set('all', p.shortcutEndpoints);
  return lists;
}

/** The key of one endpoint list in an AffinityIds map. */
export const affinityIdKey = (p: PortPlan, role: AffinityRole): string => `${p.key} ${role}`;

/** The ID of every endpoint list of every affinity port, by affinityIdKey. */
export type AffinityIds = ReadonlyMap<string, number>;

/** FNV-1a, 32 bits, never 0 (an unmarked packet's mark). */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

/**
 * IDs for the endpoint lists of a plan's affinity ports: the hash of each list's key; of keys whose hashes collide,
 * the first in key order keeps it and the others take the first free hash of `key#1`, `key#2`, ... Pure: the same
 * ports always get the same IDs, and a port keeps its ID unless a new port collides with it and sorts first.
 */
export function affinityIds(ports: readonly PortPlan[]): Map<string, number> {
  const byHash = new Map<number, string[]>();
  for (const p of ports) {
    if (p.affinitySeconds === 0) continue;
    for (const role of affinityLists(p).keys()) {
      const key = affinityIdKey(p, role);
      const h = hash32(key);
      const same = byHash.get(h);
      if (same) same.push(key);
      else byHash.set(h, [key]);
    }
  }
  const ids = new Map<string, number>();
  const moved: string[] = [];
  for (const [h, keys] of byHash) {
    if (keys.length > 1) {
      keys.sort();
      moved.push(...keys.slice(1));
    }
    ids.set(keys[0]!, h);
  }
  const taken = new Set<number>();
  for (const key of moved.sort()) {
    let h = 0;
    for (let n = 1; h === 0 || byHash.has(h) || taken.has(h); n++) h = hash32(`${key}#${n}`);
    taken.add(h);
    ids.set(key, h);
  }
  return ids;
}

/** The IDs a port's rendering depends on, as text (empty without affinity): a port is re-rendered when they change. */
export function idSignature(p: PortPlan, ids: AffinityIds): string {
  if (p.affinitySeconds === 0) return '';
  return [...affinityLists(p).keys()].map((role) => `${role}=${ids.get(affinityIdKey(p, role))}`).join(' ');
}

/**
 * The one port all endpoints of a list listen on, which IPv6 affinity entries (addresses only) need; undefined
 * when they differ or there are none.
 */
export function endpointsPort(list: readonly Target[]): number | undefined {
  let port: number | undefined;
  for (const e of list) {
    if (port !== undefined && e.port !== port) return undefined;
    port = e.port;
  }
  return port;
}

/** For each affinity ID the affinity maps may hold, the endpoints its entries may point at (IPv4 `ip . port`, IPv6 `ip`). */
export type AffinityIndex = Map<string, Set<string>>;

/** The affinity IDs of a plan and their endpoints. Pure. IPv6 lists on several ports are left out: they keep no entries there. */
export function affinityIndex(plan: ProxyPlan, ids: AffinityIds = affinityIds(plan.ports)): AffinityIndex {
  const index: AffinityIndex = new Map();
  for (const p of plan.ports) {
    if (p.affinitySeconds === 0) continue;
    const text = p.family === 4 ? (e: Target) => `${canonicalIP(e.ip)} . ${e.port}` : (e: Target) => canonicalIP(e.ip);
    for (const [role, list] of affinityLists(p)) {
      const id = ids.get(affinityIdKey(p, role));
      if (id === undefined || (p.family === 6 && endpointsPort(list) === undefined)) continue;
      index.set(String(id), new Set(list.map(text)));
    }
  }
  return index;
}

/** True when some entry valid under `prev` may be invalid under `next` (an ID or an endpoint went away). */
export function affinityShrank(prev: AffinityIndex | undefined, next: AffinityIndex): boolean {
  if (!prev) return true;
  for (const [id, eps] of prev) {
    const now = next.get(id);
    if (!now) return true;
    for (const e of eps) if (!now.has(e)) return true;
  }
  return false;
}

/** Keys of recorded entries of an affinity map (key text `client-or-hash . ID` → endpoint text) that are no longer valid. */
export function staleAffinity(entries: ReadonlyMap<string, string>, index: AffinityIndex): string[] {
  const stale: string[] = [];
  for (const [key, endpoint] of entries) {
    const id = key.slice(key.lastIndexOf(' . ') + 3);
    if (!index.get(id)?.has(endpoint)) stale.push(key);
  }
  return stale;
}

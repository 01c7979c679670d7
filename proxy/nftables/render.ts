// render(plan): the desired content of both netplane tables, as a pure function of the plan. The fixed part
// (sets, hooked chains, rules) depends only on the proxy's configuration; each Service port adds elements to the
// shared maps and may need a load-balancing chain (layout.ts). renderPort() is separate so that a sync can
// re-render only the ports that changed (ledger.ts).
import { localTrafficOf } from '../plan/local.ts';
import type { NoEndpoints, PortPlan, ProxyPlan, Target } from '../plan/types.ts';
import { affinityIdKey, affinityIds, endpointsPort, roleOf, type AffinityIds } from './affinity.ts';
import {
  affinityPorts,
  affinitySet,
  baseChains,
  clusterIPsSet,
  idMaps,
  layoutChains,
  layoutSets,
  lbChain,
  lbMap,
  lbUnit,
  nodePortIdMaps,
  rejectChain,
  stickyMap,
  type LayoutConfig,
  type LocalMatch,
  type Pool,
} from './layout.ts';
import { canonicalIP, normalizeCIDRs, type Family, type NftChain, type NftSet, type NftTable } from './model.ts';

/** Both tables, by IP family. */
export type Desired = Record<Family, NftTable>;

/** One element a port wants: set or map name, key text, value text ('' in a set). */
export type Entry = readonly [set: string, key: string, value: string];

/**
 * A dispatch key's endpoints in a load-balancing chain's map: the elements `key . i` → values[i]. Kept as one
 * claim rather than one element each (there are ten times as many of them as Services), and decided as one: a map
 * belongs to one chain, so every key in it has the chain's number of endpoints.
 */
export type Group = readonly [map: string, key: string, values: readonly string[]];

/** The element `key . i` of a group. */
export const groupKey = (key: string, i: number): string => `${key} . ${i}`;

/** What one Service port adds: elements and endpoint groups (each key once) and the load-balancing chains its verdicts go to. */
export interface PortObjects {
  entries: Entry[];
  groups: Group[];
  chains: string[];
}

/** The local-traffic CIDRs of a family in a plan (none when local traffic is told by interface). */
const localCIDRs = (plan: ProxyPlan, family: Family): string[] => {
  const local = localTrafficOf(plan);
  return local.by === 'cidr' ? local.cidrs[family] : [];
};

/** How a plan's local traffic is matched in one family. */
function localMatch(plan: ProxyPlan, family: Family): LocalMatch {
  const local = localTrafficOf(plan);
  return local.by === 'cidr' ? { by: 'pod-cidrs', empty: local.cidrs[family].length === 0 } : { by: 'iifname', name: local.name, prefix: local.prefix };
}

/** The fixed-rule configuration of one family in a plan. */
export function layoutConfig(plan: ProxyPlan, family: Family): LayoutConfig {
  const timeouts = new Set<number>();
  for (const p of plan.ports) if (p.family === family && p.affinitySeconds > 0) timeouts.add(p.affinitySeconds);
  return {
    family,
    masqueradeAll: plan.masqueradeAll,
    local: localMatch(plan, family),
    nodePortsOnAll: plan.nodePortAddresses[family] === 'all',
    affinityTimeouts: [...timeouts].sort((a, b) => a - b),
  };
}

/** The fixed part of a family's table: every set (only pod-cidrs and nodeport-addresses filled) and fixed chain. */
export function renderBase(plan: ProxyPlan, family: Family): NftTable {
  const config = layoutConfig(plan, family);
  const sets = layoutSets(config);
  const chains = new Map<string, NftChain>();
  for (const [name, rules] of layoutChains(config)) {
    const base = baseChains[name];
    chains.set(name, base ? { base, rules } : { rules });
  }
  for (const cidr of normalizeCIDRs(localCIDRs(plan, family))) sets.get('pod-cidrs')!.elements!.set(cidr, '');
  const np = plan.nodePortAddresses[family];
  if (np !== 'all') for (const cidr of normalizeCIDRs(np)) sets.get('nodeport-addresses')!.elements!.set(cidr, '');
  return { family, sets, chains };
}

/** Adds a load-balancing chain's unit (its chains, its maps and sets, empty) to a table. */
export function addLbUnit(t: NftTable, chain: string): void {
  const unit = lbUnit(t.family, chain);
  for (const [name, rules] of unit.chains) t.chains.set(name, { rules } satisfies NftChain);
  for (const [name, set] of unit.sets) t.sets.set(name, set);
}

/** The desired tables for a plan. Pure. Ports claiming the same element: the first by port key wins. */
export function render(plan: ProxyPlan): Desired {
  const out: Desired = { 4: renderBase(plan, 4), 6: renderBase(plan, 6) };
  const ids = affinityIds(plan.ports);
  // The planner sorts ports by key; sorting again keeps hand-made plans consistent with the ledger.
  for (const p of [...plan.ports].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const t = out[p.family];
    const objects = renderPort(p, ids);
    for (const c of objects.chains) if (!t.chains.has(c)) addLbUnit(t, c);
    for (const [set, key, value] of objects.entries) {
      const e = t.sets.get(set)!.elements!;
      if (!e.has(key)) e.set(key, value);
    }
    for (const [map, key, values] of objects.groups) {
      const e = t.sets.get(map)!.elements!;
      if (!e.has(groupKey(key, 0))) values.forEach((v, i) => e.set(groupKey(key, i), v));
    }
  }
  return out;
}

const verdictOf = (v: NoEndpoints): string => (v === 'reject' ? `goto ${rejectChain}` : 'drop');

interface ClassMaps {
  cluster: string;
  local: string;
  fallback: string;
  noEndpoints: string;
  localNoEndpoints: string;
  fallbackNoEndpoints: string;
  externalPool: Pool;
  fallbackPool: Pool;
  ids: { any: string; local: string; fallback: string };
}
const addressMaps: ClassMaps = {
  cluster: 'external-vips',
  local: 'local-vips',
  fallback: 'fallback-vips',
  noEndpoints: 'no-endpoints',
  localNoEndpoints: 'local-no-endpoints',
  fallbackNoEndpoints: 'fallback-no-endpoints',
  externalPool: 'external',
  fallbackPool: 'cluster',
  ids: idMaps,
};
const nodePortMaps: ClassMaps = {
  cluster: 'nodeports',
  local: 'local-nodeports',
  fallback: 'fallback-nodeports',
  noEndpoints: 'nodeport-no-endpoints',
  localNoEndpoints: 'local-nodeport-no-endpoints',
  fallbackNoEndpoints: 'fallback-nodeport-no-endpoints',
  externalPool: 'nodeport',
  fallbackPool: 'fallback-nodeport',
  ids: nodePortIdMaps,
};

/** The elements and load-balancing chains of one Service port, with the affinity IDs of the plan. Pure. */
export function renderPort(p: PortPlan, ids: AffinityIds): PortObjects {
  const entries: Entry[] = [];
  const groups: Group[] = [];
  const seen = new Set<string>();
  const chains = new Set<string>();
  // A key can come twice (an IP listed as external and load-balancer IP, an endpoint in both lists): first wins.
  // Endpoint-map keys follow from their dispatch key, which is checked.
  const put = (set: string, key: string, value = '') => {
    const id = `${set} ${key}`;
    if (seen.has(id)) return false;
    seen.add(id);
    entries.push([set, key, value]);
    return true;
  };
  const proto = p.protocol.toLowerCase();
  const addrKey = (ip: string) => `${canonicalIP(ip)} . ${proto} . ${p.port}`;
  const endpoint = (ep: Target) => `${canonicalIP(ep.ip)} . ${ep.port}`;
  /**
   * Dispatches `key` through `map` to a load-balancing chain over `eps`; with affinity, `idMap` gives the key the
   * ID of `eps` (layout.ts), which is recorded with the port's timeout, or, for an IPv6 list on several ports,
   * dispatches to a sticky chain keyed by that ID.
   */
  const balance = (map: string, pool: Pool, key: string, eps: readonly Target[], idMap: string) => {
    const id = p.affinitySeconds > 0 ? ids.get(affinityIdKey(p, roleOf(p, eps))) : undefined;
    const port6 = id !== undefined && p.family === 6 ? endpointsPort(eps) : undefined;
    const stickySeconds = id !== undefined && p.family === 6 && port6 === undefined ? p.affinitySeconds : 0;
    const chain = lbChain(pool, eps.length, stickySeconds);
    chains.add(chain);
    if (!put(map, key, `goto ${chain}`)) return;
    if (id !== undefined) {
      put(idMap, key, String(id));
      if (stickySeconds === 0) put(affinitySet(p.affinitySeconds), String(id));
      if (port6 !== undefined) put(affinityPorts, String(id), String(port6));
    }
    if (stickySeconds > 0) eps.forEach((ep, i) => put(stickyMap(chain, i), String(id), endpoint(ep)));
    else groups.push([lbMap(chain), key, eps.map(endpoint)]);
  };
  const external = (key: string, maps: ClassMaps) => {
    if (!p.externalLocal) {
      if (p.externalEndpoints.length > 0) balance(maps.cluster, maps.externalPool, key, p.externalEndpoints, maps.ids.any);
      else put(maps.noEndpoints, key, verdictOf(p.externalNoEndpoints));
      return;
    }
    // Local policy: traffic from outside keeps to this node's endpoints; from a pod or this node it may go to
    // any endpoint (kube-proxy's short-circuit).
    if (p.externalEndpoints.length > 0) balance(maps.local, maps.externalPool, key, p.externalEndpoints, maps.ids.local);
    else put(maps.localNoEndpoints, key, verdictOf(p.externalNoEndpoints));
    if (p.shortcutEndpoints.length > 0) balance(maps.fallback, maps.fallbackPool, key, p.shortcutEndpoints, maps.ids.fallback);
    else put(maps.fallbackNoEndpoints, key, verdictOf('reject'));
  };

  for (const ip of p.clusterIPs) {
    put(clusterIPsSet, canonicalIP(ip));
    const key = addrKey(ip);
    if (p.clusterEndpoints.length > 0) balance('cluster-vips', 'cluster', key, p.clusterEndpoints, idMaps.any);
    else put('no-endpoints', key, verdictOf(p.clusterNoEndpoints));
  }
  for (const ip of [...p.externalIPs, ...p.loadBalancerIPs]) external(addrKey(ip), addressMaps);
  if (p.sourceRanges.length > 0) {
    const ranges = normalizeCIDRs(p.sourceRanges);
    for (const ip of p.loadBalancerIPs) {
      const key = addrKey(ip);
      put('source-ranged-vips', key);
      for (const r of ranges) put('source-ranges', `${key} . ${r}`);
    }
  }
  if (p.nodePort !== undefined) external(`${proto} . ${p.nodePort}`, nodePortMaps);
  // A pod reaching itself through a Service must be masqueraded, or it would answer itself directly. Only
  // endpoints that may run here can do that (see Target.local), which keeps this set small at scale.
  const hairpin = new Set<string>();
  for (const list of new Set([p.clusterEndpoints, p.externalEndpoints, p.shortcutEndpoints])) {
    for (const ep of list) if (ep.local !== false) hairpin.add(canonicalIP(ep.ip));
  }
  for (const ip of hairpin) entries.push(['hairpin', `${ip} . ${ip}`, '']);
  return { entries, groups, chains: [...chains] };
}

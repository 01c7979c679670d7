// Which endpoints a Service port's traffic may use on this node: kube-proxy's rules (ready endpoints, else
// serving-terminating ones; topology hints; Local policies), plus trafficDistribution from zones when the
// slices carry no hints (manifests mode has no controller to write them).
import type { EndpointInfo, ServiceCommon } from '../../cluster/servicemap/index.ts';

/** The endpoints each traffic policy would use, and whether the Service has any usable endpoint anywhere. */
export interface Categorized {
  /** For the Cluster policy: usable endpoints, narrowed by topology when it applies. */
  cluster: EndpointInfo[];
  /** For the Local policy: this node's usable endpoints. */
  local: EndpointInfo[];
  /** Some endpoint is usable somewhere in the cluster (ready, or serving and terminating). */
  hasAny: boolean;
}

const usable = (e: EndpointInfo) => e.ready || (e.serving && e.terminating);
const fallback = (e: EndpointInfo) => !e.ready && e.serving && e.terminating;

/**
 * Splits endpoints (all of one family) for a Service on a node in a zone. Pure; never fails.
 * Ready endpoints win; serving-terminating ones are used only when no ready one exists (separately for
 * Cluster and Local).
 */
export function categorize(svc: ServiceCommon, endpoints: readonly EndpointInfo[], node: string, zone: string | undefined): Categorized {
  const ready = endpoints.filter((e) => e.ready);
  const topo = topologyFilter(svc, ready, node, zone);
  let cluster = topo ? ready.filter(topo) : ready;
  if (cluster.length === 0) cluster = endpoints.filter(fallback);
  const localReady = endpoints.filter((e) => e.local && e.ready);
  const local = localReady.length > 0 ? localReady : endpoints.filter((e) => e.local && fallback(e));
  return { cluster, local, hasAny: endpoints.some(usable) };
}

/**
 * The topology filter for ready endpoints, or undefined for none. Hints come first, as kube-proxy reads them:
 * node hints when every ready endpoint has one and some name this node; else zone hints when every ready endpoint
 * has one and some name our zone. Without any hints, trafficDistribution is applied from the endpoints' own
 * zones (PreferClose/PreferSameZone) or nodes (PreferSameNode), when that leaves at least one endpoint.
 */
function topologyFilter(svc: ServiceCommon, ready: readonly EndpointInfo[], node: string, zone: string | undefined): ((e: EndpointInfo) => boolean) | undefined {
  if (ready.length === 0) return undefined;
  const hasHint = (h: string[] | undefined) => h !== undefined && h.length > 0;
  if (ready.every((e) => hasHint(e.nodeHints)) && ready.some((e) => e.nodeHints!.includes(node))) {
    return (e) => e.nodeHints!.includes(node);
  }
  if (zone !== undefined && ready.every((e) => hasHint(e.zoneHints)) && ready.some((e) => e.zoneHints!.includes(zone))) {
    return (e) => e.zoneHints!.includes(zone);
  }
  if (ready.some((e) => hasHint(e.zoneHints) || hasHint(e.nodeHints))) return undefined;
  switch (svc.trafficDistribution) {
    case 'PreferSameNode':
      return ready.some((e) => e.local) ? (e) => e.local : sameZone(ready, zone);
    case 'PreferClose':
    case 'PreferSameZone':
      return sameZone(ready, zone);
    default:
      return undefined;
  }
}

function sameZone(ready: readonly EndpointInfo[], zone: string | undefined): ((e: EndpointInfo) => boolean) | undefined {
  return zone !== undefined && ready.some((e) => e.zone === zone) ? (e) => e.zone === zone : undefined;
}

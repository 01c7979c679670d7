// Which endpoints a Service port's traffic may use on this node: kube-proxy's rules (ready endpoints, else
// serving-terminating ones; topology hints; Local policies), plus trafficDistribution when the slices carry no
// hints (manifests mode has no controller to write them): the hints the EndpointSlice controller would write are
// made from the endpoints' own zones and nodes, then read as kube-proxy reads hints.
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

/** An endpoint's hints: the slice's, or those made for trafficDistribution. */
interface Hinted {
  zones: readonly string[] | undefined;
  nodes: readonly string[] | undefined;
}

const hasHint = (h: readonly string[] | undefined): h is readonly string[] => h !== undefined && h.length > 0;

/**
 * The topology filter for ready endpoints, or undefined for none, as kube-proxy reads hints: node hints when every
 * ready endpoint has one and some name this node; else zone hints when every ready endpoint has one and some name
 * our zone. When no ready endpoint has a hint, the Service has trafficDistribution and no topology-mode Auto
 * annotation (with it the controller decides, and no hint is its decision), the hints are those the controller's
 * heuristics write: each endpoint its own zone (PreferClose, PreferSameZone), and its own node too (PreferSameNode);
 * an endpoint without a zone or node gets none, so then every endpoint is used, as in a cluster.
 */
function topologyFilter(svc: ServiceCommon, ready: readonly EndpointInfo[], node: string, zone: string | undefined): ((e: EndpointInfo) => boolean) | undefined {
  if (ready.length === 0) return undefined;
  let hints: Map<EndpointInfo, Hinted> | undefined;
  if (!ready.some((e) => hasHint(e.zoneHints) || hasHint(e.nodeHints))) {
    const td = svc.trafficDistribution;
    if (svc.topologyAuto === true || (td !== 'PreferClose' && td !== 'PreferSameZone' && td !== 'PreferSameNode')) return undefined;
    hints = new Map(ready.map((e) => [e, { zones: e.zone ? [e.zone] : undefined, nodes: td === 'PreferSameNode' && e.nodeName ? [e.nodeName] : undefined }]));
  }
  const of = (e: EndpointInfo): Hinted => hints?.get(e) ?? { zones: e.zoneHints, nodes: e.nodeHints };
  if (ready.every((e) => hasHint(of(e).nodes)) && ready.some((e) => of(e).nodes!.includes(node))) {
    return (e) => of(e).nodes?.includes(node) === true;
  }
  if (zone !== undefined && ready.every((e) => hasHint(of(e).zones)) && ready.some((e) => of(e).zones!.includes(zone))) {
    return (e) => of(e).zones?.includes(zone) === true;
  }
  return undefined;
}

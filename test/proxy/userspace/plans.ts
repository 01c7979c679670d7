// Building ProxyPlans for the userspace proxy tests.
import type { PortPlan, ProxyPlan } from '../../../proxy/plan/types.ts';

/** A PortPlan with defaults; `key` and `portKey` follow from name, portName, protocol and family. */
export function portPlan(p: Partial<PortPlan> & { name: string }): PortPlan {
  const protocol = p.protocol ?? 'TCP';
  const family = p.family ?? 4;
  const portName = p.portName ?? 'p';
  const portKey = `default/${p.name}:${portName}/${protocol}`;
  return {
    key: `${portKey}/v${family}`, portKey, namespace: 'default', portName, family, protocol, port: 80,
    clusterIPs: [], externalIPs: [], loadBalancerIPs: [], sourceRanges: [],
    clusterEndpoints: [], clusterNoEndpoints: 'reject', externalEndpoints: [], externalNoEndpoints: 'reject',
    externalLocal: false, affinitySeconds: 0, localEndpoints: 0, shortcutEndpoints: p.clusterEndpoints ?? [], servingEndpoints: [...(p.clusterEndpoints ?? []), ...(p.externalEndpoints ?? [])],
    ...p,
  };
}

/** A ProxyPlan holding `ports` (sorted by key, as the planner gives them). */
export function plan(...ports: PortPlan[]): ProxyPlan {
  return { ports: [...ports].sort((a, b) => (a.key < b.key ? -1 : 1)), clusterCIDRs: { 4: [], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] };
}

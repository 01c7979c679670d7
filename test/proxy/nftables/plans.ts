// Hand-made ProxyPlans for the nftables backend's tests: a port with defaults, and a plan around ports.
import type { PortPlan, ProxyPlan, Target } from '../../../proxy/plan/types.ts';
import { portPlan } from '../../fixtures/plans.ts';

/** Endpoints `ip:port` from `['10.244.1.11', ...]`. */
export const eps = (ips: string[], port = 8080): Target[] => ips.map((ip) => ({ ip, port }));

/** A Service port with nothing but what is given: no addresses, no endpoints (reject), Cluster policy, no affinity. */
export function port(name: string, o: Partial<PortPlan> = {}): PortPlan {
  return portPlan(name, o.portName ?? 'p', o);
}

/** A port whose cluster and external endpoints are the same list (the Cluster policy). */
export const served = (name: string, endpoints: Target[], o: Partial<PortPlan> = {}): PortPlan =>
  port(name, { clusterEndpoints: endpoints, externalEndpoints: endpoints, localEndpoints: endpoints.length, ...o });

/** A plan: ports sorted by key as the planner gives them; pod network 10.244.0.0/16 and fd00:244::/32. */
export function plan(ports: PortPlan[], o: Partial<ProxyPlan> = {}): ProxyPlan {
  return {
    ports: [...ports].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    clusterCIDRs: { 4: ['10.244.0.0/16'], 6: ['fd00:244::/32'] },
    masqueradeAll: false,
    nodePortAddresses: { 4: 'all', 6: 'all' },
    healthChecks: [],
    ...o,
  };
}

/** A small plan with one of each kind: ClusterIP TCP and UDP, LoadBalancer, NodePort, no endpoints, the Local
 * policy, ClientIP affinity, source ranges, and IPv6 with affinity (endpoints on one port, and on two). */
export const smallPlan: ProxyPlan = plan([
  served('web', eps(['10.244.1.11', '10.244.1.12']), { clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['203.0.113.10'], nodePort: 30080 }),
  served('dns', eps(['10.244.1.11'], 5353), { protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'] }),
  port('empty', { clusterIPs: ['10.96.0.30'] }),
  port('local', {
    clusterIPs: ['10.96.0.20'],
    loadBalancerIPs: ['203.0.113.20'],
    nodePort: 30081,
    externalLocal: true,
    clusterEndpoints: eps(['10.244.1.11', '10.244.2.21']),
    externalEndpoints: eps(['10.244.1.11']),
    externalNoEndpoints: 'drop',
  }),
  served('sticky', eps(['10.244.1.11', '10.244.1.12', '10.244.1.13']), { clusterIPs: ['10.96.0.40'], affinitySeconds: 10800 }),
  served('ranged', eps(['10.244.1.13']), { loadBalancerIPs: ['203.0.113.30'], sourceRanges: ['10.0.0.0/8', '192.168.7.1/32'] }),
  served('web6', eps(['fd00:244:1::11']), { family: 6, clusterIPs: ['fd00:96::10'], affinitySeconds: 60 }),
  served('mixed6', [...eps(['fd00:244:1::11']), ...eps(['fd00:244:1::12'], 8081)], { family: 6, clusterIPs: ['fd00:96::50'], affinitySeconds: 60 }),
]);

// The proxy's metrics. Where kube-proxy has a metric with the same meaning, it has kube-proxy's full name, so
// dashboards and alerts written for kube-proxy keep working.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ProxyBackend, SyncResult } from './backend.ts';
import type { ProxyPlan } from './plan/types.ts';
import { udpDropReasons } from './userspace/flow-budget.ts';

// kube-proxy's buckets for sync durations: exponential from 1 ms.
const syncBuckets = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
// kube-proxy's network programming buckets (pkg/proxy/metrics): 0.25 and 0.5 s, each second to 59, every 5 s to 115,
// every 30 s to 300.
const programmingBuckets = [
  0.25, 0.5,
  ...Array.from({ length: 59 }, (_, i) => i + 1),
  ...Array.from({ length: 12 }, (_, i) => 60 + 5 * i),
  ...Array.from({ length: 7 }, (_, i) => 120 + 30 * i),
];

/** Every metric the proxy records. */
export interface ProxyMetrics {
  syncDuration: Histogram;
  fullSyncDuration: Histogram;
  partialSyncDuration: Histogram;
  networkProgramming: Histogram;
  endpointChangesPending: Gauge;
  endpointChangesTotal: Counter;
  serviceChangesPending: Gauge;
  serviceChangesTotal: Counter;
  lastSync: Gauge;
  lastQueued: Gauge;
  syncFailures: Counter<'mode'>;
  /** kube-proxy's per-mode failure counters; the userspace mode has none. */
  kernelSyncFailures: Record<'nftables' | 'iptables', Counter>;
  /** iptables: partial restores refused (each also counted in kernelSyncFailures.iptables, as kube-proxy does). */
  iptablesPartialRestoreFailures: Counter;
  canaryRepairs: Counter<'mode'>;
  rules: Gauge<'mode'>;
  elements: Gauge<'mode'>;
  /** kube-proxy's iptables_total: registered by the first iptables-mode sync (other modes never have it). */
  iptablesRules: Gauge<'table'>;
  /** kube-proxy's no_local_endpoints_total: registered by the first kernel-mode sync (userspace mode never has it). */
  noLocalEndpoints: Gauge<'traffic_policy'>;
  /** Where those two are registered when first set. */
  registry: Registry;
  conntrackDeletions: Counter;
  udpFlowEvictions: Counter;
  /** userspace mode: UDP datagrams dropped, by reason (udpDropReasons). */
  udpDatagramsDropped: Counter<'reason'>;
}

/** Registers the proxy's metrics. */
export function registerProxyMetrics(registry: Registry, mode?: 'nftables' | 'iptables' | 'userspace'): ProxyMetrics {
  const registers = [registry];
  const udpDatagramsDropped = new Counter({
    name: 'netplane_proxy_udp_datagrams_dropped_total',
    help: 'userspace mode: UDP datagrams dropped, either way, by reason: flow_limit (a new client refused at --udp-max-flows-total, its port holding no flow to give up), no_endpoint (none for this client), endpoint_unreachable (the endpoint refused it, ICMP, or could not be reached), queue_full (the send queue or a flow\'s wait for its connect was full), send_failed (the kernel refused the send).',
    labelNames: ['reason'],
    registers,
  });
  // Every reason shown from the start (at 0) in userspace mode, so that rate() and alerts see the first drop.
  if (mode === 'userspace') for (const reason of udpDropReasons) udpDatagramsDropped.inc({ reason }, 0);
  // Each kernel mode's own failure counter, only in that mode as kube-proxy registers it (all without a mode).
  const kernelRegisters = (m: 'nftables' | 'iptables') => (mode === undefined || mode === m ? registers : []);
  return {
    syncDuration: new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'Latency of one sync of the proxy rules, in seconds.', buckets: syncBuckets, registers }),
    fullSyncDuration: new Histogram({ name: 'kubeproxy_sync_full_proxy_rules_duration_seconds', help: 'Latency of one full sync (reconciling with the kernel), in seconds.', buckets: syncBuckets, registers }),
    partialSyncDuration: new Histogram({ name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds', help: 'Latency of one partial sync (applying a difference), in seconds.', buckets: syncBuckets, registers }),
    networkProgramming: new Histogram({
      name: 'kubeproxy_network_programming_duration_seconds',
      help: 'Time from when netplane saw a Service or endpoint change to when it was programmed, in seconds.',
      buckets: programmingBuckets,
      registers,
    }),
    endpointChangesPending: new Gauge({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', help: 'Services with endpoint changes not yet programmed.', registers }),
    endpointChangesTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'EndpointSlice events (added, changed, deleted) seen, as kube-proxy counts them.', registers }),
    serviceChangesPending: new Gauge({ name: 'kubeproxy_sync_proxy_rules_service_changes_pending', help: 'Services with spec changes not yet programmed.', registers }),
    serviceChangesTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Service events (added, changed, deleted) seen, as kube-proxy counts them.', registers }),
    lastSync: new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'When the rules were last programmed successfully (Unix time).', registers }),
    lastQueued: new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'When a change was last queued for programming (Unix time).', registers }),
    syncFailures: new Counter({ name: 'netplane_proxy_sync_failures_total', help: 'Syncs the kernel refused; the previous rules stayed and a full sync follows.', labelNames: ['mode'], registers }),
    kernelSyncFailures: {
      nftables: new Counter({ name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', help: 'nftables syncs the kernel refused (nft failed); the previous rules stayed.', registers: kernelRegisters('nftables') }),
      iptables: new Counter({ name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', help: 'iptables-restore runs the kernel refused (a sync, or the partial restore a full one then replaced); the previous rules stayed.', registers: kernelRegisters('iptables') }),
    },
    iptablesPartialRestoreFailures: new Counter({
      name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total',
      help: 'Partial iptables-restore runs the kernel refused, each followed at once by a full one (the kernel was not what was last written).',
      registers: kernelRegisters('iptables'),
    }),
    canaryRepairs: new Counter({ name: 'netplane_proxy_canary_resyncs_total', help: 'Periodic checks that found rules removed or changed in the kernel, each followed by a full sync.', labelNames: ['mode'], registers }),
    rules: new Gauge({ name: 'netplane_proxy_rules', help: 'Rules (userspace: listeners) programmed after the last sync.', labelNames: ['mode'], registers }),
    elements: new Gauge({ name: 'netplane_proxy_map_elements', help: 'Map and set elements (userspace: endpoints) programmed after the last sync.', labelNames: ['mode'], registers }),
    // Gauges despite the _total (which promtool's lint flags): kube-proxy's names. Not registered here but by
    // recordProgrammed, in the modes that have them, so that the userspace mode shows no empty family.
    iptablesRules: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_iptables_total',
      help: "iptables mode: rules in netplane's own chains per table after the last sync, IPv4 and IPv6 together.",
      labelNames: ['table'],
      registers: [],
    }),
    noLocalEndpoints: new Gauge({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Service ports with a Local traffic policy whose endpoints are all on other nodes, so this node drops that traffic (internal: internalTrafficPolicy, external: externalTrafficPolicy).',
      labelNames: ['traffic_policy'],
      registers: [],
    }),
    registry,
    udpFlowEvictions: new Counter({ name: 'netplane_proxy_udp_flow_evictions_total', help: 'userspace mode: UDP flows closed at the flow cap to make room for a new client (least recently used first).', registers }),
    udpDatagramsDropped,
    conntrackDeletions: new Counter({ name: 'netplane_proxy_conntrack_deletions_total', help: 'conntrack deletions run for stale UDP/SCTP flows to removed endpoints.', registers }),
  };
}

/** Service ports (each counted once over its IP families) whose Local traffic policy finds no endpoint on this node while others exist. Pure. */
export function noLocalEndpoints(plan: ProxyPlan): { internal: number; external: number } {
  const internal = new Set<string>();
  const external = new Set<string>();
  for (const p of plan.ports) {
    // 'drop' is the planner's verdict for a Local policy with endpoints elsewhere only (no endpoint at all: 'reject').
    if (p.clusterEndpoints.length === 0 && p.clusterNoEndpoints === 'drop') internal.add(p.portKey);
    const externallyReachable = p.nodePort !== undefined || p.externalIPs.length > 0 || p.loadBalancerIPs.length > 0;
    if (externallyReachable && p.externalLocal && p.externalEndpoints.length === 0 && p.externalNoEndpoints === 'drop') external.add(p.portKey);
  }
  return { internal: internal.size, external: external.size };
}

/** Sets the gauges of what a successful sync programmed: rules and elements, and kube-proxy's per-mode gauges. */
export function recordProgrammed(m: ProxyMetrics, mode: ProxyBackend['mode'], plan: ProxyPlan, result: SyncResult): void {
  m.rules.set({ mode }, result.rules);
  m.elements.set({ mode }, result.elements);
  if (result.rulesByTable) {
    expose(m.registry, m.iptablesRules);
    for (const [table, n] of Object.entries(result.rulesByTable)) m.iptablesRules.set({ table }, n);
  }
  // userspace mode serves a Service port on one listener, under one of the two policies (its nodePort's or its
  // port's), and refuses rather than drops: the kernel modes' count would not describe what it does.
  if (mode === 'userspace') return;
  expose(m.registry, m.noLocalEndpoints);
  const n = noLocalEndpoints(plan);
  m.noLocalEndpoints.set({ traffic_policy: 'internal' }, n.internal);
  m.noLocalEndpoints.set({ traffic_policy: 'external' }, n.external);
}

/** Registers a metric made without a registry, once. */
function expose(registry: Registry, metric: Gauge<string>): void {
  // prom-client keeps the name on the metric without declaring it in its types.
  const { name } = metric as unknown as { name: string };
  if (registry.getSingleMetric(name) === undefined) registry.registerMetric(metric);
}

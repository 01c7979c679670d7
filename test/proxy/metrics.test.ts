// kube-proxy's gauges with the same meaning: sync_proxy_rules_iptables_total{table} (iptables mode) and
// sync_proxy_rules_no_local_endpoints_total{traffic_policy} (kernel modes), from the plan and the sync result.
import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import type { ProxyBackend, SyncResult } from '../../proxy/backend.ts';
import { noLocalEndpoints, recordProgrammed, registerProxyMetrics } from '../../proxy/metrics.ts';
import type { PortPlan, ProxyPlan } from '../../proxy/plan/types.ts';
import { ProxySyncer } from '../../proxy/sync.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { service, slice } from '../fixtures/objects.ts';
import { portPlan } from '../fixtures/plans.ts';
import { waitFor } from '../helpers/wait.ts';

const elsewhere = [{ ip: '10.244.2.5', port: 8080, local: false }];
const here = [{ ip: '10.244.1.5', port: 8080, local: true }];
const plan = (ports: PortPlan[]): ProxyPlan => ({ ports, clusterCIDRs: { 4: [], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] });

describe('noLocalEndpoints', () => {
  const rows: Array<{ name: string; ports: PortPlan[]; want: { internal: number; external: number } }> = [
    { name: 'Cluster policies with endpoints', ports: [portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], nodePort: 30000, clusterEndpoints: here, externalEndpoints: here })], want: { internal: 0, external: 0 } },
    { name: 'no endpoint anywhere is refused, not a Local-policy drop', ports: [portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], nodePort: 30000 })], want: { internal: 0, external: 0 } },
    {
      name: 'internalTrafficPolicy Local, endpoints only elsewhere',
      ports: [portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], clusterNoEndpoints: 'drop', shortcutEndpoints: elsewhere })],
      want: { internal: 1, external: 0 },
    },
    {
      name: 'externalTrafficPolicy Local, endpoints only elsewhere, on a node port',
      ports: [portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], nodePort: 30000, externalLocal: true, clusterEndpoints: elsewhere, externalNoEndpoints: 'drop' })],
      want: { internal: 0, external: 1 },
    },
    {
      name: 'externalTrafficPolicy Local with a local endpoint',
      ports: [portPlan('a', 'http', { loadBalancerIPs: ['192.0.2.1'], externalLocal: true, clusterEndpoints: [...here, ...elsewhere], externalEndpoints: here, externalNoEndpoints: 'drop' })],
      want: { internal: 0, external: 0 },
    },
    {
      name: 'externalTrafficPolicy Local without any external address counts nothing',
      ports: [portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], externalLocal: true, clusterEndpoints: elsewhere, externalNoEndpoints: 'drop' })],
      want: { internal: 0, external: 0 },
    },
    {
      name: 'a dual-stack Service port counts once; both policies and two ports count apart',
      ports: [
        portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], nodePort: 30000, externalLocal: true, clusterNoEndpoints: 'drop', externalNoEndpoints: 'drop' }),
        portPlan('a', 'http', { family: 6, clusterIPs: ['fd00:96::1'], nodePort: 30000, externalLocal: true, clusterNoEndpoints: 'drop', externalNoEndpoints: 'drop' }),
        portPlan('a', 'dns', { protocol: 'UDP', clusterIPs: ['10.96.0.1'], clusterNoEndpoints: 'drop' }),
      ],
      want: { internal: 2, external: 1 },
    },
  ];
  it.each(rows)('$name', ({ ports, want }) => {
    expect(noLocalEndpoints(plan(ports))).toEqual(want);
  });
});

describe('recordProgrammed', () => {
  const p = plan([portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], clusterNoEndpoints: 'drop' })]);
  const result: SyncResult = { rules: 30, elements: 2, operations: 5, rulesByTable: { nat: 21, filter: 9 } };
  const rows: Array<{ mode: ProxyBackend['mode']; result: SyncResult; want: RegExp[]; absent: RegExp[] }> = [
    {
      mode: 'iptables',
      result,
      want: [/^kubeproxy_sync_proxy_rules_iptables_total\{table="nat"\} 21$/m, /^kubeproxy_sync_proxy_rules_iptables_total\{table="filter"\} 9$/m, /^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="internal"\} 1$/m, /^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="external"\} 0$/m],
      absent: [],
    },
    { mode: 'nftables', result: { rules: 30, elements: 2, operations: 5 }, want: [/^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="internal"\} 1$/m], absent: [/^kubeproxy_sync_proxy_rules_iptables_total\{/m] },
    { mode: 'userspace', result: { rules: 1, elements: 0, operations: 1 }, want: [/^netplane_proxy_rules\{mode="userspace"\} 1$/m], absent: [/^kubeproxy_sync_proxy_rules_iptables_total\{/m, /^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{/m] },
  ];
  it.each(rows)('$mode mode exposes only the gauges with the same meaning', async ({ mode, result: r, want, absent }) => {
    const registry = new Registry();
    recordProgrammed(registerProxyMetrics(registry), mode, p, r);
    const text = await registry.metrics();
    for (const re of want) expect(text).toMatch(re);
    for (const re of absent) expect(text).not.toMatch(re);
  });

  it.each([
    ['nftables', ['kubeproxy_sync_proxy_rules_nftables_sync_failures_total'], ['kubeproxy_sync_proxy_rules_iptables_restore_failures_total']],
    ['iptables', ['kubeproxy_sync_proxy_rules_iptables_restore_failures_total'], ['kubeproxy_sync_proxy_rules_nftables_sync_failures_total']],
    ['userspace', [], ['kubeproxy_sync_proxy_rules_nftables_sync_failures_total', 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total']],
  ] as const)("%s mode registers only its own kernel failure counter, as kube-proxy's modes do", async (mode, present, missing) => {
    const registry = new Registry();
    registerProxyMetrics(registry, mode);
    const text = await registry.metrics();
    for (const name of present) expect(text).toMatch(new RegExp(`^${name} 0$`, 'm'));
    for (const name of missing) expect(text).not.toContain(name);
  });
});

describe("the proxy's /metrics under promtool check metrics", () => {
  // kube-proxy's own names for two gauges end in _total, which promtool's lint flags (exit 3): those two, in the modes
  // that have them, are the only problems; the userspace mode has neither family, not even empty.
  const p = plan([portPlan('a', 'http', { clusterIPs: ['10.96.0.1'], clusterNoEndpoints: 'drop' })]);
  const noLocal = 'kubeproxy_sync_proxy_rules_no_local_endpoints_total';
  const iptablesTotal = 'kubeproxy_sync_proxy_rules_iptables_total';
  it.each([
    { mode: 'nftables', r: { rules: 3, elements: 1, operations: 3 }, flagged: [noLocal] },
    { mode: 'iptables', r: { rules: 3, elements: 1, operations: 3, rulesByTable: { nat: 2, filter: 1 } }, flagged: [iptablesTotal, noLocal] },
    { mode: 'userspace', r: { rules: 1, elements: 1, operations: 1 }, flagged: [] },
  ] as const)('$mode mode: promtool flags only $flagged', async ({ mode, r, flagged }) => {
    const registry = new Registry();
    recordProgrammed(registerProxyMetrics(registry), mode, p, r);
    const text = await registry.metrics();
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = (promtool.stdout + promtool.stderr).trim().split('\n').filter(Boolean);
    expect(problems.map((l) => l.split(' ')[0]).sort(), problems.join('\n')).toEqual([...flagged]);
    for (const line of problems) expect(line).toMatch(/non-counter metrics should not have "_total" suffix/);
    expect(promtool.status).toBe(flagged.length === 0 ? 0 : 3);
    for (const name of [noLocal, iptablesTotal]) expect(text.includes(`# TYPE ${name} gauge`), name).toBe((flagged as readonly string[]).includes(name));
  });
});

describe('the histograms', () => {
  // kube-proxy's pkg/proxy/metrics/metrics.go, written as it writes them.
  const linear = (start: number, width: number, count: number) => Array.from({ length: count }, (_, i) => start + width * i);
  const exponential = (start: number, factor: number, count: number) => Array.from({ length: count }, (_, i) => start * factor ** i);
  const buckets = async (name: string) => {
    const registry = new Registry();
    registerProxyMetrics(registry);
    const text = await registry.metrics();
    return [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}`, 'gm'))].map((m) => m[1]!).filter((le) => le !== '+Inf').map(Number);
  };

  it.each([
    ['kubeproxy_network_programming_duration_seconds', [...linear(0.25, 0.25, 2), ...linear(1, 1, 59), ...linear(60, 5, 12), ...linear(120, 30, 7)]],
    ['kubeproxy_sync_proxy_rules_duration_seconds', exponential(0.001, 2, 15)],
    ['kubeproxy_sync_full_proxy_rules_duration_seconds', exponential(0.001, 2, 15)],
    ['kubeproxy_sync_partial_proxy_rules_duration_seconds', exponential(0.001, 2, 15)],
  ])('%s has exactly kube-proxy\'s buckets', async (name, want) => {
    expect(await buckets(name)).toEqual(want);
  });
});

describe('the sync loop', () => {
  let syncer: ProxySyncer | undefined;
  afterEach(async () => {
    await syncer?.stop();
  });

  it("sets both gauges from the planned Service and the iptables backend's result", async () => {
    const store = new Store();
    const map = new ServiceMap(store, { nodeName: 'n1' });
    const registry = new Registry();
    const backend: ProxyBackend = {
      mode: 'iptables',
      sync: async () => ({ rules: 12, elements: 1, operations: 12, rulesByTable: { nat: 8, filter: 4 } }),
      cleanup: async () => {},
      close: async () => {},
    };
    syncer = new ProxySyncer({
      backend,
      serviceMap: map,
      tracker: map.tracker(),
      config: () => ({ nodeName: 'n1', clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: [] }),
      metrics: registerProxyMetrics(registry),
      log: silentLogger(),
      minSyncPeriodMs: 10,
      syncPeriodMs: 60_000,
    });
    store.apply(
      [
        service('web', { type: 'NodePort', clusterIP: '10.96.0.10', internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] }),
        slice('web-1', 'web', [{ addresses: ['10.244.2.5'], nodeName: 'n2' }], [{ port: 8080 }]),
      ].flatMap((r) => parseObject(r)),
    );
    syncer.start();
    await waitFor('a sync', async () => /no_local_endpoints_total\{traffic_policy="external"\} 1/.test(await registry.metrics()));
    const text = await registry.metrics();
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="internal"\} 1$/m);
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_iptables_total\{table="nat"\} 8$/m);
    expect(text).toMatch(/^kubeproxy_sync_proxy_rules_iptables_total\{table="filter"\} 4$/m);
  });
});

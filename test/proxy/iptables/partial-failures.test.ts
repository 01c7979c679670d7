// A partial iptables-restore the kernel refuses (the kernel drifted from what was last written) is replaced at once
// by a full one inside the same sync; it is still counted, as kube-proxy counts every failed restore, under
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total and ..._partial_restore_failures_total.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import { registerProxyMetrics } from '../../../proxy/metrics.ts';
import { ProxySyncer } from '../../../proxy/sync.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { service, slice } from '../../fixtures/objects.ts';
import { waitFor } from '../../helpers/wait.ts';
import { FakeIptables } from './fake.ts';

const web = service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] });
const ep = (...ips: string[]) => slice('web-1', 'web', ips.map((ip) => ({ addresses: [ip] })), [{ port: 8080 }]);
const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);

describe('iptables restore failures in the metrics', () => {
  let syncer: ProxySyncer | undefined;
  afterEach(async () => {
    await syncer?.stop();
  });

  it('a refused partial restore counts under both counters though the full restore after it succeeds; a refused sync under restore failures', async () => {
    const store = new Store();
    const map = new ServiceMap(store, { nodeName: 'n1' });
    const fake = new FakeIptables();
    const registry = new Registry();
    const backend = new IptablesBackend(fake, { log: silentLogger(), tcpBeLiberal: async () => false });
    syncer = new ProxySyncer({
      backend,
      serviceMap: map,
      tracker: map.tracker(),
      config: () => ({ nodeName: 'n1', clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: [] }),
      metrics: registerProxyMetrics(registry, 'iptables'),
      log: silentLogger(),
      minSyncPeriodMs: 10,
      syncPeriodMs: 60_000,
    });
    const put = (...raws: object[]) => store.apply(raws.flatMap((r) => parseObject(r)));
    const restores = () => fake.calls.filter((c) => c.command.endsWith('-restore')).length;
    put(web, ep('10.244.1.1'));
    syncer.start();
    await waitFor('the first sync', () => fake.dump(4).includes('10.244.1.1'));
    let text = await registry.metrics();
    expect(value(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(0);

    // The partial restore of this change is refused; the full one after it goes through.
    fake.failRestores.push('Bad rule');
    const before = restores();
    put(ep('10.244.1.2'));
    await waitFor('the change', () => fake.dump(4).includes('10.244.1.2'));
    expect(restores() - before).toBeGreaterThanOrEqual(2);
    text = await registry.metrics();
    expect(value(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(1);
    expect(value(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(1);
    expect(text).not.toMatch(/^netplane_proxy_sync_failures_total\{mode="iptables"\}/m);

    // Both refused: the sync fails (one more restore failure) and a full sync repairs it.
    fake.failRestores.push('Bad rule', 'Bad rule');
    put(ep('10.244.1.3'));
    await waitFor('the repair', () => fake.dump(4).includes('10.244.1.3'), 5000);
    text = await registry.metrics();
    expect(value(text, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total')).toBe(2);
    expect(value(text, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total')).toBe(3);
    expect(text).toMatch(/^netplane_proxy_sync_failures_total\{mode="iptables"\} 1$/m);
  });
});

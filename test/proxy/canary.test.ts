// The periodic canary in the kernel, both modes: rules removed by hand (a firewall reload, `nft flush ruleset`)
// while the proxy runs are put back by the next periodic sync, and traffic flows again within a sync period.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import type { ProxyBackend } from '../../proxy/backend.ts';
import { IptablesBackend } from '../../proxy/iptables/backend.ts';
import { registerProxyMetrics } from '../../proxy/metrics.ts';
import { NftablesBackend } from '../../proxy/nftables/backend.ts';
import { ProxySyncer } from '../../proxy/sync.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { service, slice } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildTopology, type ProxyTopology } from './topology.ts';

const syncPeriodMs = 1000;

describe('periodic canary in the kernel', () => {
  let t: ProxyTopology;
  let runner: CommandRunner;
  beforeAll(async () => {
    t = await buildTopology(2, [8080]);
    runner = { run: (command, args, input) => t.lab.exec(t.node, command, args, input) };
  }, 60_000);
  afterAll(async () => {
    await t?.lab.destroy();
  });

  const cases: Array<{ mode: string; backend: () => ProxyBackend; damage: string[][] }> = [
    { mode: 'nftables', backend: () => new NftablesBackend(runner, { log: silentLogger() }), damage: [['nft', 'delete', 'table', 'ip', 'netplane']] },
    {
      mode: 'iptables',
      backend: () => new IptablesBackend(runner, { log: silentLogger() }),
      damage: [['iptables', '-w', '5', '-t', 'nat', '-D', 'PREROUTING', '-m', 'comment', '--comment', 'netplane service portals', '-j', 'NETPLANE-SERVICES']],
    },
  ];

  for (const c of cases) {
    it(`${c.mode}: a deleted table or hook jump is restored within a sync period`, async () => {
      const store = new Store();
      const map = new ServiceMap(store, { nodeName: 'n1' });
      const registry = new Registry();
      const backend = c.backend();
      const syncer = new ProxySyncer({
        backend,
        serviceMap: map,
        tracker: map.tracker(),
        config: () => ({ nodeName: 'n1', clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: false, nodePortAddresses: [] }),
        metrics: registerProxyMetrics(registry),
        log: silentLogger(),
        minSyncPeriodMs: 10,
        syncPeriodMs,
      });
      store.apply(
        [service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }] }), slice('web-1', 'web', t.pods.map((p) => ({ addresses: [p.ip4] })), [{ port: 8080 }])].flatMap(
          (r) => parseObject(r),
        ),
      );
      try {
        syncer.start();
        await waitFor('first sync', () => syncer.lastSyncedAt !== undefined, 10_000);
        expect((await t.probe(t.client, 'tcp', '10.96.0.10', 80))[0]).toMatchObject({ ok: true });
        for (const [cmd, ...args] of c.damage) await t.lab.exec(t.node, cmd!, args);
        const damagedAt = Date.now();
        await waitFor('traffic again', async () => (await t.probe(t.client, 'tcp', '10.96.0.10', 80))[0]!.ok, 3 * syncPeriodMs);
        expect(Date.now() - damagedAt).toBeLessThan(2 * syncPeriodMs + 2500);
        expect(await registry.getSingleMetricAsString('netplane_proxy_canary_resyncs_total')).toContain(`{mode="${c.mode}"} 1`);
        // Intact rules cost no full sync: the canary stays quiet for further periods.
        await new Promise((r) => setTimeout(r, 2.5 * syncPeriodMs));
        expect(await registry.getSingleMetricAsString('netplane_proxy_canary_resyncs_total')).toContain(`{mode="${c.mode}"} 1`);
      } finally {
        await syncer.stop();
        await backend.cleanup();
      }
    }, 30_000);
  }
});

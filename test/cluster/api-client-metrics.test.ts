// client-go's request metrics, heard on undici's diagnostics channels, for a cluster view read through the real
// client library from the test API server: its lists and watches counted by status code and method with their
// latency, a write (a patch) by its method, a refusal (403) by its code, and a request of undici to another origin
// not at all; once stopped, nothing more is counted.
import { NetworkingV1Api, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { Store } from '../../cluster/store.ts';
import { registerApiClientMetrics } from '../../runtime/api-client-metrics.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { service } from '../fixtures/objects.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

/** The value of a sample of `name` whose labels include `labels`, 0 when there is none. */
async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name.replace(/_(count|sum)$/, ''));
  const values = (metric?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
  return values.filter((v) => (v.metricName ?? metric?.name) === name && Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l)).reduce((sum, v) => sum + v.value, 0);
}

describe('client-go request metrics', () => {
  let api: TestApiServer;
  const stops: Array<() => unknown> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await api.close();
  });

  it('counts the lists, watches and writes of the API server by code and method, and nothing else', async () => {
    api = await TestApiServer.start();
    api.apply(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    const kc: KubeConfig = loadKubeConfig(await api.kubeconfigPath());
    const host = new URL(kc.getCurrentCluster()!.server).host;
    const registry = new Registry();
    const source = new KubernetesSource(kc, { log: captureLogger().log, initialBackoffMs: 50, maxBackoffMs: 100 });
    expect(source.apiServer).toBe(kc.getCurrentCluster()!.server);
    stops.push(registerApiClientMetrics(registry, source.apiServer!));
    const store = new Store(['Service']);
    await source.start(store);
    stops.push(() => source.stop());
    // The list, then the watch (its head comes when it is open).
    await waitFor('the list and the watch counted', async () => (await value(registry, 'rest_client_requests_total', { code: '200', method: 'GET', host })) >= 2);
    expect(await value(registry, 'rest_client_request_duration_seconds_count', { verb: 'GET', host })).toBeGreaterThanOrEqual(2);

    // A write: a merge patch of an Ingress's status, as the ingress gateway sends it.
    api.apply({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'shop', namespace: 'default' }, spec: { rules: [] } });
    await kc.makeApiClient(NetworkingV1Api).patchNamespacedIngressStatus({ name: 'shop', namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } } }, setHeaderOptions('Content-Type', 'application/merge-patch+json'));
    expect(await value(registry, 'rest_client_requests_total', { code: '200', method: 'PATCH', host })).toBe(1);
    expect(await value(registry, 'rest_client_request_duration_seconds_count', { verb: 'PATCH', host })).toBe(1);

    // RBAC refusing: the source's next lists of Services answer 403.
    api.forbid('services');
    await waitFor('a 403 counted', async () => (await value(registry, 'rest_client_requests_total', { code: '403', method: 'GET', host })) >= 1, 5000);

    // undici to another origin (the ingress's backends, say) is not the API server's.
    const other: Server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => other.close(r)));
    const before = await value(registry, 'rest_client_requests_total', {});
    await (await request(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`)).body.dump();
    const counted = (await registry.getMetricsAsJSON()).find((m) => m.name === 'rest_client_requests_total')!.values as Array<{ labels: Record<string, string> }>;
    expect(counted.every((v) => v.labels.host === host)).toBe(true);

    // Stopped: a request to the API server is no longer counted.
    stops.shift()!();
    const patches = await value(registry, 'rest_client_requests_total', { method: 'PATCH' });
    await kc.makeApiClient(NetworkingV1Api).patchNamespacedIngressStatus({ name: 'shop', namespace: 'default', body: { status: { loadBalancer: { ingress: [] } } } }, setHeaderOptions('Content-Type', 'application/merge-patch+json'));
    expect(await value(registry, 'rest_client_requests_total', { method: 'PATCH' })).toBe(patches);
    expect(before).toBeGreaterThan(0);
  });
});

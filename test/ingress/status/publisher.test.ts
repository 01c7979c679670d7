// Ingress status through the real client library against the test API server: the leader writes the published
// Service's addresses into served Ingresses and follows them, writes only what differs, retries after an outage,
// hands over to another replica, and empties the status at shutdown only when the flag says so and nobody takes over.
import { NetworkingV1Api, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../../cluster/kubernetes/source.ts';
import { Store } from '../../../cluster/store.ts';
import type { LoadBalancerAddress } from '../../../ingress/status/addresses.ts';
import { StatusPublisher } from '../../../ingress/status/index.ts';
import { ApiCallError, IngressStatusWatch, kubernetesStatusWriter } from '../../../ingress/status/kube.ts';
import { StatusSync } from '../../../ingress/status/sync.ts';
import { TestApiServer } from '../../apiserver/server.ts';
import { service } from '../../fixtures/objects.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';

const ingress = (name: string, className: string, status?: LoadBalancerAddress[]) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: 'shop' },
  spec: { ingressClassName: className, rules: [{ host: `${name}.test`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
  ...(status ? { status: { loadBalancer: { ingress: status } } } : {}),
});
const gateway = (...ips: string[]) => service('gw', { type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, { namespace: 'ops', status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } });

describe('Ingress status', () => {
  let api: TestApiServer;
  let kc: KubeConfig;
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await api.close();
  });

  async function start() {
    api = await TestApiServer.start();
    kc = loadKubeConfig(await api.kubeconfigPath());
    api.apply(gateway('203.0.113.10'));
    api.apply(ingress('shop', 'netplane'));
    api.apply(ingress('blog', 'netplane', [{ ip: '203.0.113.10' }]));
    api.apply(ingress('legacy', 'nginx', [{ ip: '198.51.100.1' }]));
  }

  /** A replica: its own view of the cluster and its publisher; served = the Ingresses of class netplane. */
  async function replica(identity: string, options: { clearOnShutdown?: boolean } = {}) {
    const { log, records } = captureLogger();
    const store = new Store(['Service', 'Ingress', 'IngressClass']);
    const source = new KubernetesSource(kc, { log });
    await source.start(store);
    stops.push(() => source.stop());
    const served = () => store.list('Ingress').filter((i) => i.spec.ingressClassName === 'netplane').map((i) => `${i.metadata.namespace}/${i.metadata.name}`);
    const publisher = new StatusPublisher({
      kc,
      store,
      served,
      ready: () => store.status.synced,
      publish: { service: 'ops/gw' },
      log,
      election: { namespace: 'ops', name: 'gw-leader', identity, ttlMs: 1500 },
      clearOnShutdown: options.clearOnShutdown ?? true,
      debounceMs: 10,
    });
    publisher.start();
    let down = false;
    const shutdown = async () => {
      if (!down) await publisher.shutdown();
      down = true;
    };
    stops.push(shutdown);
    return { publisher, records, shutdown };
  }

  const networking = () => kc.makeApiClient(NetworkingV1Api);
  const statusOf = async (name: string, namespace = 'shop') => (await networking().readNamespacedIngress({ name, namespace })).status?.loadBalancer?.ingress ?? [];
  const writes = (name?: string) => api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status') && (name === undefined || r.path.includes(`/ingresses/${name}/`))).length;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('writes the published addresses into served Ingresses only, follows the Service, and writes nothing that is already so', async () => {
    await start();
    const { publisher } = await replica('a');
    await waitFor('the status of shop', async () => (await statusOf('shop')).length === 1);
    expect(publisher.leading).toBe(true);
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.10' }]);
    // blog already shows the address; legacy belongs to another class.
    expect([writes('shop'), writes('blog'), writes('legacy')]).toEqual([1, 0, 0]);
    expect(await statusOf('legacy')).toEqual([{ ip: '198.51.100.1' }]);

    api.apply(gateway('203.0.113.20', '203.0.113.11'));
    await waitFor('the new addresses', async () => (await statusOf('blog')).length === 2);
    for (const name of ['shop', 'blog']) expect(await statusOf(name)).toEqual([{ ip: '203.0.113.11' }, { ip: '203.0.113.20' }]);
    expect([writes('shop'), writes('blog'), writes('legacy')]).toEqual([2, 1, 0]);

    // Changes that leave the addresses as they are write nothing: a new class-less Ingress, an edited Service.
    api.apply(ingress('other', 'nginx'));
    api.apply({ ...gateway('203.0.113.11', '203.0.113.20'), metadata: { name: 'gw', namespace: 'ops', labels: { edited: 'yes' } } });
    await sleep(300);
    expect(writes()).toBe(3);

    // Someone else changing the status is put right.
    await networking().patchNamespacedIngressStatus({ name: 'shop', namespace: 'shop', body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.99' }] } } } }, setHeaderOptions('Content-Type', 'application/merge-patch+json'));
    await waitFor('shop put right', async () => (await statusOf('shop'))[0]?.ip === '203.0.113.11');
    expect(writes('shop')).toBe(4);
  });

  it('skips list items the API server sends without an object, logs them, and writes the status of the rest', async () => {
    await start();
    api.rawListItems('ingresses', [null, { metadata: null }]);
    const { records } = await replica('a');
    await waitFor('the status of shop', async () => (await statusOf('shop')).length === 1);
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.10' }]);
    const skipped = records.filter((r) => typeof r.msg === 'string' && r.msg.startsWith('Ingress status list: skipped items['));
    expect(skipped.map((r) => [r.item, r.reason])).toEqual(expect.arrayContaining([[0, expect.any(String)], [1, 'has no metadata']]));
  });

  it('lets one of two replicas write; when it stops, the other takes over and the status stays', async () => {
    await start();
    const a = await replica('a');
    await waitFor('a to lead', () => a.publisher.leading);
    const b = await replica('b');
    await waitFor('shop written', async () => (await statusOf('shop')).length === 1);
    api.apply(gateway('203.0.113.30'));
    await waitFor('the new address', async () => (await statusOf('shop'))[0]?.ip === '203.0.113.30');
    await sleep(200);
    expect(b.publisher.leading).toBe(false);
    expect(b.records.filter((r) => String(r.msg).startsWith('updated the status'))).toEqual([]);
    expect(a.records.filter((r) => String(r.msg).startsWith('updated the status')).map((r) => r.ingress)).toEqual(['shop/shop', 'shop/blog', 'shop/shop']);

    await a.shutdown();
    await waitFor('b to lead', () => b.publisher.leading);
    expect(a.records.some((r) => r.msg === 'another replica took the leader Lease over; Ingress status left as it is' && r.holder === 'b')).toBe(true);
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.30' }]);
    // The new leader follows the Service from here on.
    api.apply(gateway('203.0.113.31'));
    await waitFor('b to write', async () => (await statusOf('shop'))[0]?.ip === '203.0.113.31');
    expect(b.records.filter((r) => String(r.msg).startsWith('updated the status')).length).toBe(2);
  });

  it('empties the status it wrote when the last replica stops, and leaves it with --update-status-on-shutdown=false', async () => {
    await start();
    const keep = await replica('a', { clearOnShutdown: false });
    await waitFor('shop written', async () => (await statusOf('shop')).length === 1);
    await keep.shutdown();
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.10' }]);
    expect(keep.records.some((r) => r.msg === 'Ingress status left as it is (--update-status-on-shutdown=false)')).toBe(true);

    const clear = await replica('b');
    await waitFor('b to lead', () => clear.publisher.leading, 5000);
    await sleep(200);
    await clear.shutdown();
    expect([await statusOf('shop'), await statusOf('blog')]).toEqual([[], []]);
    // Not served: left alone.
    expect(await statusOf('legacy')).toEqual([{ ip: '198.51.100.1' }]);
  });

  it('retries a write that failed, with backoff, once the API server is back', async () => {
    await start();
    const { log, records } = captureLogger();
    const store = new Store(['Service', 'Ingress', 'IngressClass']);
    const source = new KubernetesSource(kc, { log, initialBackoffMs: 50, maxBackoffMs: 100 });
    await source.start(store);
    stops.push(() => source.stop());
    const served = new Set(['shop/shop']);
    const sync = new StatusSync({
      store,
      served: () => served,
      ready: () => true,
      publish: { addresses: [{ hostname: 'lb.example.com' }] },
      observer: new IngressStatusWatch(kc, { log, initialBackoffMs: 50, maxBackoffMs: 100 }),
      write: kubernetesStatusWriter(kc),
      log,
      debounceMs: 10,
      resyncMs: 50,
      retryBaseMs: 100,
    });
    sync.start();
    stops.push(() => sync.stop());
    await waitFor('shop written', async () => (await statusOf('shop'))[0]?.hostname === 'lb.example.com');
    await api.goDown();
    served.add('shop/blog');
    await waitFor('a failed write', () => records.some((r) => r.msg === 'cannot write the status of Ingress shop/blog; trying again'), 3000);
    await api.comeUp();
    await waitFor('blog written', async () => (await statusOf('blog'))[0]?.hostname === 'lb.example.com', 5000);
    const warned = records.filter((r) => r.msg === 'cannot write the status of Ingress shop/blog; trying again' && r.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.err).toMatch(/^fetch failed \(ECONNREFUSED\)$/);
  });

  it("writes by update after a read where the role grants update and not patch (ingress-nginx's ClusterRole), saying so once", async () => {
    await start();
    api.deny('ingresses/status', 'patch');
    const { log, records } = captureLogger();
    const write = kubernetesStatusWriter(kc, log);
    await write('shop', 'shop', [{ ip: '192.0.2.7' }]);
    await write('shop', 'blog', []);
    await write('shop', 'shop', [{ hostname: 'lb.example.com' }]);
    expect(await statusOf('shop')).toEqual([{ hostname: 'lb.example.com' }]);
    expect(await statusOf('blog')).toEqual([]);
    // The status alone changed: the spec is the one applied.
    const shop = await networking().readNamespacedIngress({ name: 'shop', namespace: 'shop' });
    expect([shop.spec?.ingressClassName, shop.spec?.rules?.[0]?.host]).toEqual(['netplane', 'shop.test']);
    expect(records.filter((r) => r.level === 40).map((r) => r.msg)).toEqual([
      "patch on ingresses/status is forbidden (ingress-nginx's ClusterRole grants update only): Ingress status is written by update from here on, each after a read of the Ingress",
    ]);
    // Without update either, the write fails as RBAC says.
    api.deny('ingresses/status', 'update');
    const refused = await write('shop', 'shop', []).catch((e: unknown) => e);
    expect((refused as ApiCallError).status).toBe(403);
    expect((refused as ApiCallError).message).toContain('cannot update resource "ingresses/status"');
  });

  it('reports a refused write as one line with the HTTP status and the server message', async () => {
    await start();
    const refused = await kubernetesStatusWriter(kc)('shop', 'nope', [{ ip: '192.0.2.1' }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiCallError);
    expect([(refused as ApiCallError).status, (refused as ApiCallError).message]).toEqual([404, 'HTTP 404: ingresses "nope" not found']);
  });
});


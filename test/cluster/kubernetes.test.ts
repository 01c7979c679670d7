// The Kubernetes source through the real @kubernetes/client-node against the test API server, compared with
// the manifests source fed the same objects.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { keepIdentityOnly } from '../../cluster/kubernetes/unusable.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import type { ClusterSource } from '../../cluster/source.ts';
import { Store, type StoreChange } from '../../cluster/store.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { sampleCluster, service, slice } from '../fixtures/objects.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const toYaml = (objects: object[]) => objects.map((o) => JSON.stringify(o)).join('\n---\n');
const sorted = <V>(m: ReadonlyMap<string, V>) => [...m.entries()].sort(([x], [y]) => (x < y ? -1 : 1));
const events = (changes: StoreChange[]) => changes.map((c) => `${c.old ? (c.object ? 'modified' : 'deleted') : 'added'} ${c.kind} ${c.key}`);

describe('KubernetesSource', () => {
  let api: TestApiServer;
  let dir: string;
  const sources: ClusterSource[] = [];
  beforeEach(async () => {
    api = await TestApiServer.start();
    dir = await mkdtemp(join(tmpdir(), 'netplane-k8s-'));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function startKubernetes(store = new Store()) {
    const { log, records } = captureLogger();
    const source = new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log, initialBackoffMs: 50, maxBackoffMs: 200 });
    sources.push(source);
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    await source.start(store);
    return { store, changes, records, source };
  }

  async function startManifests(store = new Store()) {
    const { log } = captureLogger();
    const source = new ManifestsSource(dir, { log, debounceMs: 10 });
    sources.push(source);
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    await source.start(store);
    return { store, changes, source };
  }

  it('gives the same store and the same service map as a manifest directory holding the same objects', async () => {
    const objects = sampleCluster();
    for (const o of objects) api.apply(o);
    await writeFile(join(dir, 'cluster.yaml'), toYaml(objects));
    const fromApi = await startKubernetes();
    const fromFiles = await startManifests();
    expect(fromApi.store.status).toMatchObject({ synced: true, stale: false });
    expect(fromApi.store.count('Service')).toBe(4);
    // The API server stamps each object's creationTimestamp; Ingresses and Nodes keep it (the gateway orders
    // Ingresses by age, the overlay Nodes), and a manifest that does not write one has none: otherwise the views are
    // the same.
    const apiDump = fromApi.store.dump() as Record<string, Record<string, { metadata: { creationTimestamp?: string } }>>;
    for (const object of [...Object.values(apiDump.Ingress ?? {}), ...Object.values(apiDump.Node ?? {})]) {
      expect(Date.parse(object.metadata.creationTimestamp ?? '')).toBeGreaterThan(0);
      delete object.metadata.creationTimestamp;
    }
    expect(apiDump).toEqual(fromFiles.store.dump());
    for (const node of ['n1', 'n2']) {
      const a = new ServiceMap(fromApi.store, { nodeName: node });
      const b = new ServiceMap(fromFiles.store, { nodeName: node });
      // Insertion order follows arrival order, which differs between sources; the contents must not.
      expect(sorted(a.ports)).toEqual(sorted(b.ports));
      expect(sorted(a.services)).toEqual(sorted(b.services));
    }
  });

  it('drops managedFields and kubectl\'s last-applied-configuration from listed and watched objects, keeping other annotations', async () => {
    const heavy = (ip: string) => {
      const svc = service('web', { clusterIP: ip }) as { metadata: Record<string, unknown> };
      svc.metadata.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"x"}', 'example.com/keep': 'yes' };
      svc.metadata.managedFields = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }];
      return svc;
    };
    api.apply(heavy('10.96.0.10'));
    const { store } = await startKubernetes();
    const annotationsOf = () => (store.get('Service', 'default/web')?.metadata as { annotations?: Record<string, string> }).annotations;
    expect(annotationsOf()).toEqual({ 'example.com/keep': 'yes' });
    api.apply(heavy('10.96.0.11'));
    await waitFor('the change', () => store.get('Service', 'default/web')?.spec.clusterIPs[0] === '10.96.0.11');
    expect(annotationsOf()).toEqual({ 'example.com/keep': 'yes' });
  });

  it('delivers add, modify and delete as the same change events as the manifests source', async () => {
    const web = service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] });
    api.apply(web);
    await writeFile(join(dir, 'web.yaml'), toYaml([web]));
    const fromApi = await startKubernetes();
    const fromFiles = await startManifests();
    const web81 = service('web', { clusterIP: '10.96.0.10', ports: [{ port: 81 }] });
    const ep = slice('web-1', 'web', [{ addresses: ['10.244.0.5'] }], [{ port: 8080 }]);

    api.apply(web81);
    await writeFile(join(dir, 'web.yaml'), toYaml([web81]));
    await waitFor('modify', () => fromApi.changes.length === 2 && fromFiles.changes.length === 2);
    api.apply(ep);
    await writeFile(join(dir, 'slice.yaml'), toYaml([ep]));
    await waitFor('add', () => fromApi.changes.length === 3 && fromFiles.changes.length === 3);
    api.remove('v1', 'Service', 'web', 'default');
    await writeFile(join(dir, 'web.yaml'), '');
    await waitFor('delete', () => fromApi.changes.length === 4 && fromFiles.changes.length === 4);
    // An update to a field netplane does not read (ownerReferences) is not a change; a later event on the same
    // watch shows the update has been processed.
    api.apply({ ...ep, metadata: { ...ep.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'u1' }] } });
    api.apply(slice('marker', 'web', [{ addresses: ['10.244.0.6'] }], [{ port: 8080 }]));
    await waitFor('the marker', () => fromApi.changes.length === 5);
    expect(events(fromApi.changes)[4]).toBe('added EndpointSlice default/marker');

    const expected = [
      'added Service default/web',
      'modified Service default/web',
      'added EndpointSlice default/web-1',
      'deleted Service default/web',
    ];
    expect(events(fromApi.changes).slice(0, 4)).toEqual(expected);
    expect(events(fromFiles.changes)).toEqual(expected);
    expect(fromApi.changes.slice(0, 4).map((c) => c.object)).toEqual(fromFiles.changes.map((c) => c.object));
  });

  it('lists and watches Namespaces (core/v1) as the manifests source reads them', async () => {
    const shop = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'a' } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
    api.apply(shop);
    await writeFile(join(dir, 'ns.yaml'), toYaml([shop]));
    const fromApi = await startKubernetes(new Store(['Namespace']));
    const fromFiles = await startManifests(new Store(['Namespace']));
    expect(fromApi.store.status).toMatchObject({ synced: true });
    expect(fromApi.store.dump()).toEqual(fromFiles.store.dump());
    expect(fromApi.store.get('Namespace', 'shop')?.metadata).toMatchObject({ name: 'shop', labels: { team: 'a' } });
    api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'late' } });
    api.remove('v1', 'Namespace', 'shop');
    await waitFor('add and delete', () => fromApi.changes.length === 3);
    expect(events(fromApi.changes)).toEqual(['added Namespace shop', 'added Namespace late', 'deleted Namespace shop']);
  });

  it('relists after 410 Gone and catches up on what happened while its watch was down, deletes included', async () => {
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    api.apply(service('b', { clusterIP: '10.96.0.2' }));
    const { store } = await startKubernetes();
    const listsBefore = api.requests.filter((r) => r.path === '/api/v1/services' && !r.query.watch).length;

    await api.goDown();
    await waitFor('stale', () => store.status.stale);
    api.remove('v1', 'Service', 'a', 'default');
    api.apply(service('c', { clusterIP: '10.96.0.3' }));
    api.compact();
    await api.comeUp();

    await waitFor('caught up', () => !store.get('Service', 'default/a') && store.get('Service', 'default/c'), 5000);
    expect(store.get('Service', 'default/b')).toBeDefined();
    await waitFor('current again', () => !store.status.stale);
    const lists = api.requests.filter((r) => r.path === '/api/v1/services' && !r.query.watch).length;
    expect(lists).toBe(listsBefore + 1);
    // The watch asked for bookmarks and a server-side timeout.
    const watch = api.requests.find((r) => r.path === '/api/v1/services' && r.query.watch);
    expect(watch?.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: expect.stringMatching(/^\d+$/) });
  });

  it('keeps the last view, marked stale with the reason, while the API server is unreachable', async () => {
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const { store, records } = await startKubernetes();
    await api.goDown();
    await waitFor('stale', () => store.status.stale);
    expect(store.status.staleReason).toMatch(/ECONNREFUSED|terminated|fetch failed/);
    expect(store.get('Service', 'default/a')).toBeDefined();
    expect(records.some((r) => r.level === 40 && /retrying/.test(String(r.msg)))).toBe(true);
    // Several retries happen (backoff is capped at 200 ms here) and none of them drops the view.
    await new Promise((r) => setTimeout(r, 500));
    expect(store.get('Service', 'default/a')).toBeDefined();
    api.apply(service('a', { clusterIP: '10.96.0.1', ports: [{ port: 8080 }] }));
    await api.comeUp();
    await waitFor('the change made during the outage', () => store.get('Service', 'default/a')?.spec.ports[0]?.port === 8080, 5000);
    await waitFor('current again', () => !store.status.stale);
  });

  it('keeps the last good version of an object that netplane cannot use, and reports it', async () => {
    api.apply(service('a', { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }] }));
    const { store, records } = await startKubernetes();
    // Two ports with one name and protocol: the API server would refuse it, but a source must not trust that.
    api.apply(service('a', { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }, { name: 'http', port: 81 }] }));
    await waitFor('the report', () => records.some((r) => r.key === 'default/a' && r.level === 40));
    expect(store.get('Service', 'default/a')?.spec.ports.map((p) => p.port)).toEqual([80]);
    api.apply(service('a', { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 82 }] }));
    await waitFor('the next good version', () => store.get('Service', 'default/a')?.spec.ports[0]?.port === 82);
  });

  it('is not synced until every kind it reads has been listed', async () => {
    const store = new Store(['Service', 'Node']);
    const started = startKubernetes(store);
    await started;
    expect(store.status.synced).toBe(true);
    const listed = new Set(api.requests.filter((r) => !r.query.watch).map((r) => r.path));
    expect(listed).toEqual(new Set(['/api/v1/services', '/api/v1/nodes']));
  });
});

describe('what the informer keeps of an object once the store has it', () => {
  const rows: Array<[string, object, object]> = [
    ['a namespaced object', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', resourceVersion: '7', uid: 'u', labels: { a: 'b' } }, spec: { clusterIP: '10.96.0.1' }, status: {} }, { metadata: { name: 'web', namespace: 'shop', resourceVersion: '7' } }],
    ['a cluster-scoped object', { kind: 'Node', metadata: { name: 'n1', resourceVersion: '9', annotations: { x: 'y' } }, spec: { podCIDR: '10.244.0.0/24' } }, { metadata: { name: 'n1', resourceVersion: '9' } }],
    ['an object without metadata', { kind: 'Service', spec: {} }, { metadata: { name: undefined, resourceVersion: undefined } }],
  ];
  for (const [name, object, kept] of rows) {
    it(name, () => {
      const o = structuredClone(object) as { metadata?: { name?: string } };
      keepIdentityOnly(o);
      expect(o).toStrictEqual(kept);
    });
  }
});

// The Pod kind of the cluster view (cluster/model/pod.ts), read for DNS's --pods verified: what is kept of a Pod (a
// table), and the Kubernetes source against the test API server beside the manifests source: the same Pods, finished
// Pods not read from the API server, and no Pod listed by a store that does not keep the kind.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { parseObject, type Kind } from '../../cluster/model/index.ts';
import type { ClusterSource } from '../../cluster/source.ts';
import { Store, type StoreChange } from '../../cluster/store.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { service } from '../fixtures/objects.ts';
import { pod } from '../fixtures/pods.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

describe('the Pod model', () => {
  const running = { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00:244::5' }], conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'c', ready: true }] };
  const cases: Array<[string, object, object]> = [
    ['a running dual-stack Pod: name, namespace, phase and podIPs only', pod('a', 'shop', running), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: 'Running', podIPs: ['10.244.1.5', 'fd00:244::5'] } }],
    ['podIP alone (an old API server) fills podIPs', pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5' }), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: 'Running', podIPs: ['10.244.1.5'] } }],
    ['a Pending Pod without an address yet', pod('a', 'shop', { phase: 'Pending' }), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: 'Pending', podIPs: [] } }],
    ['no status at all (as written in a manifest)', pod('a', 'shop', undefined), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: '', podIPs: [] } }],
    ['status: null', pod('a', 'shop', null), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: '', podIPs: [] } }],
    ['no namespace: default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' } }, { metadata: { name: 'a', namespace: 'default' }, status: { phase: '', podIPs: [] } }],
    ['a finished Pod keeps its phase (the reader decides)', pod('a', 'shop', { phase: 'Succeeded', podIP: '10.244.1.6' }), { metadata: { name: 'a', namespace: 'shop' }, status: { phase: 'Succeeded', podIPs: ['10.244.1.6'] } }],
  ];
  it.each(cases)('%s', (_, raw, want) => expect(parseObject(raw)).toEqual([{ kind: 'Pod', object: want }]));

  it.each([
    ['an address that is none', pod('a', 'shop', { podIPs: [{ ip: '10.244.1.300' }] }), /Pod: status\.podIPs\[0\]\.ip: must be an IPv4 or IPv6 address/],
    ['a name that is no DNS name', pod('A_b', 'shop', {}), /Pod: metadata\.name/],
  ])('refuses %s, naming the field', (_, raw, message) => expect(() => parseObject(raw)).toThrow(message));
});

describe('Pods from the API server and from manifests', () => {
  let api: TestApiServer;
  let dir: string;
  const sources: ClusterSource[] = [];
  beforeEach(async () => {
    api = await TestApiServer.start();
    dir = await mkdtemp(join(tmpdir(), 'netplane-pods-'));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(source: ClusterSource, kinds: Kind[]) {
    sources.push(source);
    const store = new Store(kinds);
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    await source.start(store);
    return { store, changes };
  }
  const kubernetes = async (kinds: Kind[]) => start(new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log: captureLogger().log, initialBackoffMs: 50, maxBackoffMs: 200 }), kinds);
  const manifests = (kinds: Kind[]) => start(new ManifestsSource(dir, { log: captureLogger().log, debounceMs: 10 }), kinds);

  it('reads the same running Pods from both; finished Pods are not read from the API server, and leave when they finish', async () => {
    const live = [pod('a', 'shop', { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }] }), pod('b', 'default', { phase: 'Pending' })];
    for (const p of live) api.apply(p);
    api.apply(pod('done', 'shop', { phase: 'Succeeded', podIP: '10.244.1.6' }));
    api.apply(pod('crashed', 'shop', { phase: 'Failed', podIP: '10.244.1.7' }));
    await writeFile(join(dir, 'pods.yaml'), live.map((p) => JSON.stringify(p)).join('\n---\n'));
    const fromApi = await kubernetes(['Pod']);
    const fromFiles = await manifests(['Pod']);
    expect(fromApi.store.status).toMatchObject({ synced: true });
    expect(fromApi.store.dump()).toEqual(fromFiles.store.dump());
    expect(fromApi.store.list('Pod').map((p) => p.metadata.name).sort()).toEqual(['a', 'b']);
    expect(api.requests.find((r) => r.path === '/api/v1/pods')?.query).toMatchObject({ fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });

    // b gets its address, then a finishes: the watch says it is gone.
    api.apply(pod('b', 'default', { phase: 'Running', podIP: '10.244.2.9' }));
    api.apply(pod('a', 'shop', { phase: 'Succeeded', podIPs: [{ ip: '10.244.1.5' }] }));
    await waitFor('b modified and a deleted', () => fromApi.changes.length === 4);
    expect(fromApi.changes.slice(2).map((c) => `${c.object ? 'put' : 'deleted'} ${c.key} ${JSON.stringify(c.kind === 'Pod' ? (c.object?.status ?? null) : c.kind)}`)).toEqual([
      'put default/b {"phase":"Running","podIPs":["10.244.2.9"]}',
      'deleted shop/a null',
    ]);
  });

  it('a label or condition change that touches nothing kept is no change', async () => {
    api.apply(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5' }));
    const fromApi = await kubernetes(['Pod']);
    api.apply(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5', conditions: [{ type: 'Ready', status: 'False' }] }, { metadata: { name: 'a', namespace: 'shop', labels: { app: 'b' } } }));
    api.apply(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.8' }));
    await waitFor('the address change', () => fromApi.changes.length === 2);
    expect(fromApi.changes.map((c) => (c.kind === 'Pod' ? c.object?.status.podIPs : undefined))).toEqual([['10.244.1.5'], ['10.244.1.8']]);
  });

  it('Pods the view does not wait for: forbidden (no RBAC rule), the rest loads and is synced; the 403 names the rule; listed once allowed', async () => {
    api.apply(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    api.apply(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5' }));
    api.forbid('pods');
    const { log, records } = captureLogger();
    const source = new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log, initialBackoffMs: 50, maxBackoffMs: 200 });
    sources.push(source);
    const store = new Store(['Service', 'EndpointSlice', 'Namespace', 'Pod'], { optional: ['Pod'] });
    await source.start(store);
    expect(store.status.synced).toBe(true);
    expect(store.count('Service')).toBe(1);
    expect([store.hasSynced('Service'), store.hasSynced('Pod')]).toEqual([true, false]);
    const rule = 'the ServiceAccount needs list and watch on pods (see deploy/rbac.yaml)';
    const said = await waitFor('the 403 logged', () => records.find((r) => r.level === 50 && r.kind === 'Pod'));
    expect(said).toMatchObject({ msg: `the API server forbids reading Pod: ${rule}; retrying`, err: expect.stringMatching(/^HTTP 403: pods is forbidden: .* cannot list resource "pods" in API group "" at the cluster scope; /) });
    expect(store.status).toMatchObject({ stale: true, staleReason: expect.stringMatching(new RegExp(`^Pod: HTTP 403: .*; ${rule.replace(/[()]/g, '\\$&')}$`)) });

    api.allow('pods');
    await waitFor('the Pods listed', () => store.hasSynced('Pod') && !store.status.stale, 3000);
    expect(store.list('Pod').map((p) => p.status.podIPs)).toEqual([['10.244.1.5']]);
  });

  it('lists no Pods for a store that does not keep them', async () => {
    api.apply(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5' }));
    api.apply(service('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    const fromApi = await kubernetes(['Service', 'EndpointSlice', 'Namespace']);
    expect(fromApi.store.count('Service')).toBe(1);
    expect(api.requests.filter((r) => r.path.includes('pods'))).toEqual([]);
  });
});

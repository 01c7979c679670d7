// Kinds read by reference (the ingress gateway's Secrets and ConfigMaps): the store keeps only the objects wanted
// by key, and each source reads only those — the manifests source from the directory it already reads, the
// Kubernetes source with one list/watch per object, selected by name in its namespace, against the test API server.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import type { ClusterSource } from '../../cluster/source.ts';
import { Store, type StoreChange } from '../../cluster/store.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (name: string, value: string, namespace = 'default') => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace },
  type: 'Opaque',
  data: { auth: b64(value) },
});
const valueOf = (store: Store, key: string) => {
  const s = store.get('Secret', key) as { data?: Record<string, string> } | undefined;
  return s?.data?.auth === undefined ? undefined : Buffer.from(s.data.auth, 'base64').toString();
};
const events = (changes: StoreChange[]) => changes.map((c) => `${c.old ? (c.object ? 'modified' : 'deleted') : 'added'} ${c.kind} ${c.key}`);

describe('Store, by reference', () => {
  it('keeps only wanted objects, drops the unwanted as deletes, and tells the source what to read', () => {
    const store = new Store(['Secret', 'Service'], { byReference: ['Secret'] });
    const asked: string[][] = [];
    store.onWanted((_kind, keys) => asked.push([...keys]));
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    expect(store.wanted('Secret')).toEqual(new Set());
    expect(store.wanted('Service')).toBeUndefined();

    store.apply([{ kind: 'Secret', object: secret('a', '1') } as never]);
    expect(store.count('Secret')).toBe(0);
    store.want('Secret', ['default/a', 'default/b']);
    expect(asked).toEqual([['default/a', 'default/b']]);
    expect(store.loading('Secret')).toEqual(['default/a', 'default/b']);
    store.apply([{ kind: 'Secret', object: secret('a', '1') } as never, { kind: 'Secret', object: secret('c', '3') } as never]);
    store.markLoaded('Secret', 'default/a');
    store.markLoaded('Secret', 'default/c');
    expect(valueOf(store, 'default/a')).toBe('1');
    expect(store.get('Secret', 'default/c')).toBeUndefined();
    expect(store.loading('Secret')).toEqual(['default/b']);

    store.want('Secret', ['default/a', 'default/b']);
    expect(asked).toHaveLength(1);
    store.want('Secret', ['default/b']);
    expect(events(changes)).toEqual(['added Secret default/a', 'deleted Secret default/a']);
    expect(store.loading('Secret')).toEqual(['default/b']);
    expect(() => store.want('Service', ['default/web'])).toThrow(/keeps every Service/);
  });
});

describe('sources reading Secrets by reference', () => {
  let api: TestApiServer;
  let dir: string;
  const sources: ClusterSource[] = [];
  beforeEach(async () => {
    api = await TestApiServer.start();
    dir = await mkdtemp(join(tmpdir(), 'netplane-byref-'));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('manifests: only wanted Secrets reach the store, now and after each change of the directory or the wants', async () => {
    const write = (objects: object[]) => writeFile(join(dir, 'secrets.yaml'), objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    await write([secret('a', '1'), secret('b', '2'), secret('a', 'x', 'other')]);
    const store = new Store(['Secret'], { byReference: ['Secret'] });
    const source = new ManifestsSource(dir, { log: captureLogger().log, debounceMs: 10 });
    sources.push(source);
    await source.start(store);
    expect(store.status.synced).toBe(true);
    expect(store.count('Secret')).toBe(0);

    store.want('Secret', ['default/a', 'default/missing']);
    expect(valueOf(store, 'default/a')).toBe('1');
    expect(store.count('Secret')).toBe(1);
    expect(store.loading('Secret')).toEqual([]);

    await write([secret('a', '1b'), secret('b', '2b'), secret('missing', 'now here')]);
    await source.rescan();
    expect(valueOf(store, 'default/a')).toBe('1b');
    expect(valueOf(store, 'default/missing')).toBe('now here');
    expect(store.get('Secret', 'default/b')).toBeUndefined();

    store.want('Secret', ['default/b']);
    expect([...Object.keys(store.dump().Secret!)]).toEqual(['default/b']);
    expect(valueOf(store, 'default/b')).toBe('2b');
  });

  it('kubernetes: a Secret no longer wanted while its list is in flight is not stored and gets no watch (found by reading in an audit)', async () => {
    api.apply(secret('a', '1'));
    const store = new Store(['Secret', 'Service'], { byReference: ['Secret'] });
    const source = new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log: captureLogger().log, initialBackoffMs: 50, maxBackoffMs: 200 });
    sources.push(source);
    await source.start(store);
    await waitFor('the Services watch', () => api.openWatches() === 1);
    api.hang();
    store.want('Secret', ['default/a']);
    // Its list goes out and is held by the hung server.
    await new Promise((r) => setTimeout(r, 300));
    store.want('Secret', []);
    api.resume();
    await new Promise((r) => setTimeout(r, 500));
    expect(store.get('Secret', 'default/a')).toBeUndefined();
    expect(api.requests.filter((r) => r.path.includes('secrets') && r.query.watch === 'true')).toEqual([]);
    await waitFor('only the Services watch', () => api.openWatches() === 1);
  });

  it('kubernetes: one list/watch per wanted Secret, by name; no request ever reads the others', async () => {
    api.apply(secret('a', '1'));
    api.apply(secret('b', '2'));
    api.apply(secret('a', 'x', 'other'));
    const store = new Store(['Secret', 'Service'], { byReference: ['Secret'] });
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    const source = new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log: captureLogger().log, initialBackoffMs: 50, maxBackoffMs: 200 });
    sources.push(source);
    await source.start(store);
    expect(store.status).toMatchObject({ synced: true, stale: false });
    expect(store.count('Secret')).toBe(0);

    store.want('Secret', ['default/a', 'default/later']);
    await waitFor('both wanted Secrets read once', () => store.loading('Secret').length === 0);
    expect(valueOf(store, 'default/a')).toBe('1');
    expect(store.get('Secret', 'default/later')).toBeUndefined();
    await waitFor('a watch for Services and one per wanted Secret', () => api.openWatches() === 3);

    // Changes to wanted Secrets arrive through their watches; changes to others are never seen.
    api.apply(secret('a', '1b'));
    api.apply(secret('b', '2b'));
    api.apply(secret('later', 'created'));
    await waitFor('the new versions', () => valueOf(store, 'default/a') === '1b' && valueOf(store, 'default/later') === 'created');
    api.remove('v1', 'Secret', 'later');
    await waitFor('the deletion', () => store.get('Secret', 'default/later') === undefined);

    // No longer wanted: dropped at once, and its watch stops.
    store.want('Secret', ['default/b']);
    await waitFor('b read', () => valueOf(store, 'default/b') === '2b');
    expect(store.get('Secret', 'default/a')).toBeUndefined();
    await waitFor('the watches of a and later closed', () => api.openWatches() === 2);
    api.apply(secret('a', '1c'));
    api.apply(secret('b', '2c'));
    await waitFor('b changed', () => valueOf(store, 'default/b') === '2c');
    expect(store.get('Secret', 'default/a')).toBeUndefined();
    expect(events(changes.filter((c) => c.key === 'default/a'))).toEqual(['added Secret default/a', 'modified Secret default/a', 'deleted Secret default/a']);

    const secretRequests = api.requests.filter((r) => r.path.includes('secrets'));
    expect(secretRequests.length).toBeGreaterThanOrEqual(6);
    for (const r of secretRequests) {
      expect(r.path).toBe('/api/v1/namespaces/default/secrets');
      expect(['metadata.name=a', 'metadata.name=later', 'metadata.name=b']).toContain(r.query.fieldSelector);
    }
    expect(api.requests.some((r) => r.path === '/api/v1/services')).toBe(true);
  });
});

describe('ConfigMaps by reference (the ingress gateway\'s custom-headers and auth-proxy-set-headers)', () => {
  const configMap = (name: string, data: Record<string, string> | null, namespace = 'default') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });
  let api: TestApiServer;
  let source: KubernetesSource | undefined;
  beforeEach(async () => {
    api = await TestApiServer.start();
  });
  afterEach(async () => {
    await source?.stop();
    await api.close();
  });

  it('store: tells onLoaded listeners once per wanted key, found or not, and never of a key not wanted', () => {
    const store = new Store(['ConfigMap'], { byReference: ['ConfigMap'] });
    const loaded: string[] = [];
    store.onLoaded((kind, key) => loaded.push(`${kind} ${key}`));
    store.markLoaded('ConfigMap', 'default/a');
    store.want('ConfigMap', ['default/a', 'default/b']);
    store.markLoaded('ConfigMap', 'default/a');
    store.markLoaded('ConfigMap', 'default/a');
    store.markLoaded('ConfigMap', 'default/b');
    expect(loaded).toEqual(['ConfigMap default/a', 'ConfigMap default/b']);
  });

  it('kubernetes: one list/watch per wanted ConfigMap, by name in its namespace; data as text, a null map empty', async () => {
    api.apply(configMap('headers', { 'X-Frame-Options': 'DENY' }));
    api.apply(configMap('empty', null));
    api.apply(configMap('headers', { 'X-Other': '1' }, 'other'));
    api.apply(configMap('unrelated', { a: 'b' }));
    const store = new Store(['ConfigMap', 'Service'], { byReference: ['ConfigMap'] });
    const loaded: string[] = [];
    store.onLoaded((_kind, key) => loaded.push(key));
    source = new KubernetesSource(loadKubeConfig(await api.kubeconfigPath()), { log: captureLogger().log, initialBackoffMs: 50, maxBackoffMs: 200 });
    await source.start(store);
    store.want('ConfigMap', ['default/headers', 'default/empty', 'default/later']);
    await waitFor('every wanted ConfigMap read once', () => store.loading('ConfigMap').length === 0);
    expect(loaded.sort()).toEqual(['default/empty', 'default/headers', 'default/later']);
    expect(store.get('ConfigMap', 'default/headers')?.data).toEqual({ 'X-Frame-Options': 'DENY' });
    expect(store.get('ConfigMap', 'default/empty')?.data).toEqual({});
    expect(store.get('ConfigMap', 'default/later')).toBeUndefined();
    api.apply(configMap('headers', { 'X-Frame-Options': 'SAMEORIGIN' }));
    api.apply(configMap('later', { 'X-Later': 'yes' }));
    await waitFor('the change and the new one', () => store.get('ConfigMap', 'default/headers')?.data['X-Frame-Options'] === 'SAMEORIGIN' && store.get('ConfigMap', 'default/later') !== undefined);
    const asked = new Set(api.requests.filter((r) => r.path.includes('configmaps')).map((r) => `${r.path}?${r.query.fieldSelector}`));
    expect([...asked].sort()).toEqual(['default/empty', 'default/headers', 'default/later'].map((k) => `/api/v1/namespaces/default/configmaps?metadata.name=${k.slice(8)}`));
  });
});

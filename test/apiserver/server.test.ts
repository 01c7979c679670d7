// The test API server, exercised through the real @kubernetes/client-node: list, watch, bookmarks, 410 Expired and
// relist, outages, selectors and node patches.
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiException, CoordinationV1Api, CoreV1Api, KubeConfig, V1MicroTime, Watch, makeInformer, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import { waitFor } from '../helpers/wait.ts';
import { TestApiServer } from './server.ts';
import { InvalidObjectError } from './store.ts';

type Event = { type: string; object: any };

let server: TestApiServer | undefined;
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await server?.close();
  server = undefined;
});

async function setup(opts?: { bookmarkIntervalMs?: number }): Promise<{ s: TestApiServer; kc: KubeConfig; core: CoreV1Api }> {
  const s = (server = await TestApiServer.start(opts));
  const kc = new KubeConfig();
  kc.loadFromFile(await s.kubeconfigPath());
  return { s, kc, core: kc.makeApiClient(CoreV1Api) };
}

function service(name: string, labels: Record<string, string> = {}, namespace = 'default', port = 80): object {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: { clusterIP: '10.96.0.10', ports: [{ port }] } };
}

/** Opens a watch with the library's Watch; `done` resolves with what the library passed to its done callback. */
async function watch(kc: KubeConfig, path: string, query: Record<string, string | boolean>): Promise<{ events: Event[]; done: Promise<unknown> }> {
  const events: Event[] = [];
  let finish!: (err: unknown) => void;
  const done = new Promise((resolve) => (finish = resolve));
  const controller = await new Watch(kc).watch(path, query, (type, object) => events.push({ type, object }), (err) => finish(err));
  cleanups.push(() => controller.abort());
  return { events, done };
}

const types = (events: Event[]) => events.map((e) => e.type);
const names = (items: ReadonlyArray<{ metadata?: { name?: string } }>) => items.map((o) => o.metadata?.name).sort();

/** The first `code` along an error's cause chain (ECONNREFUSED, ...). */
function causeCode(e: unknown): unknown {
  for (let err = e as { code?: unknown; cause?: unknown } | undefined; err; err = err.cause as typeof err) if (err.code) return err.code;
  return undefined;
}

describe('TestApiServer', () => {
  it('lists applied objects at the current resourceVersion, items without kind as on a real server', async () => {
    const { s, core } = await setup();
    s.apply(service('web', {}, 'team'));
    s.apply(service('api'));
    s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });

    const all = await core.listServiceForAllNamespaces();
    expect(all.metadata?.resourceVersion).toBe(s.resourceVersion);
    expect(all.items.map((i) => `${i.metadata?.namespace}/${i.metadata?.name}`)).toEqual(['default/api', 'team/web']);
    expect(names((await core.listNamespacedService({ namespace: 'team' })).items)).toEqual(['web']);
    expect(names((await core.listNode()).items)).toEqual(['n1']);

    const one = await core.readNamespacedService({ name: 'web', namespace: 'team' });
    expect(one.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(one.metadata?.resourceVersion)).toBeGreaterThan(0);
    const missing = await core.readNamespacedService({ name: 'nope', namespace: 'team' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiException);
    expect((missing as ApiException<unknown>).code).toBe(404);

    const raw = (await (await fetch(`${s.url}/api/v1/services`)).json()) as { kind: string; items: Array<Record<string, unknown>> };
    expect(raw.kind).toBe('ServiceList');
    expect(raw.items[0]).not.toHaveProperty('kind');
    expect(raw.items[0]).not.toHaveProperty('apiVersion');
  });

  it('rejects objects it cannot store, without changing the resourceVersion', async () => {
    const { s } = await setup();
    const before = s.resourceVersion;
    const bad = [
      () => s.apply({ apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'p' } }),
      () => s.apply({ apiVersion: 'v1', kind: 'Service', metadata: {} }),
      () => s.remove('apps/v1', 'Deployment', 'd'),
    ];
    for (const call of bad) expect(call).toThrow(InvalidObjectError);
    expect(s.remove('v1', 'Service', 'absent')).toBe(false);
    expect(s.resourceVersion).toBe(before);
  });

  it('streams ADDED, MODIFIED and DELETED in order from a resourceVersion', async () => {
    const { s, kc } = await setup();
    s.apply(service('old'));
    const w = await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion });
    s.apply(service('web'));
    s.apply(service('web', {}, 'default', 8080));
    s.apply(service('web', {}, 'default', 8080)); // unchanged: no new revision, no event
    s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }); // another resource: not on this watch
    expect(s.remove('v1', 'Service', 'web')).toBe(true);

    await waitFor('three events', () => w.events.length >= 3);
    expect(types(w.events)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(w.events.map((e) => e.object.kind)).toEqual(['Service', 'Service', 'Service']);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    expect(String(rvs[2])).toBe(s.resourceVersion);
    expect(w.events[2]!.object.spec.ports[0].port).toBe(8080);
  });

  it('starts a watch from "0" with synthetic ADDED events, limited to the path namespace', async () => {
    const { s, kc } = await setup();
    s.apply(service('a'));
    s.apply(service('b', {}, 'team'));
    const w = await watch(kc, '/api/v1/namespaces/default/services', { resourceVersion: '0' });
    s.apply(service('c'));
    await waitFor('two events', () => w.events.length >= 2);
    expect(w.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED a', 'ADDED c']);
  });

  it('sends bookmarks only to watches that asked for them', async () => {
    const { s, kc } = await setup();
    const rv = s.resourceVersion;
    const asked = await watch(kc, '/api/v1/services', { resourceVersion: rv, allowWatchBookmarks: true });
    const plain = await watch(kc, '/api/v1/services', { resourceVersion: rv });
    s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
    s.bookmark();
    s.apply(service('web'));
    await waitFor('events on both watches', () => asked.events.length >= 2 && plain.events.length >= 1);
    expect(asked.events[0]).toEqual({ type: 'BOOKMARK', object: { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: String(Number(rv) + 1) } } });
    // Events on one stream arrive in order, so the ADDED after the bookmark proves none was sent.
    expect(types(plain.events)).toEqual(['ADDED']);
  });

  it('sends bookmarks periodically with bookmarkIntervalMs', async () => {
    const { s, kc } = await setup({ bookmarkIntervalMs: 20 });
    const w = await watch(kc, '/apis/networking.k8s.io/v1/ingressclasses', { resourceVersion: s.resourceVersion, allowWatchBookmarks: true });
    await waitFor('two bookmarks', () => w.events.length >= 2);
    expect(w.events[0]!.object.kind).toBe('IngressClass');
    expect(w.events[0]!.object.apiVersion).toBe('networking.k8s.io/v1');
  });

  it('answers a watch from before compact() with a 410 Expired ERROR event and ends it', async () => {
    const { s, kc } = await setup();
    const before = s.resourceVersion;
    s.apply(service('web'));
    s.compact();
    const w = await watch(kc, '/api/v1/services', { resourceVersion: before });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${before} (${s.resourceVersion})`,
          reason: 'Expired',
          code: 410,
        },
      },
    ]);
    // The compaction revision itself is still a valid starting point.
    await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion });
    expect(s.openWatches()).toBe(1);
  });

  it('lets an informer recover by relisting after an outage during which history was compacted', async () => {
    const { s, kc, core } = await setup();
    s.apply(service('a'));
    s.apply(service('b'));
    const informer = makeInformer<V1Service>(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
    const seen: string[] = [];
    const errors: unknown[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    informer.on('error', (e) => errors.push(e));
    cleanups.push(() => informer.stop());
    await informer.start();
    await waitFor('the first watch', () => s.openWatches() === 1);
    const synced = s.resourceVersion;

    await s.goDown();
    // The library reports the failure and stops; restarting is the caller's job.
    await waitFor('an informer error', () => errors.length > 0);
    s.apply(service('b', {}, 'default', 8080));
    s.remove('v1', 'Service', 'a');
    s.apply(service('c'));
    s.compact();
    await s.comeUp();
    seen.length = 0;
    void informer.start();

    await waitFor('a relisted cache', () => names(informer.list()).join() === 'b,c' && s.openWatches() === 1);
    expect(seen.sort()).toEqual(['add c', 'delete a', 'update b']);
    const requests = s.requests.filter((r) => r.path === '/api/v1/services');
    const shape = requests.map((r) => (r.query.watch ? `watch from ${r.query.resourceVersion}` : 'list'));
    expect(shape).toEqual(['list', `watch from ${synced}`, `watch from ${synced}`, 'list', `watch from ${s.resourceVersion}`]);
    expect(informer.get('b', 'default')?.spec?.ports?.[0]?.port).toBe(8080);

    s.apply(service('d'));
    await waitFor('a live event after recovery', () => informer.get('d', 'default'));
  });

  it('refuses connections while down and serves the same state on the same port when up again', async () => {
    const { s, kc, core } = await setup();
    s.apply(service('web'));
    const w = await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion });
    const url = s.url;

    await s.goDown();
    await w.done;
    expect(s.openWatches()).toBe(0);
    const refused = await core.listServiceForAllNamespaces().catch((e: unknown) => e);
    expect(causeCode(refused)).toBe('ECONNREFUSED');

    await s.comeUp();
    expect(s.url).toBe(url);
    const list = await core.listServiceForAllNamespaces();
    expect(names(list.items)).toEqual(['web']);
    expect(list.metadata?.resourceVersion).toBe(s.resourceVersion);
  });

  it('accepts connections but answers nothing while hung, then serves what was held and ends the silent watches', async () => {
    const { s, kc, core } = await setup();
    s.apply(service('web'));
    const w = await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion, allowWatchBookmarks: true });
    s.hang();
    s.apply(service('api'));
    s.bookmark();
    let answered = false;
    const list = core.listServiceForAllNamespaces().then((l) => ((answered = true), l));
    await new Promise((r) => setTimeout(r, 200));
    expect([answered, w.events]).toEqual([false, []]);

    s.resume();
    expect(names((await list).items)).toEqual(['api', 'web']);
    // The watch that missed 'api' while silent is ended, so that the client watches again from its revision.
    expect(await w.done).toBeNull();
  });

  describe('selectors', () => {
    const rows: Array<{ label?: string; field?: string; want: string[] }> = [
      { label: '', want: ['api', 'db', 'web'] },
      { label: 'app=web', want: ['web'] },
      { label: 'app==api', want: ['api'] },
      { label: 'app!=web', want: ['api', 'db'] },
      { label: 'tier', want: ['api', 'web'] },
      { label: '!tier', want: ['db'] },
      { label: 'app=web,tier=front', want: ['web'] },
      { label: 'app in (web, db)', want: ['db', 'web'] },
      { label: 'tier notin (front),app', want: ['api', 'db'] },
      { field: 'metadata.name=db', want: ['db'] },
      { field: 'metadata.namespace!=default', want: ['api'] },
      { label: 'tier', field: 'metadata.name!=web', want: ['api'] },
    ];
    for (const { label, field, want } of rows) {
      it(`lists ${JSON.stringify({ label, field })} as ${want.join(',')}`, async () => {
        const { s, core } = await setup();
        s.apply(service('web', { app: 'web', tier: 'front' }));
        s.apply(service('api', { app: 'api', tier: 'back' }, 'team'));
        s.apply(service('db', { app: 'db' }));
        const list = await core.listServiceForAllNamespaces({ labelSelector: label, fieldSelector: field });
        expect(names(list.items)).toEqual(want);
      });
    }

    it('rejects a malformed selector or an unsupported field with 400', async () => {
      const { core } = await setup();
      for (const request of [{ labelSelector: 'app=(web' }, { fieldSelector: 'spec.clusterIP=1.2.3.4' }]) {
        const err = await core.listServiceForAllNamespaces(request).catch((e: unknown) => e);
        expect((err as ApiException<unknown>).code).toBe(400);
      }
    });

    it('turns a label change into DELETED and ADDED on a filtered watch', async () => {
      const { s, kc } = await setup();
      s.apply(service('web', { app: 'web' }));
      const w = await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion, labelSelector: 'app=web' });
      s.apply(service('web', { app: 'other' }));
      s.apply(service('web', { app: 'web' }));
      await waitFor('two events', () => w.events.length >= 2);
      expect(types(w.events)).toEqual(['DELETED', 'ADDED']);
      expect(w.events[0]!.object.metadata.labels).toEqual({ app: 'web' }); // last state it matched, at the new revision
      expect(Number(w.events[0]!.object.metadata.resourceVersion)).toBe(Number(s.resourceVersion) - 1);
    });
  });

  describe('node patches', () => {
    const merge = setHeaderOptions('Content-Type', 'application/merge-patch+json');

    it('merge-patches a node annotation and emits MODIFIED', async () => {
      const { s, kc, core } = await setup();
      s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', annotations: { keep: 'yes', drop: 'me' } } });
      const w = await watch(kc, '/api/v1/nodes', { resourceVersion: s.resourceVersion });
      const body = { metadata: { annotations: { 'netplane.io/ready': 'true', drop: null } } };
      const node = await core.patchNode({ name: 'n1', body }, merge);
      expect(node.metadata?.annotations).toEqual({ keep: 'yes', 'netplane.io/ready': 'true' });
      await waitFor('MODIFIED', () => w.events.length >= 1);
      expect(w.events[0]!.type).toBe('MODIFIED');
      expect(w.events[0]!.object.metadata.annotations).toEqual({ keep: 'yes', 'netplane.io/ready': 'true' });
      expect(w.events[0]!.object.metadata.resourceVersion).toBe(s.resourceVersion);

      const strategic = setHeaderOptions('Content-Type', 'application/strategic-merge-patch+json');
      await core.patchNode({ name: 'n1', body: { metadata: { labels: { zone: 'a' } } } }, strategic);
      await waitFor('second MODIFIED', () => w.events.length >= 2);
      expect(w.events[1]!.object.metadata.labels).toEqual({ zone: 'a' });
    });

    it('patches status only through nodes/status, merging conditions by type with a strategic merge patch', async () => {
      const { s, core } = await setup();
      const ready = { type: 'Ready', status: 'True', reason: 'KubeletReady' };
      s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDR: '10.244.1.0/24' }, status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }, ready] } });
      const strategic = setHeaderOptions('Content-Type', 'application/strategic-merge-patch+json');
      const cleared = { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated' };
      // Through the object itself a status change is ignored, as the real server ignores it.
      await core.patchNode({ name: 'n1', body: { status: { conditions: [cleared] } } }, strategic);
      expect((await core.readNode({ name: 'n1' })).status?.conditions).toHaveLength(2);
      const node = await core.patchNodeStatus({ name: 'n1', body: { spec: { podCIDR: '10.9.9.0/24' }, status: { conditions: [cleared] } } }, strategic);
      expect(node.status?.conditions).toEqual([cleared, ready]);
      expect(node.spec?.podCIDR).toBe('10.244.1.0/24');
      // A merge patch replaces the list whole, as RFC 7386 says.
      const merged = await core.patchNodeStatus({ name: 'n1', body: { status: { conditions: [cleared] } } }, merge);
      expect(merged.status?.conditions).toEqual([cleared]);
      const missing = await core.patchNodeStatus({ name: 'n2', body: { status: {} } }, strategic).catch((e: unknown) => e);
      expect((missing as ApiException<unknown>).code).toBe(404);
    });

    it('answers 404 for a missing node and 415 for the client default JSON Patch type', async () => {
      const { s, core } = await setup();
      s.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
      const missing = await core.patchNode({ name: 'n2', body: { metadata: {} } }, merge).catch((e: unknown) => e);
      expect((missing as ApiException<unknown>).code).toBe(404);
      // Without a Content-Type override the client sends application/json-patch+json.
      const jsonPatch = await core.patchNode({ name: 'n1', body: [{ op: 'add', path: '/metadata/labels', value: {} }] }).catch((e: unknown) => e);
      expect((jsonPatch as ApiException<unknown>).code).toBe(415);
    });
  });

  describe('create and replace (Leases)', () => {
    const spec = (holder: string) => ({ holderIdentity: holder, leaseDurationSeconds: 15, renewTime: new V1MicroTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)) });

    it('creates once, then replaces only from the current resourceVersion, as leader election needs', async () => {
      const { s, kc } = await setup();
      const leases = kc.makeApiClient(CoordinationV1Api);
      const created = await leases.createNamespacedLease({ namespace: 'ops', body: { metadata: { name: 'leader' }, spec: spec('a') } });
      expect(created.metadata).toMatchObject({ name: 'leader', namespace: 'ops' });
      expect(String(created.spec?.renewTime)).toBe('2025-01-02T03:04:05.678000Z');
      const again = await leases.createNamespacedLease({ namespace: 'ops', body: { metadata: { name: 'leader' }, spec: spec('b') } }).catch((e: unknown) => e);
      expect((again as ApiException<unknown>).code).toBe(409);
      const rv = created.metadata!.resourceVersion!;
      const taken = await leases.replaceNamespacedLease({ name: 'leader', namespace: 'ops', body: { metadata: { name: 'leader', resourceVersion: rv }, spec: spec('b') } });
      expect(taken.spec?.holderIdentity).toBe('b');
      expect(Number(taken.metadata!.resourceVersion)).toBeGreaterThan(Number(rv));
      // A second writer still holding the old version loses.
      const stale = await leases.replaceNamespacedLease({ name: 'leader', namespace: 'ops', body: { metadata: { name: 'leader', resourceVersion: rv }, spec: spec('c') } }).catch((e: unknown) => e);
      expect((stale as ApiException<unknown>).code).toBe(409);
      expect((await leases.readNamespacedLease({ name: 'leader', namespace: 'ops' })).spec?.holderIdentity).toBe('b');
      const missing = await leases.replaceNamespacedLease({ name: 'other', namespace: 'ops', body: { metadata: { name: 'other' }, spec: spec('a') } }).catch((e: unknown) => e);
      expect((missing as ApiException<unknown>).code).toBe(404);
      expect(s.requests.filter((r) => r.method === 'POST' || r.method === 'PUT').map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /apis/coordination.k8s.io/v1/namespaces/ops/leases',
        'POST /apis/coordination.k8s.io/v1/namespaces/ops/leases',
        'PUT /apis/coordination.k8s.io/v1/namespaces/ops/leases/leader',
        'PUT /apis/coordination.k8s.io/v1/namespaces/ops/leases/leader',
        'PUT /apis/coordination.k8s.io/v1/namespaces/ops/leases/other',
      ]);
    });

    it('refuses a Lease time without six fraction digits, as the real server parses MicroTime', async () => {
      const { kc } = await setup();
      const leases = kc.makeApiClient(CoordinationV1Api);
      // A plain Date serializes with milliseconds only.
      const body = { metadata: { name: 'leader' }, spec: { holderIdentity: 'a', renewTime: new Date() as V1MicroTime } };
      const refused = await leases.createNamespacedLease({ namespace: 'ops', body }).catch((e: unknown) => e);
      expect((refused as ApiException<unknown>).code).toBe(400);
    });
  });

  describe('the rest of the HTTP surface', () => {
    it('answers discovery, version, unknown paths and bad tokens like a real server', async () => {
      const { s } = await setup();
      const get = async (path: string, headers: Record<string, string> = {}) => {
        const res = await fetch(s.url + path, { headers });
        return { code: res.status, body: (await res.json()) as Record<string, any> };
      };
      expect((await get('/version')).body.major).toBe('1');
      expect((await get('/api')).body.versions).toEqual(['v1']);
      expect((await get('/apis')).body.groups.map((g: { name: string }) => g.name)).toEqual(['discovery.k8s.io', 'networking.k8s.io', 'coordination.k8s.io']);
      expect((await get('/apis/discovery.k8s.io/v1')).body.resources[0].name).toBe('endpointslices');
      for (const path of ['/api/v1/replicationcontrollers', '/api/v1/services/web', '/api/v1/namespaces/x/nodes', '/healthz/nope']) {
        expect(await get(path)).toMatchObject({ code: 404, body: { kind: 'Status', reason: 'NotFound', code: 404 } });
      }
      expect(await get('/api/v1/nodes', { Authorization: 'Bearer wrong' })).toMatchObject({ code: 401, body: { reason: 'Unauthorized' } });
      expect(s.requests.at(-1)).toEqual({ method: 'GET', path: '/api/v1/nodes', query: {} });
    });

    it('answers 403 for a resource forbidden with forbid(), as RBAC without a rule does, until allow()', async () => {
      const { s, kc, core } = await setup();
      s.apply(service('web'));
      const open = await watch(kc, '/api/v1/pods', { resourceVersion: s.resourceVersion });
      s.forbid('pods');
      expect(await open.done).toBeNull();
      const get = async (path: string) => {
        const res = await fetch(s.url + path);
        return { code: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const rows: Array<[string, string]> = [
        ['/api/v1/pods', 'pods is forbidden: User "system:serviceaccount:kube-system:netplane" cannot list resource "pods" in API group "" at the cluster scope'],
        ['/api/v1/pods?watch=true', 'pods is forbidden: User "system:serviceaccount:kube-system:netplane" cannot watch resource "pods" in API group "" at the cluster scope'],
        ['/api/v1/namespaces/shop/pods/a', 'pods "a" is forbidden: User "system:serviceaccount:kube-system:netplane" cannot get resource "pods" in API group "" in the namespace "shop"'],
      ];
      for (const [path, message] of rows) expect(await get(path), path).toEqual({ code: 403, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details: expect.objectContaining({ kind: 'pods' }), code: 403 } });
      // Through the client as netplane lists: an ApiException with the status; other resources are served.
      const err = await core.listPodForAllNamespaces({}).catch((e: unknown) => e);
      expect((err as ApiException<unknown>).code).toBe(403);
      expect(names((await core.listServiceForAllNamespaces({})).items)).toEqual(['web']);
      s.allow('pods');
      expect((await get('/api/v1/pods')).code).toBe(200);
      expect(() => s.forbid('replicationcontrollers')).toThrow(InvalidObjectError);
    });

    it('with requireToken answers 401 to a request without the current token; token rotates it', async () => {
      const s = (server = await TestApiServer.start({ requireToken: true }));
      const code = async (headers: Record<string, string> = {}) => (await fetch(`${s.url}/api/v1/nodes`, { headers })).status;
      expect(await code()).toBe(401);
      expect(await code({ Authorization: `Bearer ${s.token}` })).toBe(200);
      s.token = 'next';
      expect(await code({ Authorization: 'Bearer netplane-test-token' })).toBe(401);
      expect(await code({ Authorization: 'Bearer next' })).toBe(200);
    });

    it('serves HTTPS with tls, and its kubeconfig trusts the certificate', async () => {
      const pems = await generate([{ name: 'commonName', value: 'kube-apiserver' }], { keyType: 'ec', algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }] });
      const s = (server = await TestApiServer.start({ tls: { cert: pems.cert, key: pems.private } }));
      expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      s.apply(service('web'));
      const kc = new KubeConfig();
      kc.loadFromFile(await s.kubeconfigPath());
      expect(names((await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces({})).items)).toEqual(['web']);
    });

    it('sends raw list items ahead of the stored objects, and raw lines on open watches, as a broken server might', async () => {
      const { s, kc } = await setup();
      s.apply(service('web'));
      s.rawListItems('services', [null, 'junk']);
      const list = (await (await fetch(`${s.url}/api/v1/services`)).json()) as { items: unknown[] };
      expect(list.items.slice(0, 2)).toEqual([null, 'junk']);
      expect(names(list.items.slice(2) as Array<{ metadata: { name: string } }>)).toEqual(['web']);
      expect(() => s.rawListItems('replicationcontrollers', [null])).toThrow(InvalidObjectError);
      const open = await watch(kc, '/api/v1/services', { resourceVersion: s.resourceVersion });
      s.rawWatchEvent('services', { type: 'ADDED', object: null });
      s.rawWatchEvent('nodes', { type: 'ADDED', object: null });
      await waitFor('the raw event', () => open.events.length === 1);
      expect(open.events).toEqual([{ type: 'ADDED', object: null }]);
      s.rawListItems('services', []);
      expect(((await (await fetch(`${s.url}/api/v1/services`)).json()) as { items: unknown[] }).items).toHaveLength(1);
    });

    it('ends a watch after timeoutSeconds and on dropWatches()', async () => {
      const { s, kc } = await setup();
      const dropped = await watch(kc, '/api/v1/endpoints', { resourceVersion: s.resourceVersion });
      s.dropWatches();
      expect(await dropped.done).toBeNull();
      const timed = await watch(kc, '/apis/discovery.k8s.io/v1/endpointslices', { resourceVersion: s.resourceVersion, timeoutSeconds: '1' });
      const started = Date.now();
      s.apply({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1' }, endpoints: [], addressType: 'IPv4' });
      expect(await timed.done).toBeNull();
      expect(Date.now() - started).toBeLessThan(3000);
      expect(types(timed.events)).toEqual(['ADDED']);
      expect(s.openWatches()).toBe(0);
    });
  });
});

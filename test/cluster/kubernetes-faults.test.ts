// The Kubernetes source against an API server that fails in the ways real ones do: it takes connections and never
// answers (frozen, or behind a hung load balancer), refuses a token, or is named in a KUBECONFIG list with holes.
// All through the real @kubernetes/client-node against the test API server.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeConfigError, loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { describe as describeError, KubernetesSource, resourceOf } from '../../cluster/kubernetes/source.ts';
import { BookmarkWatch } from '../../cluster/kubernetes/watch.ts';
import { Store } from '../../cluster/store.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { service } from '../fixtures/objects.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('KubernetesSource faults', () => {
  let api: TestApiServer;
  let dir: string;
  const sources: KubernetesSource[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-k8s-faults-'));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    api.resume();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  function source(kubeconfig: string, options: { bookmarkIntervalMs?: number; listTimeoutMs?: number } = {}) {
    const { log, records } = captureLogger();
    const s = new KubernetesSource(loadKubeConfig(kubeconfig), { log, initialBackoffMs: 50, maxBackoffMs: 200, ...options });
    sources.push(s);
    return { s, records };
  }

  it('relists after a watch ERROR saying the resourceVersion is too large, as client-go does (the library would re-watch from it)', async () => {
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const store = new Store(['Service']);
    const { s } = source(await api.kubeconfigPath(), { bookmarkIntervalMs: 60_000 });
    await s.start(store);
    await waitFor('the watch', () => api.openWatches() === 1, 1500);
    const lists = () => api.requests.filter((r) => r.path.endsWith('/services') && r.query.watch !== 'true').length;
    const before = lists();
    api.rawWatchEvent('services', {
      type: 'ERROR',
      object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Too large resource version: 900, current: 12', reason: 'Timeout', code: 504, details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }] } },
    });
    api.dropWatches();
    await waitFor('a relist', () => lists() === before + 1, 3000);
    await waitFor('the watch again', () => api.openWatches() === 1, 3000);
    expect(store.get('Service', 'default/a')).toBeDefined();
  });

  it('watches again at once after the server ends quiet watches, however many in a row (found by an audit: the library\'s delay doubled to 30 s)', async () => {
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const store = new Store(['Service']);
    const { s } = source(await api.kubeconfigPath(), { bookmarkIntervalMs: 60_000 });
    await s.start(store);
    // Five watches, each open a little over a second with nothing on it, ended by the server (its timeout, a proxy).
    for (let i = 0; i < 5; i++) {
      await waitFor(`watch ${i + 1}`, () => api.openWatches() === 1, 1500);
      await sleep(1100);
      api.dropWatches();
    }
    await waitFor('the sixth watch', () => api.openWatches() === 1, 1500);
    api.apply(service('a', { clusterIP: '10.96.0.2' }));
    await waitFor('the change', () => store.get('Service', 'default/a')?.spec.clusterIPs[0] === '10.96.0.2', 1500);
    expect(store.status.stale).toBe(false);
  }, 20_000);

  it('marks the view stale, and logs it, when the API server takes connections but stops answering; current again when it answers', async () => {
    // Bookmarks expected every 300 ms (the real server sends one a minute): two intervals of silence make the view
    // stale. The server sends one every 100 ms.
    api = await TestApiServer.start({ bookmarkIntervalMs: 100 });
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const store = new Store(['Service', 'Node']);
    const { s, records } = source(await api.kubeconfigPath(), { bookmarkIntervalMs: 300, listTimeoutMs: 1000 });
    await s.start(store);
    await sleep(1000);
    expect(store.status.stale).toBe(false);

    api.hang();
    const t0 = Date.now();
    await waitFor('stale', () => store.status.stale, 3000);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(store.status.staleReason).toMatch(/no answer from the API server/);
    expect(records.some((r) => r.level === 40 && /does not answer/.test(String(r.msg)))).toBe(true);
    expect(store.get('Service', 'default/a')).toBeDefined();
    // Stays stale while the hang lasts, however often the library's watches time out and reconnect.
    await sleep(1000);
    expect(store.status.stale).toBe(true);

    api.apply(service('b', { clusterIP: '10.96.0.2' }));
    api.resume();
    await waitFor('current again, with what changed meanwhile', () => !store.status.stale && store.get('Service', 'default/b'), 3000);
    expect(records.some((r) => /watch re-established/.test(String(r.msg)))).toBe(true);
  });

  it('does not take a quiet server that sends no bookmarks for a dead one', async () => {
    // With no bookmarks, each watch ends after its idle timeout and is opened again at once: an answer every time.
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const store = new Store(['Service']);
    const { s } = source(await api.kubeconfigPath(), { bookmarkIntervalMs: 300, listTimeoutMs: 1000 });
    await s.start(store);
    const stale: boolean[] = [];
    const unsubscribe = store.onStatus((st) => stale.push(st.stale));
    await sleep(2000);
    unsubscribe();
    expect(stale).toEqual([]);
    expect(api.requests.filter((r) => r.query.watch).length).toBeGreaterThan(3);
  });

  it('gives up on a list that gets no answer and retries it, so a hung list does not hold the kind forever', async () => {
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    api.hang();
    const store = new Store(['Service']);
    const { s, records } = source(await api.kubeconfigPath(), { bookmarkIntervalMs: 100, listTimeoutMs: 200 });
    const started = s.start(store);
    await waitFor('the failed list', () => records.some((r) => r.level === 40 && /timed out/.test(String(r.err))), 2000);
    expect(store.status.synced).toBe(false);
    api.resume();
    await started;
    expect(store.get('Service', 'default/a')).toBeDefined();
  });

  it('skips, and logs with where and why, list items and watch events the client library would crash on; the rest is used', async () => {
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    api.rawListItems('services', [null, 'junk', { metadata: null }]);
    const store = new Store(['Service', 'Node']);
    const { s, records } = source(await api.kubeconfigPath());
    await s.start(store);
    expect(store.status).toMatchObject({ synced: true, stale: false });
    expect(store.get('Service', 'default/a')).toBeDefined();
    const skipped = records.filter((r) => r.level === 40 && r.path === '/api/v1/services' && r.item !== undefined);
    expect(skipped.map((r) => [r.item, r.reason])).toEqual([
      [0, 'is null'],
      // The library makes an empty Service of a string item, before netplane sees it.
      [1, 'has no metadata'],
      [2, 'has no metadata'],
    ]);
    expect(skipped[0]!.msg).toBe('Service list: skipped items[0], which is null');

    const events = [
      { type: 'ADDED', object: null },
      { type: 'MODIFIED', object: { kind: 'Service', metadata: null } },
      { type: 'DELETED', object: 'a' },
      { type: 'BOOKMARK', object: null },
      { type: 'ERROR', object: null },
      { type: 'ADDED' },
    ];
    for (const event of events) api.rawWatchEvent('services', event);
    api.apply(service('b', { clusterIP: '10.96.0.2' }));
    await waitFor('the next good event on the same watch', () => store.get('Service', 'default/b'));
    const dropped = records.filter((r) => r.level === 40 && r.path === '/api/v1/services' && r.event !== undefined);
    expect(dropped.map((r) => r.msg)).toEqual([
      'Service watch: skipped event ADDED: its object is null',
      'Service watch: skipped event MODIFIED: its object has no metadata',
      'Service watch: skipped event DELETED: its object is a string, not an object',
      'Service watch: skipped event BOOKMARK: its object is null',
      'Service watch: skipped event ERROR: its object is null',
      'Service watch: skipped event ADDED: its object is undefined',
    ]);
    // A relist (after 410 Gone) meets the bad items again and still files the good ones, deletes included.
    await api.goDown();
    api.remove('v1', 'Service', 'a');
    api.compact();
    await api.comeUp();
    await waitFor('the relist', () => !store.get('Service', 'default/a') && store.get('Service', 'default/b'), 5000);
    expect(records.filter((r) => r.item === 0).length).toBe(2);
  });

  it('logs an API error as one line with the status and the server message, without the response headers', async () => {
    api = await TestApiServer.start();
    const good = await api.kubeconfigPath();
    const bad = join(dir, 'bad-token.yaml');
    await writeFile(bad, (await readFile(good, 'utf8')).replace('netplane-test-token', 'wrong-token'));
    const store = new Store(['Service']);
    const { s, records } = source(bad);
    void s.start(store);
    const failed = await waitFor('the failure', () => records.find((r) => r.level === 40 && /retrying/.test(String(r.msg))), 2000);
    expect(failed?.err).toBe('HTTP 401: Unauthorized');
    expect(store.status.staleReason).toBe('Service: HTTP 401: Unauthorized');
  });
});

describe('BookmarkWatch', () => {
  it('reports a watch request that cannot be prepared (a CA file gone) to done, instead of rejecting where nothing catches', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false, caFile: join(tmpdir(), 'netplane-no-such-ca.crt') }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    let failure: unknown;
    const watch = new BookmarkWatch(kc, { onConnected: () => {}, onEvent: () => {}, idleTimeoutMs: 1000 });
    await watch.watch('/api/v1/services', {}, () => {}, (err) => (failure = err));
    expect((failure as { code?: unknown }).code).toBe('ENOENT');
  });
});

describe('describing API errors', () => {
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  const watchError = Object.assign(new Error('Forbidden'), { statusCode: 403 });
  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  const rows: Array<[string, unknown, string]> = [
    ['ApiException with a Status body', new ApiException(401, 'Unauthorized', { kind: 'Status', message: 'Unauthorized' }, { 'x-big': 'header' }), 'HTTP 401: Unauthorized'],
    ['ApiException with a JSON text body', new ApiException(403, 'Forbidden', '{"message":"services is forbidden"}', {}), 'HTTP 403: services is forbidden'],
    ['ApiException for a 401, whose body the client drops', new ApiException(401, 'Unauthorized', undefined, {}), 'HTTP 401: Unauthorized'],
    ['ApiException of a status the client does not know', new ApiException(500, 'Unknown API Status Code!', 'oops', {}), 'HTTP 500'],
    ['a watch refused with a status', watchError, 'HTTP 403: Forbidden'],
    ['a request that timed out', timeout, 'no answer in time (timed out)'],
    ['a refused connection', refused, 'fetch failed (ECONNREFUSED)'],
  ];
  for (const [name, err, want] of rows) it(name, () => expect(describeError(err)).toBe(want));
});

describe('the resource a 403 asks an RBAC rule for', () => {
  it.each([
    ['/api/v1/pods', 'pods'],
    ['/api/v1/namespaces/shop/secrets', 'secrets'],
    ['/apis/discovery.k8s.io/v1/endpointslices', 'endpointslices in API group discovery.k8s.io'],
    ['/apis/networking.k8s.io/v1/ingressclasses', 'ingressclasses in API group networking.k8s.io'],
  ])('%s: %s', (path, want) => expect(resourceOf(path)).toBe(want));
});

describe('loadKubeConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-kubeconfig-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (cluster: string, server: string, current?: string) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster, cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: cluster, user: { token: 't' } }],
      contexts: [{ name: cluster, context: { cluster, user: cluster } }],
      ...(current ? { 'current-context': current } : {}),
    });

  it('skips missing and empty files in a KUBECONFIG list, as kubectl does, and the first file to set a name wins', async () => {
    await writeFile(join(dir, 'a.yaml'), config('a', 'https://a.example:6443', 'a'));
    await writeFile(join(dir, 'b.yaml'), config('a', 'https://other.example:6443', 'b').replace(/"b"/g, '"a"'));
    await writeFile(join(dir, 'empty.yaml'), '\n');
    const list = [join(dir, 'missing.yaml'), '', join(dir, 'empty.yaml'), join(dir, 'a.yaml'), join(dir, 'b.yaml')].join(':');
    const kc = loadKubeConfig(undefined, { KUBECONFIG: list });
    expect(kc.getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect(kc.getCurrentContext()).toBe('a');
  });

  it('fails with one line when no file of the list exists, or a file is not YAML', async () => {
    expect(() => loadKubeConfig(undefined, { KUBECONFIG: `${join(dir, 'x')}:${join(dir, 'y')}` })).toThrow(KubeConfigError);
    expect(() => loadKubeConfig(undefined, { KUBECONFIG: join(dir, 'x') })).toThrow(/none of its files exists/);
    await writeFile(join(dir, 'bad.yaml'), 'clusters: [\n  - name: a\n  bad: [\n');
    let error: Error | undefined;
    try {
      loadKubeConfig(join(dir, 'bad.yaml'));
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeInstanceOf(KubeConfigError);
    expect(error!.message).not.toContain('\n');
    expect(error!.message).toMatch(/^cannot load kubeconfig .*bad\.yaml: /);
  });
});

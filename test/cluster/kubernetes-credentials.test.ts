// How the Kubernetes source reaches and authenticates to the API server the way kubectl and client-go do where the
// client library does not: a kubeconfig user's tokenFile (kubeadm writes one for kube-proxy), the service account's
// token in a Pod, both read again as they rotate, and a plain-http server (kubectl proxy). All through the real
// @kubernetes/client-node against the test API server, which here accepts only its current token.
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeConfigError, loadKubeConfig, type LoadOptions } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource, writerConfig } from '../../cluster/kubernetes/source.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { Store } from '../../cluster/store.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { service } from '../fixtures/objects.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

/** Token files are read again this often here (client-go: a minute). */
const refreshMs = 200;

describe('KubernetesSource credentials and plain HTTP', () => {
  let api: TestApiServer | undefined;
  let dir: string;
  const sources: KubernetesSource[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-k8s-credentials-'));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await api?.close();
    api = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Replaces a file at once, as the kubelet's atomic writer does (a reader never sees it half written). */
  async function replace(path: string, text: string) {
    await writeFile(`${path}.new`, text);
    await rename(`${path}.new`, path);
  }

  /**
   * A kubeconfig with one cluster at `server` and one user. With insecure-skip-tls-verify, which the client library
   * asks of a plain-http server: these tests are about tokens (the plain-http test has its own).
   */
  async function kubeconfig(server: string, user: Record<string, unknown>) {
    const file = join(dir, 'kubeconfig.yaml');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    };
    await writeFile(file, JSON.stringify(config, null, 2));
    return file;
  }

  /** Starts a source for Services; fails the test, instead of hanging it, when the first list never succeeds. */
  async function start(file: string | undefined, env: NodeJS.ProcessEnv = {}, options: LoadOptions = {}) {
    const { log, records } = captureLogger();
    const source = new KubernetesSource(loadKubeConfig(file, env, { tokenRefreshMs: refreshMs, ...options }), { log, initialBackoffMs: 50, maxBackoffMs: 200 });
    sources.push(source);
    const store = new Store(['Service']);
    let started = false;
    void source.start(store).then(() => (started = true));
    await waitFor('the first list', () => started, 3000).catch((e: Error) => {
      throw new Error(`${e.message} (last failure: ${store.status.staleReason ?? 'none'})`);
    });
    return { store, records };
  }

  /**
   * Rotates the token as a bound service-account token rotates, at its harshest: the server accepts only the new
   * token, and the open watches end. The source must then send the file's new token, and go on listing and watching.
   */
  async function rotate(tokenFile: string, store: Store) {
    api!.token = 'second-token';
    await replace(tokenFile, 'second-token');
    api!.dropWatches();
    api!.apply(service('b', { clusterIP: '10.96.0.2' }));
    await waitFor('the change made after the rotation', () => store.get('Service', 'default/b'), 3000);
    await waitFor('current again', () => !store.status.stale, 3000);
    api!.apply(service('c', { clusterIP: '10.96.0.3' }));
    await waitFor('a later change, on the watch opened with the new token', () => store.get('Service', 'default/c'), 3000);
  }

  // kubeadm writes `tokenFile` (the key client-go reads) into kube-proxy's kubeconfig; `token-file` is the library's.
  const users: Array<[string, (path: string) => Record<string, unknown>]> = [
    ['tokenFile', (path) => ({ tokenFile: path })],
    ['tokenFile relative to the kubeconfig', () => ({ tokenFile: 'token' })],
    ['token-file', (path) => ({ 'token-file': path })],
  ];
  for (const [name, user] of users) {
    it(`sends the token of a user's ${name} and the file's new token after it changes`, async () => {
      api = await TestApiServer.start({ requireToken: true });
      api.token = 'first-token';
      api.apply(service('a', { clusterIP: '10.96.0.1' }));
      const tokenFile = join(dir, 'token');
      // `kubectl create token sa > token` ends the file with a newline, which is no part of the token.
      await writeFile(tokenFile, 'first-token\n');
      const { store } = await start(await kubeconfig(api.url, user(tokenFile)));
      expect(store.get('Service', 'default/a')).toBeDefined();
      await rotate(tokenFile, store);
    });
  }

  it('runs an exec credential plugin named by a path relative to the kubeconfig, as client-go does; a bare name is left to PATH', async () => {
    api = await TestApiServer.start({ requireToken: true });
    api.token = 'exec-token';
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    await mkdir(join(dir, 'plugins'));
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-token' } };
    await writeFile(join(dir, 'plugins', 'creds.sh'), `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o755 });
    const exec = (command: string) => ({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command, interactiveMode: 'Never' } });
    // The working directory is elsewhere (the repository): only the kubeconfig's directory has the plugin.
    expect(process.cwd()).not.toBe(dir);
    const { store } = await start(await kubeconfig(api.url, exec('plugins/creds.sh')));
    expect(store.get('Service', 'default/a')).toBeDefined();
    const bare = loadKubeConfig(await kubeconfig(api.url, exec('creds-plugin')), {});
    expect((bare.getCurrentUser()?.exec as { command: string }).command).toBe('creds-plugin');
  });

  it("gives a component's own writes the configuration the view is read with; with manifests, one loaded from the file", async () => {
    const { log } = captureLogger();
    const file = await kubeconfig('http://127.0.0.1:1', { token: 't' });
    const kc = loadKubeConfig(file, {});
    expect(writerConfig(new KubernetesSource(kc, { log }), file, log)).toBe(kc);
    const loaded = writerConfig(new ManifestsSource(dir, { log }), file, log);
    expect(loaded).not.toBe(kc);
    expect(loaded.getCurrentCluster()?.server).toBe('http://127.0.0.1:1');
  });

  it('keeps sending the last token read, and says so once, while the token file cannot be read', async () => {
    api = await TestApiServer.start({ requireToken: true });
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, api.token);
    const { store, records } = await start(await kubeconfig(api.url, { tokenFile }));
    await rm(tokenFile);
    for (const [name, clusterIP] of [['a', '10.96.0.1'], ['b', '10.96.0.2']] as const) {
      // Each watch is opened again after a refresh period: the file is gone every time.
      await new Promise((r) => setTimeout(r, refreshMs * 1.5));
      api.dropWatches();
      api.apply(service(name, { clusterIP }));
      await waitFor(`Service ${name}`, () => store.get('Service', `default/${name}`), 3000);
    }
    const warned = records.filter((r) => r.tokenFile === tokenFile && r.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/^cannot read the token file .* again \(ENOENT.*\); still sending the token read before/);
    await writeFile(tokenFile, api.token);
    await new Promise((r) => setTimeout(r, refreshMs * 1.5));
    api.dropWatches();
    await waitFor('the file read again', () => records.some((r) => r.tokenFile === tokenFile && /can be read again/.test(String(r.msg))), 3000);
  });

  it('refuses, in one line naming the user and the file, a tokenFile that cannot be read at start', async () => {
    const file = await kubeconfig('https://a.example:6443', { tokenFile: join(dir, 'missing') });
    expect(() => loadKubeConfig(file, {})).toThrow(KubeConfigError);
    expect(() => loadKubeConfig(file, {})).toThrow(/^kubeconfig .*kubeconfig\.yaml: user u: cannot read the token file .*missing: ENOENT[^\n]*$/);
    await writeFile(join(dir, 'empty'), '\n');
    const empty = await kubeconfig('https://a.example:6443', { tokenFile: join(dir, 'empty') });
    expect(() => loadKubeConfig(empty, {})).toThrow(/user u: cannot read the token file .*empty: the file is empty$/);
    // In a Pod, as client-go's InClusterConfig: both variables, and the mounted token, are needed.
    expect(() => loadKubeConfig(undefined, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, { inClusterRoot: dir })).toThrow(/^in-cluster: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not$/);
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    expect(() => loadKubeConfig(undefined, env, { inClusterRoot: dir })).toThrow(/^in-cluster service account: cannot read the token file .*\/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/token: ENOENT/);
  });

  it("reads only the current user's token file, as client-go does, and takes a user named by a YAML number", async () => {
    api = await TestApiServer.start({ requireToken: true });
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, api.token);
    // A user the current context does not use, with a token file that is gone, stops nothing; the current user is
    // written `name: 1001` (a number to YAML, a string to kubectl).
    const file = join(dir, 'kubeconfig.yaml');
    await writeFile(file, [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]`,
      'users:',
      `- {name: 1001, user: {token-file: ${tokenFile}}}`,
      `- {name: stale, user: {tokenFile: ${join(dir, 'missing')}}}`,
      'contexts: [{name: c, context: {cluster: c, user: 1001}}, {name: old, context: {cluster: c, user: stale}}]',
      'current-context: c',
      '',
    ].join('\n'));
    const { store } = await start(file);
    expect(store.get('Service', 'default/a')).toBeDefined();
    // The same file with the stale user's context current is refused, naming that user.
    await writeFile(file, (await readFile(file, 'utf8')).replace('current-context: c', 'current-context: old'));
    expect(() => loadKubeConfig(file, {})).toThrow(/user stale: cannot read the token file .*missing: ENOENT/);
  });

  it('in a Pod, talks https to KUBERNETES_SERVICE_HOST with the mounted CA and sends the mounted token as it rotates', async () => {
    const pems = await generate([{ name: 'commonName', value: 'kube-apiserver' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    api = await TestApiServer.start({ requireToken: true, tls: { cert: pems.cert, key: pems.private } });
    api.token = 'first-token';
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const mounted = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    await mkdir(mounted, { recursive: true });
    await writeFile(join(mounted, 'ca.crt'), pems.cert);
    await writeFile(join(mounted, 'token'), 'first-token');
    await writeFile(join(mounted, 'namespace'), 'kube-system');
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(api.url).port };
    const kc = loadKubeConfig(undefined, env, { inClusterRoot: dir });
    expect(kc.getCurrentCluster()?.server).toBe(api.url);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('kube-system');
    const { store } = await start(undefined, env, { inClusterRoot: dir });
    expect(store.get('Service', 'default/a')).toBeDefined();
    await rotate(join(mounted, 'token'), store);
  });

  it('talks plain HTTP to an http:// server, as kubectl does through kubectl proxy', async () => {
    // kubectl proxy adds the credentials itself; its kubeconfig has a server and nothing else.
    api = await TestApiServer.start();
    api.apply(service('a', { clusterIP: '10.96.0.1' }));
    const file = join(dir, 'proxy.yaml');
    const config = { clusters: [{ name: 'proxy', cluster: { server: api.url } }], users: [{ name: 'none', user: {} }], contexts: [{ name: 'proxy', context: { cluster: 'proxy', user: 'none' } }], 'current-context': 'proxy' };
    await writeFile(file, JSON.stringify(config));
    expect(api.url).toMatch(/^http:\/\//);
    const { store } = await start(file);
    expect(store.get('Service', 'default/a')).toBeDefined();
    api.apply(service('b', { clusterIP: '10.96.0.2' }));
    await waitFor('a change on the watch', () => store.get('Service', 'default/b'), 3000);
    expect(api.requests.some((r) => r.path === '/api/v1/services' && r.query.watch)).toBe(true);
  });
});

// Where the API server is: --kubeconfig, else $KUBECONFIG, else the in-cluster service account. Read as kubectl and
// client-go read them where the client library differs: a user's tokenFile (kubeadm writes one for kube-proxy) and
// the service account's token are read again while the process runs, an exec plugin's relative command is found from
// the kubeconfig's directory, and a plain-http server (kubectl proxy) is used.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { KubeConfig, type Cluster, type User } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Logger } from '../../runtime/logger.ts';
import { defaultTokenRefreshMs, TokenFileAuth } from './token-file.ts';

/** No way to reach an API server was given or found. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly code = 'NETPLANE_KUBECONFIG';
}

/** Internal settings of loadKubeConfig, for tests. */
export interface LoadOptions {
  /** How often a token file is read again; client-go's minute by default. */
  tokenRefreshMs?: number;
  /** The directory that stands for `/` in the in-cluster paths (var/run/secrets/kubernetes.io/serviceaccount/...). */
  inClusterRoot?: string;
}

/** Where the service account's token, CA certificate and namespace are mounted in every Pod. */
const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The token-file authenticator of each configuration loadKubeConfig made. */
const tokenFiles = new WeakMap<KubeConfig, TokenFileAuth>();

/**
 * Loads the client configuration: the file given, else `$KUBECONFIG` (a list merged as kubectl merges it), else
 * the in-cluster service account. Throws KubeConfigError, with one line, when none applies or a file is unusable
 * (a token file that cannot be read included).
 */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): KubeConfig {
  const tokens = new TokenFileAuth(options.tokenRefreshMs ?? defaultTokenRefreshMs);
  // Token files that could not be read, by user name: an error only for the user the current context uses, as
  // client-go resolves only that one.
  const unreadable = new Map<string, KubeConfigError>();
  let kc: KubeConfig;
  try {
    if (file) kc = loadFile(file, tokens, unreadable);
    else if (env.KUBECONFIG) kc = mergeKubeConfigs(env.KUBECONFIG, tokens, unreadable);
    else if (env.KUBERNETES_SERVICE_HOST) kc = loadInCluster(env, tokens, options.inClusterRoot ?? '/');
    else throw new KubeConfigError('no cluster given: pass --manifests DIR or --kubeconfig FILE, set KUBECONFIG, or run inside a cluster');
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    // A YAML error's message goes on with an excerpt of the file; its first line names the line and column.
    const reason = (e as Error).message.split('\n')[0]!.trim();
    throw new KubeConfigError(`cannot load kubeconfig ${file ?? env.KUBECONFIG ?? '(in-cluster)'}: ${reason}`, { cause: e });
  }
  if (!kc.getCurrentCluster()) throw new KubeConfigError(`kubeconfig ${file ?? env.KUBECONFIG}: no current cluster`);
  const user = kc.getCurrentUser();
  const failed = user ? unreadable.get(user.name) : undefined;
  if (failed) throw failed;
  // kubectl talks plain HTTP to an http:// server (kubectl proxy); the library refuses it unless TLS verification is
  // off, which means nothing without TLS.
  kc.clusters = kc.clusters.map((c): Cluster => (c.server.startsWith('http:') ? { ...c, skipTLSVerify: true } : c));
  kc.addAuthenticator(tokens);
  tokenFiles.set(kc, tokens);
  return kc;
}

/** Logs to `log` the token files of `kc` that cannot be read again (a configuration loadKubeConfig made; else nothing). */
export function logTokenFiles(kc: KubeConfig, log: Logger): void {
  tokenFiles.get(kc)?.logTo(log);
}

/**
 * One kubeconfig file. A user's `tokenFile` (the key client-go reads) or `token-file` (the one the library reads, once)
 * is taken out before the library sees the file and read by `tokens`, relative paths against the file's directory.
 */
function loadFile(file: string, tokens: TokenFileAuth, unreadable: Map<string, KubeConfigError>): KubeConfig {
  const dir = dirname(file);
  // An empty file is an empty configuration, as client-go loads it (skipped in a KUBECONFIG list).
  const doc: unknown = parse(readFileSync(file, 'utf8'), { merge: true }) ?? {};
  if (!isObject(doc)) throw new KubeConfigError(`kubeconfig ${file} is not a YAML mapping of clusters, users and contexts`);
  const paths = new Map<string, string>();
  for (const entry of Array.isArray(doc.users) ? doc.users : []) {
    if (!isObject(entry) || !isObject(entry.user)) continue;
    const path = entry.user.tokenFile ?? entry.user['token-file'];
    delete entry.user.tokenFile;
    delete entry.user['token-file'];
    if (path === undefined || path === null || path === '') continue;
    if (typeof path !== 'string') throw new KubeConfigError(`kubeconfig ${file}: user ${String(entry.name)}: tokenFile must be a file path, not ${JSON.stringify(path)}`);
    paths.set(String(entry.name), resolve(dir, path));
  }
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify(doc)); // JSON is YAML
  // Certificate and key paths relative to the file's directory, as kubectl resolves them.
  kc.makePathsAbsolute(dir);
  kc.users = kc.users.map((u) => withExecCommandResolved(u, dir)).map((u) => {
    // A name written as a YAML number (`name: 1001`) is a string to kubectl and to the library.
    const path = paths.get(String(u.name));
    if (path === undefined) return u;
    try {
      return withTokenFile(tokens, u, path, `kubeconfig ${file}: user ${u.name}`);
    } catch (e) {
      if (!(e instanceof KubeConfigError)) throw e;
      unreadable.set(String(u.name), e);
      return u;
    }
  });
  return kc;
}

/**
 * The service account of the Pod, as client-go's InClusterConfig reads it: https to KUBERNETES_SERVICE_HOST and
 * _PORT, the mounted CA certificate, and the mounted token, read again as the kubelet rotates it.
 */
function loadInCluster(env: NodeJS.ProcessEnv, tokens: TokenFileAuth, root: string): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!port) throw new KubeConfigError('in-cluster: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not');
  const dir = join(root, serviceAccountDir);
  const ca = join(dir, 'ca.crt');
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // client-go goes on without the CA file when it is missing (the system's CAs are used then).
    clusters: [{ name: 'inCluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, skipTLSVerify: false, ...(existsSync(ca) ? { caFile: ca } : {}) }],
    users: [withTokenFile(tokens, { name: 'inClusterUser' }, join(dir, 'token'), 'in-cluster service account')],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', ...(namespace ? { namespace } : {}) }],
    currentContext: 'inClusterContext',
  });
  return kc;
}

/**
 * An exec credential plugin's command, as client-go resolves it: one with a slash in it is a path, relative to the
 * kubeconfig's directory; a bare name is looked up in PATH when it runs. The library runs a relative one from the
 * process's working directory instead.
 */
function withExecCommandResolved(user: User, dir: string): User {
  const exec = user.exec as { command?: unknown } | undefined;
  const command = exec?.command;
  if (typeof command !== 'string' || !command.includes('/') || isAbsolute(command)) return user;
  return { ...user, exec: { ...exec, command: resolve(dir, command) } };
}

function withTokenFile(tokens: TokenFileAuth, user: User, path: string, where: string): User {
  try {
    return tokens.user(user, path);
  } catch (e) {
    throw new KubeConfigError(`${where}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Merges a `KUBECONFIG` list as client-go does: empty entries and missing files are skipped, the first file to set a
 * cluster, user or context name (or current-context) wins. The client library instead fails on a missing file and
 * on a name set twice.
 */
function mergeKubeConfigs(list: string, tokens: TokenFileAuth, unreadable: Map<string, KubeConfigError>): KubeConfig {
  const files = list.split(delimiter).filter((f) => f !== '' && existsSync(f));
  if (files.length === 0) throw new KubeConfigError(`KUBECONFIG ${list}: none of its files exists`);
  const merged = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: '' };
  for (const f of files) {
    // Each file on its own, so that relative paths resolve against that file's directory.
    const failed = new Map<string, KubeConfigError>();
    const one = loadFile(f, tokens, failed);
    for (const c of one.clusters) if (!merged.clusters.has(c.name)) merged.clusters.set(c.name, c);
    for (const u of one.users) {
      if (merged.users.has(u.name)) continue;
      merged.users.set(u.name, u);
      const e = failed.get(String(u.name));
      if (e) unreadable.set(String(u.name), e);
    }
    for (const c of one.contexts) if (!merged.contexts.has(c.name)) merged.contexts.set(c.name, c);
    merged.currentContext ||= one.currentContext ?? '';
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [...merged.clusters.values()],
    users: [...merged.users.values()],
    contexts: [...merged.contexts.values()],
    currentContext: merged.currentContext,
  });
  return kc;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

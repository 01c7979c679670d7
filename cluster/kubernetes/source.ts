// The Kubernetes source: one informer per kind from @kubernetes/client-node, feeding the store in batches;
// relists on 410 Gone (the library does), reconnects with backoff, and marks the view stale while cut off, including
// while the API server takes connections but does not answer.
import {
  ApiException,
  CoreV1Api,
  DiscoveryV1Api,
  ListWatch,
  NetworkingV1Api,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObservableMiddleware,
} from '@kubernetes/client-node';
import type { Logger } from '../../runtime/logger.ts';
import { InvalidObjectError, kinds, objectKey, parseKind, type Kind } from '../model/index.ts';
import type { ClusterSource } from '../source.ts';
import type { Store, StoreWrite } from '../store.ts';
import { loadKubeConfig, logTokenFiles } from './config.ts';
import { keepIdentityOnly, skipLoggers, usableItems } from './unusable.ts';
import { BookmarkWatch } from './watch.ts';

type ListFn = () => Promise<KubernetesListObject<KubernetesObject>>;

/** Where one kind is listed and watched. */
interface Endpoint {
  path: string;
  list: ListFn;
  /** The field selector sent with the list and the watch. */
  fieldSelector?: string;
}

/** One object of a by-reference kind: its namespace's path, selected by name (as the kubelet reads Secrets and ConfigMaps). */
function byName(core: CoreV1Api, kind: Kind, key: string, o: ConfigurationOptions): Endpoint {
  const [namespace, name] = key.split('/') as [string, string];
  const fieldSelector = `metadata.name=${name}`;
  if (kind === 'Secret') return { path: `/api/v1/namespaces/${namespace}/secrets`, list: () => core.listNamespacedSecret({ namespace, fieldSelector }, o), fieldSelector };
  if (kind === 'ConfigMap') return { path: `/api/v1/namespaces/${namespace}/configmaps`, list: () => core.listNamespacedConfigMap({ namespace, fieldSelector }, o), fieldSelector };
  throw new Error(`${kind} cannot be read by reference`);
}

/** The Pods read: those that have not finished. */
const runningPods = 'status.phase!=Succeeded,status.phase!=Failed';

/** The API path and list call of each kind, across all namespaces. */
function endpoints(kc: KubeConfig, o: ConfigurationOptions): Record<Kind, Endpoint> {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  return {
    Service: { path: '/api/v1/services', list: () => core.listServiceForAllNamespaces({}, o) },
    EndpointSlice: { path: '/apis/discovery.k8s.io/v1/endpointslices', list: () => discovery.listEndpointSliceForAllNamespaces({}, o) },
    Ingress: { path: '/apis/networking.k8s.io/v1/ingresses', list: () => networking.listIngressForAllNamespaces({}, o) },
    IngressClass: { path: '/apis/networking.k8s.io/v1/ingressclasses', list: () => networking.listIngressClass({}, o) },
    Secret: { path: '/api/v1/secrets', list: () => core.listSecretForAllNamespaces({}, o) },
    ConfigMap: { path: '/api/v1/configmaps', list: () => core.listConfigMapForAllNamespaces({}, o) },
    Node: { path: '/api/v1/nodes', list: () => core.listNode({}, o) },
    Namespace: { path: '/api/v1/namespaces', list: () => core.listNamespace({}, o) },
    // Pods that have finished are not read: their addresses may already be other Pods' (DNS --pods verified).
    Pod: { path: '/api/v1/pods', list: () => core.listPodForAllNamespaces({ fieldSelector: runningPods }, o), fieldSelector: runningPods },
  };
}

/**
 * Request options that abort a list with a TimeoutError after `ms`: the informer waits for its list without any
 * limit of its own, so a list sent to an API server that has stopped answering would hold the kind forever.
 */
function listTimeout(ms: number): ConfigurationOptions {
  const timeout: ObservableMiddleware = {
    pre: (request) => {
      request.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(request));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [timeout], middlewareMergeStrategy: 'append' };
}

/** Options of the Kubernetes source. */
export interface KubernetesOptions {
  log: Logger;
  /** First reconnect delay; doubled per failure up to maxBackoffMs, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * How often the API server is expected to send a bookmark on a quiet watch (kube-apiserver: once a minute). A watch
   * with nothing on it for 1.5 intervals is opened again; a kind that has heard nothing from the API server (no
   * list, no watch response, no event or bookmark) for 2 intervals marks the view stale until it does.
   */
  bookmarkIntervalMs?: number;
  /** A list that has not been answered in this long fails and is retried with backoff. */
  listTimeoutMs?: number;
  /** Called for every object the API server sent that netplane cannot use (kept out of the store). */
  onInvalid?: (kind: Kind, key: string, reason: string) => void;
}

interface Feed {
  kind: Kind;
  /** The API path listed and watched, which names the resource in an RBAC rule. */
  path: string;
  /** The one object a by-reference feed reads. */
  key?: string;
  informer: ListWatch<KubernetesObject>;
  connected: boolean;
  failures: number;
  retry?: NodeJS.Timeout;
  lastError?: string;
  /** When the API server last answered for this feed (performance.now() ms): a list, a watch response, an event or a bookmark. */
  heardAt: number;
  /** Marked stale for silence (the library reports no error when its watches time out one after another). */
  silent: boolean;
  /** Stopped (no longer wanted, or the source stopped): a list still in flight is not applied and opens no watch. */
  stopped?: boolean;
}

/** Reads the kinds a store keeps from the Kubernetes API with list and watch. */
export class KubernetesSource implements ClusterSource {
  readonly name = 'kubernetes';
  /** The configuration it reads with: a component's own writes (the overlay's Node patches) use the same one. */
  readonly kubeConfig: KubeConfig;
  readonly apiServer: string | undefined;
  #kc: KubeConfig;
  #log: Logger;
  #initialBackoffMs: number;
  #maxBackoffMs: number;
  #bookmarkIntervalMs: number;
  #requestOptions: ConfigurationOptions;
  #liveness?: NodeJS.Timeout;
  #onInvalid?: KubernetesOptions['onInvalid'];
  #feeds: Feed[] = [];
  /** By-reference feeds, by `kind|key`. */
  #named = new Map<string, Feed>();
  #unwant?: () => void;
  /** The client of the by-reference feeds, made once. */
  #core?: CoreV1Api;
  #store?: Store;
  #pending: StoreWrite[] = [];
  #flushScheduled = false;
  #stopped = false;

  constructor(kc: KubeConfig, options: KubernetesOptions) {
    this.#kc = kc;
    this.kubeConfig = kc;
    this.apiServer = kc.getCurrentCluster()?.server;
    this.#log = options.log;
    this.#initialBackoffMs = options.initialBackoffMs ?? 500;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
    this.#requestOptions = listTimeout(options.listTimeoutMs ?? 60_000);
    this.#onInvalid = options.onInvalid;
    logTokenFiles(kc, options.log);
  }

  /**
   * Starts an informer per kind; resolves when every kind has been listed once (retrying until it has), except the
   * store's optional kinds, which are marked synced whenever they are. A kind the store keeps by reference gets one
   * informer per wanted object instead, started and stopped as the wants change.
   */
  async start(store: Store): Promise<void> {
    this.#store = store;
    const all = endpoints(this.#kc, this.#requestOptions);
    const firstSync: Promise<void>[] = [];
    for (const kind of store.kinds) {
      if (store.byReference.has(kind)) {
        store.markSynced(kind);
        continue;
      }
      let synced = () => {};
      if (!store.optional.has(kind)) firstSync.push(new Promise<void>((resolve) => (synced = resolve)));
      this.#feeds.push(this.#feed(kind, undefined, all[kind], synced));
    }
    this.#unwant = store.onWanted((kind, keys) => this.#follow(kind, keys));
    for (const kind of store.byReference) this.#follow(kind, store.wanted(kind)!);
    for (const feed of this.#feeds) void feed.informer.start();
    const every = Math.max(10, Math.min(this.#bookmarkIntervalMs / 2, 5000));
    this.#liveness = setInterval(() => this.#checkLiveness(), every);
    this.#liveness.unref();
    await Promise.all(firstSync);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwant?.();
    clearInterval(this.#liveness);
    for (const f of [...this.#feeds, ...this.#named.values()]) {
      clearTimeout(f.retry);
      f.stopped = true;
      await f.informer.stop();
    }
    this.#flush();
  }

  #feed(kind: Kind, key: string | undefined, at: Endpoint, synced: () => void): Feed {
    const feed: Feed = { kind, path: at.path, key, connected: false, failures: 0, heardAt: performance.now(), silent: false } as Feed;
    const heard = () => (feed.heardAt = performance.now());
    const skipped = skipLoggers(this.#log, kind, at.path);
    const watch = new BookmarkWatch(this.#kc, {
      onConnected: () => this.#connected(feed, synced),
      onEvent: heard,
      idleTimeoutMs: Math.round(this.#bookmarkIntervalMs * 1.5),
      onMalformed: skipped.event,
      // The library's reconnect delay (private in its typings) grows with each quiet watch; a normal end resets it.
      onCleanClose: () => ((feed.informer as unknown as { reconnectDelayMs: number }).reconnectDelayMs = 0),
    });
    // The informer would throw on an item it cannot file, where nothing catches: such items are skipped.
    const list = () =>
      at.list().then((l) => {
        // The library checks for a stop only before it lists: a list that was in flight when the feed stopped would
        // still be applied and open a watch that lives until the server's timeout.
        if (feed.stopped) throw new Error('the feed stopped while it was listing');
        heard();
        return usableItems(l, skipped.item);
      });
    feed.informer = new ListWatch(at.path, watch, list, false, undefined, at.fieldSelector);
    feed.informer.on('add', (o) => this.#put(kind, o));
    feed.informer.on('update', (o) => this.#put(kind, o));
    feed.informer.on('delete', (o) => this.#delete(kind, o));
    feed.informer.on('error', (err) => this.#failed(feed, err));
    return feed;
  }

  /** Starts an informer for each newly wanted object of a by-reference kind and stops those no longer wanted. */
  #follow(kind: Kind, keys: ReadonlySet<string>): void {
    if (this.#stopped) return;
    for (const [id, feed] of this.#named) {
      if (feed.kind !== kind || keys.has(feed.key!)) continue;
      this.#named.delete(id);
      clearTimeout(feed.retry);
      feed.stopped = true;
      void feed.informer.stop();
    }
    for (const key of keys) {
      const id = `${kind}|${key}`;
      if (this.#named.has(id)) continue;
      this.#core ??= this.#kc.makeApiClient(CoreV1Api);
      const feed = this.#feed(kind, key, byName(this.#core, kind, key, this.#requestOptions), () => this.#store?.markLoaded(kind, key));
      this.#named.set(id, feed);
      void feed.informer.start();
    }
    // A failing feed that is no longer wanted no longer makes the view stale.
    if (this.#store?.status.stale) this.#checkCurrent();
  }

  #connected(feed: Feed, synced: () => void): void {
    // The library lists before it watches, so an open watch means the kind's list is in the pending batch.
    this.#flush();
    const wasCut = !feed.connected && (feed.failures > 0 || feed.silent);
    feed.connected = true;
    feed.failures = 0;
    feed.silent = false;
    feed.heardAt = performance.now();
    this.#checkCurrent();
    if (!feed.key) this.#store?.markSynced(feed.kind);
    synced();
    if (wasCut) this.#log.info({ kind: feed.kind }, 'watch re-established');
  }

  /** The view is current once every feed is connected (a by-reference feed not yet connected has not failed either). */
  #checkCurrent(): void {
    if (this.#feeds.every((f) => f.connected) && [...this.#named.values()].every((f) => f.connected || f.failures === 0)) this.#store?.markStale(false);
  }

  /**
   * Marks stale each feed that has heard nothing for two bookmark intervals although its watch counts as open: the
   * library ends a watch that stays silent with a TimeoutError and opens it again without reporting an error, so a
   * server that accepts connections and never answers (frozen, or behind a hung load balancer) shows only here.
   */
  #checkLiveness(): void {
    const limit = 2 * this.#bookmarkIntervalMs;
    const now = performance.now();
    for (const feed of [...this.#feeds, ...this.#named.values()]) {
      if (!feed.connected || now - feed.heardAt <= limit) continue;
      feed.connected = false;
      feed.silent = true;
      feed.lastError = `no answer from the API server for ${Math.round((now - feed.heardAt) / 1000)} s (no event or bookmark, and the watch cannot be opened again)`;
      this.#store?.markStale(true, `${feed.kind}: ${feed.lastError}`);
      this.#log.warn({ kind: feed.kind, ...(feed.key ? { key: feed.key } : {}), err: feed.lastError }, 'the API server does not answer; keeping the last view, marked stale');
    }
  }

  #failed(feed: Feed, err: unknown): void {
    if (this.#stopped || (feed.key && this.#named.get(`${feed.kind}|${feed.key}`) !== feed)) return;
    feed.connected = false;
    feed.failures++;
    // A 403 is RBAC, not an outage: it lasts until someone adds the rule, so it says which one.
    const rule = isForbidden(err) ? `the ServiceAccount needs list and watch on ${resourceOf(feed.path)} (see deploy/rbac.yaml)` : undefined;
    feed.lastError = describe(err) + (rule ? `; ${rule}` : '');
    const delay = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** (feed.failures - 1)) * (0.8 + Math.random() * 0.4);
    this.#store?.markStale(true, `${feed.kind}: ${feed.lastError}`);
    const fields = { kind: feed.kind, ...(feed.key ? { key: feed.key } : {}), err: feed.lastError, retryInMs: Math.round(delay) };
    if (feed.failures > 1) this.#log.debug(fields, 'list/watch failed; keeping the last view and retrying');
    else if (rule) this.#log.error(fields, `the API server forbids reading ${feed.kind}: ${rule}; retrying`);
    else this.#log.warn(fields, 'list/watch failed; keeping the last view and retrying');
    clearTimeout(feed.retry);
    feed.retry = setTimeout(() => void feed.informer.start(), delay);
  }

  #put(kind: Kind, raw: KubernetesObject): void {
    let object;
    try {
      // Lists come through the library's serializer (undefined-valued keys); watch events are plain JSON.
      object = parseKind(kind, JSON.parse(JSON.stringify(raw)));
    } catch (e) {
      const key = rawKey(kind, raw);
      const reason = e instanceof InvalidObjectError ? e.message : String(e);
      this.#log.warn({ kind, key, reason }, `${kind} ${key} is not usable; keeping its last good version`);
      this.#onInvalid?.(kind, key, reason);
      return;
    } finally {
      keepIdentityOnly(raw);
    }
    this.#queue({ kind, object } as StoreWrite);
  }

  #delete(kind: Kind, raw: KubernetesObject): void {
    this.#queue({ kind, key: rawKey(kind, raw), object: undefined });
  }

  /** Batches writes until the current burst of events (a whole list, say) is over. */
  #queue(write: StoreWrite): void {
    this.#pending.push(write);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0) return;
    const writes = this.#pending;
    this.#pending = [];
    this.#store?.apply(writes);
  }
}

/** Whether the API server refused a list or watch with 403 Forbidden (an ApiException, or a watch's status error). */
function isForbidden(err: unknown): boolean {
  if (err instanceof ApiException) return err.code === 403;
  return (err as { statusCode?: unknown } | undefined)?.statusCode === 403;
}

/** The resource of an API path as an RBAC rule names it: `pods`, `endpointslices in API group discovery.k8s.io`. */
export function resourceOf(path: string): string {
  const parts = path.split('/').filter(Boolean);
  const plural = parts.at(-1) ?? path;
  return parts[0] === 'apis' && parts[1] ? `${plural} in API group ${parts[1]}` : plural;
}

function rawKey(kind: Kind, raw: KubernetesObject): string {
  const meta = raw.metadata ?? {};
  return objectKey(kind, { name: meta.name ?? '', namespace: kinds[kind].namespaced ? (meta.namespace ?? 'default') : undefined });
}

/**
 * One line for a failed list or watch. The library's ApiException puts the status, the body and every response
 * header in its message; the status and the API server's own message are what a reader needs.
 */
export function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? parseJson(err.body) : err.body;
    // The API server's Status message, else the generated client's word for the status (it drops a 401's body).
    const fromBody = (body as { message?: unknown } | undefined)?.message;
    const fromClient = /^Message: (.+)$/m.exec(err.message)?.[1];
    const message = typeof fromBody === 'string' ? fromBody : fromClient !== 'Unknown API Status Code!' ? fromClient : undefined;
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'no answer in time (timed out)';
    const status = (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number') return `HTTP ${status}: ${err.message}`;
    const code = (err as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code;
    return code ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The configuration a component's own writes to the API use (the overlay's Node patches, the ingress's status): the
 * one the cluster view is read with, so that its token files are read once for both, else one loaded from `file`
 * (its unreadable token files logged to `log`).
 */
export function writerConfig(source: ClusterSource, file: string | undefined, log: Logger): KubeConfig {
  if (source instanceof KubernetesSource) return source.kubeConfig;
  const kc = loadKubeConfig(file);
  logTokenFiles(kc, log);
  return kc;
}

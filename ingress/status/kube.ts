// The status writer's side of the Kubernetes API, through @kubernetes/client-node: the leader Lease
// (coordination.k8s.io/v1), a watch of every Ingress's status, and the merge patch on ingresses/status.
import { ApiException, CoordinationV1Api, ListWatch, NetworkingV1Api, setHeaderOptions, V1MicroTime, type KubeConfig, type V1Ingress, type V1Lease } from '@kubernetes/client-node';
import { describe } from '../../cluster/kubernetes/source.ts';
import { skipLoggers, usableItems } from '../../cluster/kubernetes/unusable.ts';
import { BookmarkWatch } from '../../cluster/kubernetes/watch.ts';
import type { Logger } from '../../runtime/logger.ts';
import { normalize, type LoadBalancerAddress } from './addresses.ts';
import { LeaseConflictError, microTime, type LeaseRecord, type LeaseStore } from './lease.ts';
import type { StatusObserver, WriteStatus } from './sync.ts';

const code = (e: unknown) => (e instanceof ApiException ? e.code : 0);

/** A Kubernetes API call that failed; `status` is the HTTP status, 0 when no answer came. The message is one line. */
export class ApiCallError extends Error {
  override readonly name = 'ApiCallError';
  readonly code = 'NETPLANE_API_CALL';
  readonly status: number;

  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

const apiError = (e: unknown) => new ApiCallError(describe(e), code(e), { cause: e });

/** A time the API sent (a string, or a Date when the library made one), as MicroTime text. */
function timeText(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  return t instanceof Date ? microTime(t.getTime()) : undefined;
}

/** The Lease `namespace/name` in the API; a 409 from create or replace becomes LeaseConflictError. */
export function kubernetesLeaseStore(kc: KubeConfig, namespace: string, name: string): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api);
  const fromApi = (l: V1Lease): LeaseRecord => ({
    holder: l.spec?.holderIdentity ?? '',
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 0,
    acquireTime: timeText(l.spec?.acquireTime),
    renewTime: timeText(l.spec?.renewTime),
    transitions: l.spec?.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion,
  });
  // V1MicroTime writes six fraction digits; a plain Date's three are refused by the API server.
  const micro = (t: string | undefined) => (t === undefined ? undefined : new V1MicroTime(Date.parse(t)));
  const toApi = (r: LeaseRecord): V1Lease => ({
    metadata: { name, namespace, ...(r.resourceVersion ? { resourceVersion: r.resourceVersion } : {}) },
    spec: { holderIdentity: r.holder, leaseDurationSeconds: r.leaseDurationSeconds, acquireTime: micro(r.acquireTime), renewTime: micro(r.renewTime), leaseTransitions: r.transitions },
  });
  const conflict = (e: unknown) => {
    throw code(e) === 409 ? new LeaseConflictError(`Lease ${namespace}/${name} was written by another candidate`, { cause: e }) : apiError(e);
  };
  return {
    name: `${namespace}/${name}`,
    get: () => api.readNamespacedLease({ name, namespace }).then(fromApi, (e: unknown) => (code(e) === 404 ? undefined : Promise.reject(apiError(e)))),
    create: (r) => api.createNamespacedLease({ namespace, body: toApi(r) }).then(fromApi, conflict),
    update: (r) => api.replaceNamespacedLease({ name, namespace, body: toApi(r) }).then(fromApi, conflict),
  };
}

/**
 * Writes status.loadBalancer.ingress with a JSON merge patch on the status subresource (RBAC: patch on
 * ingresses/status): the list is replaced whole, the rest of the status is left alone, and no read comes first.
 * Where the role grants update and not patch on it (ingress-nginx's Helm chart's ClusterRole), the first 403 turns
 * the writer to what ingress-nginx does: read the Ingress (get), set the list, and replace the status with the
 * version read (a 409 when it changed meanwhile is an error like any other, and the write is tried again).
 */
export function kubernetesStatusWriter(kc: KubeConfig, log?: Logger): WriteStatus {
  const api = kc.makeApiClient(NetworkingV1Api);
  const merge = setHeaderOptions('Content-Type', 'application/merge-patch+json');
  let byUpdate = false;
  const update = async (namespace: string, name: string, addresses: readonly LoadBalancerAddress[]) => {
    const current = await api.readNamespacedIngress({ name, namespace });
    const loadBalancer = { ...current.status?.loadBalancer };
    if (addresses.length > 0) loadBalancer.ingress = [...addresses];
    else delete loadBalancer.ingress;
    current.status = { ...current.status, loadBalancer };
    await api.replaceNamespacedIngressStatus({ name, namespace, body: current });
  };
  return async (namespace, name, addresses) => {
    if (!byUpdate) {
      // null removes the list; the API server would drop an empty one anyway.
      const body = { status: { loadBalancer: { ingress: addresses.length > 0 ? addresses : null } } };
      const forbidden = await api.patchNamespacedIngressStatus({ name, namespace, body }, merge).then(
        () => false,
        (e: unknown) => (code(e) === 403 ? true : Promise.reject(apiError(e))),
      );
      if (!forbidden) return;
      byUpdate = true;
      log?.warn({ ingress: `${namespace}/${name}` }, "patch on ingresses/status is forbidden (ingress-nginx's ClusterRole grants update only): Ingress status is written by update from here on, each after a read of the Ingress");
    }
    await update(namespace, name, addresses).catch((e: unknown) => Promise.reject(apiError(e)));
  };
}

/** Options of the status watch. */
export interface StatusWatchOptions {
  log: Logger;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Watches every Ingress and keeps only its status addresses; restarts with backoff after an error. */
export class IngressStatusWatch implements StatusObserver {
  readonly #kc: KubeConfig;
  readonly #o: StatusWatchOptions;
  #statuses = new Map<string, LoadBalancerAddress[]>();
  #informer: ListWatch<V1Ingress> | undefined;
  #synced = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, options: StatusWatchOptions) {
    this.#kc = kc;
    this.#o = options;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get(key: string): LoadBalancerAddress[] | undefined {
    return this.#statuses.get(key);
  }

  wrote(key: string, addresses: LoadBalancerAddress[]): void {
    if (this.#statuses.has(key)) this.#statuses.set(key, normalize(addresses));
  }

  start(onChange: () => void): void {
    if (this.#informer) return;
    // Ingresses deleted while nobody watched must not linger.
    this.#statuses = new Map();
    const api = this.#kc.makeApiClient(NetworkingV1Api);
    const path = '/apis/networking.k8s.io/v1/ingresses';
    const skipped = skipLoggers(this.#o.log, 'Ingress', path, 'Ingress status');
    const list = async () => {
      // The informer would throw on an item it cannot file, where nothing catches: such items are skipped.
      const all = usableItems(await api.listIngressForAllNamespaces(), skipped.item);
      // The informer files the items as soon as this resolves, in the same turn.
      setImmediate(() => {
        if (this.#informer !== informer) return;
        this.#synced = true;
        this.#failures = 0;
        onChange();
      });
      return all;
    };
    const informer = new ListWatch<V1Ingress>(path, new BookmarkWatch(this.#kc, { onConnected: () => {}, onEvent: () => {}, idleTimeoutMs: 90_000, onMalformed: skipped.event }), list, false);
    const key = (o: V1Ingress) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
    const put = (o: V1Ingress) => {
      this.#statuses.set(key(o), normalize(o.status?.loadBalancer?.ingress));
      if (this.#synced) onChange();
    };
    informer.on('add', put);
    informer.on('update', put);
    informer.on('delete', (o) => this.#statuses.delete(key(o)));
    informer.on('error', (err) => {
      if (this.#informer !== informer) return;
      this.#failures++;
      const delay = Math.min(this.#o.maxBackoffMs ?? 30_000, (this.#o.initialBackoffMs ?? 500) * 2 ** (this.#failures - 1));
      const log = this.#failures === 1 ? this.#o.log.warn.bind(this.#o.log) : this.#o.log.debug.bind(this.#o.log);
      log({ err: describe(err), retryInMs: delay }, 'watching Ingress status failed; retrying');
      this.#retry = setTimeout(() => void informer.start(), delay);
    });
    this.#informer = informer;
    void informer.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.#retry);
    const informer = this.#informer;
    this.#informer = undefined;
    this.#synced = false;
    await informer?.stop();
  }
}

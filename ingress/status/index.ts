// Ingress status, as ingress-nginx writes it (--update-status): the replica holding the leader Lease writes the
// published addresses into status.loadBalancer.ingress of every served Ingress, so external-dns makes records, Argo CD
// sees the Ingress healthy and `kubectl get ingress` shows an ADDRESS. At shutdown the leader empties that status
// (--update-status-on-shutdown) unless another replica takes the Lease over: ingress-nginx asks the same question
// by counting its pods and published addresses; netplane asks the Lease, which needs no access to Pods.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Store } from '../../cluster/store.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { PublishSource } from './addresses.ts';
import { IngressStatusWatch, kubernetesLeaseStore, kubernetesStatusWriter } from './kube.ts';
import { LeaderElector } from './lease.ts';
import { StatusSync } from './sync.ts';

/** Options of the status publisher. */
export interface StatusPublisherOptions {
  kc: KubeConfig;
  store: Store;
  /** The Ingresses the gateway serves now (namespace/name). */
  served: () => Iterable<string>;
  /** Whether `served` reflects a complete view of the cluster. */
  ready: () => boolean;
  publish: PublishSource;
  log: Logger;
  registry?: Registry;
  /** The Lease `namespace/name` and this replica's identity in it; ttl is --election-ttl. */
  election: { namespace: string; name: string; identity: string; ttlMs: number };
  /** --update-status-on-shutdown. */
  clearOnShutdown: boolean;
  /** Longest a shutdown waits for the Lease handover and the status writes. */
  shutdownLimitMs?: number;
  resyncMs?: number;
  debounceMs?: number;
  retryBaseMs?: number;
}

/** client-go's convention for a candidate's identity: the host (the pod's name) and a random suffix. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID().slice(0, 8)}`;
}

/** Where the Lease lives: $POD_NAMESPACE (downward API), else the kubeconfig's namespace, else `default`. */
export function leaseNamespace(kc: KubeConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAMESPACE || kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

/** Runs for the Lease and, while leading, keeps the status of served Ingresses; `shutdown` hands over or empties it. */
export class StatusPublisher {
  readonly #o: StatusPublisherOptions;
  readonly #elector: LeaderElector;
  readonly #sync: StatusSync;
  readonly #retryMs: number;
  readonly #leader?: Gauge<'name'>;
  #syncStopped: Promise<void> = Promise.resolve();

  constructor(options: StatusPublisherOptions) {
    this.#o = options;
    const { kc, log, election, registry } = options;
    const registers = registry ? [registry] : [];
    // ingress-nginx's name and meaning: 1 on the replica that writes status.
    this.#leader = registry ? new Gauge({ name: 'nginx_ingress_controller_leader_election_status', help: 'Gauge reporting status of the leader election, 0 indicates follower, 1 indicates leader.', labelNames: ['name'], registers }) : undefined;
    const writes = registry ? new Counter({ name: 'netplane_ingress_status_writes_total', help: 'Writes of Ingress status.loadBalancer, by result.', labelNames: ['result'], registers }) : undefined;
    this.#sync = new StatusSync({
      store: options.store,
      served: options.served,
      ready: options.ready,
      publish: options.publish,
      observer: new IngressStatusWatch(kc, { log }),
      write: kubernetesStatusWriter(kc, log),
      log,
      countWrite: (result) => writes?.inc({ result }),
      resyncMs: options.resyncMs,
      debounceMs: options.debounceMs,
      retryBaseMs: options.retryBaseMs,
    });
    // client-go's usual ratios at kube-controller-manager's defaults (15 s lease, 10 s deadline, 2 s retry), scaled.
    this.#retryMs = election.ttlMs / 15;
    this.#elector = new LeaderElector({
      lease: kubernetesLeaseStore(kc, election.namespace, election.name),
      identity: election.identity,
      leaseDurationMs: election.ttlMs,
      renewDeadlineMs: election.ttlMs / 2,
      retryPeriodMs: this.#retryMs,
      log,
      onStartedLeading: () => {
        this.#leader?.set({ name: election.name }, 1);
        // A step down that is still stopping the watch finishes first.
        void this.#syncStopped.then(() => this.#elector.leading && this.#sync.start());
      },
      onStoppedLeading: () => {
        this.#leader?.set({ name: election.name }, 0);
        this.#syncStopped = this.#sync.stop();
      },
    });
    this.#leader?.set({ name: election.name }, 0);
  }

  /** Whether this replica writes Ingress status now. */
  get leading(): boolean {
    return this.#elector.leading;
  }

  /** Starts running for the Lease. */
  start(): void {
    const { log, election, publish } = this.#o;
    log.info({ lease: `${election.namespace}/${election.name}`, identity: election.identity, publish: 'service' in publish ? publish.service : 'addresses' }, 'Ingress status: running for the leader Lease');
    this.#elector.start();
  }

  /**
   * Stops writing and frees the Lease. A leader with clearOnShutdown then waits briefly for another replica to take
   * the Lease; when none does, it empties the status of the served Ingresses. Bounded by shutdownLimitMs; never rejects.
   */
  async shutdown(): Promise<void> {
    const { log, clearOnShutdown } = this.#o;
    const work = (async () => {
      const wasLeading = this.#elector.leading;
      await this.#elector.stop({ release: true });
      await this.#syncStopped;
      if (!wasLeading) return;
      if (!clearOnShutdown) return log.info('Ingress status left as it is (--update-status-on-shutdown=false)');
      // Candidates try every retry period, with up to 20% jitter: three periods are enough for one to take over.
      const holder = await this.#elector.otherHolder(this.#retryMs * 3);
      if (holder !== undefined) return log.info({ holder }, 'another replica took the leader Lease over; Ingress status left as it is');
      const cleared = await this.#sync.clear();
      log.info({ ingresses: cleared }, 'no other replica took over: emptied the status of served Ingresses');
    })();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn('Ingress status: shutdown took too long; leaving the status as it is');
        resolve();
      }, this.#o.shutdownLimitMs ?? 10_000);
    });
    await Promise.race([work.catch((e: Error) => log.warn({ err: e.message }, 'Ingress status: shutdown failed')), limit]);
    clearTimeout(timer);
  }
}

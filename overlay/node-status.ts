// Kubernetes mode: once the overlay is up, this node's NetworkUnavailable condition is set to False, as Flannel's
// CompleteLease does (--set-node-network-unavailable, on by default), so that the node lifecycle controller lifts
// the node.kubernetes.io/network-unavailable taint a cloud controller or the kubelet may have put there. One
// strategic merge patch of nodes/status (conditions merge by type, so the kubelet's conditions stay), retried with
// backoff; again when the Node is made anew, or while it still carries the taint (at most once a minute).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Store } from '../cluster/store.ts';
import type { Logger } from '../runtime/logger.ts';

/** Strategic-merge-patches a Node's status through the nodes/status subresource; rejects with the API error. */
export type PatchNodeStatus = (nodeName: string, status: Record<string, unknown>) => Promise<void>;

/** A PatchNodeStatus over the API server of a kubeconfig (needs `patch` on `nodes/status`). */
export async function kubernetesStatusPatcher(kc: KubeConfig): Promise<PatchNodeStatus> {
  const { CoreV1Api, setHeaderOptions } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const strategic = setHeaderOptions('Content-Type', 'application/strategic-merge-patch+json');
  return async (name, status) => {
    await core.patchNodeStatus({ name, body: { status } }, strategic);
  };
}

/** The taint the node lifecycle controller keeps on a node while its NetworkUnavailable condition is True. */
export const networkUnavailableTaint = 'node.kubernetes.io/network-unavailable';

/** The condition netplane sets: Flannel's ("FlannelIsUp", "Flannel is running on this node") in netplane's words. */
export function networkAvailableCondition(now: Date): Record<string, string> {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    type: 'NetworkUnavailable',
    status: 'False',
    reason: 'NetplaneOverlayIsUp',
    message: 'netplane overlay is running on this node',
    lastTransitionTime: time,
    lastHeartbeatTime: time,
  };
}

/** Options of the reporter. */
export interface NetworkConditionOptions {
  nodeName: string;
  patch: PatchNodeStatus;
  /** The cluster view: this node's Node (its taints), and its deletion. */
  store: Store;
  log: Logger;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** While the Node still carries the network-unavailable taint, patch again after this long (default 60 s). */
  repeatMs?: number;
}

/** Sets NetworkUnavailable=False on this node's Node once the overlay is up. */
export class NetworkConditionReporter {
  #o: NetworkConditionOptions;
  #done = false;
  /** When the condition was last written (performance.now() ms). */
  #lastPatch = 0;
  #busy = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #unsubscribe: () => void;

  constructor(options: NetworkConditionOptions) {
    this.#o = options;
    // A Node deleted and made again (a re-registered node) starts with the condition its creator set: report again.
    this.#unsubscribe = options.store.subscribe((changes) => {
      for (const c of changes) if (c.kind === 'Node' && c.key === options.nodeName && c.object === undefined) this.#done = false;
    });
  }

  /** Says the overlay is up (called after each sync that programmed this node's device); cheap when reported already. Never throws. */
  readonly up = (): void => {
    if (this.#stopped) return;
    const node = this.#o.store.get('Node', this.#o.nodeName);
    if (!node) return;
    if (this.#done && node.spec.taints.includes(networkUnavailableTaint) && performance.now() - this.#lastPatch >= (this.#o.repeatMs ?? 60_000)) this.#done = false;
    if (!this.#done && !this.#busy && !this.#timer) void this.#run();
  };

  /** Resolves when nothing is being sent or waiting for a retry; for tests. */
  async settled(): Promise<void> {
    while (this.#busy || this.#timer) await new Promise((r) => setTimeout(r, 5));
  }

  /** Stops retrying and following the view. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped || this.#done) return;
    this.#busy = true;
    const condition = networkAvailableCondition(new Date());
    try {
      await this.#o.patch(this.#o.nodeName, { conditions: [condition] });
      this.#done = true;
      this.#lastPatch = performance.now();
      this.#failures = 0;
      this.#o.log.info({ node: this.#o.nodeName, reason: condition.reason }, "set this node's NetworkUnavailable condition to False");
    } catch (e) {
      this.#failures++;
      const delay = Math.min(this.#o.retryMaxMs ?? 30_000, (this.#o.retryBaseMs ?? 500) * 2 ** (this.#failures - 1));
      this.#o.log.warn({ node: this.#o.nodeName, err: (e as Error).message, retryInMs: delay }, "cannot set this node's NetworkUnavailable condition to False (needs patch on nodes/status); retrying");
      if (!this.#stopped) this.#timer = setTimeout(() => void this.#run(), delay);
    } finally {
      this.#busy = false;
    }
  }
}

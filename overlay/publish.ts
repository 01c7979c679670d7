// Kubernetes mode: the agent writes its VTEP MAC and underlay IP on its own Node as annotations, which the other
// nodes' agents read. One merge patch per change; a failure is retried with backoff and the latest value wins.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.ts';
import type { SelfVtep } from './agent.ts';
import { isIPv6 } from 'node:net';
import { flannelAnnotations, publicIPAnnotation, vtepMacAnnotation } from './plan/node.ts';

/** Merge-patches annotations onto a Node; rejects with the API error. */
export type PatchAnnotations = (nodeName: string, annotations: Record<string, string>) => Promise<void>;

/** A PatchAnnotations over the API server of a kubeconfig (`application/merge-patch+json`, which RBAC's `patch` on nodes allows). */
export async function kubernetesPatcher(kc: KubeConfig): Promise<PatchAnnotations> {
  const { CoreV1Api, setHeaderOptions } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const merge = setHeaderOptions('Content-Type', 'application/merge-patch+json');
  return async (name, annotations) => {
    await core.patchNode({ name, body: { metadata: { annotations } } }, merge);
  };
}

/** Options of the publisher. */
export interface PublisherOptions {
  nodeName: string;
  patch: PatchAnnotations;
  /** The Node's annotations as the cluster view has them now (undefined when the Node is not in the view). */
  current: () => Readonly<Record<string, string>> | undefined;
  log: Logger;
  /** Also publish Flannel's annotations, with this VNI (--flannel-annotations), for Flannel nodes to reach this one. */
  flannelVni?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Publishes this node's VTEP when it differs from what its Node says. */
export class VtepPublisher {
  #o: PublisherOptions;
  #want: SelfVtep | undefined;
  #busy = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The last value sent, and the annotations the view held when it was sent (until the watch brings the change back). */
  #sent: { mac: string; ip: string; against: unknown } | undefined;

  constructor(options: PublisherOptions) {
    this.#o = options;
  }

  /** Asks for `self` to be on the Node; cheap when it already is. Never throws. */
  readonly publish = (self: SelfVtep): void => {
    this.#want = self;
    if (!this.#busy && !this.#timer) void this.#run();
  };

  /** Resolves when nothing is being sent or waiting for a retry; for tests. */
  async settled(): Promise<void> {
    while (this.#busy || this.#timer) await new Promise((r) => setTimeout(r, 5));
  }

  /** Stops retrying. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    this.#timer = undefined;
    const want = this.#want;
    if (this.#stopped || !want) return;
    const annotations = annotationsFor(want, this.#o.flannelVni);
    const now = this.#o.current();
    if (now && Object.entries(annotations).every(([k, v]) => now[k] === v)) return;
    const sent = this.#sent;
    if (sent && sent.mac === want.mac && sent.ip === want.ip && sent.against === now) return;
    this.#busy = true;
    try {
      await this.#o.patch(this.#o.nodeName, annotations);
      this.#sent = { ...want, against: now };
      this.#failures = 0;
      this.#o.log.info({ node: this.#o.nodeName, ...annotations }, 'published this node\'s VTEP on its Node');
    } catch (e) {
      this.#failures++;
      const delay = Math.min(this.#o.retryMaxMs ?? 30_000, (this.#o.retryBaseMs ?? 500) * 2 ** (this.#failures - 1));
      this.#o.log.warn({ node: this.#o.nodeName, err: (e as Error).message, retryInMs: delay }, 'cannot publish this node\'s VTEP annotations; other nodes use the address and a MAC derived from it meanwhile');
      if (!this.#stopped) this.#timer = setTimeout(() => void this.#run(), delay);
      return;
    } finally {
      this.#busy = false;
    }
    // A newer value may have come while the patch was in flight.
    if (this.#want !== want) void this.#run();
  }
}

/** The annotations that publish `self`: netplane's, and Flannel's kube subnet manager ones when `flannelVni` is set. */
export function annotationsFor(self: SelfVtep, flannelVni?: number): Record<string, string> {
  const out: Record<string, string> = { [vtepMacAnnotation]: self.mac, [publicIPAnnotation]: self.ip };
  if (flannelVni === undefined) return out;
  const v6 = isIPv6(self.ip);
  out[flannelAnnotations.backendType] = 'vxlan';
  out[flannelAnnotations.kubeSubnetManager] = 'true';
  out[v6 ? flannelAnnotations.backendV6Data : flannelAnnotations.backendData] = JSON.stringify({ VNI: flannelVni, VtepMAC: self.mac });
  out[v6 ? flannelAnnotations.publicIPv6 : flannelAnnotations.publicIP] = self.ip;
  return out;
}

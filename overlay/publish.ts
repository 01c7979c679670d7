// Kubernetes mode: the agent writes its VTEP MAC and underlay IP on its own Node as annotations, which the other
// nodes' agents read. One merge patch per change, through the nodes/status subresource as Flannel writes its own
// (so the node agent needs `patch` on nodes/status only); a failure is retried with backoff and the latest value wins.
import type { KubeConfig } from '@kubernetes/client-node';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../runtime/logger.ts';
import { flannelAnnotations, publicIPAnnotation, publicIPv6Annotation, vtepMacAnnotation, vtepV6MacAnnotation } from './plan/node.ts';
import type { SelfVtep } from './plan/types.ts';

/** Merge-patches annotations onto a Node (null removes one); rejects with the API error. */
export type PatchAnnotations = (nodeName: string, annotations: Record<string, string | null>) => Promise<void>;

/**
 * A PatchAnnotations over the API server of a kubeconfig: an `application/merge-patch+json` of metadata.annotations on
 * nodes/status, which RBAC's `patch` on `nodes/status` allows. The API server takes metadata from a status update of
 * a Node (its status strategy resets only spec), which is how Flannel's kube subnet manager writes its annotations.
 */
export async function kubernetesPatcher(kc: KubeConfig): Promise<PatchAnnotations> {
  const { CoreV1Api, setHeaderOptions } = await import('@kubernetes/client-node');
  const core = kc.makeApiClient(CoreV1Api);
  const merge = setHeaderOptions('Content-Type', 'application/merge-patch+json');
  return async (name, annotations) => {
    await core.patchNodeStatus({ name, body: { metadata: { annotations } } }, merge);
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
  /** The annotations last sent, and those the view held when they were sent (until the watch brings the change back). */
  #sent: { annotations: string; against: unknown } | undefined;
  /** The notes last logged. */
  #notes = '';

  constructor(options: PublisherOptions) {
    this.#o = options;
  }

  /** Asks for `self` to be on the Node; cheap when it already is. Never throws. */
  readonly publish = (self: SelfVtep): void => {
    this.#want = self;
    this.#logNotes(self);
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
    const now = this.#o.current();
    // The IPv6 device's annotations are removed when it is gone (other nodes would send to a device that is not
    // there), and only then: a Node that never had them is patched as before.
    const annotations: Record<string, string | null> = { ...annotationsFor(want, this.#o.flannelVni) };
    for (const key of [vtepV6MacAnnotation, publicIPv6Annotation]) if (!want.v6 && now?.[key] !== undefined) annotations[key] = null;
    if (now && Object.entries(annotations).every(([k, v]) => (v === null ? now[k] === undefined : now[k] === v))) return;
    const text = JSON.stringify(annotations);
    const sent = this.#sent;
    if (sent && sent.annotations === text && sent.against === now) return;
    this.#busy = true;
    try {
      await this.#o.patch(this.#o.nodeName, annotations);
      this.#sent = { annotations: text, against: now };
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

  #logNotes(self: SelfVtep): void {
    const notes = [...(self.notes ?? []), ...(this.#o.flannelVni !== undefined ? (self.flannelNotes ?? []) : [])];
    const text = notes.join('\n');
    if (text === this.#notes) return;
    this.#notes = text;
    for (const note of notes) this.#o.log.warn({ node: this.#o.nodeName }, `node ${this.#o.nodeName} ${note}`);
  }
}

/**
 * The annotations that publish `self`: netplane's (with the IPv6 device's MAC and address when it has one), and with
 * `flannelVni` Flannel's kube subnet manager ones for each family `self` has an address of (backend data and public
 * IP; a dual-stack Flannel node drops a node without both families' — its nodeToLease parses public-ip and
 * public-ipv6). `backend-v6-data` names the IPv6 device's MAC when there is one, as Flannel's does flannel-v6.1's.
 */
export function annotationsFor(self: SelfVtep, flannelVni?: number): Record<string, string> {
  const out: Record<string, string> = { [vtepMacAnnotation]: self.mac, [publicIPAnnotation]: self.ip };
  if (self.v6) {
    out[vtepV6MacAnnotation] = self.v6.mac;
    out[publicIPv6Annotation] = self.v6.ip;
  }
  if (flannelVni === undefined) return out;
  out[flannelAnnotations.backendType] = 'vxlan';
  out[flannelAnnotations.kubeSubnetManager] = 'true';
  const data = JSON.stringify({ VNI: flannelVni, VtepMAC: self.mac });
  const ip4 = self.ip4 ?? (isIPv4(self.ip) ? self.ip : undefined);
  const ip6 = self.ip6 ?? (isIPv6(self.ip) ? self.ip : undefined);
  if (ip4 !== undefined) {
    out[flannelAnnotations.backendData] = data;
    out[flannelAnnotations.publicIP] = ip4;
  }
  if (ip6 !== undefined) {
    out[flannelAnnotations.backendV6Data] = self.v6 ? JSON.stringify({ VNI: flannelVni, VtepMAC: self.v6.mac }) : data;
    out[flannelAnnotations.publicIPv6] = ip6;
  }
  return out;
}

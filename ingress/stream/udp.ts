// One UDP services port, on the userspace proxy's UDP listener (proxy/userspace/udp.ts): a flow per client address,
// a socket connected to the endpoint picked for it round robin, its replies sent back from the port's own socket;
// a flow idle for the idle time-out (ingress-nginx's proxy-stream-timeout, 600 s) is closed, as is one that has had
// its answers when proxy-stream-responses is set (settings.ts), and past the flow caps the least recently used one
// makes room. A datagram that finds no endpoint is dropped and counted. Unlike the
// userspace proxy's, the port stays bound while the entry has no endpoint (the ConfigMap asks for it), so a
// Service that gets endpoints later is served without a rebind. An entry that changes keeps its socket: flows to an
// endpoint no longer in it are closed, and its client's next datagram picks anew.
import { FlowBudget } from '../../proxy/userspace/flow-budget.ts';
import type { ListenerSpec } from '../../proxy/userspace/listeners.ts';
import { UdpListener } from '../../proxy/userspace/udp.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Endpoint } from '../upstream/upstreams.ts';
import { targetText, type StreamEntry } from './entries.ts';
import type { StreamMetrics } from './metrics.ts';
import type { StreamSettings } from './settings.ts';

/** Flows one UDP services port holds at most (each a socket), and all of them together: the userspace proxy's defaults. */
export const udpMaxFlows = 4096;
export const udpMaxFlowsTotal = 16384;

/** How a UDP services port listens. */
export interface UdpStreamOptions {
  host: string;
  reusePort: boolean;
  /** The idle time and answers per datagram of the flows (proxy-stream-timeout, proxy-stream-responses). */
  settings: Pick<StreamSettings, 'idleMs' | 'responses'>;
  /** The cap on flows shared by every UDP services port. */
  budget: FlowBudget;
  metrics: StreamMetrics;
  log: Logger;
}

/** A listening UDP services port. */
export class UdpStream {
  readonly port: number;
  #entry: StreamEntry;
  readonly #listener: UdpListener;

  constructor(entry: StreamEntry, endpoints: readonly Endpoint[], o: UdpStreamOptions) {
    this.port = entry.port;
    this.#entry = entry;
    const labels = () => ({ port: String(this.port), namespace: this.#entry.namespace, service: this.#entry.service });
    this.#listener = new UdpListener(spec(entry, endpoints), {
      host: o.host,
      idleMs: o.settings.idleMs,
      ...(o.settings.responses !== undefined ? { responses: o.settings.responses } : {}),
      maxFlows: udpMaxFlows,
      budget: o.budget,
      reusePort: o.reusePort,
      onDrop: (reason) => o.metrics.dropped.inc({ ...labels(), reason }),
      onFlow: () => o.metrics.counted({ protocol: 'UDP', port: this.port, namespace: this.#entry.namespace, service: this.#entry.service }, 'relayed'),
      onError: (err) => o.log.warn({ port: this.port, err: err.message }, `UDP services port ${this.port}: ${err.message}`),
    });
  }

  /** The entry served now. */
  get entry(): StreamEntry {
    return this.#entry;
  }

  /** Flows open now. */
  get flows(): number {
    return this.#listener.flows;
  }

  /** New flows take `entry` and `endpoints`; flows to endpoints no longer among them are closed. */
  update(entry: StreamEntry, endpoints: readonly Endpoint[]): void {
    this.#entry = entry;
    this.#listener.update(spec(entry, endpoints));
  }

  /** Open flows and new ones end by these from now on. */
  configure(settings: Pick<StreamSettings, 'idleMs' | 'responses'>): void {
    this.#listener.configure({ idleMs: settings.idleMs, responses: settings.responses });
  }

  /** Binds the port; rejects with the bind error. */
  listen(): Promise<void> {
    return this.#listener.listen();
  }

  /** Closes the port and every flow (a datagram has no connection to finish). */
  close(): Promise<void> {
    return this.#listener.close();
  }
}

function spec(entry: StreamEntry, endpoints: readonly Endpoint[]): ListenerSpec {
  return { key: `UDP/${entry.port}`, service: targetText(entry), protocol: 'UDP', port: entry.port, nodePort: false, endpoints: endpoints.map((e) => ({ ip: e.ip, port: e.port })), affinitySeconds: 0 };
}

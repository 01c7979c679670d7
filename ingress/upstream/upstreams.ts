// The gateway's upstream side: per backend, its endpoints and an undici pool per endpoint; forwarding of requests
// and of Upgrade connections to them. A backend is an upstream key (BackendRef.key): one Service port reached one
// way (protocol, TLS verification, cluster IP or endpoints), so each way has its own pools and ejection state.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../runtime/logger.ts';
import { Backend } from './backend.ts';
import { Exchange, type ClientRequest, type ClientResponse, type ForwardResult, type ForwardTarget } from './forward.ts';
import { OutlierTracker, type OutlierOptions } from './outlier.ts';
import type { BackendProtocol, Endpoint, UpstreamEndpoint, UpstreamTls } from './pool.ts';
import { UpgradeRelay } from './upgrade.ts';

export type { Endpoint, BackendProtocol, UpstreamTls } from './pool.ts';
export type { ForwardTarget, ForwardResult } from './forward.ts';
export type { UpstreamErrorCode } from './errors.ts';
export type { OutlierOptions } from './outlier.ts';

/** Options of Upstreams. */
export interface UpstreamsOptions {
  log: Logger;
  /**
   * Connections per endpoint (per connect timeout in use); more requests wait in the pool's queue. Default: no
   * limit, as nginx opens a connection for each request that finds no idle one (a cap made the requests past it
   * wait, without a time limit, for a long-lived response such as a server-sent event stream to end).
   */
  connectionsPerEndpoint?: number;
  /** Outlier ejection tuning; defaults in outlier.ts (5 failures, 10 s doubling to 5 min, half the endpoints). */
  outlier?: Partial<OutlierOptions>;
}

/** Upstream pools of all backends; forwards requests and Upgrade connections to them. */
export class Upstreams {
  readonly #log: Logger;
  readonly #connections: number;
  readonly #tracker: OutlierTracker;
  readonly #backends = new Map<string, Backend>();
  readonly #relays = new Set<UpgradeRelay>();
  #closed = false;

  constructor(options: UpstreamsOptions) {
    this.#log = options.log;
    this.#connections = options.connectionsPerEndpoint ?? Infinity;
    this.#tracker = new OutlierTracker(options.outlier);
  }

  /**
   * Sets a backend's endpoints. Endpoints that stay keep their pools, connections and outlier state; removed ones
   * take no new request and close once their requests in flight are done.
   */
  setEndpoints(backend: string, endpoints: readonly Endpoint[], protocol: BackendProtocol, tls?: UpstreamTls): void {
    let b = this.#backends.get(backend);
    if (b === undefined) {
      b = new Backend(backend, this.#tracker, this.#log, this.#connections);
      this.#backends.set(backend, b);
    }
    this.#closeGracefully(b.update(endpoints, protocol, tls));
  }

  /** Drops the backends not in `backends`, closing their pools gracefully. */
  retain(backends: ReadonlySet<string>): void {
    for (const [key, b] of this.#backends) {
      if (backends.has(key)) continue;
      this.#backends.delete(key);
      this.#closeGracefully(b.update([], b.protocol));
    }
  }

  /** The endpoints of a backend with their load and ejection state (for status pages and tests). */
  endpoints(backend: string): readonly UpstreamEndpoint[] {
    return this.#backends.get(backend)?.members ?? [];
  }

  /**
   * Forwards a request and writes the answer into `res`: the upstream's response streamed, or 503 (no endpoints),
   * 502 (refused, reset, bad response) or 504 (connect or read timeout). Never rejects.
   */
  forward(req: ClientRequest, res: ClientResponse, target: ForwardTarget): Promise<ForwardResult> {
    return new Promise((resolve) => new Exchange(this.#backends.get(target.backend), req, res, target, this.#log, resolve).start());
  }

  /**
   * Relays an HTTP/1.1 Upgrade request (WebSocket or other) to an endpoint; resolves when both connections are
   * closed, or once an error status (502, 503, 504) has been written on `socket`. Never rejects.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: ForwardTarget): Promise<ForwardResult> {
    return new Promise((resolve) => {
      const relay = new UpgradeRelay(this.#closed ? undefined : this.#backends.get(target.backend), req, socket, head, target, this.#log, (result) => {
        this.#relays.delete(relay);
        resolve(result);
      });
      this.#relays.add(relay);
      relay.start();
    });
  }

  /** Closes every pool (after the requests in flight) and ends relayed Upgrade connections. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const relay of this.#relays) relay.destroy();
    const removed: UpstreamEndpoint[] = [];
    for (const b of this.#backends.values()) removed.push(...b.update([], b.protocol));
    this.#backends.clear();
    await Promise.all(removed.map((m) => m.close()));
  }

  #closeGracefully(removed: readonly UpstreamEndpoint[]): void {
    for (const m of removed) {
      m.close().catch((err: unknown) => this.#log.warn({ endpoint: m.address, err: String(err) }, 'closing an upstream pool failed'));
    }
  }
}

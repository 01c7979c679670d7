// One TCP listener of the userspace proxy: accepts on a Service's port, picks an endpoint, connects, and relays
// both directions with backpressure and half-close. Runs in the main thread and, with `threads > 1`, in workers.
import { connect, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { Target } from '../plan/types.ts';
import type { ListenerSpec } from './listeners.ts';
import { EndpointPicker } from './picker.ts';

/** How a TCP listener binds and dials. */
export interface TcpOptions {
  host: string;
  /** Set SO_REUSEPORT, so that worker threads can listen on the same port (the kernel spreads connections). */
  reusePort: boolean;
  /** A connect to an endpoint that takes longer counts as failed (then one other endpoint is tried). */
  connectTimeoutMs: number;
  /** Errors of the listening socket after it is open (e.g. EMFILE on accept). */
  onError: (err: Error) => void;
}

// Socket buffers in userspace. A read from the kernel is up to 64 KiB; with Node's default 16 KiB write high-water
// mark every such chunk would pause and resume the reading side (two epoll changes per chunk). 1 MiB per direction
// keeps bulk transfers flowing while still bounding what a slow reader can make us hold.
const highWaterMark = 1 << 20;
const listenBacklog = 4096;
// What libuv asks Node for per socket read: a read this long filled the buffer, so the kernel likely holds more.
const fullRead = 64 * 1024;

/** A TCP listener forwarding to the endpoints of one Service port. Established connections outlive endpoint changes. */
export class TcpListener {
  #spec: ListenerSpec;
  readonly #options: TcpOptions;
  readonly #picker: EndpointPicker;
  readonly #server: Server;
  readonly #connections = new Set<Socket>();

  constructor(spec: ListenerSpec, options: TcpOptions) {
    this.#spec = spec;
    this.#options = options;
    this.#picker = new EndpointPicker(spec.endpoints, spec.affinitySeconds);
    // The client is read while the endpoint is dialled (into the stream's buffer, bounded by highWaterMark; `end` is
    // not emitted before it is consumed), which saves a loop iteration per connection over pauseOnConnect.
    this.#server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark }, (c) => this.#accept(c));
  }

  get spec(): ListenerSpec {
    return this.#spec;
  }

  /** Client connections being relayed now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Opens the listening socket; rejects with the bind error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.#server.once('error', failed);
      this.#server.listen({ host: this.#options.host, port: this.#spec.port, backlog: listenBacklog, reusePort: this.#options.reusePort }, () => {
        this.#server.off('error', failed);
        this.#server.on('error', this.#options.onError);
        resolve();
      });
    });
  }

  /** Takes new endpoints and affinity in place; connections already relayed keep their endpoint. */
  update(spec: ListenerSpec): void {
    this.#spec = spec;
    this.#picker.update(spec.endpoints, spec.affinitySeconds);
  }

  /** Stops accepting (the port is free when this resolves); established connections run until they end. */
  async close(): Promise<void> {
    if (this.#server.listening) this.#server.close();
    await new Promise<void>((r) => setImmediate(r));
  }

  /** Stops accepting and cuts every connection. */
  async destroy(): Promise<void> {
    for (const c of this.#connections) c.destroy();
    await this.close();
  }

  #accept(client: Socket): void {
    // An error before relaying starts (the client resets while we dial) only ends this connection.
    client.on('error', noop);
    const ip = client.remoteAddress ?? '';
    const target = this.#picker.pick(ip);
    if (!target) {
      // No endpoint: refuse at once with a reset, as the kernel modes reject.
      client.resetAndDestroy();
      return;
    }
    this.#connections.add(client);
    client.once('close', () => this.#connections.delete(client));
    this.#dial(client, ip, target, true);
  }

  #dial(client: Socket, ip: string, target: Target, mayRetry: boolean): void {
    // highWaterMark is a stream option net.Socket passes on to Duplex; @types/node does not list it for connect().
    const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true, noDelay: true, highWaterMark } as TcpNetConnectOpts);
    upstream.setTimeout(this.#options.connectTimeoutMs);
    let settled = false;
    const failed = () => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      if (client.destroyed) return;
      const other = mayRetry ? this.#picker.pick(ip, target) : undefined;
      if (other) this.#dial(client, ip, other, false);
      else client.resetAndDestroy();
    };
    upstream.once('error', failed);
    upstream.once('timeout', failed);
    upstream.once('connect', () => {
      settled = true;
      upstream.off('error', failed);
      upstream.off('timeout', failed);
      upstream.setTimeout(0);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      pump(client, upstream);
      pump(upstream, client);
    });
  }
}

function noop(): void {}

/**
 * Copies `from` to `to`: pauses `from` while `to` has more than its high-water mark queued; forwards end-of-stream as
 * a half-close (the other direction keeps flowing); forwards a reset as a reset and any other failure as a close.
 */
function pump(from: Socket, to: Socket): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    to.uncork();
  };
  from.on('data', (chunk: Buffer) => {
    // A full read means more is waiting: libuv reads up to 32 of them in one go. Cork until this loop iteration's
    // check phase, so they leave in one writev instead of one write each: on loopback ~40% more bulk throughput
    // (bigger sends, fewer syscalls). Shorter reads (interactive traffic) are written at once.
    if (chunk.length >= fullRead && !corked) {
      corked = true;
      to.cork();
      setImmediate(uncork);
    }
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  from.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET' && !to.destroyed) to.resetAndDestroy();
    else to.destroy();
  });
  // Closed without an error but not both ways done (destroy() by the backend): the other side goes too.
  from.on('close', () => {
    if (!to.destroyed && !(from.readableEnded && from.writableFinished)) to.destroy();
  });
}

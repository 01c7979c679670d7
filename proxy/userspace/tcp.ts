// One TCP listener of the userspace proxy: accepts on a Service's port, picks an endpoint, connects, and relays
// both directions with backpressure and half-close. Runs in the main thread and, with `threads > 1`, in workers.
// The relaying runs on the native handles (relay.ts) when Node's bindings are as expected, else on net.Socket.
import { connect, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { Target } from '../plan/types.ts';
import type { ListenerSpec } from './listeners.ts';
import { DialDeadlines, maxDialAttempts } from './deadlines.ts';
import { ListenerPicker } from './picker.ts';
import { LiveList } from '../../runtime/live-list.ts';
import { native, Relay, type RelayHost, type TcpHandle } from './relay.ts';

/** How a TCP listener binds and dials. */
export interface TcpOptions {
  host: string;
  /** Set SO_REUSEPORT, so that worker threads can listen on the same port (the kernel spreads connections). */
  reusePort: boolean;
  /** The first dial's time-out; retries (deadlines.ts maxDialAttempts) wait twice as long each. */
  connectTimeoutMs: number;
  /** Relay on native handles when the bindings allow (relay.ts); else, or when false, on net.Socket. */
  nativeRelay?: boolean;
  /** Errors of the listening socket after it is open (e.g. EMFILE on accept). */
  onError: (err: Error) => void;
}

// Socket buffers in userspace. A read from the kernel is up to 64 KiB; with Node's default 16 KiB write high-water
// mark every such chunk would pause and resume the reading side (two epoll changes per chunk). 1 MiB per direction
// keeps bulk transfers flowing while still bounding what a slow reader can make us hold.
const highWaterMark = 1 << 20;
const listenBacklog = 4096;
/** Dial errors that are this host's own (descriptors, ports, memory), not the endpoint's. */
const localDialErrors: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);
// What libuv asks Node for per socket read: a read this long filled the buffer, so the kernel likely holds more.
const fullRead = 64 * 1024;

/** A TCP listener forwarding to the endpoints of one Service port. Established connections outlive endpoint changes. */
export class TcpListener {
  #spec: ListenerSpec;
  readonly #options: TcpOptions;
  readonly #picker: ListenerPicker;
  readonly #server: Server;
  // A linked list, not a Set: every connection passes through it (runtime/live-list.ts says why that matters).
  readonly #connections = new LiveList<{ destroy(): void }>();
  readonly #deadlines: DialDeadlines;
  /** What relays on native handles use of this listener. */
  readonly #host: RelayHost;
  #native = false;
  #lastDialReport = -Infinity;

  constructor(spec: ListenerSpec, options: TcpOptions) {
    this.#spec = spec;
    this.#options = options;
    this.#picker = new ListenerPicker(spec);
    this.#deadlines = new DialDeadlines(options.connectTimeoutMs);
    // The client is read while the endpoint is dialled (into the stream's buffer, bounded by highWaterMark; `end` is
    // not emitted before it is consumed), which saves a loop iteration per connection over pauseOnConnect.
    this.#server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark }, (c) => this.#accept(c));
    const picker = this.#picker;
    const connections = this.#connections;
    this.#host = {
      pick: (ip, failed) => picker.pick(ip, failed),
      get needsClientIP() {
        return picker.needsClientIP;
      },
      deadlines: this.#deadlines,
      dialFailed: (status, target) => this.#dialFailed(getSystemErrorName(status), target),
      opened: (r) => connections.add(r),
      closed: (entry) => connections.delete(entry),
    };
  }

  get spec(): ListenerSpec {
    return this.#spec;
  }

  /**
   * A dial that failed for this host's own reason (out of file descriptors or ephemeral ports) goes to onError, at
   * most every 10 s: clients are being reset, and nothing else would say why. Refusals and time-outs are the
   * endpoints' and are not reported.
   */
  #dialFailed(code: string, target: Target): void {
    if (!localDialErrors.has(code)) return;
    const now = performance.now();
    if (now - this.#lastDialReport < 10_000) return;
    this.#lastDialReport = now;
    this.#options.onError(new Error(`cannot dial endpoint ${target.ip}:${target.port}: ${code}; connections to this Service port are reset while it lasts`));
  }

  /** Client connections being relayed now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Whether connections are relayed on native handles (relay.ts) rather than net.Socket. */
  get relaysNatively(): boolean {
    return this.#native;
  }

  /** Opens the listening socket; rejects with the bind error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.#server.once('error', failed);
      this.#server.listen({ host: this.#options.host, port: this.#spec.port, backlog: listenBacklog, reusePort: this.#options.reusePort }, () => {
        this.#server.off('error', failed);
        this.#server.on('error', this.#options.onError);
        this.#acceptNatively();
        resolve();
      });
    });
  }

  /** Takes new endpoints and affinity in place; connections already relayed keep their endpoint. */
  update(spec: ListenerSpec): void {
    this.#spec = spec;
    this.#picker.update(spec);
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

  /** Takes the accepted connections as native handles, before net.Server wraps them in sockets (see relay.ts). */
  #acceptNatively(): void {
    const handle = (this.#server as unknown as { _handle?: { onconnection?: unknown } })._handle;
    if (this.#options.nativeRelay === false || !native || !handle || typeof handle.onconnection !== 'function') return;
    handle.onconnection = (status: number, client: TcpHandle | undefined) => {
      if (status < 0 || !client) {
        this.#options.onError(Object.assign(new Error(`accept failed (${status})`), { errno: status }));
        return;
      }
      new Relay(this.#host, client).start();
    };
    this.#native = true;
  }

  #accept(client: Socket): void {
    // remoteAddress costs a getpeername() syscall: only ClientIP affinity needs it.
    const ip = this.#picker.needsClientIP ? (client.remoteAddress ?? '') : '';
    const target = this.#picker.pick(ip);
    if (!target) {
      // No endpoint: refuse at once with a reset, as the kernel modes reject.
      client.on('error', noop);
      client.resetAndDestroy();
      return;
    }
    const entry = this.#connections.add(client);
    const link: Link = { client, upstream: undefined };
    // One listener per event for the whole life of the connection (fewer registrations per connection): before the
    // upstream is connected an error or close only ends this connection; afterwards it is forwarded.
    client.on('error', (err: NodeJS.ErrnoException) => {
      if (link.upstream) forwardError(err, link.upstream);
    });
    client.on('close', () => {
      this.#connections.delete(entry);
      if (link.upstream) forwardClose(client, link.upstream);
    });
    this.#dial(link, ip, target, 0);
  }

  /** Dials `target` as relay.ts does: up to maxDialAttempts endpoints, each time-out twice the one before. */
  #dial(link: Link, ip: string, target: Target, attempt: number): void {
    const { client } = link;
    // highWaterMark is a stream option net.Socket passes on to Duplex; @types/node does not list it for connect().
    const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true, noDelay: true, highWaterMark } as TcpNetConnectOpts);
    const failed = () => {
      upstream.destroy();
      if (client.destroyed) return;
      const other = attempt + 1 < maxDialAttempts ? (this.#picker.pick(ip, target) ?? this.#picker.pick(ip)) : undefined;
      if (other) this.#dial(link, ip, other, attempt + 1);
      else client.resetAndDestroy();
    };
    const pending = this.#deadlines.start(failed, attempt);
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (link.upstream === upstream) forwardError(err, client);
      else if (this.#deadlines.settle(pending)) {
        this.#dialFailed(err.code ?? err.message, target);
        failed();
      }
    });
    upstream.on('close', () => {
      if (link.upstream === upstream) forwardClose(upstream, client);
    });
    upstream.on('connect', () => {
      this.#deadlines.settle(pending);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      link.upstream = upstream;
      pipe(client, upstream);
      pipe(upstream, client);
    });
  }
}

/** A client connection and, once connected, its upstream. */
interface Link {
  readonly client: Socket;
  upstream: Socket | undefined;
}

function noop(): void {}

/**
 * Copies `from` to `to`: pauses `from` while `to` has more than its high-water mark queued, and forwards
 * end-of-stream as a half-close (the other direction keeps flowing). Errors and closes are forwarded by the caller.
 */
function pipe(from: Socket, to: Socket): void {
  let corked = false;
  let draining = false;
  const uncork = () => {
    corked = false;
    to.uncork();
  };
  const resume = () => from.resume();
  from.on('data', (chunk: Buffer) => {
    // A full read means more is waiting: libuv reads up to 32 of them in one go. Cork until this loop iteration's
    // check phase, so they leave in one writev instead of one write each: on loopback ~40% more bulk throughput
    // (bigger sends, fewer syscalls). Shorter reads (interactive traffic) are written at once.
    if (chunk.length >= fullRead && !corked) {
      corked = true;
      to.cork();
      setImmediate(uncork);
    }
    if (to.write(chunk)) return;
    from.pause();
    // Registered on the first backpressure only: most connections never see one.
    if (!draining) {
      draining = true;
      to.on('drain', resume);
    }
  });
  // The client may have sent its FIN (and nothing else) while the upstream was dialled.
  if (from.readableEnded) forwardEnd(to);
  else from.on('end', () => forwardEnd(to));
}

/** `to`'s peer finished sending: pass the FIN on, at the latest in this loop iteration's check phase. */
function forwardEnd(to: Socket): void {
  // Waiting for the check phase lets the events already polled in this iteration run first. A client that closes
  // as soon as it has its answer (HTTP with `Connection: close`) has then often sent its FIN too, and both
  // directions can be closed at once, without a shutdown() (see endNow). The wait is bounded by one iteration.
  if (to.readableEnded) endNow(to);
  else setImmediate(endNow, to);
}

/** Half-closes `to`, or closes it when it has ended as well. */
function endNow(to: Socket): void {
  if (to.destroyed) return;
  // When `to` has ended too and has nothing queued, both directions are done: destroy() closes the socket and the
  // kernel sends the FIN at close, which saves end()'s shutdown() syscall (on loopback, the FIN's whole delivery to
  // the peer runs inside that syscall) and the stream's end/finish steps.
  if (to.readableEnded && to.writableLength === 0) to.destroy();
  else to.end();
}

/** `from` failed: a reset is passed on as a reset, anything else as a close. */
function forwardError(err: NodeJS.ErrnoException, to: Socket): void {
  if (err.code === 'ECONNRESET' && !to.destroyed) to.resetAndDestroy();
  else to.destroy();
}

/** `from` closed: if not both ways done (destroy() by the backend, or an error), the other side goes too. */
function forwardClose(from: Socket, to: Socket): void {
  // Done both ways: `from` finished writing, or `to` ended as well (then forwardEnd() closed `from` without a shutdown).
  const clean = from.readableEnded && (from.writableFinished || to.readableEnded);
  if (!clean && !to.destroyed) to.destroy();
}

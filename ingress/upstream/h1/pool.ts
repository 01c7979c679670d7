// The gateway's own HTTP/1.1 client for plain-HTTP upstream endpoints: a pool of kept-alive connections
// (connection.ts) to one endpoint, with undici's dispatch interface so that forward.ts drives it as it drives an undici
// Pool. It exists for speed: per proxied request it costs about 20 µs of CPU less than undici (bench/ingress), by
// reading responses with Node's native llhttp on native TCP handles instead of llhttp in WebAssembly on net.Socket.
// TLS and HTTP/2 (gRPC) upstreams stay on undici (pool.ts chooses).
import { UpstreamError } from '../errors.ts';
import { H1Connection, type ConnectionOwner } from './connection.ts';
import { Exchange, type H1Handler } from './exchange.ts';
import { requestHead } from './head.ts';

export type { H1Controller, H1Handler } from './exchange.ts';

export interface H1PoolOptions {
  /** Connections at most (Infinity: no limit, as nginx opens one per request it has no idle one for); more requests wait for one. */
  connections: number;
  /** Idle connections kept at most; one more going idle with no request waiting is closed. Default: `connections`. */
  maxIdle?: number;
  connectTimeoutMs: number;
  /** How long an idle connection is kept (less when the upstream says so with Keep-Alive: timeout). Default 4 s, undici's. */
  keepAliveTimeoutMs?: number;
}

export interface H1DispatchOptions {
  path: string;
  method: string;
  /** Flat [name, value, ...]. */
  headers: string[];
  body?: NodeJS.ReadableStream | null;
  /** From the request's end to the response's head; 0: none. */
  headersTimeout?: number;
  /** Between two reads of the response body (not while paused); 0: none. */
  bodyTimeout?: number;
  /**
   * While a request body waits on a full write queue: how long the upstream may take none of it (nginx's
   * proxy_send_timeout, counted again when it takes some); headersTimeout when absent, 0: none.
   */
  sendTimeout?: number;
}

/** Connections to one endpoint, `ip:port` (`address` names it: `[ip]:port` for IPv6). */
export class H1Pool implements ConnectionOwner {
  readonly #ip: string;
  readonly #port: number;
  readonly #address: string;
  readonly #max: number;
  readonly #maxIdle: number;
  readonly #connectTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #open = new Set<H1Connection>();
  // Idle connections, the most recently used last (taken first: it is the least likely to have been timed out).
  readonly #idle: H1Connection[] = [];
  readonly #queue: Exchange[] = [];
  #dialing = 0;
  #closed = false;
  #destroyed = false;
  #whenEmpty: (() => void) | null = null;

  constructor(ip: string, port: number, address: string, options: H1PoolOptions) {
    this.#ip = ip;
    this.#port = port;
    this.#address = address;
    this.#max = Math.max(1, options.connections);
    this.#maxIdle = Math.max(0, options.maxIdle ?? this.#max);
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#keepAliveMs = options.keepAliveTimeoutMs ?? 4000;
  }

  /** Open connections (connecting, busy or idle). */
  get connectionCount(): number {
    return this.#open.size;
  }

  /** Sends one request; the handler hears exactly one of onResponseEnd and onResponseError. */
  dispatch(options: H1DispatchOptions, handler: H1Handler): boolean {
    const body = options.body ?? null;
    const head = requestHead({ method: options.method, path: options.path, headers: options.headers, hasBody: body !== null }, this.#address);
    if (head instanceof UpstreamError) {
      new Exchange({ text: '', contentLength: 0, chunked: false }, options.method, null, 0, 0, 0, handler).fail(head);
      return true;
    }
    const headersTimeout = options.headersTimeout ?? 0;
    const ex = new Exchange(head, options.method, body, headersTimeout, options.bodyTimeout ?? 0, options.sendTimeout ?? headersTimeout, handler);
    if (this.#closed) ex.fail(new UpstreamError('UPSTREAM_CLOSED', `the connections to ${this.#address} are closed`));
    else {
      this.#queue.push(ex);
      this.#drive();
    }
    return true;
  }

  /** Lets the requests in flight and waiting finish, then closes every connection; later requests fail UPSTREAM_CLOSED. */
  close(): Promise<void> {
    this.#closed = true;
    for (const conn of this.#idle.splice(0)) conn.destroy(new UpstreamError('UPSTREAM_CLOSED', 'closed'));
    return this.#empty();
  }

  /** Closes every connection now; requests in flight and waiting fail UPSTREAM_CLOSED. */
  destroy(): Promise<void> {
    this.#closed = this.#destroyed = true;
    const err = new UpstreamError('UPSTREAM_CLOSED', `the connections to ${this.#address} were closed`);
    for (const ex of this.#queue.splice(0)) ex.fail(err);
    for (const conn of [...this.#open]) conn.destroy(err);
    return this.#empty();
  }

  /** ConnectionOwner: a connection can take a request. */
  idle(conn: H1Connection): void {
    if (this.#destroyed || (this.#closed && this.#pending() === 0)) return conn.destroy(new UpstreamError('UPSTREAM_CLOSED', 'closed'));
    // nginx's keepalive N: the connections cached per upstream, beyond which one that goes idle is closed.
    if (this.#idle.length >= this.#maxIdle && this.#pending() === 0) return conn.destroy(new UpstreamError('UPSTREAM_CLOSED', 'more idle connections than are kept'));
    this.#idle.push(conn);
    this.#drive();
  }

  /** ConnectionOwner: a connection closed; a failed dial fails the request that has waited longest. */
  gone(conn: H1Connection, dialError?: Error): void {
    this.#open.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (dialError !== undefined) {
      this.#dialing--;
      this.#dropEnded();
      if (!this.#destroyed) this.#queue.shift()?.fail(dialError);
    }
    this.#drive();
  }

  /** Gives waiting requests idle connections, and dials for the rest within the limit. */
  #drive(): void {
    for (;;) {
      this.#dropEnded();
      if (this.#queue.length === 0) break;
      const conn = this.#idle.pop();
      if (conn === undefined) break;
      conn.start(this.#queue.shift() as Exchange);
    }
    let wanted = this.#queue.length - this.#dialing;
    while (wanted > 0 && this.#open.size < this.#max && !this.#destroyed) {
      this.#dialing++;
      wanted--;
      const conn = new H1Connection(this, this.#ip, this.#port, this.#address, this.#connectTimeoutMs, this.#keepAliveMs);
      this.#open.add(conn);
    }
    if (this.#closed && this.#pending() === 0) {
      for (const c of this.#idle.splice(0)) c.destroy(new UpstreamError('UPSTREAM_CLOSED', 'closed'));
      if (this.#open.size === 0) this.#whenEmpty?.();
    }
  }

  /** ConnectionOwner: a dial succeeded. */
  connected(): void {
    this.#dialing--;
  }

  #pending(): number {
    this.#dropEnded();
    return this.#queue.length;
  }

  /** Requests aborted while they waited leave the queue. */
  #dropEnded(): void {
    while (this.#queue.length > 0 && this.#queue[0]!.ended) this.#queue.shift();
  }

  #empty(): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#whenEmpty = () => {
        this.#whenEmpty = null;
        resolve();
      };
      this.#drive();
    });
  }
}

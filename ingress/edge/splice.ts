// Joins a client's TCP connection to an endpoint's, byte for byte, for TLS passthrough: the bytes already read
// from the client (its ClientHello) go first, then both directions are piped with backpressure until either side
// closes. Endpoints are tried in order until one accepts within the connect time-out (at most `tries`). Either
// socket may fail at any moment (the client resets while its endpoint is connected): each has an error listener
// from its first moment here to its close, and a client gone while connecting closes the endpoint's connection.
// A signal (the gateway's drain timing out) closes both sides at any stage; an idle time-out closes both once
// neither has read or written for that long (nginx's proxy_timeout for its streams).
import { connect, type Socket } from 'node:net';
import type { Endpoint } from '../upstream/upstreams.ts';

/** How a spliced connection ended. */
export interface SpliceResult {
  /** `ip:port` of the endpoint that took the connection; undefined when none did. */
  endpoint?: string;
  /** Why no endpoint took it, or why the relay ended in an error. */
  error?: string;
  /** Bytes from the client to the endpoint (the replayed ones included) and back. */
  sent: number;
  received: number;
}

/** SpliceResult.error when the client closed its connection before an endpoint took it. */
export const clientGone = 'the client went away';

/** SpliceResult.error when the signal cut the connection (the gateway's drain timed out). */
export const cutByShutdown = 'closed at shutdown (--drain-timeout)';

/** How a splice connects, and what may cut it. */
export interface SpliceOptions {
  connectTimeoutMs: number;
  /** Endpoints tried at most. */
  tries: number;
  /** No endpoint is tried after the first once this long has passed since the first try began (nginx's proxy_next_upstream_timeout). */
  triesWithinMs?: number;
  /** Aborted: the client's and the endpoint's connections are closed at once, whatever the stage. */
  signal?: AbortSignal;
  /** Once relaying: both connections are closed when neither has read or written anything for this long. */
  idleMs?: number;
}

/**
 * Connects to the first endpoint that accepts and relays until both sockets are closed; never rejects. The caller
 * keeps an error listener on `client` (a reset while an endpoint is connected must not go unhandled).
 */
export async function splice(client: Socket, first: Buffer, endpoints: readonly Endpoint[], o: SpliceOptions): Promise<SpliceResult> {
  let error = endpoints.length === 0 ? 'the backend has no endpoints' : undefined;
  const cut = () => client.destroy();
  if (o.signal?.aborted) cut();
  o.signal?.addEventListener('abort', cut, { once: true });
  const started = performance.now();
  try {
    for (const [i, e] of endpoints.slice(0, o.tries).entries()) {
      if (client.destroyed) return { error: o.signal?.aborted ? cutByShutdown : clientGone, sent: 0, received: 0 };
      // A try under way is not cut by it: only the next is not started, as nginx does.
      if (i > 0 && o.triesWithinMs !== undefined && performance.now() - started >= o.triesWithinMs) {
        error = `${error}; no other endpoint tried after ${o.triesWithinMs} ms`;
        break;
      }
      const upstream = await connected(e, o.connectTimeoutMs, o.signal);
      if (typeof upstream === 'string') {
        error = `${e.ip}:${e.port}: ${upstream}`;
        continue;
      }
      // The client may have closed while the endpoint accepted: its 'close' is past, so no relay would ever end.
      if (client.destroyed) {
        upstream.destroy();
        return { error: o.signal?.aborted ? cutByShutdown : clientGone, sent: 0, received: 0 };
      }
      return await relay(client, upstream, first, `${endpointText(e)}`, o.signal, o.idleMs);
    }
  } finally {
    o.signal?.removeEventListener('abort', cut);
  }
  client.destroy();
  return { error: o.signal?.aborted ? cutByShutdown : error, sent: 0, received: 0 };
}

const endpointText = (e: Endpoint) => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);

/**
 * A connected socket, or the reason it could not connect. Its error listener stays (doing nothing once connected):
 * the relay adds its own, and an error in between only ever comes with the socket destroyed.
 */
function connected(e: Endpoint, timeoutMs: number, signal: AbortSignal | undefined): Promise<Socket | string> {
  return new Promise((resolve) => {
    const s = connect({ host: e.ip, port: e.port, noDelay: true, allowHalfOpen: true });
    let settled = false;
    const abort = () => {
      s.destroy();
      settle(cutByShutdown);
    };
    const settle = (v: Socket | string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve(v);
    };
    signal?.addEventListener('abort', abort, { once: true });
    const timer = setTimeout(() => {
      s.destroy();
      settle(`no connection within ${timeoutMs} ms`);
    }, timeoutMs);
    s.once('connect', () => settle(s));
    s.on('error', (err: NodeJS.ErrnoException) => settle(err.code ?? err.message));
  });
}

function relay(client: Socket, upstream: Socket, first: Buffer, endpoint: string, signal: AbortSignal | undefined, idleMs: number | undefined): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let open = 2;
    const fail = (side: string) => (err: NodeJS.ErrnoException) => {
      error ??= `${side}: ${err.code ?? err.message}`;
      client.destroy();
      upstream.destroy();
    };
    // Both at once: finish() would otherwise give the endpoint's side up to 10 s to take what is left.
    const cut = () => {
      error ??= cutByShutdown;
      client.destroy();
      upstream.destroy();
    };
    if (signal?.aborted) cut();
    signal?.addEventListener('abort', cut, { once: true });
    if (idleMs !== undefined) {
      // A socket's time-out restarts at each of its reads and writes: bytes going either way keep both sides alive.
      const idle = () => {
        error ??= `idle for ${idleMs} ms`;
        client.destroy();
        upstream.destroy();
      };
      client.setTimeout(idleMs, idle);
      upstream.setTimeout(idleMs, idle);
    }
    const closed = () => {
      if (--open > 0) return;
      signal?.removeEventListener('abort', cut);
      resolve({ endpoint, ...(error ? { error } : {}), sent: upstream.bytesWritten, received: client.bytesWritten });
    };
    client.on('error', fail('client'));
    upstream.on('error', fail('endpoint'));
    client.once('close', () => {
      finish(upstream);
      closed();
    });
    upstream.once('close', () => {
      finish(client);
      closed();
    });
    upstream.write(first);
    // A half-close is passed on (pipe ends the other side's writing when one side ends its own).
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}

/** Once its peer is gone: lets what is written to `s` go out, then closes it (nothing it sends has anywhere to go). */
function finish(s: Socket): void {
  if (s.destroyed || s.writableFinished) {
    s.destroy();
    return;
  }
  s.once('finish', () => s.destroy());
  if (!s.writableEnded) s.end();
  // A peer that never reads what is left is not waited for without end.
  setTimeout(() => s.destroy(), 10_000).unref();
}

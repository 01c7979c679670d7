// The gateway's accepting socket when bytes must be read before HTTP or TLS starts: the PROXY protocol header a
// load balancer sends first (--proxy-protocol). A connection is handed to the HTTP or TLS server only once its
// header is whole and valid, with the bytes after the header put back in front of the stream; one from a peer
// outside --proxy-protocol-from, with no header, a garbled one, or one not whole within the time-out is closed
// without a byte answered (the spec: never guess whether a header is there, abort on anything that does not
// match). The header's source becomes the connection's client, found by connectionClient() from then on.
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from '../../runtime/logger.ts';
import { normalizeIP, type AddressSet } from '../limits/client-ip.ts';
import { parseProxyHeader } from './proxy-protocol.ts';

/** Where a connection comes from, as the gateway counts it (limits, source ranges, forwarded headers, access log). */
export interface ConnectionClient {
  address: string;
  port: number;
}

// Connections whose client a PROXY header named, by their TCP socket.
const clients = new WeakMap<object, ConnectionClient>();

/**
 * The client of a connection: the PROXY header's source when one named it, else the socket's own peer ('' and 0
 * once the socket has closed). Takes the TCP socket, a TLS socket over it, or HTTP/2's stand-in for one (which
 * passes `_parent`, the TLS socket's TCP socket, through).
 */
export function connectionClient(socket: Socket): ConnectionClient {
  const named = clients.get(socket) ?? clients.get((socket as { _parent?: object })._parent ?? clients);
  if (named) return named;
  const address = socket.remoteAddress;
  return { address: address === undefined ? '' : (normalizeIP(address) ?? address), port: socket.remotePort ?? 0 };
}

/** Why a connection was closed before HTTP or TLS saw it (the `reason` of netplane_ingress_rejected_total). */
export type EdgeRefusal = 'proxy-protocol-peer' | 'proxy-protocol-header' | 'proxy-protocol-timeout';

/** How the edge reads connections. */
export interface EdgeOptions {
  proxyProtocol: {
    /** Peers allowed to send a header; every other connection is closed at once. */
    from: AddressSet;
    /** Time a connection has to send its whole header. */
    timeoutMs: number;
  };
  log: Logger;
  /** Counts a connection closed before it was handed on. */
  refused: (reason: EdgeRefusal) => void;
  /** Gives a connection to the HTTP or TLS server (with the bytes after the header still to be read). */
  handOff: (socket: Socket) => void;
}

/** A listening socket that reads each connection's PROXY header before handing the connection on. */
export class EdgeListener {
  /** The accepting socket; listen on it instead of the HTTP or TLS server. */
  readonly server: NetServer;
  readonly #o: EdgeOptions;
  readonly #reading = new Set<Socket>();
  readonly #warned = new Map<EdgeRefusal, { at: number; since: number }>();

  constructor(options: EdgeOptions) {
    this.#o = options;
    this.server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Stops accepting and closes the connections whose header is still being read. */
  close(): void {
    this.server.close();
    for (const socket of this.#reading) socket.destroy();
    this.#reading.clear();
  }

  #accept(socket: Socket): void {
    const { proxyProtocol } = this.#o;
    const peer = socket.remoteAddress ?? '';
    socket.on('error', ignore);
    if (!proxyProtocol.from.has(peer)) {
      this.#refuse(socket, 'proxy-protocol-peer', `peer ${peer} is not in --proxy-protocol-from`);
      return;
    }
    this.#reading.add(socket);
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => this.#refuse(socket, 'proxy-protocol-timeout', `no whole PROXY protocol header from ${peer} within ${proxyProtocol.timeoutMs} ms`), proxyProtocol.timeoutMs);
    const stop = () => {
      clearTimeout(timer);
      this.#reading.delete(socket);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', stop);
    };
    const onEnd = () => {
      stop();
      // A balancer's TCP health check connects and closes without a byte: nothing was refused.
      if (received.length === 0) socket.destroy();
      else this.#refuse(socket, 'proxy-protocol-header', `${peer} closed the connection inside its PROXY protocol header`);
    };
    const onData = (chunk: Buffer) => {
      // Bounded: the parser says incomplete only while the bytes are a beginning of a header, which is at most
      // 107 bytes (version 1) or 16 + 4096 (version 2), so no more than that and one chunk is ever held.
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const parsed = parseProxyHeader(received);
      if (parsed.status === 'incomplete') return;
      stop();
      if (parsed.status === 'invalid') {
        this.#refuse(socket, 'proxy-protocol-header', `bad PROXY protocol header from ${peer}: ${parsed.reason}`);
        return;
      }
      socket.pause();
      const { source } = parsed.header;
      if (source) clients.set(socket, { address: normalizeIP(source.address) ?? source.address, port: source.port });
      if (received.length > parsed.header.length) socket.unshift(received.subarray(parsed.header.length));
      socket.off('error', ignore);
      this.#o.handOff(socket);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', stop);
    socket.resume();
  }

  /**
   * Closes a connection and counts it. Each reason is logged at warn at most once a minute, with how many more
   * there were (a balancer that sends no header would otherwise log every connection), and each at debug.
   */
  #refuse(socket: Socket, reason: EdgeRefusal, message: string): void {
    socket.destroy();
    this.#o.refused(reason);
    const { log } = this.#o;
    log.debug({ reason }, `connection closed: ${message}`);
    const now = Date.now();
    const warned = this.#warned.get(reason);
    if (warned && now - warned.at < 60_000) {
      warned.since++;
      return;
    }
    this.#warned.set(reason, { at: now, since: 0 });
    log.warn({ reason }, `connection closed: ${message}${warned?.since ? ` (and ${warned.since} more for this reason in the last minute)` : ''}`);
  }
}

function ignore(): void {}

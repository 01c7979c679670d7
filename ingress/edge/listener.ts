// The gateway's accepting socket when bytes must be read before HTTP or TLS starts. First the PROXY protocol header
// a load balancer sends (--proxy-protocol): one from a peer outside --proxy-protocol-from, with no header, a garbled
// one, or one not whole within the time-out is closed without a byte answered (the spec: never guess whether a
// header is there, abort on anything that does not match); the header's source becomes the connection's client,
// found by connectionClient() from then on. Then, on the HTTPS listener with --enable-ssl-passthrough, the TLS
// ClientHello is peeked: a server name that is passed through gets the raw connection spliced to its backend.
// Every other connection is handed to the HTTP or TLS server with the bytes after the header put back in front.
// Every connection counts toward --max-connections-per-ip from the moment it is accepted: under its peer while the
// PROXY header is read, then under the client the header names. A socket here always has an error listener (a
// client may reset it at any moment: while its header or ClientHello is read, while its backend is connected).
// A passed-through connection is work in flight from the moment its name is chosen for passthrough until it has
// closed: the gateway counts it as it counts a request, so that a drain waits for it (and cuts it at the end).
import { MinuteWarnings } from '../../runtime/waiting.ts';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from '../../runtime/logger.ts';
import { normalizeIP, type AddressSet } from '../limits/client-ip.ts';
import { ClientHelloReader } from './client-hello.ts';
import type { Passthrough, PassthroughRefusal, PassthroughTarget } from './passthrough.ts';
import { parseProxyHeader } from './proxy-protocol.ts';
import { readStart, wholeParse } from './read-start.ts';
import { clientGone, cutByShutdown, splice } from './splice.ts';

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

/**
 * Why a connection was closed before HTTP or TLS saw it (the `reason` of netplane_ingress_rejected_total): its PROXY
 * header or ClientHello, or the passthrough Ingress's source range or limit-connections.
 */
export type EdgeRefusal = 'proxy-protocol-peer' | 'proxy-protocol-header' | 'proxy-protocol-timeout' | 'client-hello-timeout' | PassthroughRefusal;

/** How the edge reads connections; at least one of `proxyProtocol` and `passthrough`. */
export interface EdgeOptions {
  proxyProtocol?: {
    /** Peers allowed to send a header; every other connection is closed at once. */
    from: AddressSet;
    /** Time a connection has to send its whole header. */
    timeoutMs: number;
  };
  passthrough?: {
    passthrough: Passthrough;
    /** Time a client has to send its whole ClientHello. */
    helloTimeoutMs: number;
    connectTimeoutMs: number;
    /** Where one JSON line per passed-through connection goes, when it has closed. */
    accessLog?: Logger;
  };
  /**
   * Counts the connection under `ip` toward --max-connections-per-ip (moving it from the address it was counted
   * under, if any); false when `ip` is at the cap: the connection was closed.
   */
  admit: (socket: Socket, ip: string) => boolean;
  log: Logger;
  /** Counts a connection closed before it was handed on. */
  refused: (reason: EdgeRefusal) => void;
  /** Gives a connection to the HTTP or TLS server (with the bytes after the header still to be read). */
  handOff: (socket: Socket) => void;
  /**
   * Counts a passed-through connection as work in flight; the function returned is called once, when it has closed
   * (or was refused).
   */
  relaying?: () => () => void;
}

/** A listening socket that reads the start of each connection before handing it on or passing it through. */
export class EdgeListener {
  /** The accepting socket; listen on it instead of the HTTP or TLS server. */
  readonly server: NetServer;
  readonly #o: EdgeOptions;
  readonly #reading = new Set<Socket>();
  // Cuts every passed-through connection (cutRelays), at any stage of its splice.
  readonly #cut = new AbortController();
  #relays = 0;
  readonly #warned = new MinuteWarnings<EdgeRefusal>();

  constructor(options: EdgeOptions) {
    this.#o = options;
    // Half-open as a passed-through connection needs; a handed-on one takes its server's setting (handOff).
    this.server = createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (socket) => void this.#accept(socket));
  }

  /**
   * Stops accepting and closes the connections still being read; passed-through connections go on (a drain lets
   * them end on their own, then cuts them with cutRelays).
   */
  close(): void {
    this.server.close();
    for (const socket of this.#reading) socket.destroy();
    this.#reading.clear();
  }

  /** Passed-through connections open now (or still connecting to their backend). */
  get relays(): number {
    return this.#relays;
  }

  /** Closes every passed-through connection, both its sides, at once (and any that starts later). */
  cutRelays(): void {
    this.#cut.abort();
  }

  async #accept(socket: Socket): Promise<void> {
    const { proxyProtocol, passthrough, admit } = this.#o;
    const peer = socket.remoteAddress ?? '';
    // Kept for the socket's whole life: the servers and the relay add their own, and an error (ECONNRESET) only
    // ever comes with the socket destroyed, so this one has nothing to do but be there.
    socket.on('error', ignore);
    if (proxyProtocol && !proxyProtocol.from.has(peer)) return this.#refuse(socket, 'proxy-protocol-peer', `peer ${peer} is not in --proxy-protocol-from`);
    if (!admit(socket, connectionClient(socket).address)) return;
    this.#reading.add(socket);
    try {
      let rest: Buffer = Buffer.alloc(0);
      if (proxyProtocol) {
        const r = await readStart(socket, rest, proxyProtocol.timeoutMs, wholeParse(parseProxyHeader));
        if ('ended' in r) {
          // A balancer's TCP health check connects and closes without a byte: nothing was refused.
          if (r.ended === 'end' && r.data.length === 0) return void socket.destroy();
          return this.#refuse(socket, r.ended === 'end' ? 'proxy-protocol-header' : 'proxy-protocol-timeout', r.ended === 'end' ? `${peer} closed the connection inside its PROXY protocol header` : `no whole PROXY protocol header from ${peer} within ${proxyProtocol.timeoutMs} ms`);
        }
        if (r.parsed.status === 'invalid') return this.#refuse(socket, 'proxy-protocol-header', `bad PROXY protocol header from ${peer}: ${r.parsed.reason}`);
        const { source, length } = r.parsed.header;
        if (source) clients.set(socket, { address: normalizeIP(source.address) ?? source.address, port: source.port });
        rest = r.data.subarray(length);
        // From here on the connection counts as its client's, not the balancer's.
        if (!admit(socket, connectionClient(socket).address)) return;
      }
      if (passthrough) {
        const reader = new ClientHelloReader();
        const r = await readStart(socket, rest, passthrough.helloTimeoutMs, (chunk) => reader.push(chunk));
        if ('ended' in r) {
          if (r.ended === 'end') return void socket.destroy();
          return this.#refuse(socket, 'client-hello-timeout', `no whole TLS ClientHello from ${connectionClient(socket).address} within ${passthrough.helloTimeoutMs} ms`);
        }
        rest = r.data;
        // A ClientHello that cannot be read is the TLS server's to answer, as is every name not passed through.
        if (r.parsed.status === 'complete' && r.parsed.serverName !== undefined) {
          const target = passthrough.passthrough.target(r.parsed.serverName);
          if (target) {
            this.#reading.delete(socket);
            this.#relays++;
            const done = this.#o.relaying?.();
            try {
              return await this.#passThrough(socket, rest, r.parsed.serverName, target);
            } finally {
              this.#relays--;
              done?.();
            }
          }
        }
      }
      if (socket.destroyed) return;
      if (rest.length > 0) socket.unshift(rest);
      this.#o.handOff(socket);
    } finally {
      this.#reading.delete(socket);
    }
  }

  /**
   * Splices a connection to its passthrough target once the Ingress's source range and limit-connections let its
   * client in; one access-log line when it has closed (or was refused).
   */
  async #passThrough(socket: Socket, first: Buffer, sni: string, target: PassthroughTarget): Promise<void> {
    const passthrough = this.#o.passthrough!;
    const remote = connectionClient(socket).address;
    const started = performance.now();
    const line = { remote, sni, passthrough: true, ingress: target.ingress, backend: target.backend.key };
    // (A socket the client reset meanwhile is already closed: there is nothing to count or to connect.)
    if (socket.destroyed) return;
    const admitted = passthrough.passthrough.admit(target, remote);
    if ('refused' in admitted) {
      socket.destroy();
      this.#o.refused(admitted.refused);
      passthrough.accessLog?.info({ ...line, refused: admitted.refused });
      return;
    }
    socket.once('close', admitted.release);
    const result = await splice(socket, first, target.endpoints, { connectTimeoutMs: passthrough.connectTimeoutMs, tries: 3, signal: this.#cut.signal });
    if (result.endpoint === undefined && result.error !== clientGone && result.error !== cutByShutdown) this.#o.log.warn({ ingress: target.ingress, backend: target.backend.key, reason: result.error }, `TLS passthrough for ${sni} found no endpoint: ${result.error}`);
    passthrough.accessLog?.info({
      ...line,
      endpoint: result.endpoint,
      ms: Math.round((performance.now() - started) * 10) / 10,
      sent: result.sent,
      received: result.received,
      error: result.error,
    });
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
    const more = this.#warned.take(reason);
    if (more !== undefined) log.warn({ reason }, `connection closed: ${message}${more}`);
  }
}

function ignore(): void {}

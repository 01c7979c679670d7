// One TCP services port. Each connection: without an endpoint it is reset at once (the client learns now, as from
// a closed port, instead of waiting on a connection that goes nowhere); with `decode`, the client's PROXY protocol
// header (v1 or v2) is read first and its source becomes the client; then the entry's endpoints, round robin, are
// tried in turn (edge/splice.ts, each within the connect time-out; how many, and for how long, as the controller
// ConfigMap's proxy-stream-next-upstream, -tries and -timeout say: 3 within 600 s unless it says otherwise, see
// settings.ts) and the first that accepts gets the connection, with a PROXY protocol v1 header naming the client
// first when the entry says `encode`. Relayed until both sides close, or until neither has sent anything for the
// idle time-out (proxy-stream-timeout, 600 s). The entry, endpoints and settings are swapped in place: new
// connections take the new ones, those under way keep theirs.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../runtime/logger.ts';
import { MinuteWarnings } from '../../runtime/waiting.ts';
import { normalizeIP, type AddressSet } from '../limits/client-ip.ts';
import { parseProxyHeader, proxyHeaderV1, type ProxyEndpoint } from '../edge/proxy-protocol.ts';
import { readStart, wholeParse } from '../edge/read-start.ts';
import { clientGone, cutByShutdown, splice } from '../edge/splice.ts';
import type { Endpoint } from '../upstream/upstreams.ts';
import { targetText, type StreamEntry } from './entries.ts';
import type { StreamMetrics, StreamResult } from './metrics.ts';
import { streamTries, type StreamSettings } from './settings.ts';

/** How a TCP services port listens and relays. */
export interface TcpStreamOptions {
  host: string;
  reusePort: boolean;
  connectTimeoutMs: number;
  /** The settings now (the idle time, the tries and their time limit), read at each connection. */
  settings: () => Readonly<StreamSettings>;
  /** For entries that decode: the peers allowed to send a header (undefined: any peer) and the time it has. */
  proxyProtocol: { from?: AddressSet; timeoutMs: number };
  /** Aborted at the end of a drain: every connection is cut, whatever its stage. */
  signal: AbortSignal;
  metrics: StreamMetrics;
  log: Logger;
  /** One JSON line per connection, when it has closed. */
  accessLog?: Logger;
  /** Called each time a connection has ended (a drain waits for the last). */
  settled: () => void;
}

/** A listening TCP services port. */
export class TcpStream {
  readonly port: number;
  #entry: StreamEntry;
  #endpoints: readonly Endpoint[];
  #next = Math.floor(Math.random() * 1024);
  readonly #o: TcpStreamOptions;
  readonly #server: Server;
  #open = 0;
  readonly #warned = new MinuteWarnings();

  constructor(entry: StreamEntry, endpoints: readonly Endpoint[], options: TcpStreamOptions) {
    this.port = entry.port;
    this.#entry = entry;
    this.#endpoints = endpoints;
    this.#o = options;
    // Paused: nothing is read before the PROXY header is looked for, or before an endpoint can take the bytes.
    this.#server = createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (socket) => void this.#accept(socket));
  }

  /** The entry served now. */
  get entry(): StreamEntry {
    return this.#entry;
  }

  /** Connections open now, from accept to close. */
  get open(): number {
    return this.#open;
  }

  /** New connections take `entry` and `endpoints` from now on. */
  update(entry: StreamEntry, endpoints: readonly Endpoint[]): void {
    this.#entry = entry;
    this.#endpoints = endpoints;
  }

  /** Binds the port; rejects with the bind error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.#server.once('error', failed);
      this.#server.listen({ host: this.#o.host, port: this.port, reusePort: this.#o.reusePort, backlog: 511 }, () => {
        this.#server.off('error', failed);
        this.#server.on('error', (err: Error) => this.#o.log.warn({ port: this.port, err: err.message }, `TCP services port ${this.port}: ${err.message}`));
        resolve();
      });
    });
  }

  /** Stops accepting (the port is free once this resolves); connections under way go on. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      // close() calls back only once every connection has ended: the port itself is free at once.
      setImmediate(resolve);
    });
  }

  /** The endpoints for one connection, starting at the next in turn. */
  #rotation(): Endpoint[] {
    const all = this.#endpoints;
    if (all.length === 0) return [];
    const from = this.#next++ % all.length;
    if (this.#next >= 1 << 30) this.#next = 0;
    return [...all.slice(from), ...all.slice(0, from)];
  }

  async #accept(socket: Socket): Promise<void> {
    // Kept for the socket's whole life: splice adds its own, and an error (a reset) only comes with the socket destroyed.
    socket.on('error', ignore);
    const entry = this.#entry;
    const started = performance.now();
    const labels = { protocol: 'TCP' as const, port: this.port, namespace: entry.namespace, service: entry.service };
    const remote = socket.remoteAddress ?? '';
    let client: ProxyEndpoint = { address: normalizeIP(remote) ?? remote, port: socket.remotePort ?? 0 };
    const line = { stream: 'TCP', port: this.port, target: targetText(entry) };
    const finish = (result: StreamResult, extra: Record<string, unknown> = {}, bytes?: { sent: number; received: number }) => {
      this.#o.metrics.counted(labels, result, bytes);
      this.#o.accessLog?.info({ ...line, remote: client.address, result, ms: Math.round((performance.now() - started) * 10) / 10, ...extra });
    };
    if (this.#endpoints.length === 0) {
      socket.resetAndDestroy();
      return finish('no-endpoint');
    }
    this.#open++;
    try {
      let destination: ProxyEndpoint = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
      let first: Buffer = Buffer.alloc(0);
      if (entry.decode) {
        const { from, timeoutMs } = this.#o.proxyProtocol;
        if (from !== undefined && !from.has(remote)) return this.#refuse(socket, finish, 'proxy-protocol-peer', `peer ${client.address} is not in --proxy-protocol-from`);
        const r = await readStart(socket, first, timeoutMs, wholeParse(parseProxyHeader));
        if ('ended' in r) {
          // A load balancer's health check connects and closes without a byte: nothing was refused.
          if (r.ended === 'end' && r.data.length === 0) return void (socket.destroy(), finish('client-gone'));
          return this.#refuse(socket, finish, `proxy-protocol-${r.ended}`, r.ended === 'end' ? `${client.address} closed the connection inside its PROXY protocol header` : `no whole PROXY protocol header from ${client.address} within ${timeoutMs} ms`);
        }
        if (r.parsed.status === 'invalid') return this.#refuse(socket, finish, 'proxy-protocol-header', `bad PROXY protocol header from ${client.address}: ${r.parsed.reason}`);
        const { source, destination: to, length } = r.parsed.header;
        // v1 UNKNOWN and v2 LOCAL (health checks) keep the connection's own addresses.
        if (source !== undefined && to !== undefined) {
          client = { address: normalizeIP(source.address) ?? source.address, port: source.port };
          destination = to;
        }
        first = r.data.subarray(length);
      }
      if (entry.encode) first = Buffer.concat([proxyHeaderV1(client, destination), first]);
      const endpoints = this.#rotation();
      if (endpoints.length === 0) {
        socket.resetAndDestroy();
        return finish('no-endpoint');
      }
      const s = this.#o.settings();
      const result = await splice(socket, first, endpoints, {
        connectTimeoutMs: this.#o.connectTimeoutMs,
        tries: streamTries(s, endpoints.length),
        ...(s.nextUpstreamTimeoutMs > 0 ? { triesWithinMs: s.nextUpstreamTimeoutMs } : {}),
        signal: this.#o.signal,
        idleMs: s.idleMs,
      });
      const bytes = { sent: result.sent, received: result.received };
      const extra = { endpoint: result.endpoint, sent: result.sent, received: result.received, error: result.error };
      if (result.endpoint !== undefined) return finish('relayed', extra, bytes);
      if (result.error === clientGone) return finish('client-gone', extra);
      if (result.error === cutByShutdown) return finish('shutdown', extra);
      this.#warn('connect-failed', `TCP services port ${this.port}: no endpoint of ${targetText(entry)} took the connection: ${result.error}`);
      finish('connect-failed', extra);
    } finally {
      this.#open--;
      this.#o.settled();
    }
  }

  /** Closes a connection whose PROXY protocol header is not acceptable, counts it and says why (rate-limited). */
  #refuse(socket: Socket, finish: (result: StreamResult, extra: Record<string, unknown>) => void, reason: string, message: string): void {
    socket.destroy();
    finish('proxy-protocol', { error: message });
    this.#warn(reason, `TCP services port ${this.port}: connection closed: ${message}`);
  }

  /** Logs at warn at most once a minute per reason, with how many more there were (one client may cause thousands). */
  #warn(reason: string, message: string): void {
    const { log } = this.#o;
    log.debug({ port: this.port, reason }, message);
    const more = this.#warned.take(reason);
    if (more !== undefined) log.warn({ port: this.port, reason }, `${message}${more}`);
  }
}

function ignore(): void {}

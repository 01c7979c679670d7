// One endpoint of a backend: its address, load, outlier state and connection pools (keep-alive, no pipelining):
// netplane's own HTTP/1.1 client (h1/) for plain-HTTP endpoints, undici for TLS and HTTP/2 (gRPC) ones.
import { isIPv6 } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import { tcpBindings } from '../../runtime/tcp-handles.ts';
import { affinityValue } from './affinity.ts';
import { UpstreamError } from './errors.ts';
import { H1Pool } from './h1/pool.ts';
import type { OutlierState } from './outlier.ts';

/** What forward.ts asks of a pool: an undici Pool, or an H1Pool, which takes the same calls. */
export interface UpstreamPool {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

// NETPLANE_INGRESS_UPSTREAM_CLIENT=undici sends plain-HTTP requests through undici too (for comparison); so does a
// Node whose native TCP bindings are not as expected.
const ownClient = tcpBindings !== null && process.env.NETPLANE_INGRESS_UPSTREAM_CLIENT !== 'undici';

/** An endpoint address; an IPv6 `ip` is written without brackets. */
export interface Endpoint {
  ip: string;
  port: number;
}

/**
 * The protocol spoken to a backend's endpoints (ingress-nginx backend-protocol): HTTP/1.1 in clear or over TLS, or
 * gRPC: HTTP/2 in clear with prior knowledge (h2c), or over TLS agreed by ALPN.
 */
export type BackendProtocol = 'HTTP' | 'HTTPS' | 'GRPC' | 'GRPCS';

/** True for the protocols spoken over TLS (HTTPS, GRPCS). */
export function overTls(protocol: BackendProtocol): boolean {
  return protocol === 'HTTPS' || protocol === 'GRPCS';
}

/** True for gRPC backends (GRPC, GRPCS), which are spoken to in HTTP/2. */
export function isGrpc(protocol: BackendProtocol): boolean {
  return protocol === 'GRPC' || protocol === 'GRPCS';
}

/** How an HTTPS backend's certificate is verified; `id` names the settings and content (pools are kept while equal). */
export interface UpstreamTls {
  id: string;
  /** CA bundle, PEM. */
  ca: string;
  /** A client certificate and key shown to the backend, PEM. */
  cert?: string;
  key?: string;
  /** The name the certificate must carry. */
  name: string;
  /** Send `name` as SNI. */
  sni: boolean;
}

/** `ip:port`, with brackets around an IPv6 address: the endpoint's name in results, logs and the affinity hash. */
export function endpointAddress(e: Endpoint): string {
  return isIPv6(e.ip) ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

// Idle connections kept per endpoint pool of netplane's HTTP/1.1 client: ingress-nginx's upstream-keepalive-connections.
const keptIdle = 320;

/** An endpoint in use: balancing state plus the connection pools to it. */
export class UpstreamEndpoint implements OutlierState {
  /** `ip:port` (`[ip]:port` for IPv6). */
  readonly address: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: BackendProtocol;
  /** Certificate verification of an HTTPS or GRPCS endpoint; undefined: not verified. */
  readonly tls: UpstreamTls | undefined;
  /** The affinity cookie value naming this endpoint. */
  readonly cookie: string;
  /** Requests (and upgraded connections) in flight. */
  inFlight = 0;
  failures = 0;
  ejectedUntil = 0;
  ejections = 0;
  lastEjectionMs = 0;
  readonly #connections: number;
  // A pool per connect timeout: undici sets it per connector. Nearly always one; the last one used is cached.
  readonly #pools = new Map<number, UpstreamPool>();
  #lastTimeout = -1;
  #lastPool: UpstreamPool | null = null;
  #closed = false;

  constructor(endpoint: Endpoint, protocol: BackendProtocol, connections: number, tls?: UpstreamTls) {
    this.ip = endpoint.ip;
    this.port = endpoint.port;
    this.address = endpointAddress(endpoint);
    this.protocol = protocol;
    this.tls = overTls(protocol) ? tls : undefined;
    this.cookie = affinityValue(this.address);
    this.#connections = connections;
  }

  /** The pool for requests with this connect timeout, made on first use. */
  pool(connectTimeoutMs: number): UpstreamPool {
    if (connectTimeoutMs === this.#lastTimeout && this.#lastPool !== null) return this.#lastPool;
    let pool = this.#pools.get(connectTimeoutMs);
    if (pool === undefined) {
      pool = this.#makePool(connectTimeoutMs);
      if (this.#closed) void pool.close();
      else this.#pools.set(connectTimeoutMs, pool);
    }
    this.#lastTimeout = connectTimeoutMs;
    this.#lastPool = pool;
    return pool;
  }

  /**
   * A pool of one new connection, closed once its request is done: for sending a request again after a kept-alive
   * connection failed under it (the pools' other idle connections may be as stale).
   */
  fresh(connectTimeoutMs: number): UpstreamPool {
    const pool = this.#makePool(connectTimeoutMs, 1);
    // close() lets the dispatched request finish first.
    queueMicrotask(() => void pool.close());
    return pool;
  }

  /** Closes the pools once their queued and running requests are done; no new request is accepted. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#lastPool = null;
    await Promise.all(pools.map((p) => p.close()));
  }

  /** Ends every connection now, failing requests in flight. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#lastPool = null;
    await Promise.all(pools.map((p) => p.destroy()));
  }

  #makePool(connectTimeoutMs: number, connections = this.#connections): UpstreamPool {
    const tls = overTls(this.protocol);
    const h2 = isGrpc(this.protocol);
    if (!tls && !h2 && ownClient) return new H1Pool(this.ip, this.port, this.address, { connections, maxIdle: Math.min(connections, keptIdle), connectTimeoutMs }) as unknown as UpstreamPool;
    const origin = `${tls ? 'https' : 'http'}://${this.address}`;
    const common = {
      // null: no limit, for undici (its idle connections close after its keep-alive timeout, 4 s).
      connections: Number.isFinite(connections) ? connections : null,
      pipelining: 1,
      // HTTP/1.1 to upstreams, as nginx speaks (undici 8 would otherwise offer h2 over TLS); HTTP/2 to gRPC ones, as
      // nginx's grpc_pass, each connection carrying up to 100 streams (fewer when the backend says so).
      allowH2: h2,
    };
    // GRPC: HTTP/2 with prior knowledge, no Upgrade dance (what grpc_pass grpc:// does).
    if (!tls) return new Pool(origin, { ...common, connectTimeout: connectTimeoutMs, ...(h2 ? { useH2c: true } : {}) });
    const tlsConfig = this.tls;
    if (tlsConfig !== undefined) {
      // proxy-ssl-verify on: the chain against the Secret's CA bundle, the name against `tls.name` (whatever
      // address was dialled), SNI only when asked for (proxy-ssl-server-name).
      const verifying = buildConnector({
        rejectUnauthorized: true,
        ca: tlsConfig.ca,
        ...(tlsConfig.cert !== undefined && tlsConfig.key !== undefined ? { cert: tlsConfig.cert, key: tlsConfig.key } : {}),
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(tlsConfig.name, cert),
        allowH2: h2,
        preferH2: h2,
        timeout: connectTimeoutMs,
      } as buildConnector.BuildOptions);
      const connect = h2 ? requireH2(verifying) : verifying;
      return new Pool(origin, { ...common, connect: (options, callback) => connect({ ...options, servername: tlsConfig.sni ? tlsConfig.name : undefined }, callback) });
    }
    // Upstream certificates are not verified, as ingress-nginx does by default (proxy_ssl_verify off): backends
    // inside the cluster usually serve self-signed certificates. Nor is SNI sent (proxy_ssl_server_name off).
    const built = buildConnector({ rejectUnauthorized: false, allowH2: h2, preferH2: h2, timeout: connectTimeoutMs });
    const connector = h2 ? requireH2(built) : built;
    return new Pool(origin, {
      ...common,
      // Requests carry this endpoint's address as `servername` (see forward.ts) so that undici, which reconnects
      // when it changes, keeps one TLS session; it is dropped here so that no SNI is sent.
      connect: (options, callback) => connector({ ...options, servername: undefined }, callback),
    });
  }
}

/**
 * A connector that fails (TLS_FAILED) when the backend did not choose HTTP/2 by ALPN: gRPC cannot be spoken in
 * HTTP/1.1, and undici would otherwise send it so, to fail later with a less telling error.
 */
function requireH2(connector: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connector(options, (...args) => {
      const [err, socket] = args;
      if (err !== null || (socket as TLSSocket).alpnProtocol === 'h2') return callback(...args);
      socket.destroy();
      callback(new UpstreamError('TLS_FAILED', `the gRPC backend ${options.hostname}:${options.port} did not choose HTTP/2 in the TLS handshake (ALPN)`), null);
    });
}

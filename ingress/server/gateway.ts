// The gateway's listeners: plain HTTP/1.1, and HTTPS with HTTP/2 by ALPN. Each request runs the pipeline against
// the current state; upgrades are routed, limited and authenticated the same way, then relayed. SIGTERM drains.
import { SettleWaiter } from '../../runtime/waiting.ts';
import { createServer, METHODS, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { constants as h2constants, createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../runtime/logger.ts';
import type { HostPort } from '../../runtime/flags.ts';
import { clientIP, type AddressSet, type TrustedProxies } from '../limits/client-ip.ts';
import { connectionClient, EdgeListener } from '../edge/listener.ts';
import type { Passthrough } from '../edge/passthrough.ts';
import type { ConnectionCap } from '../limits/connection-cap.ts';
import type { Certificates } from '../tls/certificates.ts';
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { GatewayMetrics, RequestSeries } from './metrics.ts';
import { LiveList, type LiveEntry } from '../../runtime/live-list.ts';
import { isH2cToken, upgradeTokens } from '../upstream/headers.ts';
import { failedRequestVersion } from './request.ts';
import { clientProto, reply, runPipeline, targetBackend, upgradePipeline, upstreamTarget, type Exchange, type GatewayState } from './steps.ts';

/** Protections and listeners of the gateway. */
export interface GatewayOptions {
  http?: HostPort;
  https?: HostPort;
  /**
   * The ports clients reach the listeners on, when something in front maps them (a Service's 443 onto 8443): what
   * X-Forwarded-Port says. Absent: the listener's own port.
   */
  publicPorts?: { http?: number | undefined; https?: number | undefined };
  /** Listen with SO_REUSEPORT, so several gateway processes can share the ports. */
  reusePort: boolean;
  certificates?: Certificates;
  trusted: TrustedProxies;
  connectionCap: ConnectionCap;
  log: Logger;
  /** Where one JSON line per request goes; undefined turns the access log off. */
  accessLog?: Logger;
  metrics: GatewayMetrics;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
  maxHeadersCount: number;
  /** Both listeners take only connections that start with a PROXY protocol header from these peers. */
  proxyProtocol?: { from: AddressSet; timeoutMs: number };
  /** The HTTPS listener passes the TLS connections of ssl-passthrough Ingresses through (--enable-ssl-passthrough). */
  passthrough?: { passthrough: Passthrough; connectTimeoutMs: number };
}

/** The HTTP and HTTPS listeners over one shared, swappable state. */
export class Gateway {
  readonly #state: GatewayState;
  readonly #o: GatewayOptions;
  #http?: Server;
  #https?: Http2SecureServer;
  /** The ports the listeners are bound to (known once listen has bound them). */
  readonly #bound: { http?: number; https?: number } = {};
  readonly #edges: EdgeListener[] = [];
  readonly #sessions = new Set<Http2Session>();
  /** The IP each open connection is counted under toward --max-connections-per-ip. */
  readonly #counted = new WeakMap<Socket, string>();
  #inFlight = 0;
  /** HTTP/1.1 responses in flight: a drain makes those not yet begun say `Connection: close`. */
  readonly #h1Responses = new LiveList<ServerResponse>();
  /**
   * HTTP/1 requests whose upgrade was declined (h2c): node:http drops whatever the client pipelined behind such a
   * request (its parser stops at the end of the request, and the rest of that read is not parsed), so their responses
   * close the connection, and a client that pipelined learns from the close to send the rest again rather than wait.
   */
  readonly #declinedUpgrades = new WeakSet<IncomingMessage>();
  #draining = false;
  /** Called whenever in-flight work ends while draining. */
  readonly #drained = new SettleWaiter();

  constructor(state: GatewayState, options: GatewayOptions) {
    this.#state = state;
    this.#o = options;
  }

  /** Requests being answered now, upgraded connections and passed-through connections (--enable-ssl-passthrough) included. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Binds the listeners; resolves with the bound ports. Rejects (nothing left listening) when one cannot bind. */
  async listen(): Promise<{ http?: number; https?: number }> {
    const o = this.#o;
    const serverOptions = {
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.headersTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      maxHeaderSize: o.maxHeaderSize,
      insecureHTTPParser: false,
      noDelay: true,
    };
    const bound = this.#bound;
    try {
      if (o.http) {
        const s = createServer(serverOptions, (req, res) => this.#request(req, res, 'http'));
        // `Expect: 100-continue` is answered when the request is forwarded (steps.ts), not before the route's checks:
        // a client refused with 401, 403, 413 or 429 never sends its body, as with nginx.
        s.on('checkContinue', (req, res) => this.#request(req, res, 'http'));
        s.maxHeadersCount = o.maxHeadersCount;
        this.#http = s;
        this.#guard(s);
        // node:http reads a handed-on socket from the data put back in front of it only once it flows again.
        bound.http = await listenOn(this.#accepting(s, false, (socket) => (s.emit('connection', socket), socket.resume())), o.http, o.reusePort);
      }
      if (o.https) {
        if (!o.certificates) throw new Error('an HTTPS listener needs certificates');
        const s = createSecureServer({
          ...o.certificates.defaultOptions,
          SNICallback: o.certificates.sniCallback,
          allowHTTP1: true,
          maxHeaderListPairs: o.maxHeadersCount,
          maxSessionInvalidFrames: 100,
          // nginx's http2_max_concurrent_streams: one connection cannot hold more requests than this at once.
          settings: { maxHeaderListSize: o.maxHeaderSize, maxConcurrentStreams: 128 },
        });
        s.on('request', (req, res) => this.#request(req, res, 'https'));
        s.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) => this.#request(req, res, 'https'));
        // A resumed TLS session skips the SNI callback: its client-certificate standing is read from the session.
        const certificates = o.certificates;
        s.on('secureConnection', (socket: TLSSocket) => certificates.resumed(socket));
        certificates.onClientCaChange = () => s.setTicketKeys(randomBytes(48));
        // A new default certificate: handshakes without SNI use the server's own context, so it is replaced too
        // (those with SNI get it from the SNI callback). Only the certificate differs from the options above.
        certificates.onDefaultChange = () => s.setSecureContext(certificates.defaultOptions);
        s.on('session', (session: Http2Session) => {
          this.#sessions.add(session);
          session.once('close', () => this.#sessions.delete(session));
          if (this.#draining) session.close();
        });
        // The HTTP/1.1 side of the secure server runs node:http's connection handling, which reads its limits from
        // the server object: the same as the plain listener's. (createSecureServer takes none of them as options.)
        const h1 = s as unknown as { maxHeaderSize: number; maxHeadersCount: number; headersTimeout: number; requestTimeout: number; keepAliveTimeout: number };
        h1.maxHeaderSize = o.maxHeaderSize;
        h1.maxHeadersCount = o.maxHeadersCount;
        h1.headersTimeout = o.headersTimeoutMs;
        h1.requestTimeout = o.requestTimeoutMs;
        h1.keepAliveTimeout = o.keepAliveTimeoutMs;
        s.setTimeout(o.requestTimeoutMs);
        this.#https = s;
        this.#guard(s);
        // The TLS socket reads what was put back in front of the TCP socket itself (it must not flow before).
        bound.https = await listenOn(this.#accepting(s, true, (socket) => s.emit('connection', socket)), o.https, o.reusePort);
      }
    } catch (e) {
      this.#http?.close();
      this.#https?.close();
      for (const edge of this.#edges) edge.close();
      throw e;
    }
    return { ...bound };
  }

  /**
   * Stops accepting, lets requests in flight and passed-through connections finish (keep-alive connections are
   * closed as they go idle, HTTP/2 sessions get GOAWAY, connections whose ClientHello is still read are closed), and
   * after `timeoutMs` cuts what is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    // As nginx's header filter answers while it exits: the client learns the connection ends with this response,
    // and sends no other request on it to be cut.
    for (const res of this.#h1Responses) res.shouldKeepAlive = false;
    this.#http?.close();
    this.#https?.close();
    for (const edge of this.#edges) edge.close();
    this.#http?.closeIdleConnections();
    for (const s of this.#sessions) s.close();
    await this.#drained.until(() => this.#inFlight === 0, timeoutMs);
    if (this.#inFlight > 0) this.#o.log.warn({ inFlight: this.#inFlight, passthrough: this.#relays(), timeoutMs }, 'drain timeout: closing what is still in flight');
    this.#http?.closeAllConnections();
    for (const s of this.#sessions) s.destroy();
    for (const edge of this.#edges) edge.cutRelays();
    // A cut connection closes on a later turn of the loop, and is logged then.
    await this.#drained.until(() => this.#relays() === 0, 1000);
  }

  /** Passed-through connections open now. */
  #relays(): number {
    return this.#edges.reduce((n, edge) => n + edge.relays, 0);
  }

  /** One piece of in-flight work has ended. */
  #settled(): void {
    this.#inFlight--;
    if (this.#draining) this.#drained.check();
  }

  /**
   * The socket to listen on for `server`: the server itself, or an edge listener that first reads each
   * connection's PROXY protocol header (--proxy-protocol) and, on HTTPS, its ClientHello (--enable-ssl-passthrough),
   * then passes it through or gives it to `handOff`.
   */
  #accepting(server: NetServer, https: boolean, handOff: (socket: Socket) => void): NetServer {
    const { proxyProtocol, metrics, log, accessLog, headersTimeoutMs } = this.#o;
    const passthrough = https ? this.#o.passthrough : undefined;
    if (!proxyProtocol && !passthrough) return server;
    const edge = new EdgeListener({
      ...(proxyProtocol ? { proxyProtocol } : {}),
      // A client has as long for its ClientHello as for its request headers.
      ...(passthrough ? { passthrough: { ...passthrough, helloTimeoutMs: headersTimeoutMs, ...(accessLog ? { accessLog } : {}) } } : {}),
      // Counted from accept, as the servers count theirs: a connection whose header or ClientHello is still being
      // read holds a file descriptor too.
      admit: (socket, ip) => this.#admit(socket, ip),
      log,
      refused: (reason) => metrics.rejected.inc({ reason }),
      handOff: (socket) => {
        // As the server would have accepted it (node:http keeps half-open connections, TLS does not).
        socket.allowHalfOpen = (server as { allowHalfOpen?: boolean }).allowHalfOpen ?? false;
        handOff(socket);
      },
      // In flight as a request is: a drain waits for it, and the 'draining' line counts it.
      relaying: () => {
        this.#inFlight++;
        return () => this.#settled();
      },
    });
    this.#edges.push(edge);
    return edge.server;
  }

  /** Per-IP connection cap and the connection gauge, on the raw TCP connections of a listener. */
  #guard(server: Server | Http2SecureServer): void {
    const { metrics } = this.#o;
    server.on('connection', (socket: Socket) => void this.#admit(socket));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      metrics.rejected.inc({ reason: err.code ?? 'client-error' });
      // A response already under way on the connection (node:http's `_httpMessage`, which its own default handler
      // checks too) gets no second one written into it: the parser failed after its request was handed on, as on
      // the body of a `Transfer-Encoding: gzip` request, which #refusedTransferCoding has answered.
      const started = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage?.headersSent === true;
      if (started) socket.end();
      else if (socket.writable && !(socket as Socket).destroyed) {
        let status = clientErrorStatus[err.code ?? ''] ?? 400;
        // nginx answers any Transfer-Encoding on HTTP/1.0 with 400, before it looks at the coding.
        if (status === 501 && http10(err)) status = 400;
        socket.end(`HTTP/1.1 ${status} ${statusLine[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else socket.destroy();
    });
    // Which upgrades reach 'upgrade': not h2c's (isH2cToken). A request asking for h2c alone is served as a plain
    // HTTP/1.1 request, its Upgrade, Connection and HTTP2-Settings not forwarded (hop-by-hop), as Envoy and others
    // serve it; one listing other protocols too is relayed without the h2c token (upgrade.ts).
    (server as { shouldUpgradeCallback?: (req: IncomingMessage) => boolean }).shouldUpgradeCallback = (req) => {
      const tokens = upgradeTokens(req.headers.upgrade ?? '');
      const others = tokens.filter((t) => !isH2cToken(t));
      if (others.length < tokens.length) metrics.rejected.inc({ reason: 'h2c-upgrade' });
      if (others.length === 0) this.#declinedUpgrades.add(req);
      return others.length > 0;
    };
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket as Socket, head, server === this.#https ? 'https' : 'http'));
    // CONNECT (a forward proxy's tunnel) is no request a gateway serves: as nginx 1.22 answers it, 400 on HTTP/1
    // (node:http closes the connection without a word when nothing listens) and 405 on an HTTP/2 stream (which the
    // secure server hands here with a response; Node answered 405 itself before).
    server.on('connect', (req: IncomingMessage | Http2ServerRequest, socket: Duplex | Http2ServerResponse) => {
      metrics.rejected.inc({ reason: 'connect' });
      if ('stream' in req) return void (socket as Http2ServerResponse).writeHead(405, { 'content-type': 'text/plain' }).end('405 Method Not Allowed\n');
      (socket as Duplex).end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  /**
   * Counts a TCP connection under `ip` (by default its client: the PROXY protocol header's when there was one) and
   * applies the per-IP cap; false when it was over the cap and closed. A connection the edge listener counted
   * already is counted once: under the same IP nothing changes, under another (the PROXY header's client, after the
   * balancer's address) it moves.
   */
  #admit(socket: Socket, ip: string = connectionClient(socket).address): boolean {
    const { connectionCap, metrics } = this.#o;
    const counted = this.#counted.get(socket);
    if (counted === ip) return true;
    if (!connectionCap.acquire(ip)) {
      metrics.rejected.inc({ reason: 'connection-cap' });
      socket.destroy();
      return false;
    }
    this.#counted.set(socket, ip);
    if (counted !== undefined) {
      connectionCap.release(counted);
      return true;
    }
    metrics.connections.inc({ state: 'active' });
    socket.once('close', () => {
      connectionCap.release(this.#counted.get(socket) ?? ip);
      metrics.connections.dec({ state: 'active' });
    });
    return true;
  }

  #exchange(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, proto: 'http' | 'https'): Exchange {
    const peer = connectionClient(req.socket as Socket).address;
    const trusted = this.#state.trusted ?? this.#o.trusted;
    return {
      req,
      res,
      proto,
      port: this.#o.publicPorts?.[proto] ?? this.#bound[proto] ?? 0,
      // With --proxy-protocol the header's address is the client, as ingress-nginx's use-proxy-protocol makes
      // $the_real_ip $proxy_protocol_addr: X-Forwarded-For never names it, even from a trusted proxy (it is still
      // extended for the upstream). Else a trusted peer's X-Forwarded-For is walked.
      clientIP: this.#o.proxyProtocol ? peer : clientIP(peer, req.headers['x-forwarded-for'], trusted),
      peer,
      trustedPeer: trusted.has(peer),
      host: '',
      hostHeader: '',
      path: '',
      matchPath: '',
      query: '',
      canary: false,
    };
  }

  #request(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, proto: 'http' | 'https'): void {
    if (this.#refusedVersion(req, res) || this.#refusedTransferCoding(req, res)) return;
    const started = performance.now();
    const x = this.#exchange(req, res, proto);
    this.#inFlight++;
    let entry: LiveEntry<ServerResponse> | null = null;
    if ('shouldKeepAlive' in res) {
      if (this.#draining) res.shouldKeepAlive = false;
      else entry = this.#h1Responses.add(res);
      if (this.#declinedUpgrades.has(req as IncomingMessage)) res.shouldKeepAlive = false;
    }
    // Counted and logged once the response is closed and the pipeline has finished (the upstream's figures are
    // known only then; the response of a proxied request may close first).
    let pending = 2;
    const settle = () => {
      if (--pending === 0) this.#done(x, started);
    };
    // One listener, not once(): a response closes once, and once() costs a wrapper per request.
    res.on('close', () => {
      if (entry !== null) this.#h1Responses.delete(entry);
      settle();
    });
    // A stream the client reset with NO_ERROR while the response was unfinished: Node keeps it (and its response)
    // open until the unread request side ends and the stalled writes drain, which never happens, so the response
    // would never close, be logged, or let a drain finish. Destroying it closes both. (Any other code, and a reset
    // of ours, which forward.ts sends as INTERNAL_ERROR, Node destroys itself, after the frame is out.)
    if (req.httpVersionMajor === 2) {
      const stream = (req as Http2ServerRequest).stream;
      stream.once('aborted', () => {
        if (stream.rstCode === h2constants.NGHTTP2_NO_ERROR) stream.destroy();
      });
    }
    // HSTS on every HTTPS response (as ingress-nginx), refusals and errors included.
    if (this.#state.hsts !== undefined && clientProto(x) === 'https') res.setHeader('strict-transport-security', this.#state.hsts);
    // HTTP/2 only advertises the header size limit (SETTINGS_MAX_HEADER_LIST_SIZE); it is enforced here, counted
    // as RFC 9113 counts it. HTTP/1.1's parser enforces its own.
    if (req.httpVersionMajor === 2 && headerListSize(req.rawHeaders) > this.#o.maxHeaderSize) {
      reply(x, 431, 'header-size');
      settle();
      return;
    }
    runPipeline(x, this.#state).then(settle, (e: Error) => {
      this.#o.log.error({ err: e, path: x.path }, 'request failed inside the gateway');
      if (!res.headersSent) {
        (res as ServerResponse).writeHead(500);
        res.end();
      } else res.destroy();
      settle();
    });
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer, proto: 'http' | 'https'): Promise<void> {
    const started = performance.now();
    // A response object on the raw socket lets the steps refuse an upgrade exactly as they refuse a request.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    if (this.#refusedVersion(req, res)) {
      res.once('finish', () => socket.destroy());
      return;
    }
    const x = this.#exchange(req, res, proto);
    this.#inFlight++;
    let relayed = false;
    try {
      await runPipeline(x, this.#state, [...upgradePipeline, { name: 'relay', run: () => ((relayed = true), 'done') }]);
    } catch (e) {
      this.#o.log.error({ err: e }, 'upgrade failed inside the gateway');
      socket.destroy();
    }
    if (!relayed) {
      res.once('finish', () => socket.destroy());
      this.#done(x, started);
      return;
    }
    res.detachSocket(socket);
    const { policy, path, headers, cookieScope, hashKey } = upstreamTarget(x);
    try {
      // Resolves when both connections are closed, or at once with an error status.
      x.upstream = await this.#state.upstreams.upgrade(req, socket, head, { backend: targetBackend(x, this.#state, policy).key, policy, path, headers, ...(cookieScope ? { cookieScope } : {}), ...(hashKey !== undefined ? { hashKey } : {}), ...(x.route?.policy.customHeaders ? { responseHeaders: x.route.policy.customHeaders } : {}) });
    } finally {
      this.#done(x, started);
    }
  }

  /**
   * Answers, as nginx does, a request on an HTTP/1 connection whose request line names another major version:
   * `HTTP/2.0` or later 505, `HTTP/0.9` 400 (node:http's parser takes `HTTP/0.9` and `HTTP/2.0` lines). True when it
   * did: such a request never reaches the steps, which read httpVersionMajor 2 as an HTTP/2 stream.
   */
  #refusedVersion(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean {
    if ('stream' in req || req.httpVersionMajor === 1) return false;
    const status = req.httpVersionMajor === 0 ? 400 : 505;
    this.#o.metrics.rejected.inc({ reason: 'http-version' });
    const h1 = res as ServerResponse;
    h1.shouldKeepAlive = false;
    h1.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${status} ${status === 400 ? 'Bad Request' : 'HTTP Version Not Supported'}\n`);
    return true;
  }

  /**
   * Answers, as nginx does, an HTTP/1 request with a Transfer-Encoding other than `chunked`: 501 (`gzip`,
   * `identity`, `gzip, chunked`: no other coding is decoded), or 400 on HTTP/1.0, which has no Transfer-Encoding
   * (nginx 1.21.1 and later). node:http's parser hands some of these here and then fails on the body; the
   * clientError listener answers those it refuses itself. True when it answered: such a request never reaches the
   * steps, and the connection closes (its body cannot be told from the next request).
   */
  #refusedTransferCoding(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean {
    const coding = req.headers['transfer-encoding'];
    if ('stream' in req || coding === undefined || (req.httpVersion !== '1.0' && coding.toLowerCase() === 'chunked')) return false;
    const status = req.httpVersion === '1.0' ? 400 : 501;
    this.#o.metrics.rejected.inc({ reason: 'transfer-encoding' });
    const h1 = res as ServerResponse;
    h1.shouldKeepAlive = false;
    h1.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${status} ${status === 400 ? 'Bad Request' : 'Not Implemented'}\n`);
    return true;
  }

  /** Counts and logs a finished (or aborted) request. */
  #done(x: Exchange, started: number): void {
    x.release?.();
    const { metrics, accessLog } = this.#o;
    const seconds = (performance.now() - started) / 1000;
    // An upgrade's status is the relayed one (101, or the error sent); else the response's, or 499 as nginx logs
    // it: the client went away before it got its answer.
    const status = x.res.headersSent || x.refused ? x.res.statusCode : (x.upstream?.status ?? 499);
    const backend = x.backend;
    const method = methodLabel(x.req.method);
    // The route, the status, the method and whether it went to the canary make the label values: the backend of a
    // route is its own (a canary's is its route's canary), so the series are cached by those four.
    const series = metrics.series(x.route, status, method, x.canary, () => [
      // ingress, namespace, service, status, method, canary (GatewayMetrics' label order).
      x.route ? x.route.ingress.slice(x.route.namespace.length + 1) : '',
      x.route?.namespace ?? '',
      // A request refused before a backend was chosen (auth, limits) counts under its route's Service; a canary's under
      // the primary's, as ingress-nginx counts it (the canary is an alternative upstream of the primary's location).
      (x.canary ? x.route?.backend : (backend ?? x.route?.backend))?.service ?? '',
      String(status),
      method,
      // canary: ingress-nginx's $proxy_alternative_upstream_name, the canary's upstream, namespace-service-port.
      x.canary ? `${backend!.namespace}-${backend!.service}-${backend!.port}` : '',
    ]);
    series.duration.observe(seconds);
    if (x.upstream?.upstreamSeconds !== undefined) metrics.observeUpstream(series, x.upstream.upstreamSeconds);
    if (!('stream' in x.req)) observeSizes(metrics, series, x.req.socket);
    series.count.value++;
    accessLog?.info({
      remote: x.clientIP,
      method: x.req.method,
      host: x.host,
      path: x.path,
      proto: x.proto,
      http: x.req.httpVersion,
      status,
      ms: Math.round(seconds * 10_000) / 10,
      ingress: x.route?.ingress,
      backend: backend?.key,
      canary: x.canary || undefined,
      defaultBackend: x.defaultBackend?.key,
      endpoint: x.upstream?.endpoint,
      upstreamMs: x.upstream?.upstreamSeconds === undefined ? undefined : Math.round(x.upstream.upstreamSeconds * 10_000) / 10,
      attempts: x.upstream?.attempts,
      refused: x.refused,
      error: x.upstream?.error,
      // A gRPC call's outcome: its HTTP status is 200 whatever happened.
      grpcStatus: x.upstream?.grpcStatus ?? x.grpcStatus,
      id: x.requestId,
      agent: x.req.headers['user-agent'],
    });
    this.#settled();
  }
}

/**
 * The status the clientError listener answers a parse error with (400 for any other): as nginx, 501 for a
 * Transfer-Encoding other than `chunked` (node:http refuses `chunked, gzip` before handing the request on), but 400
 * on HTTP/1.0 (http10), which nginx checks first.
 */
const clientErrorStatus: Readonly<Record<string, number>> = { HPE_HEADER_OVERFLOW: 431, ERR_HTTP_REQUEST_TIMEOUT: 408, HPE_INVALID_TRANSFER_ENCODING: 501 };
const statusLine: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 501: 'Not Implemented' };

/**
 * True when the request a parse error stopped in says HTTP/1.0 (or 0.9) on its request line, as far as the chunk the
 * parser failed in shows it (failedRequestVersion); false when it does not show it.
 */
function http10(err: Error & { rawPacket?: unknown; bytesParsed?: number }): boolean {
  if (!Buffer.isBuffer(err.rawPacket)) return false;
  const version = failedRequestVersion(err.rawPacket, err.bytesParsed ?? err.rawPacket.length);
  return version !== undefined && version < '1.1';
}

const knownMethods: ReadonlySet<string> = new Set(METHODS);

/**
 * The method as a metric label: HTTP/2 lets a client send any token as its method, and each new label value is a
 * new series kept for the life of the process, so methods outside node:http's list count as OTHER.
 */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && knownMethods.has(method) ? method : 'OTHER';
}

/** A connection's byte counts when its last request was counted. */
const countedBytes = Symbol('netplane.countedBytes');
type CountedSocket = Socket & { [countedBytes]?: { read: number; written: number } };

/**
 * Counts an HTTP/1 request's sizes as its connection's bytes read and written since the request before it on that
 * connection was counted (nginx's $request_length and $bytes_sent; a pipelined request read early counts with the
 * one before it).
 */
function observeSizes(metrics: GatewayMetrics, series: RequestSeries, socket: CountedSocket | null): void {
  if (socket === null) return;
  const read = socket.bytesRead;
  const written = socket.bytesWritten;
  const last = (socket[countedBytes] ??= { read: 0, written: 0 });
  metrics.observeSizes(series, read - last.read, written - last.written);
  last.read = read;
  last.written = written;
}

/** The size of a header list as RFC 9113 6.5.2 counts it: names and values plus 32 bytes per field. */
function headerListSize(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length + (i % 2 === 0 ? 32 : 0);
  return n;
}

/** Listens on one address; rejects with the bind error. */
function listenOn(server: NetServer, addr: HostPort, reusePort: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: addr.host, port: addr.port, reusePort }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : addr.port);
    });
  });
}

// One proxied request: an undici dispatch handler that writes the upstream's answer straight into the client's
// response (no intermediate stream), with backpressure both ways, nginx's retries on another endpoint and
// the error statuses nginx gives (502 refused/reset, 504 timeouts, 503 no endpoints) — on gRPC routes a grpc-status
// instead, and the response's trailers relayed (grpc.ts).
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { constants as http2Constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Dispatcher } from 'undici';
import type { Logger } from '../../runtime/logger.ts';
import type { IngressPolicy } from '../routes/types.ts';
import { affinitySetCookie, readCookie, type CookieScope } from './affinity.ts';
import type { Backend } from './backend.ts';
import { UpstreamError, asUpstreamError, classifyError, passesToNext, statusText, type FailureCase, type UpstreamErrorCode } from './errors.ts';
import { grpcStatusOf, relayedTrailers, splitTrailersOnly, writeGrpcFailure } from './grpc.ts';
import { rewriteSetCookies } from './cookie-rewrite.ts';
import { Pacer } from './pacer.ts';
import { rewriteLocation, rewriteRefresh } from './location-rewrite.ts';
import { clientResponseHeaders, upstreamRequestHeaders, withHeaders, withoutBodyHeaders, type HeaderList, type HeaderValue } from './headers.ts';
import { isGrpc, overTls, type UpstreamEndpoint } from './pool.ts';
import { UpstreamBody, lingerAfterRefusal, stopUpload, type BodyTap } from './request-body.ts';
import { watchResetPeer } from './reset-peer.ts';

/** Where and how to send one request. */
export interface ForwardTarget {
  /** BackendRef.key. */
  backend: string;
  policy: IngressPolicy;
  /** Path and query to send upstream (already rewritten). */
  path: string;
  /** Headers of the pipeline (X-Forwarded-*, X-Request-Id, auth); they replace the client's of the same name. */
  headers: Record<string, HeaderValue>;
  /**
   * Headers added to the response (CORS; on an upgrade, the route's custom-headers); they replace the upstream's of
   * the same name. Lower-case names.
   */
  responseHeaders?: Record<string, string>;
  /**
   * Statuses not answered here (custom-http-errors), `intercepted` set for the caller to answer: the upstream's (its
   * response not read further, its connection closed) unless `passUpstreamErrors`, and the gateway's own failures
   * (502, 503, 504, nothing written), as nginx's error_page takes both and proxy_intercept_errors off only the
   * upstream's.
   */
  intercept?: readonly number[];
  /** disable-proxy-intercept-errors: the upstream's answers of `intercept` statuses are relayed. */
  passUpstreamErrors?: boolean;
  /** Another method than the client's, and no body (the request to a custom error backend). */
  method?: string;
  noBody?: boolean;
  /** Where an affinity cookie is set (the route's path, HTTPS or not); default `/`, plain HTTP. */
  cookieScope?: CookieScope;
  /** The request's upstream-hash-by key (routes/hash-key.ts): endpoints are then chosen on the backend's hash ring. */
  hashKey?: string;
  /** proxy-redirect-from/-to, `to` filled in for this request: the start of Location and Refresh URLs replaced. */
  locationRewrite?: { from: string; to: string; origin: string };
  /** The auth service's Set-Cookie headers, added to the response as authCookiesFor says. */
  authCookies?: AuthCookies;
  /** mirror-target: a copy of the request body goes here as the upstream reads it (upstream/mirror.ts). */
  mirrorBody?: BodyTap;
}

/** The Set-Cookie headers of an auth-url service's answer, and whether they go on every status (auth-always-set-cookie). */
export interface AuthCookies {
  values: readonly string[];
  always: boolean;
}

// The statuses nginx's add_header (without `always`) adds to: ngx_http_headers_filter.
const addHeaderStatuses: ReadonlySet<number> = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

/**
 * The auth cookies a response of `status` gets, as ingress-nginx's `add_header Set-Cookie $auth_cookie` adds them:
 * on the statuses nginx's add_header takes, or on every one with `always` (auth-always-set-cookie).
 */
export function authCookiesFor(cookies: AuthCookies | undefined, status: number): readonly string[] {
  return cookies !== undefined && (cookies.always || addHeaderStatuses.has(status)) ? cookies.values : [];
}

/** How a forwarded request went, for the access log and metrics. */
export interface ForwardResult {
  /** The status the client got: the upstream's, an error status, or 499 when the client went away first. */
  status: number;
  /** `ip:port` of the endpoint of the last attempt. */
  endpoint?: string;
  /** From the first attempt to the end of the upstream's response (or the failure). */
  upstreamSeconds?: number;
  /** Endpoints tried (0 when none was available). */
  attempts: number;
  error?: UpstreamErrorCode;
  /** The upstream answered, or the gateway failed with, a status of ForwardTarget.intercept: nothing was sent to the client. */
  intercepted?: boolean;
  /** On a gRPC route: the grpc-status the client got, the backend's or the gateway's own. */
  grpcStatus?: number;
}

/** A client request of either HTTP version. */
export type ClientRequest = IncomingMessage | Http2ServerRequest;
/** A client response of either HTTP version. */
export type ClientResponse = ServerResponse | Http2ServerResponse;

// What this file uses of a ClientResponse: the members both versions share (TypeScript cannot call a method on the
// union of their overloads). Both take a flat header list in writeHead.
interface ResponseSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: HeaderList): unknown;
  write(chunk: Buffer): boolean;
  addTrailers(trailers: Record<string, HeaderValue>): void;
  end(chunk?: string): unknown;
  destroy(): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** The outcome of a request or upgrade: the endpoint and the upstream time once one was picked. */
export function forwardResult(status: number, attempts: number, member: { address: string } | null, t0: number, error: UpstreamErrorCode | undefined): ForwardResult {
  const result: ForwardResult = { status, attempts };
  if (member !== null) {
    result.endpoint = member.address;
    result.upstreamSeconds = (performance.now() - t0) / 1000;
  }
  if (error !== undefined) result.error = error;
  return result;
}

/** Attempts per request: the first plus two retries on other endpoints. */
export const maxAttempts = 3;

// The methods nginx does not send again once a request went out unless proxy_next_upstream has non_idempotent (off
// by default in ingress-nginx): ngx_http_upstream_next adds NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT for these.
const nonIdempotentMethods: ReadonlySet<string> = new Set(['POST', 'LOCK', 'PATCH']);

// Requests sent per upstream connection, to tell a kept-alive connection from a new one. undici's dispatch handler
// is not told which connection carries a request; its `undici:client:sendHeaders` channel is, synchronously within
// the same write as the handler's onRequestStart, so the exchange that started last is the one being sent.
const sentOn = new WeakMap<object, number>();
let sending: ((reused: boolean) => void) | null = null;
subscribe('undici:client:sendHeaders', (message) => {
  const socket = (message as { socket: object }).socket;
  const sent = sentOn.get(socket) ?? 0;
  sentOn.set(socket, sent + 1);
  const note = sending;
  sending = null;
  note?.(sent > 0);
});

/** True when the request carries a body: Content-Length > 0 or Transfer-Encoding (HTTP/1), or no END_STREAM on its HEADERS (HTTP/2). */
export function hasBody(req: ClientRequest): boolean {
  if (req.httpVersionMajor === 2) return !(req as Http2ServerRequest).stream.endAfterHeaders;
  const h = req.headers;
  const length = h['content-length'];
  return (length !== undefined && length !== '0') || h['transfer-encoding'] !== undefined;
}

/**
 * True when the client's connection (or HTTP/2 stream) is gone. `socket`: an HTTP/1 request's, taken when the
 * exchange began: undici destroys a request body it failed to send, which leaves `req.socket` null while the
 * client's connection is open and waiting for the answer.
 */
export function clientClosed(req: ClientRequest, socket: Socket | null = (req as IncomingMessage).socket): boolean {
  if (req.httpVersionMajor === 2) return (req as Http2ServerRequest).stream.destroyed;
  return socket === null || socket.destroyed;
}

/**
 * Ends a response that has begun and cannot be completed so that the client sees it incomplete: HTTP/1.1 by closing
 * the connection, HTTP/2 by resetting the stream with INTERNAL_ERROR (a plain close would end it as complete).
 */
function cutShort(req: ClientRequest, res: ResponseSink): void {
  if (req.httpVersionMajor === 2) (req as Http2ServerRequest).stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}

/**
 * Writes an nginx-style plain-text error status, with the auth service's cookies when they go on it (authCookiesFor),
 * unless a response has begun or the client is gone.
 */
export function writeErrorStatus(response: ClientResponse, status: number, cookies?: AuthCookies): void {
  const res = response as unknown as ResponseSink;
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  const body = `<html><head><title>${statusText(status)}</title></head><body><center><h1>${statusText(status)}</h1></center></body></html>\n`;
  const added = authCookiesFor(cookies, status);
  res.writeHead(status, ['content-type', 'text/html', 'content-length', String(Buffer.byteLength(body)), ...(added.length > 0 ? ['set-cookie', [...added]] : [])]);
  res.end(body);
}

/** Forwards one request; the dispatch handler of all its attempts. Resolves `done` exactly once, never rejects. */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly #req: ClientRequest;
  // An HTTP/1 client's connection (see clientClosed).
  readonly #socket: Socket | null;
  readonly #res: ResponseSink;
  readonly #target: ForwardTarget;
  readonly #backend: Backend | undefined;
  readonly #log: Logger;
  readonly #done: (result: ForwardResult) => void;
  #headers: string[] = [];
  #body: ClientRequest | UpstreamBody | null = null;
  // nginx may send the request again once it went out (not POST, LOCK, PATCH).
  #idempotent = false;
  // The current attempt was given a connection and began to be written (nginx's u->request_sent).
  #sent = false;
  #member: UpstreamEndpoint | null = null;
  #cookieMember: UpstreamEndpoint | undefined;
  #tried: UpstreamEndpoint[] | null = null;
  #attempts = 0;
  #controller: Dispatcher.DispatchController | null = null;
  #started = false;
  #status = 0;
  #finished = false;
  #clientGone: UpstreamError | null = null;
  #t0 = 0;
  #drain: (() => void) | null = null;
  #stalled: NodeJS.Timeout | undefined;
  // Stops the watch for an HTTP/2 client reset while a write to it stalls (reset-peer.ts), once one has stalled.
  #unwatch: (() => void) | undefined;
  // The attempt went out on a kept-alive connection; a second attempt on the same endpoint was made for that.
  #reused = false;
  #resent = false;
  #intercepted = false;
  // The endpoint the request goes to next, once the current try's answer (a status of proxy-next-upstream) was
  // dropped: onResponseError starts that try when the aborted one has ended.
  #next: UpstreamEndpoint | null = null;
  // A gRPC route: trailers relayed, failures answered with a grpc-status (grpc.ts).
  readonly #grpc: boolean;
  // The status and metadata of a Trailers-Only response, sent as trailers; the grpc-status the client got.
  #heldTrailers: Record<string, HeaderValue> | null = null;
  #grpcStatus: number | undefined;
  // limit-rate: the body goes out through it; the end waits for its queue (#endDeferred).
  #pacer: Pacer | undefined;
  #endDeferred = false;

  constructor(backend: Backend | undefined, req: ClientRequest, res: ClientResponse, target: ForwardTarget, log: Logger, done: (result: ForwardResult) => void) {
    this.#backend = backend;
    this.#req = req;
    this.#socket = req.httpVersionMajor === 2 ? null : (req as IncomingMessage).socket;
    this.#res = res as unknown as ResponseSink;
    this.#target = target;
    this.#log = log;
    this.#done = done;
    this.#grpc = isGrpc(target.policy.backendProtocol);
  }

  /** Picks an endpoint and sends the first attempt. */
  start(): void {
    const backend = this.#backend;
    const req = this.#req;
    if (backend === undefined || backend.members.length === 0) return this.#fail(503, 'NO_ENDPOINTS');
    const policy = this.#target.policy;
    const now = performance.now();
    let first: UpstreamEndpoint | undefined;
    if (policy.affinity !== undefined) {
      first = this.#cookieMember = backend.byCookie(readCookie(req.headers.cookie, policy.affinity.cookieName), now);
    }
    first ??= backend.pick(policy, null, now, this.#target.hashKey);
    if (first === undefined) return this.#fail(503, 'NO_ENDPOINTS');
    const body = this.#target.noBody !== true && hasBody(req);
    const limit = this.#target.policy.maxBodyBytes;
    // A body without Content-Length (chunked, or HTTP/2 without it) is counted as it streams; a declared length was
    // checked before (the body-size step). An HTTP/2 client's body is watched for its reset, and a body sent to an
    // HTTP/2 (gRPC) upstream is one the exchange can abort there (request-body.ts).
    const streamed = limit > 0 && req.headers['content-length'] === undefined;
    const tap = this.#target.mirrorBody;
    this.#body = !body ? null : req.httpVersionMajor === 2 || this.#grpc || streamed || tap !== undefined ? new UpstreamBody(req, streamed ? limit : 0, tap) : req;
    this.#idempotent = !nonIdempotentMethods.has(this.#target.method ?? req.method ?? 'GET');
    // gRPC needs `TE: trailers` (servers refuse calls without it), whatever the client sent.
    this.#headers = upstreamRequestHeaders(req.rawHeaders, this.#grpc ? { ...this.#target.headers, te: 'trailers' } : this.#target.headers);
    if (this.#target.noBody === true) this.#headers = withoutBodyHeaders(this.#headers);
    const gone = () => this.#onClientClose();
    // on, not once: a response closes once, and once() costs a wrapper per request.
    this.#res.on('close', gone);
    // An HTTP/2 stream closed by the client with the response unfinished (RST_STREAM, of any code): Node emits
    // 'aborted' at once, while the response's 'close' may wait (gateway.ts destroys such a stream).
    if (req.httpVersionMajor === 2) (req as Http2ServerRequest).stream.once('aborted', gone);
    this.#t0 = performance.now();
    this.#attempt(first);
  }

  #attempt(m: UpstreamEndpoint, fresh = false): void {
    this.#member = m;
    this.#controller = null;
    this.#reused = false;
    this.#sent = false;
    this.#attempts++;
    m.inFlight++;
    const policy = this.#target.policy;
    const options = {
      path: this.#target.path,
      method: this.#target.method ?? this.#req.method ?? 'GET',
      headers: this.#headers,
      body: this.#body,
      headersTimeout: policy.readTimeoutMs,
      bodyTimeout: policy.readTimeoutMs,
      // netplane's own client (plain HTTP) only; undici has none and ignores it.
      sendTimeout: policy.sendTimeoutMs,
      // Constant per endpoint (see pool.ts): keeps undici from reconnecting when the Host changes.
      servername: overTls(m.protocol) ? m.address : undefined,
    };
    (fresh ? m.fresh(policy.connectTimeoutMs) : m.pool(policy.connectTimeoutMs)).dispatch(options as Dispatcher.DispatchOptions, this);
  }

  /**
   * The request is being written; the controller pauses, resumes and aborts it. netplane's own client (h1/) says in
   * `context` whether the connection was kept alive; undici says it on its diagnostics channel (above).
   */
  onRequestStart(controller: Dispatcher.DispatchController, context?: unknown): void {
    if (this.#clientGone !== null) return controller.abort(this.#clientGone);
    this.#controller = controller;
    this.#sent = true;
    const reused = (context as { reused?: unknown } | undefined)?.reused;
    if (typeof reused === 'boolean') this.#reused = reused;
    else sending = (kept) => (this.#reused = kept);
  }

  /** undici: status and headers of the upstream's response. */
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, HeaderValue | undefined>): void {
    // 1xx (103 Early Hints): not relayed; the final response follows.
    if (statusCode < 200) return;
    const m = this.#member as UpstreamEndpoint;
    const next = this.#nextForStatus(m, statusCode);
    if (next !== undefined) {
      // nginx's ngx_http_upstream_test_next: the answer is dropped unread (its connection closed) and the request
      // goes to the next endpoint; on the last try it is passed on as it is.
      this.#next = next;
      this.#log.debug({ backend: this.#target.backend, endpoint: m.address, status: statusCode, attempt: this.#attempts }, 'upstream answered a proxy-next-upstream status, trying another endpoint');
      controller.abort(new UpstreamError('UPSTREAM_CLOSED', `a ${statusCode} answer is passed to the next endpoint (proxy-next-upstream)`));
      return;
    }
    this.#started = true;
    this.#status = statusCode;
    if (this.#target.passUpstreamErrors !== true && this.#target.intercept?.includes(statusCode)) {
      // The caller answers instead, now, as nginx's proxy_intercept_errors does: the upstream's body (large, slow,
      // or never ending) is not waited for, and its connection is closed.
      this.#intercepted = true;
      (this.#backend as Backend).succeeded(m, performance.now());
      this.#finish(statusCode);
      controller.abort(new UpstreamError('UPSTREAM_CLOSED', 'an intercepted error response is not read further'));
      return;
    }
    (this.#backend as Backend).succeeded(m, performance.now());
    const affinity = this.#target.policy.affinity;
    const cookie = affinity !== undefined && m !== this.#cookieMember ? affinitySetCookie(affinity, m.cookie, this.#target.cookieScope) : undefined;
    try {
      const moved = this.#target.locationRewrite;
      if (moved !== undefined) {
        if (typeof headers.location === 'string') headers.location = rewriteLocation(headers.location, moved.from, moved.to, moved.origin);
        if (typeof headers.refresh === 'string') headers.refresh = rewriteRefresh(headers.refresh, moved.from, moved.to);
      }
      const rewrite = this.#target.policy.cookieRewrite;
      if (rewrite !== undefined && headers['set-cookie'] !== undefined) headers['set-cookie'] = rewriteSetCookies(headers['set-cookie'], rewrite);
      const auth = authCookiesFor(this.#target.authCookies, statusCode);
      let list = clientResponseHeaders(headers, cookie === undefined ? auth : [cookie, ...auth], statusCode);
      if (this.#grpc && this.#req.httpVersionMajor === 2) {
        const split = splitTrailersOnly(list);
        if (split !== null) [list, this.#heldTrailers] = [split.headers, split.trailers];
      }
      const extra = this.#target.responseHeaders;
      this.#res.writeHead(statusCode, extra === undefined ? list : withHeaders(list, extra));
      const rate = this.#target.policy.responseRate;
      if (rate !== undefined && !this.#grpc) this.#pacer = new Pacer(this.#res, rate);
    } catch (err) {
      controller.abort(new UpstreamError('BAD_RESPONSE', `upstream response headers cannot be relayed: ${(err as Error).message}`, { cause: err }));
    }
  }

  /** undici: a body chunk; pauses the upstream while the client's buffer is full. */
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#clientGone !== null || this.#intercepted || this.#next !== null) return;
    const pacer = this.#pacer;
    if (!(pacer ? pacer.write(chunk) : this.#res.write(chunk))) {
      controller.pause();
      this.#drain ??= () => this.#onDrain();
      if (pacer) pacer.once('drain', this.#drain);
      else this.#res.once('drain', this.#drain);
      this.#stalled ??= setTimeout(() => this.#onStalled(), this.#target.policy.readTimeoutMs);
      if (this.#req.httpVersionMajor === 2) this.#unwatch ??= watchResetPeer(this.#req as Http2ServerRequest, () => this.#stalled !== undefined);
    }
  }

  #onDrain(): void {
    clearTimeout(this.#stalled);
    this.#stalled = undefined;
    this.#controller?.resume();
  }

  /**
   * The client took nothing for the read timeout while the upstream waits (nginx's send_timeout, 60 s, cuts such a
   * client). Also the bound for an HTTP/2 client whose connection is gone without Node noticing and without a reset
   * (reset-peer.ts catches those with one): the session stops reading its socket while a write to it is pending.
   */
  #onStalled(): void {
    this.#stalled = undefined;
    if (this.#finished || this.#clientGone !== null) return;
    // Chunks held back by limit-rate, not by the client: the client is not stalled.
    if (this.#pacer !== undefined && !this.#pacer.clientFull) {
      this.#stalled = setTimeout(() => this.#onStalled(), this.#target.policy.readTimeoutMs);
      return;
    }
    this.#clientGone = new UpstreamError('CLIENT_TIMEOUT', `the client took no data for ${this.#target.policy.readTimeoutMs} ms`);
    this.#controller?.abort(this.#clientGone);
    // Destroyed, not reset: a reset is a frame that a stalled session would never send.
    if (this.#req.httpVersionMajor === 2) (this.#req as Http2ServerRequest).stream.destroy();
    else this.#res.destroy();
  }

  /** undici: the response is complete; on a gRPC route its trailers are relayed (on other routes they are dropped). */
  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, HeaderValue | undefined>): void {
    (this.#member as UpstreamEndpoint).inFlight--;
    if (this.#pacer?.pending === true && !this.#intercepted) {
      this.#endDeferred = true;
      return this.#pacer.whenEmpty(() => this.#endResponse(trailers));
    }
    this.#endResponse(trailers);
  }

  /** The upstream's response is complete and the client has all of its body: the response ends. */
  #endResponse(trailers: Record<string, HeaderValue | undefined>): void {
    if (!this.#intercepted) {
      const relayed = this.#grpc ? relayedTrailers(trailers, this.#heldTrailers) : undefined;
      if (relayed !== undefined) {
        this.#grpcStatus = grpcStatusOf(relayed);
        try {
          this.#res.addTrailers(relayed);
        } catch (err) {
          // A field Node will not write: the client must not take the response as complete without its status.
          this.#log.warn({ backend: this.#target.backend, err: (err as Error).message }, 'upstream trailers cannot be relayed');
          cutShort(this.#req, this.#res);
          return this.#finish(this.#status, 'BAD_RESPONSE');
        }
      }
      this.#res.end();
    }
    this.#finish(this.#status);
  }

  /** undici: the attempt failed; retries, answers with an error status, or cuts a response that has begun. */
  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    const m = this.#member as UpstreamEndpoint;
    m.inFlight--;
    // undici calls this before it closes an HTTP/2 upstream stream, which must be reset here first (request-body.ts
    // says why). A body stopped on its way (too large, the client gone) is the failure, whatever undici saw of it.
    // A body this attempt never had (nothing sent) is kept for the next endpoint, and stopped below if none is tried.
    if (this.#body instanceof UpstreamBody) {
      const stopped = this.#body.failure;
      if (stopped !== null || this.#sent) this.#body.cancel(stopped ?? asUpstreamError(err));
      if (stopped !== null) err = stopped;
      if (stopped?.code === 'CLIENT_ABORTED') this.#clientGone ??= stopped;
    }
    // Aborted after the request was answered (an intercepted status): nothing more to do or to report.
    if (this.#finished) return;
    if (this.#clientGone === null && clientClosed(this.#req, this.#socket)) this.#clientGone = new UpstreamError('CLIENT_ABORTED', 'the client went away', { cause: err });
    if (this.#clientGone !== null) {
      if (this.#body instanceof UpstreamBody) this.#body.cancel(this.#clientGone);
      return this.#finish(this.#started ? this.#status : 499, this.#clientGone.code);
    }
    // The try whose answer was dropped for proxy-next-upstream has ended: the next one starts.
    const next = this.#next;
    if (next !== null) {
      this.#next = null;
      return this.#attempt(next);
    }
    const failure = classifyError(err);
    const log = { backend: this.#target.backend, endpoint: m.address, code: failure.code, attempt: this.#attempts, err: err.message };
    if (this.#started) {
      this.#log.warn(log, 'upstream response cut short');
      if (this.#intercepted) return this.#finish(this.#status, failure.code);
      cutShort(this.#req, this.#res);
      return this.#finish(this.#status, failure.code);
    }
    const backend = this.#backend as Backend;
    // A kept-alive connection the endpoint closed or reset before any answer (it timed the connection out as the
    // request went): sent again to the same endpoint on a new connection, neither a try nor the endpoint's failure,
    // as nginx does (ngx_http_upstream_next: an error on a cached connection adds a try). Only as nginx would send it
    // on (proxy-next-upstream has `error`; a POST, LOCK or PATCH needs non_idempotent) and without a body: undici
    // reports this only for a request it has written, which the endpoint may have processed.
    if (this.#reused && !this.#resent && failure.code === 'CONNECTION_RESET' && this.#mayGoNext('error')) {
      this.#resent = true;
      this.#log.debug(log, 'kept-alive upstream connection failed, sending again on a new connection');
      return this.#attempt(m, true);
    }
    const now = performance.now();
    if (failure.connect) backend.failed(m, now);
    const other = this.#mayGoNext(failure.next) ? this.#pickNext(m, now) : undefined;
    if (other !== undefined) {
      this.#log.debug(log, 'upstream attempt failed, trying another endpoint');
      return this.#attempt(other);
    }
    this.#log.warn(log, 'upstream request failed');
    if (this.#body instanceof UpstreamBody) this.#body.cancel(asUpstreamError(err));
    this.#fail(failure.status, failure.code);
  }

  /**
   * True when the current try, failed with `what` (a failure case or the status answered), may go to another
   * endpoint as nginx's ngx_http_upstream_next allows: proxy-next-upstream names it (a POST, LOCK or PATCH already
   * sent needs non_idempotent too: passesToNext), proxy-next-upstream-timeout has not passed since the first try
   * began, and the request can be sent again: any request not sent yet (a connect error, refused, timed out or a
   * failed TLS handshake), whatever its method; once sent, never one with a body: netplane streams bodies as nginx
   * does with proxy_request_buffering off, where a request sent is not sent again. A body is sent again only when no
   * byte of it was read yet (it is the same stream, handed to the next attempt). Tries left are the caller's.
   */
  #mayGoNext(what: FailureCase | number | null): boolean {
    const policy = this.#target.policy;
    if (!passesToNext(policy.nextUpstream, what, this.#sent && !this.#idempotent)) return false;
    const limit = policy.nextUpstreamTimeoutMs ?? 0;
    if (limit > 0 && performance.now() - this.#t0 >= limit) return false;
    const body = this.#body;
    if (this.#sent) return body === null;
    return body === null || !body.readableDidRead;
  }

  /** Another endpoint than those tried (`failed` now among them), when a try is left; undefined when none. */
  #pickNext(failed: UpstreamEndpoint, now: number): UpstreamEndpoint | undefined {
    const tries = (this.#target.policy.upstreamTries ?? maxAttempts) + (this.#resent ? 1 : 0);
    if (this.#attempts >= tries) return undefined;
    (this.#tried ??= []).push(failed);
    return (this.#backend as Backend).pick(this.#target.policy, this.#tried, now, this.#target.hashKey);
  }

  /** The endpoint to ask instead when `m` answered `status` and proxy-next-upstream sends that on; else undefined. */
  #nextForStatus(m: UpstreamEndpoint, status: number): UpstreamEndpoint | undefined {
    const statuses = this.#target.policy.nextUpstream?.statuses;
    if (statuses === undefined || !statuses.includes(status) || !this.#mayGoNext(status)) return undefined;
    return this.#pickNext(m, performance.now());
  }

  /**
   * The client went away (connection closed or destroyed, stream reset or closed unfinished): the upstream request
   * is aborted at once, which closes its connection (undici destroys the socket of an aborted request).
   */
  #onClientClose(): void {
    if (this.#finished) return;
    this.#clientGone ??= new UpstreamError('CLIENT_ABORTED', 'the client went away');
    // The upstream is done, the rest of its body was still waiting for limit-rate: nothing more will come to end it.
    if (this.#endDeferred) return this.#finish(this.#status, 'CLIENT_ABORTED');
    // The upload stops here: the upstream sees it aborted (reset, or its connection closed), never complete.
    if (this.#body instanceof UpstreamBody) this.#body.cancel(this.#clientGone);
    if (this.#controller !== null) return this.#controller.abort(this.#clientGone);
    // Still waiting for a pooled connection: onRequestStart aborts the attempt when it comes; the request ends now
    // (logged 499, not held until a connection frees up, nor through a drain).
    this.#finish(499, 'CLIENT_ABORTED');
  }

  #fail(status: number, code: UpstreamErrorCode): void {
    // The rest of a body too large is not sent upstream: an HTTP/1.1 connection closes after the answer (lingering,
    // as nginx's); an HTTP/2 stream is reset with NO_ERROR after it, which asks the client to stop (RFC 9113 §8.1).
    if (code === 'BODY_TOO_LARGE' && this.#req.httpVersionMajor !== 2) lingerAfterRefusal(this.#req as IncomingMessage, this.#res as unknown as ServerResponse);
    if (status === 499) return this.#finish(status, code);
    // The caller answers a listed status (custom-http-errors); not a refused upload, which must close as above, nor a
    // gRPC call, whose client reads the failure from grpc-status.
    if (!this.#grpc && code !== 'BODY_TOO_LARGE' && this.#target.intercept?.includes(status)) {
      this.#intercepted = true;
      return this.#finish(status, code);
    }
    if (!this.#grpc) writeErrorStatus(this.#res as unknown as ClientResponse, status, this.#target.authCookies);
    else {
      // gRPC clients read the failure from grpc-status, not from an HTTP status (grpc.ts says which).
      this.#grpcStatus = writeGrpcFailure(this.#res, this.#req.httpVersionMajor === 2, code);
      status = 200;
    }
    if (code === 'BODY_TOO_LARGE' && this.#req.httpVersionMajor === 2) stopUpload(this.#req as Http2ServerRequest);
    this.#finish(status, code);
  }

  #finish(status: number, error?: UpstreamErrorCode): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#stalled);
    this.#pacer?.stop();
    this.#unwatch?.();
    const result = forwardResult(status, this.#attempts, this.#member, this.#t0, error);
    if (this.#intercepted) result.intercepted = true;
    if (this.#grpcStatus !== undefined) result.grpcStatus = this.#grpcStatus;
    this.#done(result);
  }
}

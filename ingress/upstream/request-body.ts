// The request body as it is sent upstream when it must be watched on its way: counted against proxy-body-size, and
// stopped so that the upstream sees the upload aborted, never complete, when it cannot be finished.
//
// Over HTTP/2 upstreams (gRPC) undici writes a stream body with stream.pipeline(body, h2stream), and aborts a
// request with h2stream.close(). Node's close() emits 'aborted' before it submits the RST_STREAM frame, and the
// pipeline's end-of-stream watcher destroys the stream on 'aborted', dropping its native handle: the RST_STREAM is
// never submitted and nghttp2 keeps the stream open with its data source. When the backend then opens the
// flow-control window, Node's data source callback answers 0 bytes for the stream it no longer knows, and nghttp2
// writes empty DATA frames in a loop that never returns (memory grows by about 1 GB/s until the process is killed).
// So the upstream stream is reset here first, the way Node resets a stream itself: destroyed with an AbortError,
// which submits RST_STREAM(CANCEL) while the handle is there and sends no END_STREAM. undici's close() then finds
// the stream closed and does nothing more.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import { Transform, addAbortSignal, type Writable } from 'node:stream';
import { UpstreamError } from './errors.ts';
import type { ClientRequest } from './forward.ts';

/**
 * Where a copy of a request body goes as the upstream reads it (mirror-target: upstream/mirror.ts). It must never
 * hold the upload back: `write` takes a chunk and returns at once; `end` says the body is complete; `abort` that it
 * will not be (too large, the client gone, the upstream request failed).
 */
export interface BodyTap {
  write(chunk: Buffer): void;
  end(): void;
  abort(): void;
}

/**
 * A client's request body on its way upstream. It fails with BODY_TOO_LARGE once more than `limit` bytes came
 * (0: no limit), without touching the client's connection (the gateway still answers 413 or RESOURCE_EXHAUSTED on
 * it). For an HTTP/2 client whose stream was reset before its END_STREAM it fails instead of ending: Node ends such
 * a request normally. `cancel()` stops it for any reason; `failure` says why it stopped. A `tap` gets a copy of
 * each chunk that goes upstream, and is told of the end or of the stop.
 */
export class UpstreamBody extends Transform {
  readonly #req: ClientRequest;
  readonly #limit: number;
  readonly #clientStream: Http2ServerRequest['stream'] | undefined;
  #seen = 0;
  #failure: UpstreamError | null = null;
  // What undici pipes the body into: the upstream HTTP/2 stream (HTTP/1.1 bodies are read with 'data' events).
  #sink: Writable | null = null;
  readonly #tap: BodyTap | undefined;

  constructor(req: ClientRequest, limit: number, tap?: BodyTap) {
    super();
    this.#req = req;
    this.#limit = limit;
    this.#tap = tap;
    this.#clientStream = req.httpVersionMajor === 2 ? (req as Http2ServerRequest).stream : undefined;
    // Failures reach the exchange through undici and `failure`; a late one must not be an unhandled 'error'.
    this.on('error', () => {});
    (req as NodeJS.ReadableStream).pipe(this);
  }

  /** Why the body was stopped (BODY_TOO_LARGE, CLIENT_ABORTED, or the upstream request's failure); null when it was not. */
  get failure(): UpstreamError | null {
    return this.#failure;
  }

  /**
   * Remembers the stream undici writes the body into (its HTTP/2 client uses stream.pipeline, which pipes a readable
   * source). The tests of this reset (test/ingress/upstream/grpc.test.ts) fail should undici write it otherwise.
   */
  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.#sink = destination as unknown as Writable;
    return super.pipe(destination, options);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.#seen += chunk.length;
    if (this.#limit > 0 && this.#seen > this.#limit) {
      this.cancel(new UpstreamError('BODY_TOO_LARGE', `the request body is larger than ${this.#limit} bytes (proxy-body-size)`));
      return done();
    }
    this.#tap?.write(chunk);
    done(null, chunk);
  }

  override _flush(done: (err?: Error | null) => void): void {
    const stream = this.#clientStream;
    if (stream === undefined) {
      this.#tap?.end();
      return done();
    }
    // Node's HTTP/2 client (grpc-js's cancel) resets a stream with END_STREAM and then RST_STREAM, which a peer in
    // another process mostly reads at once; Node hands the end over before it reads the reset. So the end goes
    // upstream once the frames read with it are handled: a stream reset by then is an aborted upload.
    setImmediate(() => {
      if (this.#failure !== null || this.destroyed) return;
      if (stream.aborted) return this.cancel(new UpstreamError('CLIENT_ABORTED', 'the client reset its stream before the body was complete'));
      this.#tap?.end();
      done();
    });
  }

  /**
   * Stops the body for `reason` (the first reason is kept): the client is no longer read, and the upstream sees the
   * upload aborted. An HTTP/2 upstream stream still open is reset with CANCEL (also after the whole body went: the
   * request is being given up); otherwise the body fails, which makes undici close an HTTP/1.1 connection.
   */
  cancel(reason: UpstreamError): void {
    if (this.#failure !== null) return;
    this.#failure = reason;
    this.#tap?.abort();
    (this.#req as NodeJS.ReadableStream).unpipe(this);
    const sink = this.#sink;
    if (sink === null) this.destroy(reason);
    else if (!sink.destroyed) resetWithCancel(sink);
  }
}

/**
 * Resets an HTTP/2 client's stream with NO_ERROR once its response is out, unless its request side ended: the rest
 * of an upload that was refused is not wanted (RFC 9113 §8.1; nginx does the same), and a client blocked on the
 * flow-control window would otherwise wait forever. Node's response ends the stream on its trailers: the reset
 * follows them.
 */
export function stopUpload(req: Http2ServerRequest): void {
  const stream = req.stream;
  const close = () => {
    if (!stream.destroyed && !stream.closed && !req.complete) stream.close(http2Constants.NGHTTP2_NO_ERROR);
  };
  if (stream.sentTrailers !== undefined) close();
  else stream.once('wantTrailers', () => setImmediate(close));
}

// nginx's lingering close (lingering_close on, lingering_timeout 5s, lingering_time 30s).
const lingerIdleMs = 5_000;
const lingerMaxMs = 30_000;

/**
 * Closes an HTTP/1.1 connection after a refused upload without losing the answer, as nginx's lingering close does:
 * the rest of the body is read and dropped, the connection is half-closed once the answer is out, and it is closed
 * when the client closes its side, sends nothing for 5 s, or after 30 s. (Closed at once, with the client's data
 * still arriving, the kernel answers that data with a TCP reset, which can reach the client before the answer does.)
 */
export function lingerAfterRefusal(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
  req.resume();
  const socket = req.socket;
  // Node's server ends the connection of a last response with destroySoon() (end, then destroy once written).
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.writable) this.end();
    const idle = setTimeout(() => this.destroy(), lingerIdleMs);
    const max = setTimeout(() => this.destroy(), lingerMaxMs);
    this.on('data', () => idle.refresh());
    this.once('end', () => this.destroy());
    this.once('close', () => (clearTimeout(idle), clearTimeout(max)));
  };
}

/**
 * Destroys an HTTP/2 stream with an AbortError, which Node sends as RST_STREAM(CANCEL) and without END_STREAM (an
 * AbortSignal is the public way to get Node's own AbortError; addAbortSignal destroys the stream with it at once).
 */
function resetWithCancel(stream: Writable): void {
  const controller = new AbortController();
  addAbortSignal(controller.signal, stream);
  controller.abort();
}

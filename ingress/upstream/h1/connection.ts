// One kept-alive HTTP/1.1 connection to an upstream, on a native TCP handle (runtime/tcp-handles.ts) with Node's
// own llhttp parser (the HTTPParser of node:http) reading the responses strictly: a response that could be read two
// ways (Content-Length with Transfer-Encoding, two lengths, a bad chunk size) fails the request and the connection.
// One request at a time (no pipelining); a byte from the upstream that no request asked for closes the connection,
// so a response can never be taken for the next request's. Timeouts are deadlines checked by one shared ticker.
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { tcpBindings, type HandleReq, type TcpBindings, type TcpHandle } from '../../../runtime/tcp-handles.ts';
import { UpstreamError } from '../errors.ts';
import type { Carrier, Exchange } from './exchange.ts';
import { chunkHeader, headerRecord, lastChunk } from './head.ts';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Uint8Array): number | (Error & { code?: string });
  finish(): number | (Error & { code?: string }) | undefined;
  [callback: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass };

/** What a connection tells its pool. */
export interface ConnectionOwner {
  /** The dial succeeded (idle() follows). */
  connected(conn: H1Connection): void;
  /** The connection can take a request (just connected, or done with one and kept alive). */
  idle(conn: H1Connection): void;
  /** The connection is closed; `dialError` when it never connected. */
  gone(conn: H1Connection, dialError?: Error): void;
}

const UV_EOF = -4095;
const ignoreRead = (): void => {};
// Request body bytes queued in the kernel's and libuv's buffers before the body is no longer read.
const writeHighWater = 64 * 1024;
// How much earlier than the upstream's Keep-Alive timeout an idle connection is let go (undici's threshold).
const keepAliveMarginMs = 1000;

type Deadline = 'none' | 'connect' | 'send' | 'headers' | 'body' | 'idle';

// Every open connection, checked for its deadline every 100 ms by one timer that does not keep the process alive.
const timed = new Set<H1Connection>();
let ticker: NodeJS.Timeout | undefined;
function track(conn: H1Connection): void {
  timed.add(conn);
  if (ticker === undefined) {
    ticker = setInterval(() => {
      const now = performance.now();
      for (const c of timed) c.checkDeadline(now);
      if (timed.size === 0) {
        clearInterval(ticker);
        ticker = undefined;
      }
    }, 100);
    ticker.unref();
  }
}

// Request heads without a body are written together once the event loop has run the callbacks of what it read
// (setImmediate: the check phase, which follows the poll). Between two such writes the upstream has not yet run, so
// only the first of a round has the kernel wake it: on loopback, a wake-up costs the writer more than the write.
const queuedHeads: H1Connection[] = [];
let headsFlushQueued = false;
function queueHead(conn: H1Connection): void {
  queuedHeads.push(conn);
  if (!headsFlushQueued) {
    headsFlushQueued = true;
    setImmediate(flushHeads);
  }
}
function flushHeads(): void {
  // A head queued while writing these (a failed request's retry) goes out in this same pass.
  for (let i = 0; i < queuedHeads.length; i++) queuedHeads[i]!.writeQueuedHead();
  queuedHeads.length = 0;
  headsFlushQueued = false;
}

function systemError(status: number, syscall: string, address: string): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${syscall} ${code} ${address}`), { code, errno: status, syscall });
}

export class H1Connection implements Carrier {
  readonly #owner: ConnectionOwner;
  readonly #n: TcpBindings;
  readonly #handle: TcpHandle;
  readonly #parser: Parser;
  readonly #address: string;
  readonly #keepAliveMs: number;
  #state: 'connecting' | 'idle' | 'busy' | 'closed' = 'connecting';
  #exchange: Exchange | null = null;
  /** Requests written on this connection. */
  #sent = 0;
  #deadline = Infinity;
  #deadlineKind: Deadline = 'none';
  // The current response: complete, allows another request, bytes after it, fields the parser flushed early.
  #complete = false;
  #keepAlive = true;
  #extra = false;
  #fields: string[] = [];
  #idleMs: number;
  #bodyDone = false;
  #stopBody: (() => void) | null = null;
  #bodyPaused = false;
  // The write queue's size when the send deadline was last set: a smaller one means the upstream took bytes since.
  #sendQueued = 0;
  // The response is not being read (its handler paused it).
  #readStopped = false;
  // A passed deadline waits for the check phase (checkDeadline).
  #recheckQueued = false;

  constructor(owner: ConnectionOwner, ip: string, port: number, address: string, connectTimeoutMs: number, keepAliveMs: number) {
    this.#owner = owner;
    this.#n = tcpBindings as TcpBindings;
    this.#address = address;
    this.#keepAliveMs = this.#idleMs = keepAliveMs;
    const parser = (this.#parser = new HTTPParser());
    parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    parser[HTTPParser.kOnMessageBegin] = () => {
      if (this.#complete) this.#extra = true;
    };
    parser[HTTPParser.kOnHeaders] = (fields: string[]) => {
      for (const f of fields) this.#fields.push(f);
    };
    parser[HTTPParser.kOnHeadersComplete] = this.#onHead.bind(this);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const ex = this.#exchange;
      if (ex === null || !ex.started || this.#complete || ex.ended) return;
      if (this.#deadlineKind === 'body') this.#deadline = performance.now() + ex.bodyTimeout;
      ex.data(chunk);
    };
    parser[HTTPParser.kOnMessageComplete] = () => {
      const ex = this.#exchange;
      if (ex === null || this.#complete) return;
      // A 1xx answer is complete: the final response follows on the same connection.
      if (!ex.started) return void (this.#fields = []);
      this.#complete = true;
    };
    const handle = (this.#handle = new this.#n.TCP(this.#n.SOCKET));
    track(this);
    this.#setDeadline('connect', connectTimeoutMs);
    const req = new this.#n.TCPConnectWrap();
    req.oncomplete = (status: number) => this.#connected(status);
    const err = isIPv6(ip) ? handle.connect6(req, ip, port) : handle.connect(req, ip, port);
    if (err !== 0) queueMicrotask(() => this.#connected(err));
  }

  #connected(status: number): void {
    if (this.#state !== 'connecting') return;
    if (status !== 0) return this.#close(systemError(status, 'connect', this.#address));
    this.#handle.setNoDelay(true);
    this.#handle.onread = (buffer) => this.#onRead(buffer);
    this.#handle.readStart();
    this.#owner.connected(this);
    this.#toIdle();
  }

  #toIdle(): void {
    // A response paused by its handler can complete within the read that paused it: the connection reads again, to
    // see the next response or the upstream's close.
    if (this.#readStopped) {
      this.#readStopped = false;
      this.#handle.readStart();
    }
    this.#state = 'idle';
    this.#exchange = null;
    this.#setDeadline('idle', this.#idleMs);
    this.#owner.idle(this);
  }

  /** Sends `ex` on this idle connection. */
  start(ex: Exchange): void {
    this.#state = 'busy';
    this.#exchange = ex;
    ex.carrier = this;
    this.#setDeadline('none', 0);
    this.#complete = this.#extra = false;
    this.#keepAlive = true;
    this.#fields = [];
    this.#bodyDone = ex.body === null;
    if (!ex.start(this.#sent > 0)) return;
    // A body follows its head at once; a head alone waits for the round's other heads.
    if (ex.body === null) queueHead(this);
    else this.#writeHead(ex);
  }

  /** Writes the head start() queued, unless the request ended or left the connection meanwhile. */
  writeQueuedHead(): void {
    const ex = this.#exchange;
    if (this.#state === 'busy' && ex !== null && !ex.written && !ex.ended) this.#writeHead(ex);
  }

  #writeHead(ex: Exchange): void {
    const err = this.#handle.writeLatin1String(this.#writeReq(), ex.head.text);
    if (err !== 0) return this.#fail(ex, this.#writeFailed(err));
    ex.written = true;
    this.#sent++;
    if (ex.body === null) this.#setDeadline('headers', ex.headersTimeout);
    else this.#sendBody(ex, ex.body);
  }

  /** Carrier: reads the response again, or stops. */
  flow(reading: boolean): void {
    if (this.#state !== 'busy') return;
    const ex = this.#exchange as Exchange;
    this.#readStopped = !reading;
    if (reading) {
      this.#handle.readStart();
      if (ex.started) this.#setDeadline('body', ex.bodyTimeout);
    } else {
      this.#handle.readStop();
      if (this.#deadlineKind === 'body') this.#setDeadline('none', 0);
    }
  }

  /** Carrier: `ex` was aborted; nothing written yet leaves the connection usable. */
  aborted(ex: Exchange): void {
    if (this.#exchange !== ex) return;
    if (!ex.written) {
      // Called from within start(): the pool hears of it once that returns.
      queueMicrotask(() => this.#state === 'busy' && this.#exchange === ex && this.#toIdle());
      return;
    }
    this.#close(null);
  }

  /**
   * The timer: fails what waited too long, lets go of a connection idle too long. A passed deadline is looked at
   * once more after the event loop has read pending I/O (`recheck` false), and acted on then.
   */
  checkDeadline(now: number, recheck = false): void {
    // libuv shrinks the queue as bytes go, even part of a write: progress restarts the send deadline (nginx's
    // proxy_send_timeout runs between two successive writes), seen within a tick.
    if (this.#deadlineKind === 'send' && this.#handle.writeQueueSize < this.#sendQueued) this.#armSend();
    if (now < this.#deadline) return;
    // Node runs timers before it polls for I/O in each turn of its loop, so after a stall (a long synchronous task,
    // a GC pause) an answer, a connect or a drained write that arrived in time has not been read yet. nginx handles
    // ready events before it expires timers; likewise the deadline is looked at again in the check phase, which
    // follows the poll: what was read there has moved it.
    if (!recheck && this.#deadlineKind !== 'idle') {
      if (!this.#recheckQueued) {
        this.#recheckQueued = true;
        setImmediate(() => {
          this.#recheckQueued = false;
          if (this.#state !== 'closed') this.checkDeadline(performance.now(), true);
        });
      }
      return;
    }
    const kind = this.#deadlineKind;
    this.#setDeadline('none', 0);
    const ex = this.#exchange;
    if (kind === 'connect') return this.#close(new UpstreamError('CONNECT_TIMEOUT', `connecting to ${this.#address} timed out`));
    if (kind === 'idle' || ex === null) return this.#close(null);
    if (kind === 'send') return this.#fail(ex, new UpstreamError('SEND_TIMEOUT', `${this.#address} took none of the request body for ${ex.sendTimeout} ms`));
    const what = kind === 'headers' ? 'response head' : 'more of the response body';
    this.#fail(ex, new UpstreamError('READ_TIMEOUT', `${this.#address} sent no ${what} for ${kind === 'headers' ? ex.headersTimeout : ex.bodyTimeout} ms`));
  }

  /** Closes the connection now; a request on it fails with `err`. */
  destroy(err: Error): void {
    const ex = this.#exchange;
    if (ex !== null && this.#state === 'busy') this.#fail(ex, err);
    else this.#close(null);
  }

  #setDeadline(kind: Deadline, ms: number): void {
    this.#deadlineKind = kind;
    this.#deadline = kind === 'none' || ms <= 0 ? Infinity : performance.now() + ms;
  }

  /** The send deadline, from now, against the write queue as it is now. */
  #armSend(): void {
    this.#sendQueued = this.#handle.writeQueueSize;
    this.#setDeadline('send', (this.#exchange as Exchange).sendTimeout);
  }

  /** A write the kernel refused (status: -errno). */
  #writeFailed(status: number): UpstreamError {
    return new UpstreamError('CONNECTION_RESET', `writing to ${this.#address}: ${getSystemErrorName(status)}`);
  }

  #writeReq(): HandleReq {
    const req = new this.#n.WriteWrap();
    req.handle = this.#handle;
    req.oncomplete = this.#written;
    req.async = false;
    return req;
  }

  // A queued write completed: a body held back for the full buffers is read again.
  readonly #written = (status: number): void => {
    if (status < 0 && this.#state === 'busy') {
      const ex = this.#exchange as Exchange;
      return this.#fail(ex, this.#writeFailed(status));
    }
    const queued = this.#handle.writeQueueSize;
    if (this.#deadlineKind === 'send') {
      // The body went out whole: from here the upstream's answer is waited for. Else the body is read again below.
      if (this.#bodyDone) {
        if (queued === 0) this.#setDeadline('headers', (this.#exchange as Exchange).headersTimeout);
      } else if (queued <= writeHighWater) this.#setDeadline('none', 0);
    }
    if (this.#bodyPaused && queued <= writeHighWater) {
      this.#bodyPaused = false;
      (this.#exchange?.body as NodeJS.ReadableStream | null)?.resume();
    }
  };

  #sendBody(ex: Exchange, body: NodeJS.ReadableStream): void {
    const { chunked, contentLength } = ex.head;
    let sent = 0;
    const onData = (data: Buffer | string) => {
      if (this.#exchange !== ex || ex.ended) return;
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      if (chunk.length === 0) return;
      sent += chunk.length;
      if (!chunked && sent > contentLength) return this.#fail(ex, new UpstreamError('INVALID_REQUEST', `the request body is longer than its Content-Length ${contentLength}`));
      const req = this.#writeReq();
      // The buffers must live until the write completes.
      req.buffer = chunk;
      const err = chunked ? this.#handle.writev(req, [chunkHeader(chunk.length), 'latin1', chunk, '', '\r\n', 'latin1'], false) : this.#handle.writeBuffer(req, chunk);
      if (err !== 0) return this.#fail(ex, this.#writeFailed(err));
      if (this.#handle.writeQueueSize > writeHighWater && !this.#bodyPaused) {
        this.#bodyPaused = true;
        body.pause();
        // An upstream that takes none of the body for the send timeout is given up (nginx's proxy_send_timeout).
        if (this.#deadlineKind === 'none') this.#armSend();
      }
    };
    const onEnd = () => {
      if (this.#exchange !== ex || ex.ended) return;
      this.#stopBody?.();
      if (!chunked && sent !== contentLength) return this.#fail(ex, new UpstreamError('INVALID_REQUEST', `the request body ended after ${sent} of its ${contentLength} bytes`));
      if (chunked) {
        const err = this.#handle.writeLatin1String(this.#writeReq(), lastChunk);
        if (err !== 0) return this.#fail(ex, this.#writeFailed(err));
      }
      this.#bodyDone = true;
      // Bytes of it still waiting for the upstream keep the send deadline until they are written (#written).
      if (!ex.started && this.#deadlineKind !== 'send') this.#setDeadline('headers', ex.headersTimeout);
    };
    const onError = (err: Error) => {
      if (this.#exchange === ex) this.#fail(ex, err);
    };
    const onClose = () => {
      if (this.#exchange === ex && !this.#bodyDone) this.#fail(ex, new UpstreamError('CLIENT_ABORTED', 'the request body stopped before its end'));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    this.#stopBody = () => {
      this.#stopBody = null;
      // A body held back for the upstream is let go: what is left of it is the client's server's to drain.
      if (this.#bodyPaused) {
        this.#bodyPaused = false;
        body.resume();
      }
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
  }

  #onHead(_major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown, status: number, message: string, upgrade: boolean, keepAlive: boolean): number {
    const ex = this.#exchange;
    if (ex === null || ex.ended || this.#complete) return 1;
    let raw = headers;
    if (raw === undefined) [raw, this.#fields] = [this.#fields, []];
    // 1xx: no body; the final response follows (101 is a protocol switch, which a plain request did not ask for).
    if (status < 200 && status !== 101) return 0;
    if (status === 101 || upgrade) {
      this.#fail(ex, new UpstreamError('BAD_RESPONSE', `${this.#address} switched protocols (${status}) on a request that did not ask to`));
      return 1;
    }
    const record = headerRecord(raw);
    this.#keepAlive = keepAlive;
    this.#idleMs = keepAliveHint(record['keep-alive'], this.#keepAliveMs);
    this.#setDeadline('body', ex.bodyTimeout);
    if (!ex.response(status, record, message)) return 1;
    if (ex.paused && this.#deadlineKind === 'body') this.#setDeadline('none', 0);
    return ex.method === 'HEAD' ? 1 : 0;
  }

  #onRead(buffer: ArrayBuffer | undefined): void {
    const n = this.#n;
    const nread = n.state[n.readBytes]!;
    if (nread === 0) return;
    const ex = this.#exchange;
    if (nread < 0) return this.#onEnd(nread);
    // Bytes no request asked for: the connection cannot be trusted to frame the next response.
    if (ex === null || !ex.written) return this.#close(null);
    // nginx's proxy_read_timeout runs between two successive reads, a response head's too: part of a head, or a
    // 1xx before the final one, restarts it.
    if (this.#deadlineKind === 'headers') this.#setDeadline('headers', ex.headersTimeout);
    const r = this.#parser.execute(new Uint8Array(buffer as ArrayBuffer, n.state[n.offset], nread));
    if (this.#exchange !== ex) return;
    if (this.#complete) return this.#finish(ex);
    if (typeof r !== 'number' && r !== undefined) this.#fail(ex, new UpstreamError('BAD_RESPONSE', `${this.#address} sent a malformed response (${r.code ?? r.message})`, { cause: r }));
  }

  #onEnd(nread: number): void {
    const ex = this.#exchange;
    if (ex === null || this.#state !== 'busy') return this.#close(null);
    if (ex.started && ex.written) {
      // A response delimited by the end of the connection is complete now.
      const r = this.#parser.finish();
      if (this.#exchange === ex && this.#complete) return this.#finish(ex);
      if (typeof r !== 'number' && r !== undefined && r.code !== 'HPE_INVALID_EOF_STATE') {
        return this.#fail(ex, new UpstreamError('BAD_RESPONSE', `${this.#address} sent a malformed response (${r.code ?? r.message})`, { cause: r }));
      }
    }
    const how = nread === UV_EOF ? 'closed the connection' : `reset the connection (${getSystemErrorName(nread)})`;
    const when = ex.started ? 'before the response was complete' : 'before answering';
    this.#fail(ex, new UpstreamError('CONNECTION_RESET', `${this.#address} ${how} ${when}`));
  }

  /** The response is complete: the handler hears it, and the connection takes the next request or closes. */
  #finish(ex: Exchange): void {
    const reusable = this.#keepAlive && this.#bodyDone && !this.#extra && this.#idleMs > 0;
    this.#stopBody?.();
    const trailers = headerRecord(this.#fields);
    this.#fields = [];
    ex.carrier = null;
    if (reusable) {
      // Back in the pool first: a request waiting for a connection may go out on this one before the handler hears the end.
      this.#toIdle();
      ex.end(trailers);
    } else {
      this.#close(null);
      ex.end(trailers);
    }
  }

  #fail(ex: Exchange, err: Error): void {
    this.#close(null);
    ex.fail(err);
  }

  /** Closes the handle (once); `dialError`: the connect failed or timed out. */
  #close(dialError: Error | null): void {
    if (this.#state === 'closed') return;
    const wasConnecting = this.#state === 'connecting';
    this.#state = 'closed';
    this.#exchange = null;
    this.#stopBody?.();
    this.#setDeadline('none', 0);
    timed.delete(this);
    this.#handle.onread = ignoreRead;
    this.#handle.close();
    this.#owner.gone(this, wasConnecting ? (dialError ?? new UpstreamError('UPSTREAM_CLOSED', `the connection to ${this.#address} was closed while connecting`)) : undefined);
  }
}

/** How long an idle connection is kept: the pool's time, or less when the upstream's `Keep-Alive: timeout=N` says so. */
export function keepAliveHint(value: string | string[] | undefined, poolMs: number): number {
  if (value === undefined) return poolMs;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(typeof value === 'string' ? value : value.join(','));
  if (m === null) return poolMs;
  return Math.min(poolMs, Number(m[1]) * 1000 - keepAliveMarginMs);
}

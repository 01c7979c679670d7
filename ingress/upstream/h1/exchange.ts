// One request to an HTTP/1.1 upstream as the pool and its connections see it: the caller's handler, its controller
// (pause, resume, abort), and the guarantee that the handler hears exactly one ending, onResponseEnd or
// onResponseError, once. The handler is forward.ts's Exchange; the calls have undici's names and arguments.
import { UpstreamError } from '../errors.ts';
import type { RequestHead } from './head.ts';

/** What the handler gets to steer its request with. */
export interface H1Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
  readonly aborted: boolean;
  readonly paused: boolean;
}

/** The calls a request's handler gets (undici's DispatchHandler names; forward.ts implements both). */
export interface H1Handler {
  /** A connection was given to the request, just before its head is written; `reused`: it carried a request before. */
  onRequestStart?(controller: H1Controller, context: { reused: boolean }): void;
  onResponseStart?(controller: H1Controller, statusCode: number, headers: Record<string, string | string[]>, statusMessage: string): void;
  onResponseData?(controller: H1Controller, chunk: Buffer): void;
  onResponseEnd?(controller: H1Controller, trailers: Record<string, string | string[]>): void;
  onResponseError?(controller: H1Controller | null, err: Error): void;
}

/** What an exchange needs from the connection carrying it. */
export interface Carrier {
  /** Stops reading the response (pause) or reads again (resume). */
  flow(reading: boolean): void;
  /** The exchange was aborted: the connection is dropped, unless nothing of the request was written yet. */
  aborted(exchange: Exchange): void;
}

export class Exchange implements H1Controller {
  readonly head: RequestHead;
  readonly method: string;
  readonly body: NodeJS.ReadableStream | null;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly sendTimeout: number;
  readonly #handler: H1Handler;
  carrier: Carrier | null = null;
  /** The request's head went out (on `carrier`). */
  written = false;
  /** The final (non-1xx) response began. */
  started = false;
  #ended = false;
  #aborted = false;
  #paused = false;

  /** Timeouts in ms, 0 for none: see H1DispatchOptions. */
  constructor(head: RequestHead, method: string, body: NodeJS.ReadableStream | null, headersTimeout: number, bodyTimeout: number, sendTimeout: number, handler: H1Handler) {
    this.head = head;
    this.method = method;
    this.body = body;
    this.headersTimeout = headersTimeout;
    this.bodyTimeout = bodyTimeout;
    this.sendTimeout = sendTimeout;
    this.#handler = handler;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** True once the handler heard its ending (or the request was aborted): nothing more reaches it. */
  get ended(): boolean {
    return this.#ended;
  }

  abort(reason: Error): void {
    if (this.#ended) return;
    this.#aborted = true;
    this.carrier?.aborted(this);
    // After the connection let go of it: the handler may start another attempt from here.
    this.fail(reason);
  }

  pause(): void {
    if (this.#ended || this.#paused) return;
    this.#paused = true;
    this.carrier?.flow(false);
  }

  resume(): void {
    if (this.#ended || !this.#paused) return;
    this.#paused = false;
    this.carrier?.flow(true);
  }

  /** Returns false when the handler aborted the request from within the call. */
  start(reused: boolean): boolean {
    this.#call(() => this.#handler.onRequestStart?.(this, { reused }));
    return !this.#ended;
  }

  /** The final response's head; returns false when the request ended from within the call. */
  response(status: number, headers: Record<string, string | string[]>, message: string): boolean {
    this.started = true;
    this.#call(() => this.#handler.onResponseStart?.(this, status, headers, message));
    return !this.#ended;
  }

  data(chunk: Buffer): void {
    if (!this.#ended) this.#call(() => this.#handler.onResponseData?.(this, chunk));
  }

  end(trailers: Record<string, string | string[]>): void {
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.#handler.onResponseEnd?.(this, trailers);
    } catch (err) {
      reportLate(err);
    }
  }

  /** Ends the request with `err` (once; later failures are dropped). The handler hears it in a microtask, off the parser's stack. */
  fail(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    const controller = this.carrier === null && !this.#aborted ? null : this;
    queueMicrotask(() => {
      try {
        this.#handler.onResponseError?.(controller, err);
      } catch (thrown) {
        reportLate(thrown);
      }
    });
  }

  /** A handler that throws aborts its request with what it threw, as undici does. */
  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.abort(err instanceof Error ? err : new UpstreamError('UPSTREAM_ERROR', String(err)));
    }
  }
}

/** A throw from a handler's ending: nothing is left to abort; it surfaces as an uncaught exception would, without crashing the parser's caller. */
function reportLate(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'NETPLANE_H1_HANDLER' });
}

// Copies of requests for mirror-target (routes/mirror.ts says what the annotations mean). A copy is sent fire and
// forget through one undici Agent (the target is a URL: a name to resolve, TLS or not, any port) and its answer is
// read and dropped. Nothing of it reaches the client or holds the client's request back — better than nginx, whose
// mirror module reads the whole body before proxying and delays the next request on a keep-alive connection until the
// mirror subrequest is done:
// - at most `maxInFlight` copies per route are under way; a request beyond that is not copied (counted as dropped);
// - each copy ends within its time-out (the route's proxy-connect-timeout plus proxy-read-timeout), answered or not;
// - the body is copied chunk by chunk as the upstream reads it (request-body.ts BodyTap), never read ahead for the
//   mirror; a mirror that takes it slower than the upstream holds at most `maxBufferedBytes`, then its copy is
//   given up, never the client's request.
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { Logger } from '../../runtime/logger.ts';
import { upstreamRequestHeaders, withoutBodyHeaders } from './headers.ts';
import type { BodyTap } from './request-body.ts';

/** What became of a request of a mirrored route: copied and answered; not copied (over the cap); copied and failed. */
export type MirrorOutcome = 'sent' | 'dropped' | 'failed';

/** Options of Mirrors. */
export interface MirrorsOptions {
  log: Logger;
  /** Copies under way per route; a request beyond them is not copied (--mirror-max-in-flight). */
  maxInFlight: number;
  /** Body bytes held for one copy whose mirror takes them slower than they come, before the copy is given up. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Counts each request of a mirrored route by outcome; `ingress` is `namespace/name`. */
  count?: (ingress: string, outcome: MirrorOutcome) => void;
}

/** One request to copy. */
export interface MirrorRequest {
  /** What the cap counts by: the route (by identity). */
  route: object;
  /** The Ingress, `namespace/name`. */
  ingress: string;
  /** `scheme://host[:port]` of the target. */
  origin: string;
  /** The target's path and query for this request (routes/mirror.ts mirrorPath). */
  path: string;
  method: string;
  /** The client's headers as Node read them (rawHeaders): sent without hop-by-hop ones, Host replaced by `host`. */
  rawHeaders: readonly string[];
  host: string;
  /** The copy carries the client's body (mirror-request-body on, and the request has one); else none and no Content-Length. */
  body: boolean;
  /** The copy is given up after this long, answered or not. */
  timeoutMs: number;
}

/** A copy under way: where its body goes (when it carries one), and `settle()`, for when the client's request is done. */
export interface MirrorCopy {
  tap?: BodyTap;
  /** The client's request is done: a body copy that did not reach its end is given up. */
  settle(): void;
}

const defaultMaxBuffered = 1024 * 1024;

/** Sends the copies of all mirrored routes. */
export class Mirrors {
  readonly #o: MirrorsOptions;
  readonly #maxBuffered: number;
  // Copies under way by route; a route of an older table keeps counting its own until they end.
  readonly #inFlight = new WeakMap<object, number>();
  // ingress-nginx's mirror location verifies no certificate (proxy_ssl_verify off), as netplane's HTTPS backends
  // without proxy-ssl-verify; the name is sent as SNI so that a target behind a shared address is reached.
  readonly #agent = new Agent({ connect: { rejectUnauthorized: false } });
  #closed = false;

  constructor(o: MirrorsOptions) {
    this.#o = o;
    this.#maxBuffered = o.maxBufferedBytes ?? defaultMaxBuffered;
  }

  /** Copies `r` unless its route has `maxInFlight` copies under way (then undefined, counted as dropped). Never throws. */
  start(r: MirrorRequest): MirrorCopy | undefined {
    const n = this.#inFlight.get(r.route) ?? 0;
    if (this.#closed || n >= this.#o.maxInFlight) {
      this.#o.count?.(r.ingress, 'dropped');
      return undefined;
    }
    this.#inFlight.set(r.route, n + 1);
    const headers = upstreamRequestHeaders(r.rawHeaders, { host: r.host });
    const body = r.body ? new MirrorBody(this.#maxBuffered) : null;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`the mirror did not answer within ${r.timeoutMs} ms`)), r.timeoutMs);
    const done = (outcome: MirrorOutcome, err?: unknown) => {
      clearTimeout(timer);
      this.#inFlight.set(r.route, (this.#inFlight.get(r.route) ?? 1) - 1);
      body?.abandon('the copy ended');
      if (outcome === 'failed') this.#o.log.debug({ ingress: r.ingress, mirror: r.origin, err: String((err as Error)?.message ?? err) }, 'mirror copy failed');
    };
    let answered = false;
    this.#agent
      .request({
        origin: r.origin,
        path: r.path,
        method: r.method as 'GET',
        headers: body === null ? withoutBodyHeaders(headers) : headers,
        body,
        signal: controller.signal,
        headersTimeout: r.timeoutMs,
        bodyTimeout: r.timeoutMs,
      })
      .then(async (res) => {
        // Answered, whatever the status: its body is read and dropped so that the connection can be kept.
        answered = true;
        this.#o.count?.(r.ingress, 'sent');
        await res.body.dump({ limit: 1024 * 1024, signal: controller.signal });
        done('sent');
      })
      .catch((err: unknown) => {
        if (!answered) this.#o.count?.(r.ingress, 'failed');
        done(answered ? 'sent' : 'failed', err);
      });
    if (body === null) return { settle: () => {} };
    return { tap: body, settle: () => body.abandon("the client's body did not reach the upstream whole") };
  }

  /** Ends every copy under way; no more are made. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#agent.destroy();
  }
}

/**
 * The body of one copy: chunks handed over by the upstream's reader (BodyTap) wait here until the mirror's connection
 * takes them. More than `max` bytes waiting, or a stop, gives the copy up (the mirror sees its upload cut short).
 */
class MirrorBody extends Readable implements BodyTap {
  readonly #max: number;
  #over = false;

  constructor(max: number) {
    super();
    this.#max = max;
    // The failure reaches the copy through undici; one before undici reads the body must not be an unhandled 'error'.
    this.on('error', () => {});
  }

  override _read(): void {}

  write(chunk: Buffer): void {
    if (this.#over) return;
    if (this.readableLength + chunk.length > this.#max) return this.abandon(`the mirror took the body slower than the client sent it (over ${this.#max} bytes waiting)`);
    this.push(chunk);
  }

  end(): void {
    if (this.#over) return;
    this.#over = true;
    this.push(null);
  }

  abort(): void {
    this.abandon("the client's body stopped before its end");
  }

  /** Gives the copy's body up, unless it is complete. */
  abandon(why: string): void {
    if (this.#over) return;
    this.#over = true;
    this.destroy(new Error(why));
  }
}

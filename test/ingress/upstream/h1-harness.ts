// The harness of the HTTP/1.1 upstream client's tests (h1-client*.test.ts): pools that are destroyed after each
// test, and requests whose handler records everything it hears; checkEndings() asserts that every request heard
// exactly one ending (onResponseEnd or onResponseError).
import { connect } from 'node:net';
import { afterEach, expect } from 'vitest';
import { UpstreamError } from '../../../ingress/upstream/errors.ts';
import { H1Pool, type H1Controller, type H1Handler, type H1PoolOptions } from '../../../ingress/upstream/h1/pool.ts';
import { Closer, sleep } from './helpers.ts';
import { ok, type Responder } from './h1-servers.ts';

export type DispatchOptions = Parameters<H1Pool['dispatch']>[0];

/** Everything a request's handler heard. */
export interface Outcome {
  events: string[];
  reused: boolean[];
  /** Every onResponseStart, 1xx included. */
  starts: { status: number; headers: Record<string, string | string[]>; message: string }[];
  chunks: Buffer[];
  trailers: Record<string, string | string[]> | null;
  error: Error | null;
  errorController: H1Controller | null | undefined;
  ends: number;
  errors: number;
  controller: H1Controller | null;
  /** performance.now() of the ending. */
  endedAt: number;
}

export const closer = new Closer();
const outcomes: Outcome[] = [];

/** Registers the check that every request a test made heard exactly one ending; call once per test file. */
export function checkEndings(): void {
  afterEach(async () => {
  await closer.closeAll();
  await sleep(30);
  const all = outcomes.splice(0);
  // Exactly one ending per request, whatever happened to it.
  expect(all.map((o) => [o.ends + o.errors, o.events.filter((e) => e === 'end' || e === 'error').length])).toEqual(all.map(() => [1, 1]));
  });
}

/** A pool to `ip`:`port` (127.0.0.1 by default), destroyed after the test. */
export function poolTo(port: number, options: Partial<H1PoolOptions> = {}, ip = '127.0.0.1', address = `${ip}:${port}`): H1Pool {
  const pool = new H1Pool(ip, port, address, { connections: 4, connectTimeoutMs: 1000, ...options });
  closer.add(() => pool.destroy());
  return pool;
}

export const body = (o: Outcome): string => Buffer.concat(o.chunks).toString('latin1');
export const final = (o: Outcome) => o.starts.at(-1);

/** Dispatches one request recording what its handler hears; `hooks` run after the recording. Resolves at the ending. */
export function send(pool: H1Pool, options: Partial<DispatchOptions> = {}, hooks: H1Handler = {}): Promise<Outcome> & { outcome: Outcome } {
  const o: Outcome = { events: [], reused: [], starts: [], chunks: [], trailers: null, error: null, errorController: undefined, ends: 0, errors: 0, controller: null, endedAt: 0 };
  outcomes.push(o);
  let done!: (o: Outcome) => void;
  const promise = new Promise<Outcome>((r) => (done = r));
  const handler: H1Handler = {
    onRequestStart(controller, context) {
      o.events.push('start');
      o.controller = controller;
      o.reused.push(context.reused);
      hooks.onRequestStart?.(controller, context);
    },
    onResponseStart(controller, status, headers, message) {
      o.events.push(`head ${status}`);
      o.starts.push({ status, headers, message });
      hooks.onResponseStart?.(controller, status, headers, message);
    },
    onResponseData(controller, chunk) {
      o.events.push('data');
      o.chunks.push(Buffer.from(chunk));
      hooks.onResponseData?.(controller, chunk);
    },
    onResponseEnd(controller, trailers) {
      o.events.push('end');
      o.ends++;
      o.trailers = trailers;
      o.endedAt = performance.now();
      hooks.onResponseEnd?.(controller, trailers);
      done(o);
    },
    onResponseError(controller, err) {
      o.events.push('error');
      o.errors++;
      o.error = err;
      o.errorController = controller;
      o.endedAt = performance.now();
      hooks.onResponseError?.(controller, err);
      done(o);
    },
  };
  pool.dispatch({ path: '/', method: 'GET', headers: [], body: null, headersTimeout: 2000, bodyTimeout: 2000, ...options }, handler);
  return Object.assign(promise, { outcome: o });
}

/** True when a TCP connection to `ip`:`port` is accepted within `ms`. */
export function connects(ip: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, ip);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('connect', () => done(true)).once('error', () => done(false));
  });
}

/** The code of an UpstreamError ending, or the `code` of another error, or 'none'. */
export function codeOf(o: Outcome): string {
  if (o.error === null) return 'none';
  if (o.error instanceof UpstreamError) return o.error.code;
  return String((o.error as { code?: unknown }).code);
}

/** Expects a complete 200 with `text` as its body. */
export function expectOk(o: Outcome, text = 'ok'): void {
  expect(o.error).toBeNull();
  expect(final(o)?.status).toBe(200);
  expect(body(o)).toBe(text);
}

export const answerOk: Responder = (_req, conn) => conn.write(ok());

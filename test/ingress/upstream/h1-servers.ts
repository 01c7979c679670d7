// Scripted raw HTTP/1.1 servers for the tests of the HTTP/1.1 upstream client (ingress/upstream/h1): node:net
// servers that keep every byte a connection received, parse the requests in it strictly (Content-Length or chunked
// bodies) and answer with raw bytes a test writes, so the framing on the wire is the test's own.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Closer } from './helpers.ts';

/** One request as the server read it off the wire. */
export interface SeenRequest {
  method: string;
  path: string;
  version: string;
  /** The head as sent, from the request line to the empty line included. */
  head: string;
  /** Header lines as [name, value] in order, names as sent. */
  headers: [string, string][];
  /** The decoded body (chunk framing removed). */
  body: Buffer;
  /** The body's bytes as sent (with chunk framing when chunked). */
  rawBody: Buffer;
  chunked: boolean;
  /** Trailer lines of a chunked body, as sent. */
  trailers: string[];
}

/** The values of header `name` (any case) in `req`, in order. */
export function headerValues(req: SeenRequest, name: string): string[] {
  return req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

/** A connection the server accepted. */
export class ServerConn {
  readonly socket: Socket;
  readonly index: number;
  readonly requests: SeenRequest[] = [];
  /** Why the bytes received could not be parsed as requests, if they could not. */
  malformed: string | null = null;
  closed = false;
  closedAt = 0;
  readonly #received: Buffer[] = [];
  #pending = Buffer.alloc(0);
  /** Bytes not yet joined to #pending: a body of a known length is joined once it is all in, not per read. */
  #parts: Buffer[] = [];
  #partsLength = 0;
  /** How long #pending must be before a request can complete (0: unknown, parse at every read). */
  #need = 0;
  readonly closedPromise: Promise<void>;

  constructor(socket: Socket, index: number) {
    this.socket = socket;
    this.index = index;
    this.closedPromise = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        this.closedAt = performance.now();
        r();
      }),
    );
  }

  /** Every byte received on this connection. */
  received(): Buffer {
    return Buffer.concat(this.#received);
  }

  /** Writes raw bytes (latin1 for strings) unless the connection is gone. */
  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Takes bytes in; returns the requests they completed. */
  feed(data: Buffer): SeenRequest[] {
    this.#received.push(data);
    if (this.malformed !== null) return [];
    this.#parts.push(data);
    this.#partsLength += data.length;
    // Joining every read to what came before copies a large upload quadratically (8 MiB in 64 KiB reads: 512 MiB).
    if (this.#pending.length + this.#partsLength < this.#need) return [];
    this.#join();
    const done: SeenRequest[] = [];
    for (;;) {
      const r = parseOne(this.#pending);
      if (r === null) {
        this.#need = lengthNeeded(this.#pending);
        break;
      }
      if (typeof r === 'string') {
        this.malformed = r;
        break;
      }
      this.#pending = this.#pending.subarray(r.used);
      this.requests.push(r.request);
      done.push(r.request);
    }
    return done;
  }

  /** The bytes received after the last complete request (an incomplete one). */
  pending(): Buffer {
    this.#join();
    return this.#pending;
  }

  #join(): void {
    if (this.#parts.length === 0) return;
    this.#pending = Buffer.concat([this.#pending, ...this.#parts]);
    this.#parts = [];
    this.#partsLength = 0;
  }
}

/** The bytes a request with a complete head and one Content-Length takes in all; 0 when that is not known yet. */
function lengthNeeded(buf: Buffer): number {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return 0;
  const lengths = [...buf.subarray(0, end + 2).toString('latin1').matchAll(/\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/gi)];
  return lengths.length === 1 ? end + 4 + Number(lengths[0]![1]) : 0;
}

/** One request from the start of `buf`: null when incomplete, a string when malformed. */
function parseOne(buf: Buffer): { request: SeenRequest; used: number } | string | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end + 4).toString('latin1');
  const lines = head.slice(0, -4).split('\r\n');
  const line = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? '');
  if (line === null) return `bad request line ${JSON.stringify(lines[0])}`;
  const headers: [string, string][] = [];
  for (const l of lines.slice(1)) {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(l);
    if (m === null) return `bad header line ${JSON.stringify(l)}`;
    headers.push([m[1]!, m[2]!]);
  }
  const request: SeenRequest = { method: line[1]!, path: line[2]!, version: line[3]!, head, headers, body: Buffer.alloc(0), rawBody: Buffer.alloc(0), chunked: false, trailers: [] };
  const te = headerValues(request, 'transfer-encoding');
  const cl = headerValues(request, 'content-length');
  let at = end + 4;
  if (te.length > 0) {
    if (cl.length > 0) return 'both Content-Length and Transfer-Encoding';
    if (te.join(',').toLowerCase() !== 'chunked') return `Transfer-Encoding ${te.join(',')}`;
    request.chunked = true;
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return null;
      const sizeLine = buf.subarray(at, eol).toString('latin1');
      const m = /^([0-9a-fA-F]{1,8})(;[^\r\n]*)?$/.exec(sizeLine);
      if (m === null) return `bad chunk size line ${JSON.stringify(sizeLine)}`;
      const size = parseInt(m[1]!, 16);
      at = eol + 2;
      if (size === 0) {
        // Trailers, then the empty line.
        for (;;) {
          const tl = buf.indexOf('\r\n', at);
          if (tl < 0) return null;
          const t = buf.subarray(at, tl).toString('latin1');
          at = tl + 2;
          if (t === '') break;
          request.trailers.push(t);
        }
        break;
      }
      if (buf.length < at + size + 2) return null;
      parts.push(buf.subarray(at, at + size));
      if (buf.subarray(at + size, at + size + 2).toString('latin1') !== '\r\n') return 'chunk data not followed by CRLF';
      at += size + 2;
    }
    request.body = Buffer.concat(parts);
  } else if (cl.length > 0) {
    if (cl.length > 1 || !/^\d+$/.test(cl[0]!)) return `Content-Length ${cl.join(',')}`;
    const n = Number(cl[0]);
    if (buf.length < at + n) return null;
    request.body = Buffer.from(buf.subarray(at, at + n));
    at += n;
  }
  request.rawBody = Buffer.from(buf.subarray(end + 4, at));
  return { request, used: at };
}

/** Answers one complete request on its connection. */
export type Responder = (req: SeenRequest, conn: ServerConn, server: ScriptedServer) => void;

/** A scripted server, its connections in order of arrival, and how many were open at most. */
export interface ScriptedServer {
  port: number;
  conns: ServerConn[];
  open: number;
  maxOpen: number;
  /** Every request of every connection, in order of arrival. */
  requests: SeenRequest[];
  /** Bytes received on all connections. */
  bytes(): number;
}

/** A raw server on `host` (127.0.0.1) calling `respond` for each complete request; `onConnection` for each new connection. */
export async function scriptedServer(closer: Closer, respond: Responder, onConnection?: (conn: ServerConn) => void, host = '127.0.0.1'): Promise<ScriptedServer> {
  const state: ScriptedServer = { port: 0, conns: [], open: 0, maxOpen: 0, requests: [], bytes: () => state.conns.reduce((n, c) => n + c.received().length, 0) };
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const conn = new ServerConn(socket, state.conns.length);
    state.conns.push(conn);
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    void conn.closedPromise.then(() => state.open--);
    socket.on('data', (d: Buffer) => {
      for (const req of conn.feed(d)) {
        state.requests.push(req);
        respond(req, conn, state);
      }
    });
    onConnection?.(conn);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  state.port = (server.address() as AddressInfo).port;
  closer.add(() => {
    for (const c of state.conns) c.socket.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return state;
}

/** A 200 with a Content-Length body. */
export function ok(body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/** A byte stream (not object mode) giving `chunks`, `gapMs` apart (0: all at once). */
export function bodyOf(chunks: (string | Buffer)[], gapMs = 0): Readable {
  const r = new Readable({ read() {} });
  const bufs = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'latin1') : c));
  if (gapMs === 0) {
    for (const b of bufs) r.push(b);
    r.push(null);
  } else {
    let i = 0;
    const next = (): void => {
      if (i < bufs.length) {
        r.push(bufs[i++]);
        setTimeout(next, gapMs);
      } else r.push(null);
    };
    next();
  }
  return r;
}

/** Polls `pred` every 5 ms until it holds; throws `what` after `ms`. */
export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!pred()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries answered as they complete (possibly out of
// order, 6.2.1.1), idle connections closed (a new one sooner: its first query must come whole within firstReadMs, as
// miekg/dns's first read has CoreDNS's 3 s read timeout and later ones its 10 s idle timeout; miekg/dns sets each
// read's deadline once, before the message's first byte, so the next query must be whole within the idle timeout
// of the connection going idle, bytes trickled in meanwhile or not), a bound on queries in flight per connection,
// and garbage (a length
// too short for a header, a message without one) closing the connection without touching the others. A client that
// half-closes after its queries (FIN once written) gets every answer before our side closes, as from miekg/dns,
// which answers each query before it reads on; the socket must be made with allowHalfOpen for that.
import type { Socket } from 'node:net';
import type { Client, Output } from './output.ts';

/** Limits of one connection. */
export interface TcpLimits {
  /**
   * A connection with nothing in flight is closed when no whole message came this long after it last had one in
   * either direction (a query in, an answer out); bytes of an unfinished message do not count, so a client
   * trickling bytes does not hold it open.
   */
  idleMs: number;
  /**
   * A new connection whose first message is not whole this long after it opened is closed (CoreDNS's read timeout,
   * 3 s, which bounds miekg/dns's first read; later reads get the idle timeout), so silent connections do not hold
   * a place for the idle timeout.
   */
  firstReadMs: number;
  /** Past this many queries in flight, reading pauses until answers go out (or the client reads them). */
  maxInFlight: number;
  /** A client that leaves more response bytes than this unread is cut off (it asks without reading). */
  maxUnread: number;
  /** Largest query accepted; a longer length prefix closes the connection at once. */
  maxQuery: number;
}

/** Called for every complete message; must end in exactly one `out.send` (a response, or null for none). */
export type Serve = (msg: Buffer, out: Output, client: Client) => void;

/** One client connection. */
export class TcpConnection implements Output {
  readonly transport = 'tcp';
  readonly proto = 1;
  readonly prefix = 2;
  readonly #sock: Socket;
  readonly #serve: Serve;
  readonly #limits: TcpLimits;
  readonly #client: Client;
  #pending: Buffer | null = null;
  #inFlight = 0;
  #paused = false;
  /** Ending after a message that could not be read: nothing more is read or answered. */
  #closing = false;
  /** The client sent FIN: our side ends once nothing is in flight. */
  #ended = false;
  /** When a message last came in whole or an answer went out (performance.now() ms). */
  #lastActive = performance.now();
  /** Closes the connection once it has had nothing in flight and no whole message for idleMs (rearmed lazily). */
  #idleTimer: NodeJS.Timeout | undefined;
  /** Closes the connection when no whole message has come firstReadMs after it opened; cleared by the first. */
  #firstTimer: NodeJS.Timeout | undefined;

  constructor(sock: Socket, serve: Serve, limits: TcpLimits) {
    this.#sock = sock;
    this.#serve = serve;
    this.#limits = limits;
    this.#client = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0, family: sock.remoteFamily ?? 'IPv4' };
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    sock.on('drain', () => this.#maybeResume());
    sock.on('end', () => {
      this.#ended = true;
      if (this.#inFlight === 0) sock.end();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(this.#idleTimer);
      clearTimeout(this.#firstTimer);
    });
    this.#firstTimer = setTimeout(() => sock.destroy(), limits.firstReadMs);
    this.#firstTimer.unref();
    this.#armIdle();
  }

  /**
   * Since when (performance.now() ms) the connection has had nothing in flight and no whole message in either
   * direction; undefined while a query is in flight. Bytes of an unfinished message do not count.
   */
  get idleSince(): number | undefined {
    return this.#inFlight > 0 ? undefined : this.#lastActive;
  }

  /** Whether the connection can still take a response. */
  get alive(): boolean {
    return !this.#sock.destroyed && !this.#closing;
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.#sock.destroy();
  }

  alloc(size: number): Buffer {
    // socket.write keeps the buffer until the kernel took it: every response gets its own.
    return Buffer.allocUnsafe(size);
  }

  send(buf: Buffer | null): void {
    this.#inFlight--;
    const sock = this.#sock;
    if (sock.destroyed) return;
    if (buf === null) {
      // No readable header: the stream is not DNS (or lost its framing); nothing after it can be trusted. end()
      // uncorks first, so answers already written for earlier queries still go out.
      this.#closing = true;
      sock.end();
      return;
    }
    if (this.#closing) return;
    this.#lastActive = performance.now();
    sock.write(buf);
    if (sock.writableLength > this.#limits.maxUnread) sock.destroy();
    else if (this.#ended) {
      if (this.#inFlight === 0) sock.end();
    } else if (this.#paused) this.#maybeResume();
    this.#armIdle();
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const data = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    const sock = this.#sock;
    let off = 0;
    sock.cork();
    try {
      while (data.length - off >= 2) {
        const len = (data[off]! << 8) | data[off + 1]!;
        if (len < 12 || len > this.#limits.maxQuery) {
          // Shorter than a DNS header, or longer than any query we answer (one question, an OPT, perhaps a TSIG):
          // garbage, or a length prefix out of step with the stream. Waiting for it would only hold memory.
          sock.destroy();
          return;
        }
        if (data.length - off - 2 < len) break;
        const msg = data.subarray(off + 2, off + 2 + len);
        off += 2 + len;
        this.#lastActive = performance.now();
        if (this.#firstTimer !== undefined) {
          clearTimeout(this.#firstTimer);
          this.#firstTimer = undefined;
        }
        // A response (QR set) is not ours to answer: skipped, and the connection goes on, as miekg/dns does.
        // Dropping the connection here would also throw away the answers still corked for earlier queries.
        if (msg[2]! & 0x80) continue;
        this.#inFlight++;
        this.#serve(msg, this, this.#client);
        if (sock.destroyed || this.#closing) return;
      }
    } finally {
      if (!sock.destroyed) sock.uncork();
    }
    // Keep only the unfinished frame (at most maxQuery + 2 bytes), copied so that the chunk it came in can go.
    this.#pending = off === data.length ? null : Buffer.from(data.subarray(off));
    if (this.#inFlight >= this.#limits.maxInFlight || sock.writableNeedDrain) {
      // While we do not read, queries are in flight: the rest of a message waits on us, not on the client.
      this.#paused = true;
      sock.pause();
    }
    this.#armIdle();
  }

  /**
   * Makes sure the idle timer runs while nothing is in flight (a new connection has it too, so it is closed after
   * the shorter of the first-read and idle timeouts). One timer per connection, moved on lazily: when it fires early
   * (the connection was active since) it is set again for the time left.
   */
  #armIdle(): void {
    if (this.#idleTimer !== undefined || this.#inFlight > 0 || this.#sock.destroyed) return;
    const check = () => {
      this.#idleTimer = undefined;
      // A slow handler still gets its answer out: the query timeout bounds how long that takes, and its answer
      // starts the idle time again.
      if (this.#inFlight > 0 || this.#sock.destroyed) return;
      const left = this.#lastActive + this.#limits.idleMs - performance.now();
      if (left <= 0) {
        this.#sock.destroy();
        return;
      }
      this.#idleTimer = setTimeout(check, left);
      this.#idleTimer.unref();
    };
    this.#idleTimer = setTimeout(check, Math.max(0, this.#lastActive + this.#limits.idleMs - performance.now()));
    this.#idleTimer.unref();
  }

  #maybeResume(): void {
    if (this.#paused && this.#inFlight < this.#limits.maxInFlight / 2 && !this.#sock.writableNeedDrain) {
      this.#paused = false;
      this.#sock.resume();
    }
  }
}

// DNS over a stream to one upstream: messages with TCP's two-byte length prefix (RFC 1035 §4.2.2) on connections
// kept open and shared (RFC 7766 §6.2.1), plain TCP (tcp://, CoreDNS forward `force_tcp`) or inside TLS (tls://,
// tls.ts). Queries are pipelined, each with a message ID unique among those pending on its connection, and replies
// are matched by ID and question, in whatever order they come. A connection unused for `expireMs` is closed (CoreDNS
// forward `expire`, 10 s). Nothing is written to a connection before its transport says it is ready (for TLS: its
// certificate verified).
import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { UpstreamAddress } from './address.ts';
import { UpstreamError, UpstreamTimeoutError, UpstreamUnreachableError, decode, mismatch, replyMatches, settle, toReply, type ExchangeLimits, type UpstreamReply } from './exchange.ts';

/** CoreDNS forward's `expire` default: a connection unused this long is closed. */
export const defaultExpireMs = 10_000;
// Below the 65,536 message IDs, so that a free one is always found quickly.
const maxPending = 60_000;
// How long a closing connection may wait for the peer's close before it is cut.
const closeGraceMs = 2000;

/** How connections to one upstream are made: plain TCP or TLS. */
export interface StreamTransport {
  /** For messages and the reply's `transport`. */
  readonly proto: 'TCP' | 'TLS';
  /** Opens a connection; it takes queries once `readyEvent` has fired on it. */
  dial(): Socket;
  readonly readyEvent: 'connect' | 'secureConnect';
  /** The connection is ready (its certificate verified). */
  ready?(socket: Socket): void;
  /** The error the pending queries of a connection that failed with `e` fail with. */
  failure(e: Error, socket: Socket): UpstreamError;
}

/** How queries are spread over connections. */
export interface StreamPoolOptions {
  /** Unused connections are closed after this long, ms. */
  expireMs: number;
  /** Connections at most. */
  maxConnections: number;
  /** Another connection is opened only while every open one has this many queries pending (and fewer than maxConnections are open). */
  spreadAt: number;
  /** A query went on an open connection (true) or opened one (false): coredns_proxy_conn_cache_{hits,misses}_total. */
  onDial?: (reused: boolean) => void;
}

/** One query on its way: placed on a connection, possibly sent again once on another (see StreamConnection's close). */
interface Job {
  query: Buffer;
  /** Sent again already after its connection closed under it. */
  resent: boolean;
  placed(conn: StreamConnection, id: number): void;
  deliver(msg: Buffer, sent: Buffer): void;
  fail(e: UpstreamError): void;
}

/** The kept-open connections to one upstream. */
export class StreamPool {
  readonly #to: UpstreamAddress;
  readonly #transport: StreamTransport;
  readonly #o: StreamPoolOptions;
  /** Connections taking queries; retired ones drain outside this set. */
  readonly #open = new Set<StreamConnection>();
  readonly #all = new Set<StreamConnection>();
  #closed = false;

  constructor(to: UpstreamAddress, transport: StreamTransport, options: StreamPoolOptions) {
    this.#to = to;
    this.#transport = transport;
    this.#o = options;
  }

  /** Connections open or opening, retired ones still draining included. */
  get connections(): number {
    return this.#all.size;
  }

  /** Asks a query (wire form; its ID is replaced) on a shared connection. Rejects only with an UpstreamError subclass. */
  exchange(query: Buffer, limits: ExchangeLimits): Promise<UpstreamReply> {
    const proto = this.#transport.proto;
    return new Promise((resolve, reject) => {
      let conn: StreamConnection | undefined;
      let id = 0;
      const onReject = (e: Error) => {
        // A connection that let a query time out may be dead without knowing it: no new queries go on it.
        if (e instanceof UpstreamTimeoutError) conn?.retire();
        reject(e);
      };
      const end = settle(limits, this.#to, proto, onReject, () => conn?.forget(id));
      if (end.done) return;
      this.#dispatch({
        query,
        resent: false,
        placed: (c, i) => {
          conn = c;
          id = i;
        },
        deliver: (msg, sent) => {
          if (!replyMatches(msg, sent)) return end.fail(mismatch(this.#to.text, proto, msg, sent));
          const decoded = decode(msg, this.#to);
          if (decoded instanceof UpstreamError) end.fail(decoded);
          else end.ok(() => resolve(toReply(decoded, proto === 'TLS' ? 'tls' : 'tcp')));
        },
        fail: (e) => end.fail(e),
      });
    });
  }

  /** Closes every connection; queries still pending fail. */
  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.destroy(this.#closing());
  }

  #closing(): UpstreamUnreachableError {
    return new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over ${this.#transport.proto}: closing`);
  }

  #dispatch(job: Job): void {
    if (this.#closed) return job.fail(this.#closing());
    const { maxConnections, spreadAt } = this.#o;
    let best: StreamConnection | undefined;
    for (const c of this.#open) if (!best || c.pending.size < best.pending.size) best = c;
    const reuse = best !== undefined && (best.pending.size < spreadAt || this.#open.size >= maxConnections);
    if (reuse && best!.pending.size >= maxPending) {
      return job.fail(new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over ${this.#transport.proto} has ${maxPending} queries pending on each of its ${maxConnections} connections`));
    }
    this.#o.onDial?.(reuse);
    (reuse ? best! : this.#dial()).send(job);
  }

  #dial(): StreamConnection {
    const conn = new StreamConnection(this.#transport, this.#to.text, this.#o.expireMs, {
      retired: (c) => this.#open.delete(c),
      closed: (c, orphans) => {
        this.#open.delete(c);
        this.#all.delete(c);
        for (const job of orphans) this.#dispatch(job);
      },
    });
    this.#open.add(conn);
    this.#all.add(conn);
    return conn;
  }
}

/** What a connection tells its pool. */
interface ConnectionEvents {
  /** Takes no new queries from now on. */
  retired(c: StreamConnection): void;
  /** Gone; `orphans` are queries to send again on another connection. */
  closed(c: StreamConnection, orphans: Job[]): void;
}

/** One connection and the queries pending on it, by message ID. */
class StreamConnection {
  readonly pending = new Map<number, { job: Job; sent: Buffer }>();
  readonly #socket: Socket;
  readonly #proto: string;
  /** The upstream as written, for errors. */
  readonly #text: string;
  readonly #expireMs: number;
  readonly #events: ConnectionEvents;
  /** Frames written before the transport was ready, sent once it is. */
  #queued: Buffer[] = [];
  #ready = false;
  #retired = false;
  /** Replies received: a connection that answered before may close under a query as an idle one would (resent once). */
  #answered = 0;
  #got: Buffer = Buffer.alloc(0);
  #idle: NodeJS.Timeout | undefined;
  #error: UpstreamError | undefined;

  constructor(transport: StreamTransport, text: string, expireMs: number, events: ConnectionEvents) {
    const socket = transport.dial();
    this.#socket = socket;
    this.#proto = transport.proto;
    this.#text = text;
    this.#expireMs = expireMs;
    this.#events = events;
    socket.setNoDelay(true);
    socket.on(transport.readyEvent, () => {
      transport.ready?.(socket);
      this.#started();
    });
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    // The upstream closed its side: nothing more will be answered here.
    socket.on('end', () => this.retire());
    socket.on('error', (e: Error) => {
      this.#error ??= transport.failure(e, socket);
    });
    socket.on('close', () => this.#closed());
  }

  /** Places a query here under a message ID no other pending query has. */
  send(job: Job): void {
    let id = randomInt(0x10000);
    while (this.pending.has(id)) id = (id + 1) & 0xffff;
    const sent = Buffer.from(job.query);
    sent.writeUInt16BE(id, 0);
    const frame = Buffer.alloc(2 + sent.length);
    frame.writeUInt16BE(sent.length, 0);
    sent.copy(frame, 2);
    this.pending.set(id, { job, sent });
    job.placed(this, id);
    clearTimeout(this.#idle);
    if (this.#ready) this.#socket.write(frame);
    else this.#queued.push(frame);
  }

  /** A query settled (answered, failed or timed out): a late reply to its ID is ignored. */
  forget(id: number): void {
    if (!this.pending.delete(id) || this.pending.size > 0) return;
    if (this.#retired) this.#end();
    else this.#idleTimer();
  }

  /** Takes no new queries; closes once the pending ones are settled. */
  retire(): void {
    if (!this.#retired) {
      this.#retired = true;
      this.#events.retired(this);
    }
    if (this.pending.size === 0) this.#end();
  }

  /** Cuts the connection; pending queries fail with `e`. */
  destroy(e: UpstreamError): void {
    this.#error ??= e;
    this.#retired = true;
    this.#socket.destroy();
  }

  #started(): void {
    this.#ready = true;
    this.#socket.cork();
    for (const frame of this.#queued) this.#socket.write(frame);
    this.#socket.uncork();
    this.#queued = [];
    if (this.pending.size === 0) this.#idleTimer();
  }

  #read(chunk: Buffer): void {
    this.#got = this.#got.length === 0 ? chunk : Buffer.concat([this.#got, chunk]);
    while (this.#got.length >= 2 && this.#got.length >= 2 + this.#got.readUInt16BE(0)) {
      const msg = this.#got.subarray(2, 2 + this.#got.readUInt16BE(0));
      this.#got = this.#got.subarray(2 + msg.length);
      this.#answered++;
      // An ID nobody waits for is a late reply to a query that timed out.
      const p = msg.length >= 2 ? this.pending.get(msg.readUInt16BE(0)) : undefined;
      p?.job.deliver(msg, p.sent);
    }
  }

  #idleTimer(): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.retire(), this.#expireMs);
    this.#idle.unref();
  }

  #end(): void {
    clearTimeout(this.#idle);
    if (!this.#ready) return void this.#socket.destroy();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), closeGraceMs).unref();
  }

  #closed(): void {
    clearTimeout(this.#idle);
    this.#retired = true;
    const jobs = [...this.pending.values()].map((p) => p.job);
    this.pending.clear();
    const orphans: Job[] = [];
    for (const job of jobs) {
      // A connection that answered before and is closed cleanly under a query was most likely found idle by the
      // upstream just as the query was written (CoreDNS ErrCachedClosed): the query goes once more on another one.
      if (this.#answered > 0 && !job.resent && this.#error === undefined) {
        job.resent = true;
        orphans.push(job);
      } else job.fail(this.#error ?? new UpstreamUnreachableError(`DNS upstream ${this.#text} closed the ${this.#proto} connection without a reply`));
    }
    this.#events.closed(this, orphans);
  }
}

/** Plain DNS over TCP: a connection takes queries once connected. */
export function tcpTransport(to: UpstreamAddress): StreamTransport {
  return {
    proto: 'TCP',
    readyEvent: 'connect',
    dial: () => connect({ host: to.host, port: to.port }),
    failure: (e) => new UpstreamUnreachableError(`DNS upstream ${to.text} over TCP: ${e.message}`, { cause: e }),
  };
}

/**
 * The connections to a tcp:// upstream (CoreDNS forward `force_tcp`). As many as there are queries pending, up to
 * 16, and queries pipelined on them beyond that: a server that answers a connection's queries one after the other
 * (CoreDNS, as miekg/dns serves TCP) holds a query behind a slow one only when 16 are pending.
 */
export class TcpPool extends StreamPool {
  constructor(to: UpstreamAddress, options: { expireMs: number; onDial?: (reused: boolean) => void }) {
    super(to, tcpTransport(to), { ...options, maxConnections: 16, spreadAt: 1 });
  }
}

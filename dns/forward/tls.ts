// DNS over TLS to one upstream (RFC 7858): DNS messages with TCP's two-byte length prefix (RFC 1035 §4.2.2) inside
// TLS, on connections kept open and shared (RFC 7766 §6.2.1). Queries are pipelined, each with a message ID unique
// among those pending on its connection, and replies are matched by ID and question, in whatever order they come.
// A few connections per upstream at most; one unused for `expireMs` is closed (CoreDNS forward `expire`, 10 s).
// Nothing is written to a connection before its certificate has verified: against the configured name, else the
// upstream's IP address (as Go's TLS, and so CoreDNS without `tls_servername`, checks an address).
import { X509Certificate, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, getCACertificates, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from '../../runtime/logger.ts';
import { describeUpstream, type UpstreamAddress } from './address.ts';
import { UpstreamError, UpstreamTimeoutError, UpstreamUnreachableError, decode, mismatch, replyMatches, settle, toReply, type ExchangeLimits, type UpstreamReply } from './exchange.ts';

/** The upstream's certificate did not verify (untrusted, expired, or for another name); never accepted anyway. */
export class UpstreamTlsError extends UpstreamError {
  override readonly name = 'UpstreamTlsError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_TLS';
}

/** A CA file that cannot be used; the message says what is wrong with it, for the flag and file to be put before. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
  readonly code = 'NETPLANE_DNS_TLS_CONFIG';
}

/** CoreDNS forward's `expire` default: a connection unused this long is closed. */
export const defaultExpireMs = 10_000;
// Connections per upstream at most; another is opened only while every open one has `spreadAt` queries pending.
const maxConnections = 4;
const spreadAt = 64;
// Below the 65,536 message IDs, so that a free one is always found quickly.
const maxPending = 60_000;
// How long a closing connection may wait for the peer's close before it is cut.
const closeGraceMs = 2000;

/**
 * The PEM certificates of a CA file (--upstream-tls-ca). Throws TlsConfigError when it cannot be read, holds no
 * certificate, or one does not parse.
 */
export function readCaFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TlsConfigError(`cannot be read (${(e as Error).message})`, { cause: e });
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new TlsConfigError('holds no PEM certificate (-----BEGIN CERTIFICATE-----): it must hold the CA certificates that sign the upstream certificates');
  pems.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new TlsConfigError(`certificate ${i + 1} does not parse (${(e as Error).message})`, { cause: e });
    }
  });
  return pems;
}

/**
 * What TLS upstreams are verified against: the system's CA store (Node's bundled Mozilla roots in an image without
 * one, such as node:slim) and `extra`. Built once per forwarder: parsing the store per connection would be slow.
 */
export function trustContext(extra: readonly string[]): SecureContext {
  const system = getCACertificates('system');
  return createSecureContext({ ca: [...(system.length > 0 ? system : getCACertificates('bundled')), ...extra] });
}

/** Options of one upstream's connections. */
export interface DotPoolOptions {
  context: SecureContext;
  /** Unused connections are closed after this long, ms. */
  expireMs: number;
  log: Logger;
  /** A query went on an open connection (true) or opened one (false): coredns_proxy_conn_cache_{hits,misses}_total. */
  onDial?: (reused: boolean) => void;
}

/** One query on its way: placed on a connection, possibly sent again once on another (see DotConnection's close). */
interface Job {
  query: Buffer;
  /** Sent again already after its connection closed under it. */
  resent: boolean;
  placed(conn: DotConnection, id: number): void;
  deliver(msg: Buffer, sent: Buffer): void;
  fail(e: UpstreamError): void;
}

/** The DNS-over-TLS connections to one upstream. */
export class DotPool {
  readonly #to: UpstreamAddress;
  readonly #label: string;
  readonly #o: DotPoolOptions;
  /** Connections taking queries; retired ones drain outside this set. */
  readonly #open = new Set<DotConnection>();
  readonly #all = new Set<DotConnection>();
  /** The last TLS session the upstream handed out, to resume the next connection (a shorter handshake). */
  #session: Buffer | undefined;
  /** Whether the last handshake failed verification: the reason is logged once until one verifies again. */
  #unverified = false;
  #closed = false;

  constructor(to: UpstreamAddress, options: DotPoolOptions) {
    this.#to = to;
    this.#label = describeUpstream(to);
    this.#o = options;
  }

  /** Connections open or opening, retired ones still draining included. */
  get connections(): number {
    return this.#all.size;
  }

  /** Asks a query (wire form; its ID is replaced) on a shared connection. Rejects only with an UpstreamError subclass. */
  exchange(query: Buffer, limits: ExchangeLimits): Promise<UpstreamReply> {
    return new Promise((resolve, reject) => {
      let conn: DotConnection | undefined;
      let id = 0;
      const onReject = (e: Error) => {
        // A connection that let a query time out may be dead without knowing it: no new queries go on it.
        if (e instanceof UpstreamTimeoutError) conn?.retire();
        reject(e);
      };
      const end = settle(limits, this.#to, 'TLS', onReject, () => conn?.forget(id));
      if (end.done) return;
      this.#dispatch({
        query,
        resent: false,
        placed: (c, i) => {
          conn = c;
          id = i;
        },
        deliver: (msg, sent) => {
          if (!replyMatches(msg, sent)) return end.fail(mismatch(this.#to.text, 'TLS', msg, sent));
          const decoded = decode(msg, this.#to);
          if (decoded instanceof UpstreamError) end.fail(decoded);
          else end.ok(() => resolve(toReply(decoded, 'tls')));
        },
        fail: (e) => end.fail(e),
      });
    });
  }

  /** Closes every connection; queries still pending fail. */
  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.destroy(new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over TLS: closing`));
  }

  #dispatch(job: Job): void {
    if (this.#closed) return job.fail(new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over TLS: closing`));
    let best: DotConnection | undefined;
    for (const c of this.#open) if (!best || c.pending.size < best.pending.size) best = c;
    const reuse = best !== undefined && (best.pending.size < spreadAt || this.#open.size >= maxConnections);
    if (reuse && best!.pending.size >= maxPending) {
      return job.fail(new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over TLS has ${maxPending} queries pending on each of its ${maxConnections} connections`));
    }
    this.#o.onDial?.(reuse);
    (reuse ? best! : this.#dial()).send(job);
  }

  #dial(): DotConnection {
    const to = this.#to;
    const socket = connect({
      host: to.host,
      port: to.port,
      // Without a name Node sends no SNI and checks the certificate's IP addresses against the host, as Go does.
      ...(to.tls?.servername !== undefined ? { servername: to.tls.servername } : {}),
      secureContext: this.#o.context,
      ...(this.#session ? { session: this.#session } : {}),
    });
    const conn = new DotConnection(socket, to.text, this.#o.expireMs, {
      verified: () => this.#verified(),
      failed: (e, certificate) => this.#failed(e, certificate),
      session: (s) => (this.#session = s),
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

  #verified(): void {
    if (!this.#unverified) return;
    this.#unverified = false;
    this.#o.log.info({ upstream: this.#label }, `DNS upstream ${this.#label}: its TLS certificate verifies again`);
  }

  /**
   * The error a failed connection's queries fail with. A certificate that does not verify is logged with the reason,
   * once until one verifies again.
   */
  #failed(e: Error, certificate: boolean): UpstreamError {
    if (!certificate) return new UpstreamUnreachableError(`DNS upstream ${this.#to.text} over TLS: ${e.message}`, { cause: e });
    // Node's hint about --use-system-ca does not apply: the system store is used.
    const reason = e.message.replace(/; if the root CA is installed locally.*$/s, '');
    const servername = this.#to.tls?.servername;
    if (!this.#unverified) {
      this.#unverified = true;
      this.#o.log.warn(
        { upstream: this.#label, servername: servername ?? null, reason },
        `DNS upstream ${this.#label}: its TLS certificate does not verify for ${servername ?? `the address ${this.#to.host}`} (${reason}); queries to it fail until it does`,
      );
    }
    return new UpstreamTlsError(`DNS upstream ${this.#to.text}: TLS certificate does not verify (${reason})`, { cause: e });
  }
}

/** What a connection tells its pool. */
interface ConnectionEvents {
  verified(): void;
  /** The error the queries of a connection that failed fail with; `certificate` when verification failed. */
  failed(e: Error, certificate: boolean): UpstreamError;
  session(s: Buffer): void;
  /** Takes no new queries from now on. */
  retired(c: DotConnection): void;
  /** Gone; `orphans` are queries to send again on another connection. */
  closed(c: DotConnection, orphans: Job[]): void;
}

/** One TLS connection and the queries pending on it, by message ID. */
class DotConnection {
  readonly pending = new Map<number, { job: Job; sent: Buffer }>();
  readonly #socket: TLSSocket;
  /** The upstream as written, for errors. */
  readonly #text: string;
  readonly #expireMs: number;
  readonly #events: ConnectionEvents;
  /** Frames written before the certificate verified, sent once it has. */
  #queued: Buffer[] = [];
  #ready = false;
  #retired = false;
  /** Replies received: a connection that answered before may close under a query as an idle one would (resent once). */
  #answered = 0;
  #got: Buffer = Buffer.alloc(0);
  #idle: NodeJS.Timeout | undefined;
  #error: UpstreamError | undefined;
  /** A session ticket received before the certificate verified. */
  #session: Buffer | undefined;

  constructor(socket: TLSSocket, text: string, expireMs: number, events: ConnectionEvents) {
    this.#socket = socket;
    this.#text = text;
    this.#expireMs = expireMs;
    this.#events = events;
    socket.setNoDelay(true);
    socket.on('secureConnect', () => this.#secured());
    // A session resumed later skips Node's name check: only one from a connection that verified may be kept (under
    // TLS 1.2 the ticket can come before the check).
    socket.on('session', (s: Buffer) => (this.#ready ? events.session(s) : (this.#session = s)));
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    // The upstream closed its side: nothing more will be answered here.
    socket.on('end', () => this.retire());
    socket.on('error', (e: Error) => {
      // Node sets authorizationError when the certificate did not verify, and then never connects.
      this.#error ??= events.failed(e, Boolean((socket as TLSSocket & { authorizationError?: string | null }).authorizationError));
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

  #secured(): void {
    this.#ready = true;
    this.#events.verified();
    if (this.#session) this.#events.session(this.#session);
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
      } else job.fail(this.#error ?? new UpstreamUnreachableError(`DNS upstream ${this.#text} closed the TLS connection without a reply`));
    }
    this.#events.closed(this, orphans);
  }
}

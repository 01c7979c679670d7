// The DNS server of `netplane dns`: UDP and TCP on each listen address, every query run through a chain of handlers
// (the first answer that is not 'pass' wins; all pass: REFUSED), responses written from encodings cached per
// DnsAnswer object. Nothing a client sends can throw out of here: bad messages get FORMERR or are dropped,
// handler failures and timeouts become SERVFAIL.
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Registry } from 'prom-client';
import type { HostPort } from '../../runtime/flags.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { DnsAnswer, DnsHandler, HandlerResult } from '../types.ts';
import { runHandlers } from '../chain.ts';
import { rcodeNumbers } from '../wire/codec.ts';
import { parseQuery, type ParsedQuery, type ParseFailure } from '../wire/query.ts';
import { buildError, buildResponse, encodeAnswer, maxMessage, optLength, type EncodedAnswer } from '../wire/response.ts';
import { planBalance, rotate, rotatedBody, type BalancePlan, type LoadBalance } from './balance.ts';
import { DnsMetrics, typeSlot, type ZoneSlot } from './metrics.ts';
import type { Client, Output } from './output.ts';
import { isWildcard, PinnedSet } from './pinned.ts';
import type { LoggedQuery, QueryLog } from './querylog.ts';
import { ReplayCache, type Replay } from './replay.ts';
import { TcpConnection } from './tcp.ts';
import { UdpEndpoint } from './udp.ts';

/** What a server answers with: the part of its options that a reloaded configuration replaces (DnsServer.use). */
export type ServingOptions = Pick<DnsServerOptions, 'handlers' | 'zoneOf' | 'loadBalance' | 'queryLog'>;

/** Options of a DnsServer. */
export interface DnsServerOptions {
  /** UDP and TCP on each. */
  listen: HostPort[];
  /** Tried in order; the first non-'pass' answer wins; all pass: REFUSED. */
  handlers: readonly DnsHandler[];
  log: Logger;
  /** When given, CoreDNS's server metrics are registered in it (a registry holds one server's: a second throws). */
  registry?: Registry;
  /** The `server` label, CoreDNS style ("dns://:53"); default from the first listen address. */
  serverLabel?: string;
  /** The `zone` label for a query name (e.g. "cluster.local." or "."); default ".". */
  zoneOf?: (lname: string) => string;
  /** Our advertised EDNS0 UDP payload size; default 1232 (the DNS flag day 2020 size). */
  udpBufferSize?: number;
  /** Idle TCP connections are closed after this long; default 10,000 ms. */
  tcpIdleMs?: number;
  /**
   * A new TCP connection whose first query has not come whole this long after it opened is closed; default 3000 ms
   * (CoreDNS's read timeout, which its server gives the first read of a connection; later reads get the idle one).
   */
  tcpFirstReadMs?: number;
  /**
   * TCP connections open at most, over every listen address; default 1000. At the cap a new connection takes the
   * place of the one idle longest (nothing in flight; RFC 7766 6.2.3: close idle connections under pressure), and is
   * refused only when every connection has a query in flight.
   */
  maxTcpConnections?: number;
  /** A chain that takes longer is answered SERVFAIL; default 5000 ms. */
  queryTimeoutMs?: number;
  /** Queries in flight per TCP connection before reading pauses; default 256. */
  maxTcpInFlight?: number;
  /** SO_REUSEPORT on the UDP and TCP sockets, so that several processes can share a port; default false. */
  reusePort?: boolean;
  /** SO_RCVBUF of the UDP sockets, so that bursts wait instead of being dropped; default 4 MiB (capped by net.core.rmem_max). */
  udpRecvBufferSize?: number;
  /**
   * How often the local addresses are read again for the UDP sockets pinned to each (pinned.ts) beside a wildcard
   * listen address; default 5000 ms; 0: pin none.
   */
  pinRefreshMs?: number;
  /**
   * 'round_robin' (the default, as CoreDNS's loadbalance in every default Corefile): the A/AAAA and MX records of
   * each NOERROR response are rotated per response, CNAMEs first (balance.ts); 'off': sent as the handler gave them.
   */
  loadBalance?: LoadBalance;
  /** When given, every answered query is logged through it (CoreDNS's log plugin, querylog.ts). */
  queryLog?: QueryLog;
}

/** One bound socket, as start() reports it. */
export interface BoundAddress {
  transport: 'udp' | 'tcp';
  address: string;
  port: number;
}

/** What the server keeps per answer object: its encoding and the metrics slot last used with it. */
interface Cached {
  enc: EncodedAnswer;
  /** The record groups rotated per response, or null (one address, not NOERROR, or load balancing off). */
  plan: BalancePlan | null;
  /** The query name `slot` was found for (an answer shared by several names looks it up again). */
  slotName: string | null;
  slot: ZoneSlot | null;
  byRcode: Float64Array | null;
}

/** What the chain comes to: an answer at once, or a promise of one when a handler went asynchronous. */
type ChainResult = DnsAnswer | Promise<DnsAnswer>;

function staticAnswer(rcode: 'SERVFAIL' | 'REFUSED', source: string): DnsAnswer {
  return { rcode, authoritative: false, answers: [], authorities: [], additionals: [], source };
}
const refused = staticAnswer('REFUSED', '');
const timedOut = staticAnswer('SERVFAIL', '');
const now = () => performance.now();
/** Largest TCP query accepted: a question, an OPT and a TSIG fit in far less; UPDATE and zone transfers are not served. */
const maxTcpQuery = 4096;

/** What the query log says of a message that got an error response: what could be read of it. */
function rejectedQuery(msg: Buffer, f: ParseFailure): LoggedQuery {
  const end = f.question?.end;
  return {
    id: (msg[0]! << 8) | msg[1]!,
    name: f.question?.lname ?? '',
    qtype: f.question?.qtype ?? 0,
    qclass: end === undefined ? 0 : (msg[end - 2]! << 8) | msg[end - 1]!,
    dnssecOk: f.dnssecOk,
    wireSize: msg.length,
  };
}

/** The DNS server: start() binds every listen address, close() stops serving and releases them. */
export class DnsServer {
  readonly #o: DnsServerOptions;
  #handlers: readonly DnsHandler[];
  readonly #log: Logger;
  readonly #ourSize: number;
  readonly #timeoutMs: number;
  #zoneOf: (lname: string) => string;
  readonly #metrics: DnsMetrics | undefined;
  #queryLog: QueryLog | undefined;
  /** Whether a query's arrival time is read: for the duration histogram or the query log. */
  #timed: boolean;
  /** Encoded sections per answer object: handlers return the same object while their data is unchanged. */
  #encoded = new WeakMap<DnsAnswer, Cached>();
  /** Authoritative UDP responses replayed to identical queries while their handler's data is unchanged. */
  #replay = new ReplayCache(50_000);
  #byName: ReadonlyMap<string, DnsHandler>;
  /** SERVFAIL answers per handler name (the `plugin` label says whose failure it was). */
  readonly #servfails = new Map<string, DnsAnswer>();
  readonly #udp: UdpEndpoint[] = [];
  /** UDP sockets pinned to each local address beside a wildcard listen address, so that answers leave from it. */
  readonly #pinned: PinnedSet[] = [];
  #pinTimer: NodeJS.Timeout | undefined;
  readonly #tcp: NetServer[] = [];
  readonly #conns = new Set<TcpConnection>();
  readonly #serve = (msg: Buffer, out: Output, client: Client) => this.#onMessage(msg, out, client);
  #closed = false;
  #balance: boolean;
  /** Advanced per response that has records to rotate: how far they are rotated. */
  #turn = 0;
  #logBudget = { windowStart: -Infinity, left: 0, suppressed: 0 };

  constructor(o: DnsServerOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#ourSize = Math.max(512, Math.min(65535, o.udpBufferSize ?? 1232));
    this.#timeoutMs = o.queryTimeoutMs ?? 5000;
    const first = o.listen[0];
    const host = !first || first.host === '0.0.0.0' || first.host === '::' ? '' : first.host.includes(':') ? `[${first.host}]` : first.host;
    this.#metrics = o.registry ? new DnsMetrics(o.serverLabel ?? `dns://${host}:${first?.port ?? 53}`, o.registry) : undefined;
    this.#handlers = [];
    this.#byName = new Map();
    this.#zoneOf = () => '.';
    this.#balance = true;
    this.#timed = false;
    this.use(o);
  }

  /**
   * Serves every query from now on through these handlers, zone labels, rotation and query log (a reloaded
   * configuration); the sockets and connections stay. Queries already with the old handlers are answered by them.
   * Responses encoded or kept for replay under the old ones are dropped.
   */
  use(p: ServingOptions): void {
    this.#handlers = [...p.handlers];
    this.#byName = new Map(this.#handlers.map((h) => [h.name, h]));
    this.#zoneOf = p.zoneOf ?? (() => '.');
    this.#balance = (p.loadBalance ?? 'round_robin') !== 'off';
    this.#queryLog = p.queryLog;
    this.#timed = this.#metrics !== undefined || this.#queryLog !== undefined;
    this.#encoded = new WeakMap();
    this.#replay = new ReplayCache(50_000);
    this.#servfails.clear();
  }

  /** Binds UDP and TCP on every listen address (the same port for both when port 0 asks for a free one). Rejects on a bind error, releasing what it bound. */
  async start(): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = [];
    try {
      for (const hp of this.#o.listen) bound.push(...(await this.#bindPair(hp.host, hp.port)));
    } catch (e) {
      await this.close();
      throw e;
    }
    await this.#pin(bound);
    const listen = bound.map((b) => `${b.transport}://${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}`);
    const pinned = this.#pinned.flatMap((p) => p.addresses);
    this.#log.info({ listen, udpDirect: this.#udp.every((u) => u.direct), ...(pinned.length > 0 ? { udpPinned: pinned } : {}) }, 'dns server listening');
    return bound;
  }

  /** Pins a UDP socket to each local address beside every wildcard UDP listen address, and keeps them current. */
  async #pin(bound: readonly BoundAddress[]): Promise<void> {
    const every = this.#o.pinRefreshMs ?? 5000;
    if (every <= 0) return;
    const udp = bound.filter((b) => b.transport === 'udp' && isWildcard(b.address));
    for (const b of udp) {
      // 0.0.0.0 on the same port pins the IPv4 addresses; a :: beside it then pins only IPv6 ones.
      const ipv4 = b.address === '0.0.0.0' || !udp.some((o) => o.address === '0.0.0.0' && o.port === b.port);
      const set = new PinnedSet(b.address as '0.0.0.0' | '::', b.port, {
        bind: (address, port) => this.#bindPinned(address, port),
        interfaces: () => networkInterfaces(),
        warn: (fields, msg) => this.#log.warn(fields, msg),
      }, { ipv4 });
      this.#pinned.push(set);
      await set.refresh();
    }
    if (this.#pinned.length === 0) return;
    this.#pinTimer = setInterval(() => {
      if (!this.#closed) for (const set of this.#pinned) void set.refresh();
    }, every);
    this.#pinTimer.unref();
  }

  async #bindPinned(address: string, port: number): Promise<UdpEndpoint> {
    const udp = await UdpEndpoint.bind(
      { host: address, port, reusePort: this.#o.reusePort ?? false, reuseAddr: true, recvBufferSize: this.#o.udpRecvBufferSize ?? 4 << 20 },
      this.#serve,
      (e) => this.#warn({ err: e }, 'udp socket error'),
    );
    if (this.#closed) {
      await udp.close();
      throw new Error('the server is closing');
    }
    return udp;
  }

  /** Stops serving: sockets closed, TCP connections dropped; answers still pending are discarded. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pinTimer);
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    await Promise.all([
      ...this.#pinned.splice(0).map((p) => p.close()),
      ...this.#udp.splice(0).map((u) => u.close()),
      ...this.#tcp.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    ]);
  }

  async #bindPair(host: string, port: number): Promise<BoundAddress[]> {
    // With port 0 the UDP socket picks the port and TCP must get the same one; another process may hold it on
    // TCP, so try a few.
    for (let attempt = 0; ; attempt++) {
      const udp = await UdpEndpoint.bind(
        { host, port, reusePort: this.#o.reusePort ?? false, reuseAddr: isWildcard(host), recvBufferSize: this.#o.udpRecvBufferSize ?? 4 << 20 },
        this.#serve,
        (e) => this.#warn({ err: e }, 'udp socket error'),
      );
      this.#udp.push(udp);
      const { address, port: udpPort } = udp.address();
      try {
        const tcp = await this.#listenTcp(host, udpPort);
        return [
          { transport: 'udp', address, port: udpPort },
          { transport: 'tcp', address, port: tcp },
        ];
      } catch (e) {
        if (port !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        this.#udp.splice(this.#udp.indexOf(udp), 1);
        await udp.close();
      }
    }
  }

  #listenTcp(host: string, port: number): Promise<number> {
    // allowHalfOpen: a client's FIN ends only its side; TcpConnection ends ours once its answers are out.
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (sock: Socket) => this.#onConnection(sock));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, reusePort: this.#o.reusePort ?? false }, () => {
        server.off('error', reject);
        server.on('error', (e) => this.#warn({ err: e }, 'tcp server error'));
        this.#tcp.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  #onConnection(sock: Socket): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    if (this.#conns.size >= (this.#o.maxTcpConnections ?? 1000) && !this.#closeIdlest()) {
      sock.destroy();
      return;
    }
    const conn = new TcpConnection(sock, this.#serve, { idleMs: this.#o.tcpIdleMs ?? 10_000, firstReadMs: this.#o.tcpFirstReadMs ?? 3000, maxInFlight: this.#o.maxTcpInFlight ?? 256, maxUnread: 1 << 20, maxQuery: maxTcpQuery });
    this.#conns.add(conn);
    sock.on('close', () => this.#conns.delete(conn));
  }

  /** Closes the TCP connection idle longest to make room for a new one; false when every one has a query in flight. */
  #closeIdlest(): boolean {
    let idlest: TcpConnection | undefined;
    let since = Infinity;
    for (const c of this.#conns) {
      const s = c.idleSince;
      if (s !== undefined && s < since) [idlest, since] = [c, s];
    }
    if (idlest === undefined) return false;
    idlest.destroy();
    this.#conns.delete(idlest);
    return true;
  }

  /** Serves one message; whatever happens, `out.send` is called once for it (a response or null). */
  #onMessage(msg: Buffer, out: Output, client: Client): void {
    // The clock is read only for the duration histogram and the query log.
    const start = this.#timed ? now() : 0;
    if (out.prefix === 0 && this.#replay.size > 0) {
      const r = this.#replay.lookup(msg);
      if (r !== undefined && out.alive && !this.#closed) {
        this.#replayTo(msg, r, out, client, start);
        return;
      }
    }
    try {
      const q = parseQuery(msg, out.transport, client);
      if (!q.ok) {
        this.#reject(msg, q, out, client, start);
        return;
      }
      const result = this.#chain(q);
      if (result instanceof Promise) this.#await(msg, q, result, out, client, start);
      else this.#respond(msg, q, result, out, client, start, true);
    } catch (e) {
      // Not reached by design (parseQuery, #chain, #respond and #reject catch their own failures): a last guard
      // so that no message can take the process down.
      this.#warn({ err: e }, 'dns message handling failed');
      out.send(null, client);
    }
  }

  /** Runs the handlers: an answer when they answer synchronously, else a promise of one; all passing is REFUSED. */
  #chain(q: ParsedQuery): ChainResult {
    const r = runHandlers(this.#handlers, q, 0, this.#failed);
    if (r === 'pass') return refused;
    if (typeof (r as Promise<HandlerResult>).then === 'function') return (r as Promise<HandlerResult>).then((a) => (a === 'pass' ? refused : a));
    return r as DnsAnswer;
  }

  readonly #failed = (h: DnsHandler, e: unknown): DnsAnswer => this.#handlerFailed(h, e);

  #handlerFailed(h: DnsHandler, e: unknown): DnsAnswer {
    this.#warn({ err: e, handler: h.name }, 'dns handler failed');
    let a = this.#servfails.get(h.name);
    if (!a) this.#servfails.set(h.name, (a = staticAnswer('SERVFAIL', h.name)));
    return a;
  }

  #await(msg: Buffer, q: ParsedQuery, p: Promise<DnsAnswer>, out: Output, client: Client, start: number): void {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.#warn({ name: q.name, type: q.type, timeoutMs: this.#timeoutMs }, 'dns query timed out');
      this.#respond(msg, q, timedOut, out, client, start);
    }, this.#timeoutMs);
    timer.unref();
    p.then(
      (a) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#respond(msg, q, a, out, client, start);
      },
      (e: unknown) => {
        // #chainAsync catches handler rejections; this is a bug of ours, still answered.
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#warn({ err: e }, 'dns chain failed');
        this.#respond(msg, q, timedOut, out, client, start);
      },
    );
  }

  /** Sends an earlier response again with this query's ID, counted in the metrics as the first one was. */
  #replayTo(msg: Buffer, r: Replay, out: Output, client: Client, start: number): void {
    const buf = out.alloc(r.bytes.length);
    r.bytes.copy(buf);
    buf[0] = msg[0]!;
    buf[1] = msg[1]!;
    if (r.balance !== undefined) rotate(buf, r.balance.bodyAt, r.balance.plan, (this.#turn = (this.#turn + 1) >>> 0));
    out.send(buf, client);
    r.terms?.replayed();
    const m = r.metrics;
    if (m !== undefined) m.slot.record(m.typeSlot, out.proto, client.family === 'IPv6' ? 1 : 0, m.dnssecOk, msg.length, buf.length, m.rcode, m.byRcode, (now() - start) / 1000);
    if (this.#queryLog !== undefined) this.#queryLog.record(msg, undefined, buf, 0, out.transport, client, start);
  }

  /** Encodes and sends an answer; `replayable`: it came synchronously from the chain (see replay.ts). */
  #respond(msg: Buffer, q: ParsedQuery, a: DnsAnswer, out: Output, client: Client, start: number, replayable = false): void {
    let sent = false;
    try {
      if (!out.alive || this.#closed) {
        sent = true;
        out.send(null, client);
        return;
      }
      let c = this.#encoded.get(a);
      if (c === undefined || (c.enc.pointerName !== null && c.enc.pointerName !== q.lname)) {
        let enc: EncodedAnswer;
        try {
          enc = encodeAnswer(a, q.lname);
        } catch (e) {
          a = this.#handlerFailed({ name: String(a?.source ?? ''), handle: () => 'pass' }, e);
          enc = encodeAnswer(a, q.lname);
        }
        let plan: BalancePlan | null = null;
        if (this.#balance) ({ enc, plan } = planBalance(enc));
        c = { enc, plan, slotName: null, slot: null, byRcode: null };
        this.#encoded.set(a, c);
      }
      const enc = c.enc;
      const ourSize = this.#ourSize;
      const limit = out.prefix ? 65535 : q.udpSize === undefined ? 512 : q.udpSize < ourSize ? q.udpSize : ourSize;
      const plan = c.plan;
      let buf: Buffer;
      // Set when the response is the encoding as it was (not compressed and cut to fit): where its records start.
      let bodyAt = -1;
      if (plan === null) buf = buildResponse(msg, q, enc, limit, ourSize, out.prefix, out);
      else {
        const turn = (this.#turn = (this.#turn + 1) >>> 0);
        const whole = q.questionEnd + enc.body.length + (q.edns ? optLength + enc.options.length : 0);
        if (whole <= limit && whole <= maxMessage) {
          buf = buildResponse(msg, q, enc, limit, ourSize, out.prefix, out);
          bodyAt = out.prefix + q.questionEnd;
          rotate(buf, bodyAt, plan, turn);
        } else {
          // Rotated before it is cut, as CoreDNS shuffles before truncating: a different part of a big set each time.
          buf = buildResponse(msg, q, { ...enc, body: rotatedBody(enc.body, plan, turn) }, limit, ourSize, out.prefix, out);
        }
      }
      const size = buf.length - out.prefix;
      sent = true;
      out.send(buf, client);
      if (this.#metrics !== undefined) {
        // The zone of a name never changes: an answer asked by the same name reuses the slot found last time.
        if (c.slotName !== q.lname) {
          c.slot = this.#zoneSlot(q.lname);
          c.byRcode = c.slot.responsesOf(a.source);
          c.slotName = q.lname;
        }
        const family = client.family === 'IPv6' ? 1 : 0;
        // An extended rcode goes to a client without EDNS0 as SERVFAIL (buildResponse).
        const rcode = enc.rcode > 15 && !q.edns ? 2 : enc.rcode;
        c.slot!.record(typeSlot(q.qtype), out.proto, family, q.dnssecOk, q.wireSize, size, rcode, c.byRcode!, (now() - start) / 1000);
      }
      // The response bytes are still intact: nothing was allocated since it was sent.
      // A response cut to fit is not replayed when it has records to rotate: its bytes no longer match the plan.
      if (replayable && out.prefix === 0 && a.clientBound !== true && (a.rcode === 'NOERROR' || a.rcode === 'NXDOMAIN') && (plan === null || bodyAt >= 0)) {
        const h = a.authoritative ? this.#byName.get(a.source) : undefined;
        const from = h?.version !== undefined ? { handler: h } : a.replay !== undefined ? { terms: a.replay } : undefined;
        if (from !== undefined) {
          const metrics = c.slot && c.byRcode ? { slot: c.slot, byRcode: c.byRcode, typeSlot: typeSlot(q.qtype), dnssecOk: q.dnssecOk, rcode: enc.rcode } : undefined;
          this.#replay.store(msg, buf, from, metrics, plan === null ? undefined : { plan, bodyAt });
        }
      }
      if (this.#queryLog !== undefined) this.#queryLog.record(msg, q, buf, out.prefix, out.transport, client, start);
    } catch (e) {
      this.#warn({ err: e, name: q.name, type: q.type }, 'dns response failed');
      if (!sent) out.send(null, client);
    }
  }

  /** Answers (FORMERR, NOTIMP, BADVERS) or drops a message that is not a usable query. */
  #reject(msg: Buffer, f: ParseFailure, out: Output, client: Client, start: number): void {
    let sent = false;
    try {
      const rcode = f.rcode;
      if (rcode === 'DROP' || !out.alive || this.#closed) {
        sent = true;
        out.send(null, client);
        return;
      }
      const buf = buildError(msg, { rcode, question: f.question, edns: f.edns, dnssecOk: f.dnssecOk }, this.#ourSize, out.prefix);
      const size = buf.length - out.prefix;
      sent = true;
      out.send(buf, client);
      if (this.#metrics !== undefined) {
        const zone = f.question ? this.#zoneSlot(f.question.lname) : this.#metrics.zone('dropped');
        const family = client.family === 'IPv6' ? 1 : 0;
        zone.record(typeSlot(f.question?.qtype ?? 0), out.proto, family, f.dnssecOk, msg.length, size, rcodeNumbers[rcode], zone.responsesOf(''), (now() - start) / 1000);
      }
      if (this.#queryLog !== undefined) this.#queryLog.record(msg, rejectedQuery(msg, f), buf, out.prefix, out.transport, client, start);
    } catch (e) {
      this.#warn({ err: e }, 'dns error response failed');
      if (!sent) out.send(null, client);
    }
  }

  #zoneSlot(lname: string): ZoneSlot {
    return this.#metrics!.zone(this.#zoneOf(lname));
  }

  /** Logs a warning, at most 10 a second (a flood of bad queries must not become a flood of log lines). */
  #warn(obj: object, msg: string): void {
    const b = this.#logBudget;
    const t = now();
    if (t - b.windowStart >= 1000) {
      if (b.suppressed > 0) this.#log.warn({ suppressed: b.suppressed }, 'dns warnings suppressed');
      b.windowStart = t;
      b.left = 10;
      b.suppressed = 0;
    }
    if (b.left > 0) {
      b.left--;
      this.#log.warn(obj, msg);
    } else b.suppressed++;
  }
}

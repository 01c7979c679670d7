// The last handler of the DNS chain: answers from the cache, else asks upstream resolvers (CoreDNS's cache and
// forward plugins in one link). Identical questions in flight share one upstream query; a query never waits longer
// than its budget and never throws: when every upstream fails it is answered from a stale entry or with SERVFAIL.
// The client's EDNS options go upstream but for hop-by-hop ones (options.ts), and answers are cached and shared per
// relayed options (cacheKey), but for EDNS Client Subnet: an answer tailored to a subnet serves the clients within the
// SCOPE the upstream gave, and no other (subnet.ts, RFC 7871 §7.3). A malformed client subnet gets FORMERR.
import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import { Registry } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import type { DnsAnswer, DnsHandler, DnsQuery, ReplayTerms } from '../types.ts';
import { DnsCache, cacheKey, remainingTtl, type CacheEntry, type CacheSettings, type Lookup } from './cache.ts';
import { plainSections, viewFor, type ClientBits, type Sections } from './dnssec.ts';
import type { UpstreamAddress } from './address.ts';
import { ExchangeScope, UpstreamAbortedError, UpstreamTimeoutError, encodeQuery, exchange, type ExchangeLimits, type UpstreamReply } from './exchange.ts';
import type { LoopDetector } from './loop.ts';
import { ecsCode, findOption, relayed } from './options.ts';
import { malformed, querySubnet, type ClientSubnet } from './subnet.ts';
import { ForwardMetrics } from './metrics.ts';
import { inDomain } from '../wire/name.ts';
import { defaultExpireMs, TcpPool, type StreamPool } from './stream.ts';
import { DotPool, trustContext } from './tls.ts';
import { UpstreamSet, type Policy, type Upstream } from './upstreams.ts';

export { LoopDetector } from './loop.ts';
export { ResolvConfError, parseResolvConf, readResolvConf } from './resolvconf.ts';
export type { CacheSettings, PrefetchSettings } from './cache.ts';
export { policies, type Policy } from './upstreams.ts';
export { parseServername, parseUpstream, type UpstreamAddress } from './address.ts';
export { TlsConfigError, readCaFile } from './tls.ts';

/** Options the forwarder cannot work with; the message names the option, the value and what is allowed. */
export class ForwarderConfigError extends Error {
  override readonly name = 'ForwarderConfigError';
  readonly code = 'NETPLANE_DNS_FORWARD_CONFIG';
}

/** Options of the forwarder. */
export interface ForwarderOptions {
  /** IP addresses and ports to forward to, plain or DNS over TLS: --upstream, else readResolvConf(). */
  upstreams: UpstreamAddress[];
  /**
   * For DNS-over-TLS upstreams: CA certificates (PEM) trusted besides the system store; for them and TCP-only ones,
   * how long an unused connection stays open (ms, default 10 000, CoreDNS expire).
   */
  tls?: { extraCa?: readonly string[]; expireMs?: number };
  log: Logger;
  /** Where the CoreDNS-named metrics go; a private registry when absent. */
  registry?: Registry;
  /** The `server` label of the cache metrics. Default "dns://:53". */
  server?: string;
  /** The stub domain this forwarder serves (lower case, no trailing dot), for the `zones` label. Default: the root. */
  domain?: string;
  /** Time for one attempt at one upstream (and again for its TCP retry), ms. Default 2000. */
  timeoutMs?: number;
  /** Time for the whole query across upstreams and retries, ms. Default 5000. */
  budgetMs?: number;
  /** Upstream order: "sequential" (as given, failover; the default here), "random" (per query, CoreDNS's default) or "round_robin". */
  policy?: Policy;
  /** Failed exchanges in a row before an upstream is tried last and probed; 0: never. Default 2, as CoreDNS's max_fails. */
  maxFails?: number;
  /** How often an upstream taken down is probed, ms. Default 500, as CoreDNS's health_check. */
  probeIntervalMs?: number;
  /** With every upstream down, fail at once instead of trying them all (CoreDNS failfast_all_unhealthy_upstreams). */
  failFast?: boolean;
  /**
   * Names at or under these domains (lower case, no trailing dot) are never sent upstream: SERVFAIL, as CoreDNS's
   * forward answers an `except` name when no plugin follows it.
   */
  except?: readonly string[];
  /**
   * Upstream resolutions under way at most (CoreDNS forward's max_concurrent); a miss above it is answered REFUSED
   * (as CoreDNS's ErrLimitExceeded), or stale when an expired entry is at hand, at once and counted. Bounds sockets and memory when an upstream is silent. Default 1000.
   */
  maxConcurrent?: number;
  cache?: CacheSettings;
  /** Shared by every forwarder of the server: probe names that come back here are answered NXDOMAIN, not forwarded. */
  loops?: LoopDetector;
  /** The cache's clock in ms, monotonic (TTLs are ages, and a wall-clock step must not expire or prolong entries); tests inject one. Default performance.now(). */
  now?: () => number;
}

/**
 * What one shared upstream resolution ended with: the answer for each client that waited for it (its DO and AD bits
 * decide what it gets of DNSSEC, dnssec.ts); `failed` when no upstream gave a usable answer: none replied, or the
 * reply's rcode is neither NOERROR nor NXDOMAIN (RFC 8767 §4: only those refresh data; CoreDNS's cache serves stale
 * for any other, REFUSED included).
 */
interface Outcome {
  answer(client: ClientBits): DnsAnswer;
  failed: boolean;
}

// RFC 8767 §5: with a stale answer at hand, wait at most the client response timer (1.8 s) for a fresh one.
const staleAfterMs = 1800;
// RFC 8767 §5's failure recheck timer (30 s recommended): after a refresh failed, stale is served at once that long.
const failureRecheckMs = 30_000;
const defaultProbeIntervalMs = 500;
// Health probes ask ". IN NS", as CoreDNS does: any reply at all means the upstream is alive.
const probeQuery = encodeQuery({ name: '', qtype: 2, qclass: 1, dnssecOk: false, checkingDisabled: false }, 0);

/** Forwards queries to upstream resolvers through a cache. */
export class Forwarder implements DnsHandler {
  readonly name = 'forward';
  readonly cache: DnsCache;
  #log: Logger;
  #metrics: ForwardMetrics;
  #upstreams: UpstreamSet;
  #timeoutMs: number;
  #budgetMs: number;
  #now: () => number;
  #flights = new Map<string, Promise<Outcome>>();
  #maxConcurrent: number;
  #scope = new ExchangeScope();
  #loops: LoopDetector | undefined;
  #looping: string[] = [];
  readonly #except: readonly string[];
  /** The kept-open connections of each DNS-over-TLS and TCP-only upstream; plain upstreams get a fresh socket per query. */
  #pools = new Map<Upstream, StreamPool>();

  /** Throws ForwarderConfigError for no upstreams, an upstream that is not an IP address, or a bad duration. */
  constructor(o: ForwarderOptions) {
    if (o.upstreams.length === 0) throw new ForwarderConfigError('the DNS forwarder needs at least one upstream nameserver');
    for (const u of o.upstreams) {
      // A name would need resolving, possibly through ourselves.
      if (isIP(u.host) === 0 || u.port < 1 || u.port > 65535) {
        throw new ForwarderConfigError(`DNS upstream ${JSON.stringify(u.text)} must be an IP address and a port from 1 to 65535, e.g. 8.8.8.8:53`);
      }
    }
    this.#timeoutMs = positive('timeoutMs', o.timeoutMs ?? 2000);
    this.#budgetMs = positive('budgetMs', o.budgetMs ?? 5000);
    this.#maxConcurrent = o.maxConcurrent ?? 1000;
    this.#except = o.except ?? [];
    if (!Number.isInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new ForwarderConfigError(`DNS forwarder option maxConcurrent is ${this.#maxConcurrent}; it must be a whole number of at least 1`);
    }
    this.#log = o.log;
    this.#now = o.now ?? (() => performance.now());
    this.#loops = o.loops;
    this.cache = new DnsCache(o.cache, (type) => this.#metrics.evicted(type));
    this.#metrics = new ForwardMetrics(o.registry ?? new Registry(), { server: o.server ?? 'dns://:53', zones: o.domain === undefined ? '.' : `${o.domain}.`, view: '' }, (t) => this.cache.count(t));
    this.#upstreams = new UpstreamSet(o.upstreams, {
      policy: o.policy ?? 'sequential',
      maxFails: o.maxFails ?? 2,
      probeIntervalMs: o.probeIntervalMs ?? defaultProbeIntervalMs,
      log: o.log,
      probe: async (u) => {
        await this.#exchange(u, probeQuery, { timeoutMs: this.#timeoutMs, scope: this.#scope });
        return true;
      },
      onProbeFailed: (u) => this.#metrics.probeFailed(u.label),
      onAllDown: () => this.#metrics.allDown(),
      failFast: o.failFast ?? false,
    });
    let context: SecureContext | undefined;
    const expireMs = o.tls?.expireMs ?? defaultExpireMs;
    for (const u of this.#upstreams.all) {
      this.#metrics.upstream(u.label);
      if (!u.to.tls && !u.to.tcp) continue;
      const proto = u.to.tls ? 'tcp-tls' : 'tcp';
      this.#metrics.pooledUpstream(u.label, proto);
      const onDial = (reused: boolean) => this.#metrics.dialed(u.label, proto, reused);
      if (u.to.tcp) this.#pools.set(u, new TcpPool(u.to, { expireMs, onDial }));
      else {
        context ??= trustContext(o.tls?.extraCa ?? []);
        this.#pools.set(u, new DotPool(u.to, { context, expireMs, log: o.log, onDial }));
      }
    }
  }

  /** One exchange with one upstream, over its transport. */
  #exchange(u: Upstream, query: Buffer, limits: ExchangeLimits): Promise<UpstreamReply> {
    return this.#pools.get(u)?.exchange(query, limits) ?? exchange(u.to, query, limits);
  }

  /**
   * Answers a query; never throws and never passes: failures become SERVFAIL (or a stale answer). A fresh cache hit
   * is answered synchronously (no promise, no timer: the server then writes it at once); everything else goes
   * through a promise.
   */
  handle(q: DnsQuery): DnsAnswer | Promise<DnsAnswer> {
    try {
      if (this.#scope.closed) return servfail();
      if (this.#except.length > 0 && this.#except.some((d) => inDomain(q.lname, d))) return servfail();
      let subnet: ClientSubnet | undefined;
      if (q.ednsOptions !== undefined) {
        const s = querySubnet(q.ednsOptions);
        // RFC 7871 §6 and §7.2.1: a malformed option is rejected, not relayed (CoreDNS relays it).
        if (s === malformed) return formerr();
        subnet = s;
      }
      const key = cacheKey(q);
      const now = this.#now();
      const found = this.cache.lookup(key, now, q, subnet);
      this.#metrics.cacheRequest();
      if (found.kind === 'hit') {
        this.#metrics.hit(found.entry.type);
        if (found.prefetch) {
          this.#metrics.prefetch();
          void this.#flight(key, refreshOf(q, found.entry), subnet);
        }
        // The same answer object comes back for the rest of this TTL second: it may be replayed until then.
        found.answer.replay ??= this.#replayTerms(found.entry, remainingTtl(found.entry, now));
        return found.answer;
      }
      this.#metrics.miss();
      // Only on a miss: our probes are never cached, and a hit costs no extra check.
      if (this.#loops?.heard(q.lname)) return nxdomain();
      return this.#afterMiss(key, q, found, subnet).catch((e: unknown) => this.#failed(q, e));
    } catch (e) {
      return this.#failed(q, e);
    }
  }

  /**
   * A cache hit may be replayed to identical queries while its entry is still the one cached under the key and its
   * remaining TTL is the one written in the answer; each replay counts as a cache request and hit. Replays skip
   * the hit counting of prefetch, but a TTL second never passes without one real lookup of a name still asked.
   * (An entry for a wider network may thus be replayed for up to that second after a narrower one came in for the
   * same client: it is still an answer within its SCOPE.)
   */
  #replayTerms(entry: CacheEntry, ttl: number): ReplayTerms {
    return {
      valid: () => this.cache.current(entry.key) === entry && remainingTtl(entry, this.#now()) === ttl,
      replayed: () => {
        this.#metrics.cacheRequest();
        this.#metrics.hit(entry.type);
      },
    };
  }

  /**
   * Asks every upstream a loop probe (needs the server listening, and `loops`). An upstream whose probe comes back to
   * this server is logged as an error and no longer used. Resolves once every probe has its reply or timed out.
   */
  async checkLoops(retryMs = loopRetryMs, forMs = loopCheckMs): Promise<void> {
    const loops = this.#loops;
    if (!loops) return;
    const until = performance.now() + forMs;
    await Promise.allSettled(
      this.#upstreams.all.map(async (u) => {
        let found = false;
        const name = loops.probeName(() => {
          found = true;
          this.#looping.push(u.label);
          this.#upstreams.exclude(u);
          this.#log.error({ upstream: u.label, left: this.#upstreams.usable }, `DNS forwarding loop: upstream ${u.label} sent our loop-check query back to this server; it is no longer used`);
        });
        // HINFO, as CoreDNS's loop plugin asks: nothing caches or answers it specially on the way. An upstream that
        // does not answer (down, or not yet up at start) is asked again, as CoreDNS's loop plugin keeps probing while
        // its exchange fails: a loop there would otherwise never be found.
        for (;;) {
          const r = await this.#exchange(u, encodeQuery({ name, qtype: 13, qclass: 1, dnssecOk: false, checkingDisabled: false }, 0), { timeoutMs: this.#timeoutMs, scope: this.#scope }).then(
            () => true,
            () => false,
          );
          if (r || found || this.#scope.closed || performance.now() + retryMs > until) return;
          await new Promise((resolve) => setTimeout(resolve, retryMs).unref());
        }
      }),
    );
  }

  /** The upstreams found to loop back to this server; when they are all of them, nothing is forwarded (SERVFAIL). */
  get looping(): { upstreams: readonly string[]; none: boolean } {
    return { upstreams: this.#looping, none: this.#upstreams.usable === 0 };
  }

  /** Cancels upstream queries in flight (their queries get SERVFAIL), stops health probes and closes TLS connections. */
  async close(): Promise<void> {
    this.#metrics.retire();
    this.#upstreams.close();
    this.#scope.close();
    for (const pool of this.#pools.values()) pool.close();
    await Promise.allSettled([...this.#flights.values()]);
  }

  #failed(q: DnsQuery, e: unknown): DnsAnswer {
    this.#log.error({ err: e, name: q.name, type: q.type }, 'DNS forwarder failed a query');
    return servfail();
  }

  /**
   * A miss waits for upstream; an expired entry is served stale when no fresh answer comes within staleAfterMs, and
   * at once (refreshing in the background) for failureRecheckMs after a refresh failed.
   */
  async #afterMiss(key: string, q: DnsQuery, found: Lookup, subnet: ClientSubnet | undefined): Promise<DnsAnswer> {
    const flight = this.#flight(key, found.kind === 'stale' ? refreshOf(q, found.entry) : q, subnet);
    if (!flight) {
      this.#metrics.rejected();
      // CoreDNS forward returns RcodeRefused with ErrLimitExceeded; resolvers then try their next server.
      if (found.kind !== 'stale') return refused();
      this.#metrics.servedStale();
      return this.cache.staleAnswer(found.entry, q, subnet);
    }
    if (found.kind !== 'stale') return (await flight).answer(q);
    const entry = found.entry;
    if (entry.recheckAt > this.#now()) {
      // The flight refreshes in the background (CoreDNS serve_stale immediate); a failure keeps the timer going.
      void flight.then((o) => o.failed && (entry.recheckAt = this.#now() + failureRecheckMs));
    } else {
      const fresh = await within(flight, staleAfterMs);
      if (fresh && !fresh.failed) return fresh.answer(q);
      entry.recheckAt = this.#now() + failureRecheckMs;
    }
    this.#metrics.servedStale();
    return this.cache.staleAnswer(entry, q, subnet);
  }

  /**
   * The resolution of `key` asked upstream with q's DO bit under way, or a new one (single flight: DO and DO=0
   * questions apart, as the first must not wait for an answer without signatures; questions with other relayed EDNS
   * options apart, as the key holds them; client subnets apart, byte for byte, as the SCOPE of the answer is not yet
   * known); undefined at maxConcurrent. Never rejects.
   */
  #flight(key: string, q: DnsQuery, subnet: ClientSubnet | undefined): Promise<Outcome> | undefined {
    // A key never holds a space followed by "do" or "s" (a name's space is escaped \032, CD is written "cd", options
    // "o", networks "e" and "x").
    const skey = subnet === undefined ? key : `${key} s${subnet.option.toString('hex')}`;
    const fkey = q.dnssecOk ? `${skey} do` : skey;
    const running = this.#flights.get(fkey);
    if (running) return running;
    if (this.#flights.size >= this.#maxConcurrent) return undefined;
    const flight = this.#resolve(key, q, subnet).finally(() => this.#flights.delete(fkey));
    this.#flights.set(fkey, flight);
    return flight;
  }

  async #resolve(key: string, q: DnsQuery, subnet: ClientSubnet | undefined): Promise<Outcome> {
    try {
      const reply = await this.#forward(q);
      if (!reply) return failedOutcome;
      const now = this.#now();
      const failed = reply.rcode !== 'NOERROR' && reply.rcode !== 'NXDOMAIN';
      const entry = this.cache.store(key, reply, now, q, subnet);
      // The upstream's EDNS options go to the clients of this exchange only (they all asked with the same relayed
      // options: the flight's key holds them), as CoreDNS's cache keeps no OPT record; the entry keeps the SCOPE of
      // an ECS option, and its clients with a subnet get their own option back with it (an upstream without ECS: 0).
      const options = reply.ednsOptions;
      if (entry) return { answer: (c) => withOptions(this.cache.answer(entry, now, 'forward', c, subnet), options), failed };
      const plain = plainSections(reply, q.type);
      return { answer: (c) => withOptions(fromReply(reply, plain, c), options), failed };
    } catch (e) {
      this.#log.error({ err: e, name: q.name, type: q.type }, 'DNS forwarder failed a query');
      return failedOutcome;
    }
  }

  /**
   * Tries the upstreams in order until one replies (its rcode is passed on as it is, SERVFAIL and REFUSED included).
   * When a whole round fails it starts over only if some attempt timed out (a lost datagram is worth a second try;
   * a refusal is not), and never past the budget. Undefined when every attempt failed.
   */
  async #forward(q: DnsQuery): Promise<UpstreamReply | undefined> {
    // Encoded once, before any upstream is involved: a question that cannot be encoded is no upstream's failure.
    const options = q.ednsOptions === undefined ? undefined : relayed(q.ednsOptions);
    const query = encodeQuery({ name: q.name, qtype: q.qtype, qclass: q.qclass, dnssecOk: q.dnssecOk, checkingDisabled: q.cd, options }, 0);
    const deadline = performance.now() + this.#budgetMs;
    const order = this.#upstreams.order();
    for (;;) {
      let timedOut = false;
      for (const u of order) {
        if (this.#scope.closed || deadline - performance.now() < 1) return undefined;
        this.#metrics.request(u.label);
        const started = performance.now();
        try {
          const reply = await this.#exchange(u, query, { timeoutMs: this.#timeoutMs, deadline, scope: this.#scope });
          this.#metrics.response(u.label, reply.wireRcode, (performance.now() - started) / 1000);
          this.#upstreams.succeeded(u);
          return reply;
        } catch (e) {
          if (e instanceof UpstreamAbortedError) return undefined;
          timedOut ||= e instanceof UpstreamTimeoutError;
          this.#upstreams.failed(u);
          this.#log.debug({ err: e, upstream: u.label, name: q.name, type: q.type }, 'DNS upstream failed; trying the next');
        }
      }
      if (!timedOut) return undefined;
    }
  }
}

/** A SERVFAIL answer; a new object each time, as it answers one question. */
function servfail(): DnsAnswer {
  return { rcode: 'SERVFAIL', authoritative: false, recursionAvailable: true, answers: [], authorities: [], additionals: [], source: 'forward' };
}

/** REFUSED above maxConcurrent; a new object each time. */
function refused(): DnsAnswer {
  return { rcode: 'REFUSED', authoritative: false, recursionAvailable: true, answers: [], authorities: [], additionals: [], source: 'forward' };
}

/**
 * FORMERR for a malformed EDNS Client Subnet option; a new object each time. The server writes an OPT record in it,
 * as the query had one (RFC 6891 §7: a FORMERR for a problem with the OPT record MUST include one, so the client can
 * tell it from a server without EDNS).
 */
function formerr(): DnsAnswer {
  return { rcode: 'FORMERR', authoritative: false, recursionAvailable: true, answers: [], authorities: [], additionals: [], source: 'forward' };
}

/** NXDOMAIN for our own loop probe come back. */
function nxdomain(): DnsAnswer {
  return { rcode: 'NXDOMAIN', authoritative: false, recursionAvailable: true, answers: [], authorities: [], additionals: [], source: 'forward' };
}

const failedOutcome: Outcome = { answer: servfail, failed: true };

/**
 * The question to ask upstream to refresh `entry` for q: with DO when the entry was asked with DO, whoever's query
 * triggers the refresh, so that a DO=0 client's prefetch does not replace a signed entry with an unsigned one.
 */
function refreshOf(q: DnsQuery, entry: CacheEntry): DnsQuery {
  return entry.dnssecOk && !q.dnssecOk ? { ...q, dnssecOk: true } : q;
}

/** An uncached reply as an answer for `client` (`plain`: its sections without DNSSEC records), TTLs as received. */
function fromReply(r: UpstreamReply, plain: Sections | undefined, client: ClientBits): DnsAnswer {
  const view = viewFor(client, plain, r.authenticatedData === true);
  const s = view === 0 ? r : (plain ?? r);
  return {
    rcode: r.rcode,
    authoritative: false,
    recursionAvailable: true,
    ...(r.authenticatedData && view !== 2 ? { authenticatedData: true } : {}),
    answers: [...s.answers],
    authorities: [...s.authorities],
    additionals: [...s.additionals],
    source: 'forward',
  };
}

/**
 * `a` (a new object, built for one client) with the upstream's EDNS options, when it sent any; the client's own ECS
 * option (already in `a`) stays when the upstream's options hold none.
 */
function withOptions(a: DnsAnswer, options: Buffer | undefined): DnsAnswer {
  if (options === undefined) return a;
  a.ednsOptions = a.ednsOptions !== undefined && findOption(options, ecsCode) === undefined ? Buffer.concat([options, a.ednsOptions]) : options;
  return a;
}

/** How often, and for how long after start, an upstream that does not answer the loop probe is asked again. */
const loopRetryMs = 2000;
const loopCheckMs = 30_000;

/** The promise's value if it settles within `ms`, else undefined. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function positive(option: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new ForwarderConfigError(`DNS forwarder option ${option} is ${ms}; it must be a number of milliseconds above 0`);
  return ms;
}

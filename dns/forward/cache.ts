// The forwarder's cache, with the CoreDNS cache plugin's semantics: positive answers live for the smallest TTL in
// the reply, negative ones for the SOA rule of RFC 2308, both clamped; served TTLs count down with age; popular
// entries are refreshed ahead of expiry; expired ones may be served stale (RFC 8767). Pure: no clock and no I/O —
// every call is told the time in milliseconds.
import type { SoaAnswer } from 'dns-packet';
import type { DnsAnswer, DnsQuery, Rcode, ResourceRecord } from '../types.ts';
import type { UpstreamReply } from './exchange.ts';
import { plainSections, viewFor, type ClientBits, type Sections, type View } from './dnssec.ts';
import { ecsCode, findOption, relayed, unkeyedCodes } from './options.ts';
import { echo, lengthsKey, lookupKeys, placement, type ClientSubnet, type EntrySubnet } from './subnet.ts';

/** When a popular entry is refreshed ahead of expiry (CoreDNS `prefetch AMOUNT DURATION PERCENTAGE%`). */
export interface PrefetchSettings {
  /** Hits, with no gap of `windowSeconds` or more between them, that make an entry popular. Default 2. */
  amount?: number;
  /** Default 60. */
  windowSeconds?: number;
  /** Refresh once the remaining TTL is at most this share (in %) of the cached TTL, and at least at 1 s. Default 10. */
  percentage?: number;
}

/** Cache settings; every field has a default. */
export interface CacheSettings {
  /**
   * Entries kept, positive and negative together; when full, one not used for a long time goes (approximately the
   * least recently used: see DnsCache). 0 turns the cache off. Default 10,000.
   */
  maxEntries?: number;
  /** Upper bound of a positive TTL, seconds. Default 3600 (CoreDNS cache's own default; `cache 30` makes it 30). */
  maxTtl?: number;
  /** Lower bound of a positive TTL, seconds: shorter TTLs are raised to it (CoreDNS `success ... MINTTL`). Default 5. */
  minTtl?: number;
  /** Upper bound of a negative TTL, seconds. Default 1800 (CoreDNS cache's own default; `cache 30` makes it 30). */
  maxNegativeTtl?: number;
  /** Lower bound of a negative TTL, seconds (CoreDNS `denial ... MINTTL`). Default 5. */
  minNegativeTtl?: number;
  /** Refresh popular entries before they expire; `true` takes the PrefetchSettings defaults. Default off. */
  prefetch?: boolean | PrefetchSettings;
  /** How long past expiry an entry may still be served when no upstream answers, seconds; 0 never. Default 3600. */
  staleMaxSeconds?: number;
  /**
   * How long an upstream's SERVFAIL is cached, seconds; 0 never (CoreDNS cache `servfail DURATION`, default 5 s, at
   * most 5 minutes). Such an entry is never served stale and never replaces another entry.
   */
  servfailTtl?: number;
  /** Serve the TTL an entry was cached for until it expires, not the remaining one (CoreDNS cache `keepttl`). Default off. */
  keepTtl?: boolean;
}

/** Settings with the defaults filled in. */
export interface ResolvedCacheSettings {
  maxEntries: number;
  maxTtl: number;
  minTtl: number;
  maxNegativeTtl: number;
  minNegativeTtl: number;
  prefetch: { amount: number; windowMs: number; percentage: number } | undefined;
  staleMaxSeconds: number;
  servfailTtl: number;
  keepTtl: boolean;
}

/** What an entry holds, as CoreDNS labels it: `success` (has answers) or `denial` (NXDOMAIN, NODATA or SERVFAIL). */
export type CacheType = 'success' | 'denial';

/** One cached reply. Records keep the TTLs they arrived with; answers are built with the remaining TTL. */
export interface CacheEntry {
  readonly type: CacheType;
  readonly rcode: Rcode;
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  readonly additionals: readonly ResourceRecord[];
  /** The reply's AD bit, set again on hits for clients that asked with DO or AD (CoreDNS cache's item.AuthenticatedData). */
  readonly authenticatedData: boolean;
  /** Whether upstream was asked with DO: only then may a DO client be answered from it (CoreDNS's item.do). */
  readonly dnssecOk: boolean;
  /** The sections without the DNSSEC records a DO=0 client does not get (dnssec.ts); undefined when none are. */
  readonly plain: Sections | undefined;
  /** Its key in the cache (the question's base key, and for an answer to ECS the network it serves: subnet.ts). */
  readonly key: string;
  /**
   * For an answer to a query with EDNS Client Subnet: what it answered, and the SCOPE every client served from it
   * gets back in its own option (subnet.ts). Undefined for an answer to a query without ECS.
   */
  readonly subnet: EntrySubnet | undefined;
  /** The TTL it was cached for, seconds, after the caps. */
  readonly ttl: number;
  readonly storedAt: number;
  /** Queries in the current run with no gap of the prefetch window between them (only counted with prefetch on). */
  hits: number;
  lastHitAt: number;
  /** A prefetch was already asked for this entry. */
  prefetched: boolean;
  /** The cache's count of insertions and moves when this entry last went to the recent end. */
  touched: number;
  /** The answers built for the current remaining TTL, one per view (dnssec.ts). */
  memo: { ttl: number; views: [DnsAnswer?, DnsAnswer?, DnsAnswer?] } | undefined;
  staleMemo: [DnsAnswer?, DnsAnswer?, DnsAnswer?];
  /** Until then (cache clock, ms) a refresh of this expired entry failed, so it is served stale at once. 0: never. */
  recheckAt: number;
}

/** The outcome of a lookup: a fresh hit (and whether to prefetch), an expired entry still allowed as stale, or nothing. */
export type Lookup = { kind: 'hit'; entry: CacheEntry; answer: DnsAnswer; prefetch: boolean } | { kind: 'stale'; entry: CacheEntry } | { kind: 'miss' };

/** TTL of a stale answer: RFC 8767 §4 recommends 30 s, so clients come back soon but not at once. */
export const staleTtl = 30;

/** Fills in the defaults. */
export function resolveCacheSettings(s: CacheSettings = {}): ResolvedCacheSettings {
  const p = s.prefetch === true ? {} : s.prefetch || undefined;
  return {
    maxEntries: s.maxEntries ?? 10_000,
    maxTtl: s.maxTtl ?? 3600,
    minTtl: s.minTtl ?? 5,
    maxNegativeTtl: s.maxNegativeTtl ?? 1800,
    minNegativeTtl: s.minNegativeTtl ?? 5,
    prefetch: p && { amount: p.amount ?? 2, windowMs: (p.windowSeconds ?? 60) * 1000, percentage: p.percentage ?? 10 },
    staleMaxSeconds: s.staleMaxSeconds ?? 3600,
    servfailTtl: s.servfailTtl ?? 5,
    keepTtl: s.keepTtl ?? false,
  };
}

/**
 * The base cache key: lower-case name, type, class, CD and the EDNS options relayed upstream (options.ts) but EDNS
 * Client Subnet. CD changes what an upstream sends back (data a validator would reject), so those answers are kept
 * apart. So do relayed options: an upstream may tailor its answer to them, so an answer serves only queries that
 * carried the same ones, byte for byte. The client subnet is matched by network instead, within the SCOPE the
 * upstream gave (subnet.ts, RFC 7871 §7.3; CoreDNS's cache keys on name, type, class, DO and CD alone, so it hands one
 * client's subnet-tailored answer to every other). Hop-by-hop options (a cookie) are not relayed and not keyed.
 * DO is not in the key: as in CoreDNS, an entry asked with DO serves DO=0 clients too, its DNSSEC records left out
 * for them (CacheEntry.dnssecOk, dnssec.ts). The usual question (A, IN, no CD, no options) is keyed by the name
 * alone: no string is built, and the name's hash, computed once per query, is reused. Other keys append the rest
 * after a space, which a name from the wire never holds (it is escaped \032); options in hex, after " o".
 */
export function cacheKey(q: Pick<DnsQuery, 'lname' | 'qtype' | 'qclass' | 'cd' | 'ednsOptions'>): string {
  const options = q.ednsOptions === undefined ? undefined : relayed(q.ednsOptions, unkeyedCodes);
  if (options === undefined) {
    if (q.qtype === 1 && q.qclass === 1 && !q.cd) return q.lname;
    return `${q.lname} ${q.qtype} ${q.qclass}${q.cd ? ' cd' : ''}`;
  }
  return `${q.lname} ${q.qtype} ${q.qclass}${q.cd ? ' cd' : ''} o${options.toString('hex')}`;
}

/** What the cache needs of the question a reply answers: its type name and whether it was asked with DO. */
export interface Asked {
  readonly type: string;
  readonly dnssecOk: boolean;
}

/**
 * Whether an upstream's ECS option answers ours: the same FAMILY, SOURCE PREFIX-LENGTH and ADDRESS (RFC 7871 §7.3:
 * a response whose do not match is not to be used for the query). Both are whole options (code, length, data).
 */
export function ecsAnswers(reply: Buffer, asked: Buffer): boolean {
  if (reply.length !== asked.length || reply.length < 8) return false;
  for (let i = 4; i < reply.length; i++) if (i !== 7 && reply[i] !== asked[i]) return false;
  return true;
}

/**
 * How long a reply may be cached, seconds, and as what; undefined when it must not be. Positive: the smallest TTL of
 * every record in the reply (CoreDNS looks at all sections, so no record outlives its own TTL), raised to minTtl, then
 * capped at maxTtl (the cap wins when it is the lower, as in CoreDNS's computeTTL). Negative (NXDOMAIN, or NOERROR
 * without answers): RFC 2308 §5, the smaller of the SOA's TTL and its MINIMUM field, raised to minNegativeTtl and
 * capped at maxNegativeTtl; without an SOA it is not cached (RFC 2308 §5: SHOULD NOT). SERVFAIL: servfailTtl,
 * whatever its records say, as CoreDNS's cache keeps it (its failttl) in its denial cache. REFUSED, FORMERR, NOTIMP
 * and the other rcodes are never cached (CoreDNS's response.OtherError).
 */
export function cacheTtl(reply: UpstreamReply, s: ResolvedCacheSettings): { type: CacheType; ttl: number } | undefined {
  const all = [...reply.answers, ...reply.authorities, ...reply.additionals];
  const smallest = Math.min(...all.map((rr) => ('ttl' in rr && rr.ttl !== undefined ? rr.ttl : Infinity)));
  let type: CacheType;
  let ttl: number;
  let max: number;
  let min: number;
  if (reply.rcode === 'NOERROR' && reply.answers.length > 0) {
    [type, ttl, min, max] = ['success', smallest, s.minTtl, s.maxTtl];
  } else if (reply.rcode === 'NXDOMAIN' || (reply.rcode === 'NOERROR' && reply.answers.length === 0)) {
    const soa = reply.authorities.find((rr): rr is SoaAnswer => rr.type === 'SOA');
    if (!soa) return undefined;
    [type, ttl, min, max] = ['denial', Math.min(smallest, soa.data.minimum ?? Infinity), s.minNegativeTtl, s.maxNegativeTtl];
  } else if (reply.rcode === 'SERVFAIL' && reply.wireRcode === 'SERVFAIL') {
    return s.servfailTtl > 0 ? { type: 'denial', ttl: s.servfailTtl } : undefined;
  } else {
    return undefined;
  }
  if (!Number.isFinite(ttl)) ttl = min;
  ttl = Math.min(Math.max(ttl, min), max);
  return ttl > 0 ? { type, ttl } : undefined;
}

/** Seconds an entry has left at `now`; zero or less once expired (whole seconds elapsed, as CoreDNS counts). */
export function remainingTtl(entry: CacheEntry, now: number): number {
  return entry.ttl - Math.floor((now - entry.storedAt) / 1000);
}

/**
 * A bounded map of cached replies; when full, the entry at the old end of the map's order goes. A hit moves its
 * entry to the recent end only when the entry has not moved during the last half capacity's worth of insertions and
 * moves: moving costs a delete and an insert, and an entry that moved so recently is still in the recent half, far
 * from eviction. So the entry evicted has gone unused for at least about half the capacity's worth of insertions
 * and moves (exact LRU: the whole capacity's worth), and a busy cache moves each hot entry rarely, not on every hit.
 */
export class DnsCache {
  readonly settings: ResolvedCacheSettings;
  #entries = new Map<string, CacheEntry>();
  /** Insertions and moves so far. */
  #moves = 0;
  /** An entry that went to the recent end fewer than this many insertions and moves ago stays where it is. */
  readonly #moveAfter: number;
  #counts: Record<CacheType, number> = { success: 0, denial: 0 };
  /** For answers valid for a network (subnet.ts): per question and family, how many entries of each prefix length. */
  #lengths = new Map<string, Map<number, number>>();
  #onEvict: (type: CacheType) => void;

  /** `onEvict` hears of every entry pushed out to make room (for coredns_cache_evictions_total). */
  constructor(settings: CacheSettings = {}, onEvict: (type: CacheType) => void = () => {}) {
    this.settings = resolveCacheSettings(settings);
    this.#moveAfter = Math.max(1, Math.floor(this.settings.maxEntries / 2));
    this.#onEvict = onEvict;
  }

  /** Entries of one type, expired ones waiting to be served stale included. */
  count(type: CacheType): number {
    return this.#counts[type];
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry under a key, without counting a hit or moving it. */
  current(key: string): CacheEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * Looks a base key (cacheKey) up at `now` for `client`, who sent the EDNS Client Subnet `subnet` (or none). A fresh
   * hit counts towards popularity and may ask for a prefetch (once per entry). An entry asked without DO is a miss
   * for a DO client (its signatures were never fetched), as in CoreDNS. With a subnet, the entries that may serve it
   * are tried most specific first (subnet.ts lookupKeys); the first fresh one is the hit, else the first that may be
   * served stale. Without one, the one entry under the key serves (asked without ECS, or valid for every network).
   */
  lookup(key: string, now: number, client: ClientBits, subnet?: ClientSubnet): Lookup {
    if (subnet === undefined) return this.#lookupAt(key, now, client, undefined);
    let stale: Lookup | undefined;
    for (const k of lookupKeys(key, subnet, this.#lengths.get(lengthsKey(key, subnet.family)))) {
      // Only answers to ECS of the client's FAMILY serve it: other keys hold the family, and under the base key the
      // entry may have been asked without ECS.
      if (this.#entries.get(k)?.subnet?.family !== subnet.family) continue;
      const found = this.#lookupAt(k, now, client, subnet);
      if (found.kind === 'hit') return found;
      if (found.kind === 'stale') stale ??= found;
    }
    return stale ?? { kind: 'miss' };
  }

  #lookupAt(key: string, now: number, client: ClientBits, subnet: ClientSubnet | undefined): Lookup {
    const entry = this.#entries.get(key);
    if (!entry || (client.dnssecOk && !entry.dnssecOk)) return { kind: 'miss' };
    const left = remainingTtl(entry, now);
    if (left <= 0) {
      // RFC 8767 serves stale data; an upstream's failure is no data.
      if (entry.rcode !== 'SERVFAIL' && left + this.settings.staleMaxSeconds > 0) return { kind: 'stale', entry };
      this.#delete(key, entry);
      return { kind: 'miss' };
    }
    if (this.#moves - entry.touched >= this.#moveAfter) {
      // To the recent end of the map's insertion order.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      entry.touched = ++this.#moves;
    }
    return { kind: 'hit', entry, answer: this.answer(entry, now, 'cache', client, subnet), prefetch: this.#shouldPrefetch(entry, left, now) };
  }

  /**
   * Caches a reply to a question `asked` received at `now` and returns the new entry, or undefined when the reply is
   * not cacheable (an entry already there is then kept, to be served stale). A SERVFAIL is cached only where no
   * other answer is (a fresh one, or an expired one to serve stale, stays). A replaced entry hands on its popularity.
   * A reply asked without DO does not replace a fresh entry asked with DO (one that came back later than it): that
   * entry is returned instead, as it serves DO=0 clients too (unless it was asked without ECS and the new one, valid
   * for every network, was asked with it: the old one does not serve clients with a subnet).
   * `key` is the question's base key (cacheKey) and `subnet` the query's EDNS Client Subnet: the entry goes where
   * subnet.ts placement says, by the SCOPE of the upstream's option (0 when it sent none, RFC 7871 §7.3). A reply
   * whose option answers another subnet (§7.3: MUST be dropped), or carries one unasked, is not cached; neither is a
   * SERVFAIL to a query with a subnet (it says nothing of a network, and must not shadow an answer for one).
   */
  store(key: string, reply: UpstreamReply, now: number, asked: Asked, subnet?: ClientSubnet): CacheEntry | undefined {
    if (this.settings.maxEntries <= 0) return undefined;
    const life = cacheTtl(reply, this.settings);
    if (!life) return undefined;
    const ecs = findOption(reply.ednsOptions, ecsCode);
    if (subnet === undefined ? ecs !== undefined : (ecs !== undefined && !ecsAnswers(ecs, subnet.option)) || reply.rcode === 'SERVFAIL') return undefined;
    const place = placement(key, subnet, ecs?.[7] ?? 0);
    key = place.key;
    const old = this.#entries.get(key);
    if (reply.rcode === 'SERVFAIL' && old && old.rcode !== 'SERVFAIL') return undefined;
    if (old?.dnssecOk && !asked.dnssecOk && remainingTtl(old, now) > 0 && (old.subnet !== undefined || place.subnet === undefined)) return old;
    if (old) this.#delete(key, old);
    while (this.#entries.size >= this.settings.maxEntries) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, CacheEntry];
      this.#delete(oldestKey, oldest);
      this.#onEvict(oldest.type);
    }
    const entry: CacheEntry = {
      type: life.type,
      rcode: reply.rcode,
      answers: reply.answers,
      authorities: reply.authorities,
      additionals: reply.additionals,
      authenticatedData: reply.authenticatedData === true,
      dnssecOk: asked.dnssecOk,
      plain: plainSections(reply, asked.type),
      key,
      subnet: place.subnet,
      ttl: life.ttl,
      storedAt: now,
      // The miss that brought a new name in was its first query.
      hits: old?.hits ?? 1,
      lastHitAt: old?.lastHitAt ?? now,
      prefetched: false,
      touched: ++this.#moves,
      memo: undefined,
      staleMemo: [],
      recheckAt: 0,
    };
    this.#entries.set(key, entry);
    this.#counts[entry.type]++;
    const lengths = place.subnet?.lengths;
    if (lengths !== undefined) {
      let byBits = this.#lengths.get(lengths);
      if (byBits === undefined) this.#lengths.set(lengths, (byBits = new Map()));
      byBits.set(place.subnet!.bits, (byBits.get(place.subnet!.bits) ?? 0) + 1);
    }
    return entry;
  }

  /**
   * The entry as an answer for `client` at `now`: every record carries the remaining TTL (CoreDNS does the same, so a
   * client never sees 1799 then 8), DNSSEC records and AD as dnssec.ts says. The same object comes back for the same
   * view while the remaining TTL is unchanged, so the server reuses bytes; views that differ are different objects.
   * A client that sent a subnet gets a new object, with its own option echoed and the entry's SCOPE (RFC 7871
   * §7.2.1–7.2.2: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS must match the query's); one that sent none gets no option.
   */
  answer(entry: CacheEntry, now: number, source: 'cache' | 'forward', client: ClientBits, subnet?: ClientSubnet): DnsAnswer {
    // keepttl: the TTL it was cached for, while it lasts (the entry still expires as ever).
    const ttl = this.settings.keepTtl ? entry.ttl : Math.max(remainingTtl(entry, now), 0);
    const view = viewFor(client, entry.plain, entry.authenticatedData);
    if (source === 'forward') return withSubnet(build(entry, ttl, source, view), entry, subnet);
    if (entry.memo?.ttl !== ttl) entry.memo = { ttl, views: [] };
    const a = (entry.memo.views[view] ??= build(entry, ttl, source, view));
    return subnet === undefined ? a : withSubnet({ ...a, replay: undefined }, entry, subnet);
  }

  /** The entry as a stale answer for `client` (and its subnet, as answer()), every TTL set to `staleTtl`. */
  staleAnswer(entry: CacheEntry, client: ClientBits, subnet?: ClientSubnet): DnsAnswer {
    const view = viewFor(client, entry.plain, entry.authenticatedData);
    const a = (entry.staleMemo[view] ??= build(entry, staleTtl, 'cache', view));
    return subnet === undefined ? a : withSubnet({ ...a, replay: undefined }, entry, subnet);
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#lengths.clear();
    this.#counts = { success: 0, denial: 0 };
  }

  #delete(key: string, entry: CacheEntry): void {
    this.#entries.delete(key);
    this.#counts[entry.type]--;
    const lengths = entry.subnet?.lengths;
    if (lengths === undefined) return;
    const byBits = this.#lengths.get(lengths)!;
    const n = byBits.get(entry.subnet!.bits)! - 1;
    if (n > 0) byBits.set(entry.subnet!.bits, n);
    else if (byBits.delete(entry.subnet!.bits) && byBits.size === 0) this.#lengths.delete(lengths);
  }

  #shouldPrefetch(entry: CacheEntry, left: number, now: number): boolean {
    const p = this.settings.prefetch;
    if (!p) return false;
    if (now - entry.lastHitAt >= p.windowMs) entry.hits = 0;
    entry.hits++;
    entry.lastHitAt = now;
    if (entry.prefetched || entry.hits < p.amount || left > Math.ceil((entry.ttl * p.percentage) / 100)) return false;
    entry.prefetched = true;
    return true;
  }
}

function build(entry: CacheEntry, ttl: number, source: 'cache' | 'forward', view: View): DnsAnswer {
  const withTtl = (rr: ResourceRecord) => ({ ...rr, ttl }) as ResourceRecord;
  const s = view === 0 ? entry : (entry.plain ?? entry);
  return {
    rcode: entry.rcode,
    authoritative: false,
    recursionAvailable: true,
    ...(entry.authenticatedData && view !== 2 ? { authenticatedData: true } : {}),
    answers: s.answers.map(withTtl),
    authorities: s.authorities.map(withTtl),
    additionals: s.additionals.map(withTtl),
    source,
  };
}

/** `a` (built for this client) with the client's own ECS option and the entry's SCOPE; unchanged without a subnet. */
function withSubnet(a: DnsAnswer, entry: CacheEntry, subnet: ClientSubnet | undefined): DnsAnswer {
  if (subnet !== undefined) a.ednsOptions = echo(subnet, entry.subnet?.scope ?? 0);
  return a;
}

// Where the limits of the Ingresses (limit-rps, limit-rpm, limit-connections) keep their clients, and the bounds on
// that memory. nginx gives each limit_req/limit_conn zone a fixed size and forgets its oldest entries when it is full
// (ingress-nginx: 5 MB a zone); here each Ingress tracks at most its maxClients, and all Ingresses together at most
// the gateway-wide ClientBudget (--max-tracked-clients), so an address spray against many limited Ingresses cannot
// add up to Ingresses × the per-Ingress bound.
//
// A forgotten client starts afresh (full buckets, nothing in flight), so forgetting only ever lets a client through
// sooner, never blocks one. A client with requests in flight is never forgotten (its count would go wrong): it leaves
// both orders while busy and comes back as the most recently used when its last request ends. Such clients still
// count, and may hold the tables past their bounds for as long as their requests last (each holds a connection,
// which costs far more than its entry).

/** A bound on tracked clients that is not a positive integer. */
export class ClientBoundError extends Error {
  override readonly name = 'ClientBoundError';
  readonly code = 'NETPLANE_INGRESS_CLIENT_BOUND';
}

/**
 * The default gateway-wide bound: 250,000 clients, about 80 MB at the ~320 bytes an IPv6 client takes (~175 for IPv4;
 * measured by test/ingress/limits/client-table.test.ts). It leaves most of deploy/ingress.yaml's 512 MiB to the rest
 * (1,000,000 would not fit): 2.5 times the per-Ingress bound, and as many IPv6 clients as 6 full ingress-nginx zones
 * of 5 MB hold (nginx keeps about 8,000 of its 128-byte IPv6 states a megabyte, 16,000 IPv4 ones).
 */
export const defaultMaxTrackedClients = 250_000;

/** The default bound per Ingress. */
export const defaultMaxClients = 100_000;

/** Whether `c` holds nothing at `now` (idle, buckets empty): forgetting it loses nothing. */
export type Drained = (c: ClientRecord, now: number) => boolean;

/** One tracked client of one Ingress: its limiter's state and its places in both least-recently-used orders. */
export class ClientRecord {
  readonly ip: string;
  readonly table: ClientTable;
  /** Levels of the rps and rpm buckets as of `at` (0 when that limit is unset). */
  rps = 0;
  rpm = 0;
  at: number;
  inFlight = 0;
  /** Neighbours in its table's order of idle clients (undefined at the ends, or while busy). */
  prev: ClientRecord | undefined = undefined;
  next: ClientRecord | undefined = undefined;
  /** Neighbours in the gateway-wide order of idle clients. */
  older: ClientRecord | undefined = undefined;
  newer: ClientRecord | undefined = undefined;

  constructor(ip: string, table: ClientTable, at: number) {
    this.ip = ip;
    this.table = table;
    this.at = at;
  }
}

/** The gateway-wide bound on clients tracked by all ClientTables that share it, with counts for the metrics. */
export class ClientBudget {
  readonly max: number;
  #size = 0;
  #evictions = 0;
  #oldest: ClientRecord | undefined;
  #newest: ClientRecord | undefined;

  /** Throws ClientBoundError unless `max` is a positive integer (or Infinity: no bound). */
  constructor(max: number = defaultMaxTrackedClients) {
    this.max = checkedBound('clients tracked by the limits of all Ingresses', max);
  }

  /** Clients tracked, busy ones included. */
  get size(): number {
    return this.#size;
  }

  /** Clients forgotten to keep a bound (this one, or a table's own unless the one it forgot held nothing). */
  get evictions(): number {
    return this.#evictions;
  }

  /** Counts a new client, first forgetting the least recently used idle one when the bound is reached. */
  admit(): void {
    // A loop: clients whose requests ended since may have left the budget past its bound.
    while (this.#size >= this.max && this.#oldest) {
      this.#oldest.table.drop(this.#oldest);
      this.#evictions++;
    }
    this.#size++;
  }

  /** Counts a client a table forgot to keep its own bound. */
  evicted(): void {
    this.#evictions++;
  }

  /** Uncounts a client its table no longer holds. */
  uncount(c: ClientRecord): void {
    this.unlink(c);
    this.#size--;
  }

  /** Makes `c` the most recently used idle client. */
  use(c: ClientRecord): void {
    if (this.#newest === c) return;
    this.unlink(c);
    c.older = this.#newest;
    if (this.#newest) this.#newest.newer = c;
    else this.#oldest = c;
    this.#newest = c;
  }

  /** Takes `c` out of the order (busy, or forgotten); nothing when it is not in it. */
  unlink(c: ClientRecord): void {
    if (c.older) c.older.newer = c.newer;
    else if (this.#oldest === c) this.#oldest = c.newer;
    else return;
    if (c.newer) c.newer.older = c.older;
    else this.#newest = c.older;
    c.older = c.newer = undefined;
  }
}

/** The clients of one Ingress's limiter: found by address, at most maxClients of them, counted in a ClientBudget. */
export class ClientTable {
  readonly #budget: ClientBudget;
  readonly #max: number;
  readonly #byIP = new Map<string, ClientRecord>();
  #oldest: ClientRecord | undefined;
  #newest: ClientRecord | undefined;
  #closed = false;

  /** Throws ClientBoundError unless `maxClients` is a positive integer (or Infinity). */
  constructor(budget: ClientBudget, maxClients: number = defaultMaxClients) {
    this.#budget = budget;
    this.#max = checkedBound('clients tracked per Ingress', maxClients);
  }

  /** Clients tracked. */
  get size(): number {
    return this.#byIP.size;
  }

  /**
   * The record of `ip`, made the most recently used; a new one (at `now`) when there is none, made room for by
   * forgetting, in this order: a client `drained` says holds nothing among this table's 8 least recently used idle
   * ones, else its least recently used idle one (bounded work per call, whatever the flood).
   */
  get(ip: string, now: number, drained: Drained): ClientRecord {
    // A limiter replaced while a caller held it: a fresh record, kept nowhere (lets the client through, as forgetting does).
    if (this.#closed) return new ClientRecord(ip, this, now);
    let c = this.#byIP.get(ip);
    if (c) {
      if (c.inFlight === 0) this.#use(c);
      return c;
    }
    while (this.#byIP.size >= this.#max && this.#evict(now, drained));
    // May forget a client of this table too, so before `c` is in it.
    this.#budget.admit();
    c = new ClientRecord(ip, this, now);
    this.#byIP.set(ip, c);
    this.#use(c);
    return c;
  }

  /** Marks `c` busy (its first request in flight began): it cannot be forgotten until idle(c). */
  busy(c: ClientRecord): void {
    this.#unlink(c);
    this.#budget.unlink(c);
  }

  /** Marks `c` idle again (its last request in flight ended), as the most recently used. */
  idle(c: ClientRecord): void {
    if (!this.#closed && this.#byIP.get(c.ip) === c) this.#use(c);
  }

  /** Forgets `c` (a bound's eviction, or pruned); never called for a busy client. */
  drop(c: ClientRecord): void {
    this.#byIP.delete(c.ip);
    this.#unlink(c);
    this.#budget.uncount(c);
  }

  /** Forgets the idle clients `drained` says hold nothing (their state is what a new client would get). */
  prune(now: number, drained: Drained): void {
    for (let c = this.#oldest; c; ) {
      const next = c.next;
      if (drained(c, now)) this.drop(c);
      c = next;
    }
  }

  /** Forgets every client and uncounts them (the Ingress or its limits are gone); busy ones' releases still work. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#byIP.values()) this.#budget.uncount(c);
    this.#byIP.clear();
    this.#oldest = this.#newest = undefined;
  }

  /** Forgets one idle client; false when every client is busy (the table then goes past its bound for a while). */
  #evict(now: number, drained: Drained): boolean {
    let looked = 0;
    for (let c = this.#oldest; c && looked < 8; c = c.next, looked++) {
      if (drained(c, now)) {
        this.drop(c);
        return true;
      }
    }
    if (!this.#oldest) return false;
    this.drop(this.#oldest);
    this.#budget.evicted();
    return true;
  }

  #use(c: ClientRecord): void {
    if (this.#newest !== c) {
      this.#unlink(c);
      c.prev = this.#newest;
      if (this.#newest) this.#newest.next = c;
      else this.#oldest = c;
      this.#newest = c;
    }
    this.#budget.use(c);
  }

  #unlink(c: ClientRecord): void {
    if (c.prev) c.prev.next = c.next;
    else if (this.#oldest === c) this.#oldest = c.next;
    else return;
    if (c.next) c.next.prev = c.prev;
    else this.#newest = c.prev;
    c.prev = c.next = undefined;
  }
}

function checkedBound(what: string, n: number): number {
  if (!(n === Infinity || (Number.isSafeInteger(n) && n > 0))) throw new ClientBoundError(`${what} ${n} is not allowed: it must be a positive integer`);
  return n;
}

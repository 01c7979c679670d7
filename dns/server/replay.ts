// Replaying answers byte for byte. A UDP query whose bytes after the ID equal an earlier query's (same name in the
// same letter case, type, flags and EDNS options) gets the earlier response again with its own ID, without being
// parsed, looked up or encoded — as long as the answer is still what the handler would give. Two kinds are kept,
// both answered synchronously: authoritative answers of a handler with a version, while that version stands (the
// cluster zone's, whose TTLs are fixed), and answers that carry their own replay terms (the forwarder's cache hits,
// until their TTL next counts down or the entry is replaced). On the benchmark's 10,000 names this brings the cost
// of a zone query down to Node's own cost of receiving and sending a datagram.
import type { DnsHandler, ReplayTerms } from '../types.ts';
import type { BalancePlan } from './balance.ts';
import type { ZoneSlot } from './metrics.ts';

/** What a replayed response is counted as in the metrics (as the first one was). */
export interface ReplayMetrics {
  slot: ZoneSlot;
  byRcode: Float64Array;
  typeSlot: number;
  dnssecOk: boolean;
  rcode: number;
}

/** One remembered response. */
export interface Replay {
  /** The response, ID bytes included (overwritten when replayed). */
  bytes: Buffer;
  /** The authoritative handler and its version when stored; or the terms the answer came with. */
  handler: DnsHandler | undefined;
  version: number;
  terms: ReplayTerms | undefined;
  metrics: ReplayMetrics | undefined;
  /** Records rotated on every replay (balance.ts), whose body starts at `bodyAt` in `bytes`; undefined: none. */
  balance: { plan: BalancePlan; bodyAt: number } | undefined;
}

/** Responses by the query's bytes after its ID; at most `max` of them (then it starts again, empty). */
export class ReplayCache {
  readonly #max: number;
  #entries = new Map<string, Replay>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The response remembered for these query bytes, if it is still what its handler would answer. */
  lookup(msg: Buffer): Replay | undefined {
    if (msg.length < 12) return undefined;
    const key = msg.toString('latin1', 2);
    const r = this.#entries.get(key);
    if (r === undefined) return undefined;
    if (r.terms !== undefined ? r.terms.valid() : r.version === r.handler?.version?.()) return r;
    this.#entries.delete(key);
    return undefined;
  }

  /**
   * Remembers `bytes` as the response to `msg`: from `handler`, which must have a version (an authoritative
   * answer), or under `terms` (an answer that brought its own).
   */
  store(msg: Buffer, bytes: Buffer, from: { handler: DnsHandler } | { terms: ReplayTerms }, metrics: ReplayMetrics | undefined, balance?: Replay['balance']): void {
    if (msg.length < 12) return;
    const handler = 'handler' in from ? from.handler : undefined;
    const version = handler?.version?.();
    const terms = 'terms' in from ? from.terms : undefined;
    if (terms === undefined && version === undefined) return;
    if (this.#entries.size >= this.#max) this.#entries = new Map();
    this.#entries.set(msg.toString('latin1', 2), { bytes: Buffer.from(bytes), handler, version: version ?? 0, terms, metrics, balance });
  }
}

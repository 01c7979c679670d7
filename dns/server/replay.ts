// Replaying answers byte for byte. A UDP query whose bytes after the ID equal an earlier query's (same name in the
// same letter case, type, flags and EDNS options) gets the earlier response again with its own ID, without being
// parsed, looked up or encoded — as long as the handler that answered says its data is unchanged (its `version`).
// Only authoritative answers built synchronously by a handler with a version are kept (the cluster zone's, whose
// TTLs are fixed); forwarded answers, whose TTLs count down, never are. On the benchmark's 10,000 names this brings
// the cost of a zone query down to Node's own cost of receiving and sending a datagram.
import type { DnsHandler } from '../types.ts';
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
  handler: DnsHandler;
  version: number;
  metrics: ReplayMetrics | undefined;
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

  /** The response remembered for these query bytes, if its handler's data has not changed since. */
  lookup(msg: Buffer): Replay | undefined {
    if (msg.length < 12) return undefined;
    const key = msg.toString('latin1', 2);
    const r = this.#entries.get(key);
    if (r === undefined) return undefined;
    if (r.version === r.handler.version?.()) return r;
    this.#entries.delete(key);
    return undefined;
  }

  /** Remembers `bytes` as the response to `msg` from `handler` (which must have a version). */
  store(msg: Buffer, bytes: Buffer, handler: DnsHandler, metrics: ReplayMetrics | undefined): void {
    const version = handler.version?.();
    if (version === undefined || msg.length < 12) return;
    if (this.#entries.size >= this.#max) this.#entries = new Map();
    this.#entries.set(msg.toString('latin1', 2), { bytes: Buffer.from(bytes), handler, version, metrics });
  }
}

// The handler chain, as the server runs it and as the rewrite handler runs the rest of it on a rewritten name.
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult } from './types.ts';

/** What running a chain comes to: an answer or 'pass', at once when every handler answered synchronously. */
export type ChainOutcome = HandlerResult | Promise<HandlerResult>;

/**
 * Runs `handlers` from index `from` in order: the first answer wins, 'pass' when every one passed. A handler that
 * throws, rejects, or gives something that is not an answer is answered by `failed`.
 */
export function runHandlers(handlers: readonly DnsHandler[], q: DnsQuery, from: number, failed: (h: DnsHandler, e: unknown) => DnsAnswer): ChainOutcome {
  for (let i = from; i < handlers.length; i++) {
    const h = handlers[i]!;
    let r: HandlerResult | Promise<HandlerResult>;
    try {
      r = h.handle(q);
    } catch (e) {
      return failed(h, e);
    }
    if (r === 'pass') continue;
    if (r === null || typeof r !== 'object') return failed(h, new TypeError(`handler returned ${String(r)}`));
    if (typeof (r as Promise<HandlerResult>).then === 'function') return settle(handlers, q, i, r as Promise<HandlerResult>, failed);
    return r as DnsAnswer;
  }
  return 'pass';
}

async function settle(handlers: readonly DnsHandler[], q: DnsQuery, i: number, pending: Promise<HandlerResult>, failed: (h: DnsHandler, e: unknown) => DnsAnswer): Promise<HandlerResult> {
  let r: HandlerResult;
  try {
    r = await pending;
  } catch (e) {
    return failed(handlers[i]!, e);
  }
  if (r === 'pass') return runHandlers(handlers, q, i + 1, failed);
  return r !== null && typeof r === 'object' ? r : failed(handlers[i]!, new TypeError(`handler resolved to ${String(r)}`));
}

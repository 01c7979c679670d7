// The rewrite handler, first in the chain: a query whose name a rule matches is asked of the rest of the chain under
// the rewritten name, and the answer's names are mapped back to the name asked (CoreDNS's rewrite plugin with
// `answer auto`). Queries no rule matches pass on untouched.
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult, ResourceRecord } from '../types.ts';
import { runHandlers } from '../chain.ts';
import { isAskable, revertName, rewriteQueryName, type NameRule } from './rules.ts';

/** The rest of the chain, run on a rewritten query: an answer, or 'pass' when every handler passed. */
export type NextHandlers = (query: DnsQuery) => HandlerResult | Promise<HandlerResult>;

/** Runs `handlers` in order as the server does (dns/chain.ts), the first answer winning; a handler that fails gives SERVFAIL. */
export function chainOf(handlers: readonly DnsHandler[]): NextHandlers {
  return (q) => runHandlers(handlers, q, 0, failed);
}

const failed = (h: DnsHandler): DnsAnswer => ({ rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [], source: h.name });

/** Names in record data that CoreDNS's `answer auto` maps back too (getRecordValueForRewrite). */
const nameInData: Readonly<Record<string, 'data' | 'target' | 'exchange' | 'mname'>> = {
  CNAME: 'data',
  DNAME: 'data',
  NS: 'data',
  PTR: 'data',
  SRV: 'target',
  MX: 'exchange',
  SOA: 'mname',
};

/** Most rewritten answers kept per answer of the chain (a shared NXDOMAIN may come back for many names). */
const maxPerAnswer = 64;

/** Rewrites query names by `--rewrite-name` rules and maps the answers back. */
export class RewriteHandler implements DnsHandler {
  readonly name = 'rewrite';
  readonly #rules: readonly NameRule[];
  readonly #next: NextHandlers;
  /**
   * Rewritten answers by the chain's answer object and the name asked: the same question gets the same object
   * while the chain's answer is the same, so the server reuses its encoding and may replay it (the answer keeps
   * the source and replay terms of the one it came from, and the rules never change).
   */
  readonly #memo = new WeakMap<DnsAnswer, Map<string, DnsAnswer>>();

  /** `next` runs the handlers after this one (chainOf); `rules` are tried in order, the first match only. */
  constructor(rules: readonly NameRule[], next: NextHandlers) {
    this.#rules = rules;
    this.#next = next;
  }

  handle(q: DnsQuery): HandlerResult | Promise<HandlerResult> {
    const hit = rewriteQueryName(this.#rules, q.lname);
    if (!hit) return 'pass';
    // A rewritten name longer than a name can be, or with an empty label, names nothing.
    if (!isAskable(hit.name)) return { rcode: 'NXDOMAIN', authoritative: false, answers: [], authorities: [], additionals: [], source: this.name };
    const r = this.#next({ ...q, name: hit.name, lname: hit.name });
    if (r instanceof Promise) return r.then((a) => this.#back(hit.rule, q.lname, a));
    return this.#back(hit.rule, q.lname, r);
  }

  #back(rule: NameRule, asked: string, a: HandlerResult): DnsAnswer {
    // The rest of the chain passing would otherwise have the server ask it again under the original name.
    if (a === 'pass') return { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [], additionals: [], source: this.name };
    let byName = this.#memo.get(a);
    const kept = byName?.get(asked);
    if (kept) return kept;
    const answers = revertRecords(rule, a.answers);
    const authorities = revertRecords(rule, a.authorities);
    const additionals = revertRecords(rule, a.additionals);
    // Nothing to map back (a negative answer whose SOA is elsewhere): the chain's own answer object.
    if (answers === a.answers && authorities === a.authorities && additionals === a.additionals) return a;
    const out: DnsAnswer = { ...a, answers, authorities, additionals };
    if (!byName) this.#memo.set(a, (byName = new Map()));
    if (byName.size < maxPerAnswer) byName.set(asked, out);
    return out;
  }
}

/** The records with their names mapped back; the same array when none changed. */
export function revertRecords(rule: NameRule, records: ResourceRecord[]): ResourceRecord[] {
  let out: ResourceRecord[] | undefined;
  records.forEach((rr, i) => {
    const back = revertRecord(rule, rr);
    if (back !== rr) (out ??= records.slice())[i] = back;
  });
  return out ?? records;
}

function revertRecord(rule: NameRule, rr: ResourceRecord): ResourceRecord {
  if (rr.type === 'OPT') return rr;
  const name = revertName(rule, rr.name);
  const where = nameInData[rr.type];
  const data = (rr as { data?: unknown }).data;
  let newData = data;
  if (where === 'data' && typeof data === 'string') {
    const v = revertName(rule, data);
    if (v !== data) newData = v;
  } else if (where !== undefined && where !== 'data' && data !== null && typeof data === 'object') {
    const field = (data as Record<string, unknown>)[where];
    if (typeof field === 'string') {
      const v = revertName(rule, field);
      if (v !== field) newData = { ...data, [where]: v };
    }
  }
  if (name === rr.name && newData === data) return rr;
  return { ...rr, name, ...(newData !== data ? { data: newData } : {}) } as ResourceRecord;
}

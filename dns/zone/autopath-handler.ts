// The autopath handler (CoreDNS's `autopath @kubernetes`), first in the chain after the rewrite handler: a query that
// is a client Pod's first search-path query (`X.<its ns>.svc.<zone>`) is asked of the rest of the chain as
// X.<ns>.svc.<zone>, X.svc.<zone>, X.<zone>, X.<each of the node's search domains> and X in turn, and the first
// answer that is not NXDOMAIN is the reply (with a CNAME from the asked name when a later name answered). Pods are
// found by the source address in the record index that `--pods verified` keeps. Which names and what answer:
// autopath.ts.
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult } from '../types.ts';
import type { NextHandlers } from '../rewrite/handler.ts';
import { answerFor, candidates, clientAddress, inSomeSearchPath, walksOn, type Candidate } from './autopath.ts';

/** Options of the autopath handler. */
export interface AutopathOptions {
  /** The cluster zone (lower case, no trailing dot). */
  zone: string;
  /** The node's search domains, walked after `<zone>` (nodeSearchDomains in autopath.ts: lower case, none twice). */
  nodeSearch?: readonly string[];
  /** The namespace of the Pod with this address, undefined when none (or several namespaces') has it. */
  namespaceOf: (ip: string) => string | undefined;
  /** The handlers after this one (rewrite/handler.ts chainOf). */
  next: NextHandlers;
  /** Hears of each query answered from a later name of the search path (coredns_autopath_success_total). */
  onSuccess?: () => void;
}

/** Most answers kept per answer of the chain (one found answer may come back for many asked names). */
const maxPerAnswer = 64;

/** Walks a client Pod's search path on the server. Never throws: the rest of the chain turns failures into SERVFAIL. */
export class AutopathHandler implements DnsHandler {
  readonly name = 'autopath';
  readonly #o: AutopathOptions;
  /**
   * Answers built here, by the chain's answer they came from and the name asked: the same objects while the chain
   * gives the same, so the server reuses their encoding. Never replayed: they are clientBound.
   */
  readonly #built = new WeakMap<DnsAnswer, Map<string, DnsAnswer>>();

  constructor(o: AutopathOptions) {
    this.#o = o;
  }

  handle(q: DnsQuery): HandlerResult | Promise<HandlerResult> {
    if (!inSomeSearchPath(q.lname, this.#o.zone)) return 'pass';
    const namespace = this.#o.namespaceOf(clientAddress(q.client.address));
    const names = namespace === undefined ? undefined : candidates(q.name, namespace, this.#o.zone, this.#o.nodeSearch);
    // Not this client's first search-path query: the chain's own answer. Still, its NXDOMAIN is the one thing a Pod
    // of that namespace would be answered differently, so it must not be replayed to one.
    if (names === undefined) {
      const r = this.#o.next(q);
      return r instanceof Promise ? r.then((a) => this.#unwalked(q, a)) : this.#unwalked(q, r);
    }
    return this.#walk(q, names, 1, this.#o.next(q));
  }

  /** Takes the answer `r` for names[i - 1] and asks on from names[i] while the answers are NXDOMAIN. */
  #walk(q: DnsQuery, names: readonly Candidate[], i: number, r: HandlerResult | Promise<HandlerResult>, first?: DnsAnswer): HandlerResult | Promise<HandlerResult> {
    for (;;) {
      if (r instanceof Promise) return r.then((a) => this.#walk(q, names, i, a, first));
      if (i === 1) {
        // The asked name itself: its answer holds for everyone (only its NXDOMAIN differs), so it is the chain's own
        // answer object, replayable as without autopath.
        if (r === 'pass') return 'pass';
        if (!walksOn(r.rcode)) return r;
        first = r;
      } else if (r !== 'pass' && !walksOn(r.rcode)) {
        if (r.rcode === 'NOERROR') this.#o.onSuccess?.();
        return this.#kept(q.lname, r, answerFor);
      }
      // Every name NXDOMAIN: the first answer, and the client walks its search path itself (as with CoreDNS).
      if (i === names.length) return this.#unwalked(q, first!);
      const next = names[i++]!;
      r = this.#o.next({ ...q, name: next.name, lname: next.lname });
    }
  }

  /** The chain's answer to a name some client's walk may start with: its NXDOMAIN marked clientBound. */
  #unwalked(q: DnsQuery, a: HandlerResult): HandlerResult {
    if (a === 'pass' || !walksOn(a.rcode)) return a;
    return this.#kept(q.lname, a, (_, found) => ({ ...found, clientBound: true }));
  }

  #kept(asked: string, found: DnsAnswer, build: (asked: string, found: DnsAnswer) => DnsAnswer): DnsAnswer {
    let byName = this.#built.get(found);
    const kept = byName?.get(asked);
    if (kept !== undefined) return kept;
    const a = build(asked, found);
    if (!byName) this.#built.set(found, (byName = new Map()));
    if (byName.size < maxPerAnswer) byName.set(asked, a);
    return a;
  }
}

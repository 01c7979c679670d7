// Stub domains (kube-dns `stubDomains`, CoreDNS `forward DOMAIN ...` server blocks): names at or under a domain go
// to that domain's own upstreams, each with its own cache; the longest domain that covers a name wins, and every
// other name passes on to the default forwarder.
import type { DnsAnswer, DnsHandler, DnsQuery } from '../types.ts';
import type { Forwarder } from './forwarder.ts';
import { inDomain } from '../wire/name.ts';

/** One stub domain: lower case, without trailing dot, and its forwarder. */
export interface StubDomain {
  domain: string;
  forwarder: Forwarder;
}

/** The stub domains as one handler of the chain. */
export class StubDomains implements DnsHandler {
  readonly name = 'forward';
  /** Longest domain first, so that the first covering one is the most specific. */
  readonly #stubs: StubDomain[];

  constructor(stubs: readonly StubDomain[]) {
    this.#stubs = [...stubs].sort((a, b) => b.domain.length - a.domain.length);
  }

  /** The most specific stub domain covering a lower-case name, or undefined. */
  find(lname: string): StubDomain | undefined {
    for (const s of this.#stubs) {
      if (inDomain(lname, s.domain)) return s;
    }
    return undefined;
  }

  /** The forwarder for a lower-case name, or undefined when no stub domain covers it. */
  forwarderFor(lname: string): Forwarder | undefined {
    return this.find(lname)?.forwarder;
  }

  handle(q: DnsQuery): DnsAnswer | Promise<DnsAnswer> | 'pass' {
    return this.forwarderFor(q.lname)?.handle(q) ?? 'pass';
  }

  async close(): Promise<void> {
    await Promise.all(this.#stubs.map((s) => s.forwarder.close()));
  }
}

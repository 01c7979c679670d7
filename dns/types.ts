// The DNS pipeline's shapes: a parsed query, an answer, and the handlers of the chain (cluster zone, then the
// forwarder) that each answer or pass (CoreDNS's plugin chain, STYLE item 5).
import type { Answer as ResourceRecord } from 'dns-packet';

export type { ResourceRecord };

/** A question as the server parsed it from the wire. */
export interface DnsQuery {
  id: number;
  /** The name as asked, letter case kept, without the trailing dot ("" for the root). */
  name: string;
  /** The name in lower case: what lookups use. */
  lname: string;
  /** The type as dns-packet names it ("A", "AAAA", "SRV", ...), or "TYPE<n>" for types it does not name. */
  type: string;
  qtype: number;
  qclass: number;
  /** Recursion desired. */
  rd: boolean;
  /** Checking disabled (DNSSEC), passed on to upstreams. */
  cd: boolean;
  /** The query's AD bit (RFC 6840 5.7): a client that set it gets the AD bit of a cached answer without asking DO. Unset when absent. */
  ad?: boolean;
  transport: 'udp' | 'tcp';
  /** With EDNS0: the client's advertised UDP payload size; undefined without EDNS0. */
  udpSize?: number;
  /** EDNS0 DO bit. */
  dnssecOk: boolean;
  /**
   * The options of the query's OPT record as on the wire (code, length, data each; e.g. EDNS Client Subnet, a
   * cookie); undefined without an OPT record or when it has none.
   */
  ednsOptions?: Buffer | undefined;
  client: { address: string; port: number };
}

/** Response codes the pipeline produces. */
export type Rcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED' | 'YXDOMAIN' | 'YXRRSET' | 'NXRRSET' | 'NOTAUTH' | 'NOTZONE' | 'BADVERS' | 'BADCOOKIE';

/**
 * An answer to one query. Handlers may hand back the same object for the same question while their data is
 * unchanged: the server then reuses its encoding (the answer section's owner names are written as pointers to
 * the question, so the query's letter case is kept).
 */
export interface DnsAnswer {
  rcode: Rcode;
  /** AA: the answer comes from our own zone. */
  authoritative: boolean;
  /** AD: the upstream said it validated the data (DNSSEC); relayed and kept in the cache as CoreDNS does. */
  authenticatedData?: boolean;
  /** RA: recursion available (set when a forwarder is configured). */
  recursionAvailable?: boolean;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  /**
   * EDNS options for the response's OPT record, as option-code, length, data on the wire (an upstream's, relayed as
   * CoreDNS's forward relays them: extended DNS errors, NSID, ...); only to a client that sent an OPT record.
   */
  ednsOptions?: Buffer;
  /** Which handler answered, for the `plugin` label of coredns_dns_responses_total. */
  source: string;
  /**
   * Set on an answer that is not authoritative but may still be replayed byte for byte to an identical query
   * (server/replay.ts) while `valid()` holds (a cache hit: until its TTL next counts down or the entry goes);
   * `replayed()` hears of each replay, for the handler's own counting.
   */
  replay?: ReplayTerms;
  /**
   * Set on an answer that holds only for the client that asked (autopath's, which depends on the client Pod's
   * namespace): never replayed to another query (server/replay.ts), however authoritative.
   */
  clientBound?: boolean;
}

/** When a non-authoritative answer may be replayed, and who counts the replays. */
export interface ReplayTerms {
  valid(): boolean;
  replayed(): void;
}

/** A handler's verdict: an answer, or "not mine" for the next handler. */
export type HandlerResult = DnsAnswer | 'pass';

/** One link of the chain. `handle` must not throw: a failure is a SERVFAIL answer. */
export interface DnsHandler {
  readonly name: string;
  handle(query: DnsQuery): HandlerResult | Promise<HandlerResult>;
  /**
   * A number that changes whenever the handler could answer a question differently. A handler that has one
   * promises the same answer to the same question while it stays the same, so the server may replay its
   * authoritative answers byte for byte (server/replay.ts).
   */
  version?(): number;
}

/** Resolves a name through the rest of the chain (the forwarder), e.g. an ExternalName's target. */
export type Resolve = (name: string, type: 'A' | 'AAAA', query: DnsQuery) => Promise<DnsAnswer>;

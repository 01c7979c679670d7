// The cluster zone: answers names under --zone (and reverse names of cluster addresses) from the record index,
// to the Kubernetes DNS specification 1.1.0, as CoreDNS's kubernetes plugin does. Names it does not own pass on.
import { isIP, isIPv6 } from 'node:net';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult, Resolve, ResourceRecord } from '../types.ts';
import { parseReverseName, parseZoneName, podLabelIP, reversePlace, type ZoneName } from './parse.ts';
import { ReverseZones } from './reverse.ts';
import type { EndpointRecord, RecordIndex, ServiceRecords } from './records.ts';

/** Options of the zone handler. */
export interface ZoneOptions {
  /** TTL of every answer (--ttl); also the SOA minimum, so negative answers are cached as long. */
  ttl: number;
  /**
   * Pod records `a-b-c-d.<ns>.pod.<zone>`: answered from the name alone (insecure), only while a Pod of that
   * namespace has that address (verified: the index holds Pods' addresses), or not at all.
   */
  pods: 'disabled' | 'insecure' | 'verified';
  /**
   * The reverse zones of these CIDRs are ours (octet or nibble aligned, as CoreDNS cuts them): unknown names in
   * them get NXDOMAIN with the reverse zone's SOA instead of going upstream.
   */
  reverseCIDRs: readonly string[];
  /** Addresses of this DNS service, for `ns.dns.<zone>` (the NS record's glue). */
  nameservers: () => string[];
  /** Whether the first full view of the cluster is loaded; until then zone queries get SERVFAIL. */
  synced: () => boolean;
  /**
   * With pods verified: whether the Pods have been listed once. The view does not wait for them (a missing RBAC rule
   * must not take Services down); until then a pod name gets SERVFAIL, never an NXDOMAIN that resolvers would cache.
   * Default: with the view.
   */
  podsSynced?: () => boolean;
  /** Resolves an ExternalName target outside the zone through the rest of the chain. */
  resolve?: Resolve;
  /**
   * A ClusterIP Service without a published endpoint is NXDOMAIN, its port names too, so that a client's resolver
   * moves on to its next search domain (CoreDNS kubernetes `ignore empty_service`).
   */
  ignoreEmptyService?: boolean;
  /**
   * Most answers memoized at once (default 100,000). Only names of indexed objects are memoized (a Service has a
   * handful of names and types), so this is far above what a cluster needs; it bounds what any mistake could make
   * the memo keep. When full, the memo starts again empty.
   */
  maxMemoized?: number;
}

type Family = 4 | 6;
/** Most CNAMEs in an answer's chain of ExternalNames (CoreDNS stops adding them after 8). */
export const maxChain = 8;
/** The zone SOA's TTL at most (CoreDNS plugin/backend_lookup.go SOA); its MINIMUM is --ttl. */
export const maxSoaTtl = 300;
/** Default of ZoneOptions.maxMemoized. */
export const defaultMaxMemoized = 100_000;
/** One SRV target: the named port it serves, its port number, its name, and the addresses behind that name. */
interface SrvTarget {
  portName: string;
  protocol: string;
  port: number;
  target: string;
  ips: string[];
}
const familyOf = (type: string): Family | undefined => (type === 'A' ? 4 : type === 'AAAA' ? 6 : undefined);
const ipFamily = (ip: string): Family => (isIPv6(ip) ? 6 : 4);

/** A zone's SOA record and the negative answers that carry it. */
interface Shared {
  soa: ResourceRecord;
  nxdomain: DnsAnswer;
  nodata: DnsAnswer;
}

/** AXFR (252) and IXFR (251): refused, as CoreDNS's kubernetes plugin refuses them without the transfer plugin. */
const isTransfer = (qtype: number) => qtype === 252 || qtype === 251;

const refused: DnsAnswer = { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [], additionals: [], source: 'kubernetes' };

/** Answers the cluster zone. Same question, same data: the same DnsAnswer object (the server reuses its bytes). */
export class ClusterZoneHandler implements DnsHandler {
  readonly name = 'kubernetes';
  #index: RecordIndex;
  #o: ZoneOptions;
  #zone: string;
  #reverse: ReverseZones;
  /** Answers by query type, then by query name: a lookup hashes only the name the query brought, no key is built. */
  #memo = new Map<string, Map<string, DnsAnswer>>();
  #memoGeneration = -1;
  #memoCount = 0;
  /** The SOA and negative answers of the zone and of each reverse zone asked, by apex, for this generation. */
  #shared = new Map<string, Shared>();

  constructor(index: RecordIndex, options: ZoneOptions) {
    this.#index = index;
    this.#o = options;
    this.#zone = index.zone;
    this.#reverse = new ReverseZones(options.reverseCIDRs);
  }

  /** The record index's generation: every answer is a function of the index (and of the fixed options). */
  version(): number {
    return this.#o.synced() ? this.#index.generation : -1;
  }

  handle(q: DnsQuery): HandlerResult | Promise<HandlerResult> {
    // The zone is class IN; ANY (255) gets its IN records. Our names in another class (CH, HS, NONE) are refused,
    // never forwarded: they would leak cluster names upstream and answer with someone else's data.
    if (q.qclass !== 1 && q.qclass !== 255) return this.#owns(q.lname) ? refused : 'pass';
    // Most queries repeat a question already answered since the index last changed: serve that answer before
    // parsing the name (an answer is memoized only once it is known to be ours and current).
    if (this.#o.synced()) {
      this.#fresh();
      const hit = this.#memo.get(q.type)?.get(q.lname);
      if (hit !== undefined) return hit;
    }
    const zoneName = parseZoneName(q.lname, this.#zone);
    if (zoneName) {
      if (isTransfer(q.qtype)) return refused;
      if (!this.#o.synced()) return this.#servfail();
      return this.#answerZone(q, zoneName);
    }
    const rzone = this.#reverse.zoneOf(q.lname);
    const rev = parseReverseName(q.lname);
    if (rzone === undefined && !rev) return 'pass';
    if (rzone !== undefined && isTransfer(q.qtype)) return refused;
    if (!this.#o.synced()) return rzone !== undefined ? this.#servfail() : 'pass';
    const names = rev ? this.#index.namesOf(rev.ip) : [];
    if (names.length === 0) return rzone !== undefined ? this.#answerReverse(q, rzone, rev !== undefined) : 'pass';
    // Outside every --reverse-cidr zone, the name is in the reverse tree CoreDNS's kubernetes plugin serves by default
    // (`kubernetes cluster.local in-addr.arpa ip6.arpa`): its NODATA carries that apex's SOA, not the cluster zone's.
    if (q.type !== 'PTR') return this.#nodata(rzone ?? (q.lname.endsWith('.ip6.arpa') ? 'ip6.arpa' : 'in-addr.arpa'));
    return this.#memoized(q, () => this.#answer(names.map((n) => this.#rr(q.lname, 'PTR', n))));
  }

  /** A name of reverse zone `rzone` without PTR records: the apex's SOA, NODATA above addresses, else NXDOMAIN. */
  #answerReverse(q: DnsQuery, rzone: string, address: boolean): DnsAnswer {
    const place = address ? 'none' : reversePlace(q.lname, rzone);
    if (place === 'apex' && q.type === 'SOA') return this.#memoized(q, () => this.#answer([this.#negatives(rzone).soa]));
    // The apex of every zone we serve names our nameserver, as the cluster zone's does (CoreDNS answers NS at each).
    if (place === 'apex' && q.type === 'NS') return this.#memoized(q, () => this.#nsAnswer(q.lname));
    // Names above whole addresses may have addresses under them: NODATA, never an NXDOMAIN that a resolver would
    // take for the whole subtree (RFC 8020) while minimising its queries (RFC 9156).
    return place === 'none' ? this.#nxdomain(rzone) : this.#nodata(rzone);
  }

  /** The NS record of a zone apex we serve: `ns.dns.<zone>`, with this DNS service's addresses as glue. */
  #nsAnswer(apex: string): DnsAnswer {
    const ns = `ns.dns.${this.#zone}`;
    return this.#answer([this.#rr(apex, 'NS', ns)], this.#addresses(ns, this.#o.nameservers()));
  }

  /** Whether a name is ours to answer: in the zone or a reverse zone, or the reverse name of an address we know. */
  #owns(lname: string): boolean {
    if (parseZoneName(lname, this.#zone) || this.#reverse.zoneOf(lname) !== undefined) return true;
    const rev = parseReverseName(lname);
    return rev !== undefined && this.#index.namesOf(rev.ip).length > 0;
  }

  #answerZone(q: DnsQuery, z: ZoneName): HandlerResult | Promise<HandlerResult> {
    switch (z.kind) {
      case 'apex':
        if (q.type === 'SOA') return this.#memoized(q, () => this.#answer([this.#negatives(this.#zone).soa]));
        if (q.type === 'NS') return this.#memoized(q, () => this.#nsAnswer(q.lname));
        return this.#nodata();
      case 'dns-version':
        return q.type === 'TXT' ? this.#memoized(q, () => this.#answer([this.#rr(q.lname, 'TXT', ['1.1.0'])])) : this.#nodata();
      case 'nameserver':
        return this.#byFamily(q, this.#o.nameservers());
      case 'svc-root':
        return this.#nodata();
      case 'namespace':
        return this.#index.hasNamespace(z.namespace) ? this.#nodata() : this.#nxdomain();
      case 'service':
        return this.#service(q, z.namespace, z.service);
      case 'endpoint':
        return this.#endpoint(q, z.namespace, z.service, z.endpoint);
      case 'srv':
        return this.#srvName(q, z.namespace, z.service, z.port, z.protocol);
      case 'pod-root':
        return this.#o.pods !== 'disabled' ? this.#nodata() : this.#nxdomain();
      // As CoreDNS's findPods: a namespace that does not exist has no pod names.
      case 'pod-namespace':
        return this.#o.pods !== 'disabled' && this.#index.hasNamespace(z.namespace) ? this.#nodata() : this.#nxdomain();
      case 'pod': {
        const ip = this.#o.pods !== 'disabled' && this.#index.hasNamespace(z.namespace) ? podLabelIP(z.address) : undefined;
        if (ip === undefined) return this.#nxdomain();
        // Verified: only an address some Pod of the namespace has (CoreDNS's findPods, podModeVerified). Before the
        // Pods are listed that is unknown: SERVFAIL, as CoreDNS answers a name error while unsynced.
        if (this.#o.pods === 'verified' && !this.#index.hasPodIP(z.namespace, ip)) return this.#o.podsSynced?.() === false ? this.#servfail() : this.#nxdomain();
        // Not memoized: the name comes from the client alone (2^32 addresses times any namespace), so keeping its
        // answer would let any client grow our memory without bound. CoreDNS builds these on the fly too.
        return this.#byFamily(q, [ip], false);
      }
      case 'none':
        return this.#nxdomain();
    }
  }

  #service(q: DnsQuery, namespace: string, name: string): HandlerResult | Promise<HandlerResult> {
    const svc = this.#index.service(namespace, name);
    if (!svc) return this.#nxdomain();
    if (svc.kind === 'external-name') return isIP(svc.externalName!) ? this.#nxdomain() : this.#externalName(q, svc);
    if (svc.kind === 'headless' && svc.endpoints.length === 0) return this.#nxdomain();
    if (this.#empty(svc)) return this.#nxdomain();
    if (q.type === 'SRV') {
      // The Service name asks for every port, named or not (CoreDNS reads the missing _port._proto as wildcards);
      // a Service without ports has no SRV record, which is NODATA like any other missing type.
      const targets = this.#srvTargets(svc);
      return targets.length === 0 ? this.#nodata() : this.#memoized(q, () => this.#srv(svc, targets));
    }
    // An address named twice (two endpoints of one address, in two slices) is answered once, as CoreDNS does.
    const ips = svc.kind === 'headless' ? [...new Set(svc.endpoints.map((e) => e.ip))] : svc.clusterIPs;
    return this.#byFamily(q, ips);
  }

  /** With ignoreEmptyService: a ClusterIP Service that has no published endpoint. */
  #empty(svc: ServiceRecords): boolean {
    return this.#o.ignoreEmptyService === true && svc.kind === 'cluster-ip' && svc.endpoints.length === 0;
  }

  #endpoint(q: DnsQuery, namespace: string, name: string, label: string): HandlerResult {
    const svc = this.#index.service(namespace, name);
    // Every Service's endpoints have names, not only a headless Service's (CoreDNS findServices: "Endpoint query
    // or headless service"); the ClusterIP Service's own name still answers with its cluster IPs.
    const eps = svc ? svc.endpoints.filter((e) => e.label === label) : [];
    return eps.length === 0 ? this.#nxdomain() : this.#byFamily(q, eps.map((e) => e.ip));
  }

  #srvName(q: DnsQuery, namespace: string, name: string, port: string, protocol: string): HandlerResult {
    const svc = this.#index.service(namespace, name);
    if (!svc || svc.kind === 'external-name' || this.#empty(svc)) return this.#nxdomain();
    const targets = this.#srvTargets(svc).filter((t) => t.portName === port && t.protocol === protocol);
    if (targets.length === 0) return this.#nxdomain();
    return q.type === 'SRV' ? this.#memoized(q, () => this.#srv(svc, targets, q.lname)) : this.#nodata();
  }

  /** SRV targets: the Service name per port, or each published endpoint per port (headless). */
  #srvTargets(svc: ServiceRecords): SrvTarget[] {
    const fqdn = `${svc.name}.${svc.namespace}.svc.${this.#zone}`;
    if (svc.kind === 'cluster-ip') return svc.ports.map((p) => ({ portName: p.name, protocol: p.protocol, port: p.port, target: fqdn, ips: svc.clusterIPs }));
    // A dual-stack endpoint with a hostname is one target with both addresses, not two records.
    const byTarget = new Map<string, SrvTarget>();
    for (const p of svc.ports) {
      for (const e of svc.endpoints as EndpointRecord[]) {
        const port = e.ports.get(`${p.name}/${p.protocol}`);
        if (port === undefined) continue;
        const target = `${e.label}.${fqdn}`;
        const key = `${p.name}/${p.protocol}/${port}/${target}`;
        const t = byTarget.get(key);
        if (t) t.ips.push(e.ip);
        else byTarget.set(key, { portName: p.name, protocol: p.protocol, port, target, ips: [e.ip] });
      }
    }
    return [...byTarget.values()];
  }

  #srv(svc: ServiceRecords, all: readonly SrvTarget[], owner?: string): DnsAnswer {
    const name = owner ?? `${svc.name}.${svc.namespace}.svc.${this.#zone}`;
    // One record per target and port: two ports of one number (53/UDP and 53/TCP) would be the same record twice,
    // which RFC 2181 §5 forbids in an RRset (CoreDNS drops them the same way).
    const unique = new Map<string, SrvTarget>();
    for (const t of all) if (!unique.has(`${t.port} ${t.target}`)) unique.set(`${t.port} ${t.target}`, t);
    const targets = [...unique.values()];
    // CoreDNS spreads weight 100 evenly over the records of an answer.
    const weight = Math.floor(100 / Math.max(1, targets.length));
    const answers = targets.map((t) => this.#rr(name, 'SRV', { priority: 0, weight, port: t.port, target: t.target }));
    const glue = new Map<string, string[]>();
    for (const t of all) glue.set(t.target, [...(glue.get(t.target) ?? []), ...t.ips]);
    return this.#answer(answers, [...glue].flatMap(([target, ips]) => this.#addresses(target, [...new Set(ips)])));
  }

  /**
   * The CNAME chain from an ExternalName, followed while its targets are ExternalNames of the zone, then the last
   * target's records of the asked type: from the zone for every type (RFC 1034 4.3.2: an authoritative server goes
   * on at a CNAME target in its own zone), through the forwarder for A and AAAA; other types of a name outside the
   * zone end at the last CNAME, for the resolver to ask on. A CNAME or ANY question gets the first CNAME alone (it
   * matches the CNAME itself). As CoreDNS does, the chain stops before a CNAME whose target is already in it (a
   * loop) and after maxChain CNAMEs; a self-reference gets NODATA, but for a CNAME or ANY question its CNAME.
   */
  async #externalName(q: DnsQuery, svc: ServiceRecords): Promise<HandlerResult> {
    const family = familyOf(q.type);
    const follow = q.type !== 'CNAME' && q.type !== 'ANY';
    const recursionAvailable = family !== undefined && this.#o.resolve !== undefined;
    const chain: ResourceRecord[] = [];
    // A CNAME or ANY question gets the record even when it names itself (CoreDNS drops `x CNAME x` in address
    // lookups only): then the question's own name is no loop yet.
    const seen = new Set(follow ? [q.lname] : []);
    let owner = q.name;
    let target = svc.externalName!;
    for (;;) {
      const lower = target.toLowerCase();
      if (seen.has(lower) || chain.length >= maxChain) break;
      seen.add(lower);
      chain.push(this.#rr(owner, 'CNAME', target));
      if (!follow) break;
      const z = parseZoneName(lower, this.#zone);
      const next = z?.kind === 'service' ? this.#index.service(z.namespace, z.service) : undefined;
      // An ExternalName holding an IP answers NXDOMAIN below, so the chain ends at its name.
      if (next?.kind === 'external-name' && !isIP(next.externalName!)) {
        owner = target;
        target = next.externalName!;
        continue;
      }
      // The last name's answer: its records after the chain; a negative one keeps its rcode and SOA (RFC 6604: the
      // rcode is the last name's; RFC 2308 §2.2: the SOA lets a resolver cache that the target has nothing).
      let last: DnsAnswer | undefined;
      if (z) {
        // Not an ExternalName: the zone answers synchronously.
        const inner = (await this.handle({ ...q, name: target, lname: lower })) as HandlerResult;
        if (inner !== 'pass') last = inner;
      } else if (family !== undefined && this.#o.resolve) {
        last = await this.#o.resolve(target, q.type as 'A' | 'AAAA', q);
      }
      if (last !== undefined && last.answers.length === 0 && (last.rcode === 'NXDOMAIN' || last.rcode === 'NOERROR')) {
        return { ...this.#answer(chain), rcode: last.rcode, authorities: last.authorities, recursionAvailable };
      }
      const rest = last?.rcode === 'NOERROR' ? last.answers : [];
      // The zone's own additional records (an SRV answer's addresses, the NS glue) come along with its answer.
      const extra = z && last?.rcode === 'NOERROR' ? last.additionals : [];
      return { ...this.#answer([...chain, ...rest], extra), recursionAvailable };
    }
    if (chain.length === 0) return this.#nodata();
    return recursionAvailable ? { ...this.#answer(chain), recursionAvailable } : this.#answer(chain);
  }

  /** A or AAAA records of the addresses of the asked family; NODATA for other types or when none matches. */
  #byFamily(q: DnsQuery, ips: readonly string[], memo = true): HandlerResult {
    const family = familyOf(q.type);
    const matching = family === undefined ? [] : ips.filter((ip) => ipFamily(ip) === family);
    if (matching.length === 0) return this.#nodata();
    const build = () => this.#answer(matching.map((ip) => this.#rr(q.lname, q.type, ip)));
    return memo ? this.#memoized(q, build) : build();
  }

  #addresses(name: string, ips: readonly string[]): ResourceRecord[] {
    return ips.map((ip) => this.#rr(name, ipFamily(ip) === 6 ? 'AAAA' : 'A', ip));
  }

  #rr(name: string, type: string, data: unknown, ttl = this.#o.ttl): ResourceRecord {
    return { name, type, class: 'IN', ttl, data } as ResourceRecord;
  }

  #answer(answers: ResourceRecord[], additionals: ResourceRecord[] = []): DnsAnswer {
    return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals, source: this.name };
  }

  /** The same answer object for the same name and type until the index changes. */
  #memoized(q: DnsQuery, build: () => DnsAnswer): DnsAnswer {
    this.#fresh();
    let byName = this.#memo.get(q.type);
    if (!byName) this.#memo.set(q.type, (byName = new Map()));
    let a = byName.get(q.lname);
    if (!a) {
      a = build();
      if (this.#memoCount >= (this.#o.maxMemoized ?? defaultMaxMemoized)) {
        this.#memo.clear();
        this.#memo.set(q.type, (byName = new Map()));
        this.#memoCount = 0;
      }
      byName.set(q.lname, a);
      this.#memoCount++;
    }
    return a;
  }

  /** Answers memoized now (at most ZoneOptions.maxMemoized). */
  get memoized(): number {
    return this.#memoCount;
  }

  /** Drops memoized answers when the index has changed since they were built. */
  #fresh(): void {
    if (this.#memoGeneration === this.#index.generation) return;
    this.#memo.clear();
    this.#memoCount = 0;
    this.#shared.clear();
    this.#memoGeneration = this.#index.generation;
  }

  /** The SOA of `apex` (the zone or a reverse zone) and its negative answers, for this generation. */
  #negatives(apex: string): Shared {
    this.#fresh();
    let sh = this.#shared.get(apex);
    if (sh) return sh;
    const zone = this.#zone;
    // A reverse zone's SOA names our nameserver and mailbox in the cluster zone: names that resolve.
    // The SOA's own TTL is capped while MINIMUM stays --ttl, as CoreDNS's plugin.SOA (min(MinTTL, 300)): a
    // resolver caches a negative answer for min(SOA TTL, MINIMUM) (RFC 2308).
    const soa = this.#rr(apex, 'SOA', {
      mname: `ns.dns.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: this.#index.changedAt >>> 0,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: this.#o.ttl,
    }, Math.min(this.#o.ttl, maxSoaTtl));
    const negative = (rcode: 'NXDOMAIN' | 'NOERROR'): DnsAnswer => ({ rcode, authoritative: true, answers: [], authorities: [soa], additionals: [], source: this.name });
    this.#shared.set(apex, (sh = { soa, nxdomain: negative('NXDOMAIN'), nodata: negative('NOERROR') }));
    return sh;
  }

  /** NXDOMAIN with the SOA of `apex` (default: the cluster zone). */
  #nxdomain(apex = this.#zone): DnsAnswer {
    return this.#negatives(apex).nxdomain;
  }

  /** NODATA with the SOA of `apex` (default: the cluster zone). */
  #nodata(apex = this.#zone): DnsAnswer {
    return this.#negatives(apex).nodata;
  }

  #servfail(): DnsAnswer {
    return { rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [], source: this.name };
  }
}

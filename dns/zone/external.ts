// The external zones (--external-zone; CoreDNS's k8s_external): `<svc>.<ns>.<zone>` names a Service's external
// addresses — spec.externalIPs and its load balancers' ingress IPs — for clients outside the cluster, with SRV for its
// ports (`_<port>._<proto>.<svc>.<ns>.<zone>`, and every port at the Service's name). The apex has its SOA and NS
// (`ns1.<apex label>.<zone>`, whose addresses are the external ones of this DNS server's own Service). A Service
// without external addresses, or a name of no Service, is NXDOMAIN; a name that exists without the asked type NODATA;
// both with the zone's SOA. Headless Services' endpoints (k8s_external's `headless`) and PTR are not answered here.
import { isIPv6 } from 'node:net';
import type { DnsAnswer, DnsHandler, DnsQuery, ResourceRecord } from '../types.ts';
import { inDomain } from '../wire/name.ts';
import type { RecordIndex, ServiceRecords } from './records.ts';

/** Options of the external zones. */
export interface ExternalZoneOptions {
  /** Lower case, without trailing dot. */
  zones: readonly string[];
  /** TTL of every answer (CoreDNS k8s_external ttl, 5 s). */
  ttl: number;
  /** The label under the apex that holds the nameserver's name (CoreDNS k8s_external apex, `dns`). */
  apex: string;
  /** The external addresses of this DNS server's own Service: the nameserver's. */
  nameservers: () => string[];
  /** Whether the first full view of the cluster is loaded: until then the zones answer SERVFAIL, as the cluster zone does. */
  synced: () => boolean;
}

/** The zones' answers from the record index. */
export class ExternalZoneHandler implements DnsHandler {
  readonly name = 'k8s_external';
  readonly #index: RecordIndex;
  readonly #o: ExternalZoneOptions;
  /** Longest first, so that the most specific zone answers. */
  readonly #zones: string[];

  constructor(index: RecordIndex, options: ExternalZoneOptions) {
    this.#index = index;
    this.#o = options;
    this.#zones = [...options.zones].sort((a, b) => b.length - a.length);
  }

  /** Changes whenever the index does: the answers are a function of it (the server replays them while it stands). */
  version(): number {
    return this.#o.synced() ? this.#index.generation : -1;
  }

  /** The external zone a lower-case name is in, or undefined. */
  zoneOf(lname: string): string | undefined {
    return this.#zones.find((z) => inDomain(lname, z));
  }

  handle(q: DnsQuery): DnsAnswer | 'pass' {
    const zone = this.zoneOf(q.lname);
    if (zone === undefined) return 'pass';
    if (!this.#o.synced()) return { rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [], source: this.name };
    const rel = q.lname === zone ? '' : q.lname.slice(0, q.lname.length - zone.length - 1);
    const labels = rel === '' ? [] : rel.split('.');
    const ns = `ns1.${this.#o.apex}.${zone}`;
    if (labels.length === 0) {
      if (q.type === 'SOA') return this.#answer([this.#soa(zone)]);
      if (q.type === 'NS') return this.#answer([this.#rr(zone, 'NS', ns)], this.#addresses(ns, this.#o.nameservers()));
      return this.#negative(zone, 'NOERROR');
    }
    // The apex label's names: the nameserver's addresses, and the names above it.
    if (labels.at(-1) === this.#o.apex) {
      if (q.lname === ns) return this.#addressAnswer(zone, q, ns, this.#o.nameservers());
      return this.#negative(zone, labels.length === 1 ? 'NOERROR' : 'NXDOMAIN');
    }
    const namespace = labels.at(-1)!;
    if (labels.length === 1) return this.#negative(zone, this.#index.hasNamespace(namespace) ? 'NOERROR' : 'NXDOMAIN');
    const svc = this.#index.service(namespace, labels.at(-2)!);
    const addresses = svc?.externalIPs;
    if (svc === undefined || addresses === undefined) return this.#negative(zone, 'NXDOMAIN');
    const target = `${svc.name}.${svc.namespace}.${zone}`;
    if (labels.length === 2) {
      if (q.type === 'SRV') return this.#srv(zone, q.lname, target, svc.ports, addresses);
      return this.#addressAnswer(zone, q, q.lname, addresses);
    }
    if (labels.length === 4 && labels[0]!.startsWith('_') && labels[1]!.startsWith('_')) {
      const [port, proto] = [labels[0]!.slice(1), labels[1]!.slice(1)];
      const ports = svc.ports.filter((p) => p.name !== '' && p.name === port && p.protocol === proto);
      if (ports.length === 0) return this.#negative(zone, 'NXDOMAIN');
      return q.type === 'SRV' ? this.#srv(zone, q.lname, target, ports, addresses) : this.#negative(zone, 'NOERROR');
    }
    return this.#negative(zone, 'NXDOMAIN');
  }

  #srv(zone: string, name: string, target: string, ports: ServiceRecords['ports'], addresses: string[]): DnsAnswer {
    if (ports.length === 0) return this.#negative(zone, 'NOERROR');
    const numbers = [...new Set(ports.map((p) => p.port))];
    // The weight shared out among the records, as the cluster zone's (CoreDNS: 100 over the records of one priority).
    const weight = Math.floor(100 / numbers.length);
    const answers = numbers.map((port) => this.#rr(name, 'SRV', { priority: 0, weight, port, target }));
    return this.#answer(answers, this.#addresses(target, addresses));
  }

  /** A and AAAA of `name` from `ips`; NODATA for another type or a family it has no address of. */
  #addressAnswer(zone: string, q: DnsQuery, name: string, ips: readonly string[]): DnsAnswer {
    if (q.type !== 'A' && q.type !== 'AAAA') return this.#negative(zone, 'NOERROR');
    const wanted = ips.filter((ip) => isIPv6(ip) === (q.type === 'AAAA'));
    return wanted.length === 0 ? this.#negative(zone, 'NOERROR') : this.#answer(this.#addresses(name, wanted));
  }

  #addresses(name: string, ips: readonly string[]): ResourceRecord[] {
    return ips.map((ip) => this.#rr(name, isIPv6(ip) ? 'AAAA' : 'A', ip));
  }

  #soa(zone: string): ResourceRecord {
    // As k8s_external's: the nameserver under the apex label, a static serial, MINIMUM the TTL.
    return this.#rr(zone, 'SOA', { mname: `ns1.${this.#o.apex}.${zone}`, rname: `hostmaster.${zone}`, serial: 12345, refresh: 14400, retry: 3600, expire: 604800, minimum: this.#o.ttl });
  }

  #negative(zone: string, rcode: 'NXDOMAIN' | 'NOERROR'): DnsAnswer {
    return { rcode, authoritative: true, answers: [], authorities: [this.#soa(zone)], additionals: [], source: this.name };
  }

  #answer(answers: ResourceRecord[], additionals: ResourceRecord[] = []): DnsAnswer {
    return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals, source: this.name };
  }

  #rr(name: string, type: string, data: unknown): ResourceRecord {
    return { name, type, class: 'IN', ttl: this.#o.ttl, data } as ResourceRecord;
  }
}

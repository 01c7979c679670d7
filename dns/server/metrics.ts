// CoreDNS's server metrics (plugin/metrics: coredns_dns_requests_total, _responses_total, _request_duration_seconds,
// _request_size_bytes, _response_size_bytes, _do_requests_total), with the same names, labels and buckets.
// The query path only bumps numbers in per-zone slots found once per zone; prom-client reads them at scrape time
// (a labelled prom-client child hashes its labels on every call, too slow for ~100k queries/s).
import type { Registry } from 'prom-client';
import { Histo, histogramSamples, registerScraped, type Sample } from '../../runtime/fast-metrics.ts';

/** CoreDNS plugin.TimeBuckets: 0.25 ms doubling to 8.192 s. */
export const timeBuckets: readonly number[] = Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i);
/** CoreDNS's size buckets (bytes). */
export const sizeBuckets: readonly number[] = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3];

/** Query types CoreDNS names in the `type` label; every other type counts as "other". */
const monitoredTypes = ['A', 'AAAA', 'MX', 'SOA', 'CNAME', 'PTR', 'TXT', 'NS', 'SRV', 'DS', 'DNSKEY', 'RRSIG', 'NSEC', 'NSEC3', 'HTTPS', 'IXFR', 'AXFR', 'ANY'];
const typeNumbers: Record<string, number> = { A: 1, AAAA: 28, MX: 15, SOA: 6, CNAME: 5, PTR: 12, TXT: 16, NS: 2, SRV: 33, DS: 43, DNSKEY: 48, RRSIG: 46, NSEC: 47, NSEC3: 50, HTTPS: 65, IXFR: 251, AXFR: 252, ANY: 255 };
const typeLabels = [...monitoredTypes, 'other'];
const otherType = monitoredTypes.length;
const typeIndex = new Uint8Array(256).fill(otherType);
monitoredTypes.forEach((t, i) => (typeIndex[typeNumbers[t]!] = i));
const rcodeLabels = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];
/** The name of an rcode as CoreDNS prints it (NOERROR, ..., BADVERS, else RCODE<n>). */
export const rcodeLabel = (rcode: number): string => rcodeLabels[rcode] ?? (rcode === 16 ? 'BADVERS' : rcode === 23 ? 'BADCOOKIE' : `RCODE${rcode}`);

/** The `type` label slot of a query type. */
export function typeSlot(qtype: number): number {
  return qtype < 256 ? typeIndex[qtype]! : otherType;
}

/** One zone's numbers. Proto slot: 0 udp, 1 tcp; family slot: 0 IPv4, 1 IPv6. */
export class ZoneSlot {
  readonly zone: string;
  /** requests[(typeSlot * 2 + proto) * 2 + family] */
  readonly requests = new Float64Array(typeLabels.length * 4);
  readonly duration: Array<Histo | undefined> = new Array(typeLabels.length).fill(undefined);
  readonly requestSize = [new Histo(sizeBuckets), new Histo(sizeBuckets)];
  readonly responseSize = [new Histo(sizeBuckets), new Histo(sizeBuckets)];
  /** Responses by plugin, each indexed by rcode number (0..23). */
  readonly responses = new Map<string, Float64Array>();
  doRequests = 0;
  constructor(zone: string) {
    this.zone = zone;
  }

  /** The response counters of one plugin, indexed by rcode number (0..23); cacheable by the caller. */
  responsesOf(plugin: string): Float64Array {
    let byRcode = this.responses.get(plugin);
    if (byRcode === undefined) this.responses.set(plugin, (byRcode = new Float64Array(25)));
    return byRcode;
  }

  /** Counts one answered query; `byRcode` is responsesOf(the plugin that answered). */
  record(tslot: number, proto: number, family: number, dnssecOk: boolean, reqSize: number, respSize: number, rcode: number, byRcode: Float64Array, seconds: number): void {
    this.requests[(tslot * 2 + proto) * 2 + family]!++;
    if (dnssecOk) this.doRequests++;
    (this.duration[tslot] ??= new Histo(timeBuckets)).observe(seconds);
    this.requestSize[proto]!.observe(reqSize);
    this.responseSize[proto]!.observe(respSize);
    byRcode[rcode < 24 ? rcode : 24]!++;
  }
}

/** The server's metrics: per-zone slots for the query path, rendered by prom-client when a registry is given. */
export class DnsMetrics {
  readonly #zones = new Map<string, ZoneSlot>();
  readonly #server: string;

  constructor(server: string, registry?: Registry) {
    this.#server = server;
    if (registry) this.#register(registry);
  }

  /** The slot of a zone, made on first use. */
  zone(zone: string): ZoneSlot {
    let z = this.#zones.get(zone);
    if (z === undefined) this.#zones.set(zone, (z = new ZoneSlot(zone)));
    return z;
  }

  #register(registry: Registry): void {
    const server = this.#server;
    const view = '';
    const protos = ['udp', 'tcp'];
    const zones = () => [...this.#zones.values()];
    const metric = (name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): void =>
      registerScraped(registry, name, help, type, values, () => this.#zones.clear());
    const histogram = histogramSamples;
    metric('coredns_dns_requests_total', 'Counter of DNS requests made per zone, protocol and family.', 'counter', () =>
      zones().flatMap((z) =>
        typeLabels.flatMap((type, t) =>
          [0, 1, 2, 3]
            .filter((pf) => z.requests[t * 4 + pf]! > 0)
            .map((pf) => ({ labels: { server, zone: z.zone, view, proto: protos[pf >> 1]!, family: String((pf & 1) + 1), type }, value: z.requests[t * 4 + pf]! })),
        ),
      ),
    );
    metric('coredns_dns_responses_total', 'Counter of response status codes.', 'counter', () =>
      zones().flatMap((z) =>
        [...z.responses].flatMap(([plugin, byRcode]) =>
          [...byRcode.keys()].filter((r) => byRcode[r]! > 0).map((r) => ({ labels: { server, zone: z.zone, view, rcode: rcodeLabel(r), plugin }, value: byRcode[r]! })),
        ),
      ),
    );
    metric('coredns_dns_do_requests_total', 'Counter of DNS requests with DO bit set per zone.', 'counter', () =>
      zones()
        .filter((z) => z.doRequests > 0)
        .map((z) => ({ labels: { server, zone: z.zone, view }, value: z.doRequests })),
    );
    metric('coredns_dns_request_duration_seconds', 'Histogram of the time (in seconds) each request took per zone.', 'histogram', () =>
      zones().flatMap((z) =>
        typeLabels.flatMap((type, t) => {
          const h = z.duration[t];
          return h ? histogram('coredns_dns_request_duration_seconds', h, timeBuckets, { server, zone: z.zone, view, type }) : [];
        }),
      ),
    );
    metric('coredns_dns_request_size_bytes', 'Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.', 'histogram', () =>
      zones().flatMap((z) =>
        protos.flatMap((proto, p) => (z.requestSize[p]!.count > 0 ? histogram('coredns_dns_request_size_bytes', z.requestSize[p]!, sizeBuckets, { server, zone: z.zone, view, proto }) : [])),
      ),
    );
    metric('coredns_dns_response_size_bytes', 'Size of the returned response in bytes.', 'histogram', () =>
      zones().flatMap((z) =>
        protos.flatMap((proto, p) => (z.responseSize[p]!.count > 0 ? histogram('coredns_dns_response_size_bytes', z.responseSize[p]!, sizeBuckets, { server, zone: z.zone, view, proto }) : [])),
      ),
    );
  }
}

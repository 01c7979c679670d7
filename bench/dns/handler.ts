// The benchmark's stand-in for the cluster-zone handler: `svcN.default.svc.cluster.local` A from a Map, one
// memoized DnsAnswer per name (as the real zone handler memoizes), NXDOMAIN for other names under the zone.
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult } from '../../dns/types.ts';

/** The Service names the benchmark serves, with their ClusterIPs: 10.96.x.y in order. */
export function serviceNames(count: number): Array<{ name: string; ip: string }> {
  return Array.from({ length: count }, (_, i) => ({ name: `svc${i}.default.svc.cluster.local`, ip: `10.96.${i >> 8}.${i & 255}` }));
}

/** Answers A queries for the given names from a Map; other names in cluster.local get NXDOMAIN, the rest pass. */
export class MapZoneHandler implements DnsHandler {
  readonly name = 'kubernetes';
  readonly #answers = new Map<string, DnsAnswer>();
  readonly #nxdomain: DnsAnswer;

  constructor(services: ReadonlyArray<{ name: string; ip: string }>, ttl = 30) {
    for (const s of services) {
      this.#answers.set(s.name, {
        rcode: 'NOERROR',
        authoritative: true,
        answers: [{ name: s.name, type: 'A', ttl, data: s.ip }],
        authorities: [],
        additionals: [],
        source: this.name,
      });
    }
    this.#nxdomain = { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [], additionals: [], source: this.name };
  }

  handle(q: DnsQuery): HandlerResult {
    if (q.qtype === 1 && q.qclass === 1) {
      const a = this.#answers.get(q.lname);
      if (a !== undefined) return a;
    }
    return q.lname.endsWith('cluster.local') ? this.#nxdomain : 'pass';
  }
}

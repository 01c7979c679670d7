// The cluster zone's answers as a table: query name and type in, rcode and records (as zone-file lines) out.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import type { DnsAnswer, DnsQuery, ResourceRecord } from '../../../dns/types.ts';
import { ClusterZoneHandler, type ZoneOptions } from '../../../dns/zone/handler.ts';
import { followNamespaces, RecordIndex } from '../../../dns/zone/records.ts';
import { service, slice } from '../../fixtures/objects.ts';

const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });

function cluster(): object[] {
  return [
    service('web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'], ports: [{ name: 'http', port: 80 }, { name: 'metrics', port: 9090 }, { port: 81, name: '' }].slice(0, 2) }),
    slice('web-1', 'web', [ep('10.244.1.5')], [{ name: 'http', port: 8080 }]),
    service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }, { namespace: 'shop' }),
    slice('db-v4', 'db', [ep('10.244.2.7', { hostname: 'db-0' }), ep('10.244.2.8'), ep('10.244.2.9', { conditions: { ready: false } })], [{ name: 'pg', port: 5433 }], { namespace: 'shop' }),
    slice('db-v6', 'db', [ep('fd00:244:2::7', { hostname: 'db-0' })], [{ name: 'pg', port: 5433 }], { namespace: 'shop', addressType: 'IPv6' }),
    service('lonely', { clusterIP: 'None', ports: [{ name: 'x', port: 1 }] }, { namespace: 'shop' }),
    slice('lonely-1', 'lonely', [ep('10.244.3.1', { conditions: { ready: false } })], [{ name: 'x', port: 1 }], { namespace: 'shop' }),
    service('eager', { clusterIP: 'None', publishNotReadyAddresses: true }, { namespace: 'shop' }),
    slice('eager-1', 'eager', [ep('10.244.3.2', { conditions: { ready: false } })], [], { namespace: 'shop' }),
    service('search', { type: 'ExternalName', externalName: 'search.example.com' }),
    service('alias', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    service('single', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }),
    service('noports', { clusterIP: '10.96.0.21' }),
    service('hsingle', { clusterIP: 'None', ports: [{ port: 80 }] }),
    slice('hsingle-1', 'hsingle', [ep('10.244.4.1')], [{ port: 8080 }]),
    service('chain1', { type: 'ExternalName', externalName: 'alias.default.svc.cluster.local.' }),
    service('chain2', { type: 'ExternalName', externalName: 'chain1.default.svc.cluster.local' }),
    service('outchain', { type: 'ExternalName', externalName: 'search.default.svc.cluster.local' }),
    service('loop', { type: 'ExternalName', externalName: 'loop.default.svc.cluster.local' }),
    service('loopa', { type: 'ExternalName', externalName: 'loopb.default.svc.cluster.local' }),
    service('loopb', { type: 'ExternalName', externalName: 'loopa.default.svc.cluster.local' }),
    ...Array.from({ length: 10 }, (_, i) => service(`hop${i}`, { type: 'ExternalName', externalName: `hop${i + 1}.default.svc.cluster.local` })),
    service('hop10', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    // A ClusterIP Service whose endpoints have names and PTR records too; 10.244.1.5 is also behind web.
    service('half', { clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80 }] }),
    slice('half-1', 'half', [ep('10.244.1.5'), ep('10.244.1.6', { conditions: { ready: false } }), ep('10.244.1.7', { hostname: 'first' })], [{ name: 'http', port: 8080 }]),
    service('api', { clusterIP: '10.96.0.31', ports: [{ name: 'http', port: 80 }] }),
    slice('api-1', 'api', [ep('10.244.8.1', { targetRef: { kind: 'Pod', name: 'api-7d9f', namespace: 'default' } })], [{ name: 'http', port: 8080 }]),
    slice('api-6', 'api', [ep('fd00:244:8::1')], [{ name: 'http', port: 8080 }], { addressType: 'IPv6' }),
    service('extip', { type: 'ExternalName', externalName: '192.0.2.55' }),
    service('toextip', { type: 'ExternalName', externalName: 'extip.default.svc.cluster.local' }),
    service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }, { namespace: 'kube-system' }),
  ];
}

function setup(options: Partial<ZoneOptions> = {}, namespaces?: string[]) {
  const store = new Store();
  store.apply(cluster().flatMap((r) => parseObject(r)));
  const map = new ServiceMap(store, { nodeName: 'n1' });
  const index = new RecordIndex('cluster.local', namespaces ? { namespaces } : {});
  index.update(map);
  let synced = true;
  const handler = new ClusterZoneHandler(index, {
    ttl: 5,
    pods: 'disabled',
    reverseCIDRs: ['10.96.0.0/16'],
    nameservers: () => ['10.96.0.53'],
    synced: () => synced,
    resolve: async (name, type) => ({
      rcode: 'NOERROR',
      authoritative: false,
      answers: [{ name, type, class: 'IN', ttl: 300, data: type === 'A' ? '192.0.2.1' : '2001:db8::1' } as ResourceRecord],
      authorities: [],
      additionals: [],
      source: 'forward',
    }),
    ...options,
  });
  return { handler, store, map, index, setSynced: (v: boolean) => (synced = v) };
}

function query(name: string, type: string): DnsQuery {
  return { id: 1, name, lname: name.toLowerCase(), type, qtype: 0, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address: '127.0.0.1', port: 1 } };
}

const line = (r: ResourceRecord) => {
  const d = (r as { data: unknown }).data;
  const data =
    r.type === 'SRV' ? `${(d as any).priority} ${(d as any).weight} ${(d as any).port} ${(d as any).target}` : r.type === 'SOA' ? `${(d as any).mname} ${(d as any).rname}` : Array.isArray(d) ? d.join(' ') : String(d);
  return `${r.name} ${r.type} ${data}`;
};

async function ask(h: ClusterZoneHandler, name: string, type: string): Promise<{ rcode: string; aa: boolean; answer: string[]; ns: string[]; extra: string[] } | 'pass'> {
  const a = await h.handle(query(name, type));
  if (a === 'pass') return 'pass';
  return { rcode: a.rcode, aa: a.authoritative, answer: a.answers.map(line), ns: a.authorities.map(line), extra: a.additionals.map(line) };
}

const soa = ['cluster.local SOA ns.dns.cluster.local hostmaster.cluster.local'];
const nx = { rcode: 'NXDOMAIN', answer: [], ns: soa };
const revSoa = ['96.10.in-addr.arpa SOA ns.dns.cluster.local hostmaster.cluster.local'];
const nodata = { rcode: 'NOERROR', answer: [], ns: soa };

describe('cluster zone answers', () => {
  const { handler } = setup();
  const cases: Array<{ q: [string, string]; want: object | 'pass' }> = [
    { q: ['web.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', aa: true, answer: ['web.default.svc.cluster.local A 10.96.0.10'], ns: [] } },
    { q: ['web.default.svc.cluster.local', 'AAAA'], want: { rcode: 'NOERROR', answer: ['web.default.svc.cluster.local AAAA fd00:96::10'] } },
    { q: ['web.default.svc.cluster.local', 'TXT'], want: nodata },
    { q: ['nope.default.svc.cluster.local', 'A'], want: nx },
    { q: ['web.nope.svc.cluster.local', 'A'], want: nx },
    { q: ['default.svc.cluster.local', 'A'], want: nodata },
    { q: ['nope.svc.cluster.local', 'A'], want: nx },
    { q: ['svc.cluster.local', 'A'], want: nodata },
    {
      q: ['db.shop.svc.cluster.local', 'A'],
      want: { rcode: 'NOERROR', answer: ['db.shop.svc.cluster.local A 10.244.2.7', 'db.shop.svc.cluster.local A 10.244.2.8'] },
    },
    { q: ['db.shop.svc.cluster.local', 'AAAA'], want: { rcode: 'NOERROR', answer: ['db.shop.svc.cluster.local AAAA fd00:244:2::7'] } },
    { q: ['db-0.db.shop.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['db-0.db.shop.svc.cluster.local A 10.244.2.7'] } },
    { q: ['10-244-2-8.db.shop.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['10-244-2-8.db.shop.svc.cluster.local A 10.244.2.8'] } },
    { q: ['10-244-2-9.db.shop.svc.cluster.local', 'A'], want: nx },
    { q: ['lonely.shop.svc.cluster.local', 'A'], want: nx },
    { q: ['eager.shop.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['eager.shop.svc.cluster.local A 10.244.3.2'] } },
    {
      q: ['_http._tcp.web.default.svc.cluster.local', 'SRV'],
      want: { rcode: 'NOERROR', answer: ['_http._tcp.web.default.svc.cluster.local SRV 0 100 80 web.default.svc.cluster.local'], extra: ['web.default.svc.cluster.local A 10.96.0.10', 'web.default.svc.cluster.local AAAA fd00:96::10'] },
    },
    { q: ['_http._udp.web.default.svc.cluster.local', 'SRV'], want: nx },
    // The Service name's SRV answer has every port, unnamed ones too (CoreDNS); no ports at all is NODATA.
    {
      q: ['single.default.svc.cluster.local', 'SRV'],
      want: { rcode: 'NOERROR', answer: ['single.default.svc.cluster.local SRV 0 100 80 single.default.svc.cluster.local'], extra: ['single.default.svc.cluster.local A 10.96.0.20'] },
    },
    { q: ['hsingle.default.svc.cluster.local', 'SRV'], want: { rcode: 'NOERROR', answer: ['hsingle.default.svc.cluster.local SRV 0 100 8080 10-244-4-1.hsingle.default.svc.cluster.local'] } },
    { q: ['noports.default.svc.cluster.local', 'SRV'], want: nodata },
    { q: ['noports.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['noports.default.svc.cluster.local A 10.96.0.21'] } },
    { q: ['_http._tcp.single.default.svc.cluster.local', 'SRV'], want: nx },
    { q: ['_http._tcp.web.default.svc.cluster.local', 'A'], want: nodata },
    {
      q: ['_pg._tcp.db.shop.svc.cluster.local', 'SRV'],
      want: {
        rcode: 'NOERROR',
        // db-0 has an IPv4 and an IPv6 address: one SRV target with both as glue.
        answer: [
          '_pg._tcp.db.shop.svc.cluster.local SRV 0 50 5433 db-0.db.shop.svc.cluster.local',
          '_pg._tcp.db.shop.svc.cluster.local SRV 0 50 5433 10-244-2-8.db.shop.svc.cluster.local',
        ],
        extra: ['db-0.db.shop.svc.cluster.local A 10.244.2.7', 'db-0.db.shop.svc.cluster.local AAAA fd00:244:2::7', '10-244-2-8.db.shop.svc.cluster.local A 10.244.2.8'],
      },
    },
    {
      q: ['dns.kube-system.svc.cluster.local', 'SRV'],
      want: {
        rcode: 'NOERROR',
        // 53/UDP and 53/TCP: one record, not the same record twice (RFC 2181 §5; found by an audit).
        answer: ['dns.kube-system.svc.cluster.local SRV 0 100 53 dns.kube-system.svc.cluster.local'],
        extra: ['dns.kube-system.svc.cluster.local A 10.96.0.53'],
      },
    },
    { q: ['_dns._udp.dns.kube-system.svc.cluster.local', 'SRV'], want: { rcode: 'NOERROR', answer: ['_dns._udp.dns.kube-system.svc.cluster.local SRV 0 100 53 dns.kube-system.svc.cluster.local'] } },
    { q: ['_dns-tcp._tcp.dns.kube-system.svc.cluster.local', 'SRV'], want: { rcode: 'NOERROR', answer: ['_dns-tcp._tcp.dns.kube-system.svc.cluster.local SRV 0 100 53 dns.kube-system.svc.cluster.local'] } },
    { q: ['search.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['search.default.svc.cluster.local CNAME search.example.com', 'search.example.com A 192.0.2.1'] } },
    { q: ['search.default.svc.cluster.local', 'TXT'], want: { rcode: 'NOERROR', answer: ['search.default.svc.cluster.local CNAME search.example.com'] } },
    {
      q: ['alias.default.svc.cluster.local', 'A'],
      want: { rcode: 'NOERROR', answer: ['alias.default.svc.cluster.local CNAME web.default.svc.cluster.local', 'web.default.svc.cluster.local A 10.96.0.10'] },
    },
    {
      q: ['chain2.default.svc.cluster.local', 'A'],
      want: {
        rcode: 'NOERROR',
        answer: [
          'chain2.default.svc.cluster.local CNAME chain1.default.svc.cluster.local',
          'chain1.default.svc.cluster.local CNAME alias.default.svc.cluster.local',
          'alias.default.svc.cluster.local CNAME web.default.svc.cluster.local',
          'web.default.svc.cluster.local A 10.96.0.10',
        ],
      },
    },
    {
      q: ['outchain.default.svc.cluster.local', 'AAAA'],
      want: {
        rcode: 'NOERROR',
        answer: ['outchain.default.svc.cluster.local CNAME search.default.svc.cluster.local', 'search.default.svc.cluster.local CNAME search.example.com', 'search.example.com AAAA 2001:db8::1'],
      },
    },
    // Every type follows the chain inside the zone (RFC 1034 4.3.2; found by an audit: other types than A and AAAA
    // got the first CNAME alone), ending with the target's records or its negative answer and SOA.
    {
      q: ['chain2.default.svc.cluster.local', 'TXT'],
      want: {
        rcode: 'NOERROR',
        answer: [
          'chain2.default.svc.cluster.local CNAME chain1.default.svc.cluster.local',
          'chain1.default.svc.cluster.local CNAME alias.default.svc.cluster.local',
          'alias.default.svc.cluster.local CNAME web.default.svc.cluster.local',
        ],
        ns: soa,
      },
    },
    {
      q: ['alias.default.svc.cluster.local', 'SRV'],
      want: {
        rcode: 'NOERROR',
        answer: ['alias.default.svc.cluster.local CNAME web.default.svc.cluster.local', 'web.default.svc.cluster.local SRV 0 50 80 web.default.svc.cluster.local', 'web.default.svc.cluster.local SRV 0 50 9090 web.default.svc.cluster.local'],
        extra: ['web.default.svc.cluster.local A 10.96.0.10', 'web.default.svc.cluster.local AAAA fd00:96::10'],
      },
    },
    { q: ['outchain.default.svc.cluster.local', 'MX'], want: { rcode: 'NOERROR', answer: ['outchain.default.svc.cluster.local CNAME search.default.svc.cluster.local', 'search.default.svc.cluster.local CNAME search.example.com'], ns: [] } },
    { q: ['toextip.default.svc.cluster.local', 'TXT'], want: { rcode: 'NXDOMAIN', answer: ['toextip.default.svc.cluster.local CNAME extip.default.svc.cluster.local'], ns: soa } },
    // A CNAME (or ANY) question matches the CNAME itself: not followed.
    { q: ['chain2.default.svc.cluster.local', 'CNAME'], want: { rcode: 'NOERROR', answer: ['chain2.default.svc.cluster.local CNAME chain1.default.svc.cluster.local'], ns: [] } },
    { q: ['chain2.default.svc.cluster.local', 'ANY'], want: { rcode: 'NOERROR', answer: ['chain2.default.svc.cluster.local CNAME chain1.default.svc.cluster.local'], ns: [] } },
    // Loops: the chain stops before the CNAME that would close it; a self-reference has no CNAME to give.
    { q: ['loop.default.svc.cluster.local', 'A'], want: nodata },
    // ...but a CNAME or ANY question gets the record itself, as CoreDNS's CNAME answer (found by an audit).
    { q: ['loop.default.svc.cluster.local', 'CNAME'], want: { rcode: 'NOERROR', answer: ['loop.default.svc.cluster.local CNAME loop.default.svc.cluster.local'], ns: [] } },
    { q: ['loop.default.svc.cluster.local', 'ANY'], want: { rcode: 'NOERROR', answer: ['loop.default.svc.cluster.local CNAME loop.default.svc.cluster.local'], ns: [] } },
    { q: ['loopa.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['loopa.default.svc.cluster.local CNAME loopb.default.svc.cluster.local'] } },
    {
      q: ['hop0.default.svc.cluster.local', 'A'],
      want: { rcode: 'NOERROR', answer: Array.from({ length: 8 }, (_, i) => `hop${i}.default.svc.cluster.local CNAME hop${i + 1}.default.svc.cluster.local`) },
    },
    { q: ['10.0.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NOERROR', answer: ['10.0.96.10.in-addr.arpa PTR web.default.svc.cluster.local'] } },
    // Endpoints of ClusterIP Services (CoreDNS findServices and serviceRecordForIP): named by hostname, else the
    // dashed address; ready ones only; the Service's own name keeps its cluster IP; an address behind two Services
    // has both names.
    { q: ['10-244-1-5.web.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', aa: true, answer: ['10-244-1-5.web.default.svc.cluster.local A 10.244.1.5'] } },
    { q: ['10-244-1-5.web.default.svc.cluster.local', 'AAAA'], want: nodata },
    { q: ['first.half.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['first.half.default.svc.cluster.local A 10.244.1.7'] } },
    { q: ['10-244-1-7.half.default.svc.cluster.local', 'A'], want: nx },
    { q: ['10-244-1-6.half.default.svc.cluster.local', 'A'], want: nx },
    { q: ['10-244-1-9.web.default.svc.cluster.local', 'A'], want: nx },
    { q: ['half.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['half.default.svc.cluster.local A 10.96.0.30'] } },
    { q: ['api-7d9f.api.default.svc.cluster.local', 'A'], want: nx },
    { q: ['10-244-8-1.api.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['10-244-8-1.api.default.svc.cluster.local A 10.244.8.1'] } },
    { q: ['fd00-244-8--1.api.default.svc.cluster.local', 'AAAA'], want: { rcode: 'NOERROR', answer: ['fd00-244-8--1.api.default.svc.cluster.local AAAA fd00:244:8::1'] } },
    {
      q: ['5.1.244.10.in-addr.arpa', 'PTR'],
      want: { rcode: 'NOERROR', aa: true, answer: ['5.1.244.10.in-addr.arpa PTR 10-244-1-5.half.default.svc.cluster.local', '5.1.244.10.in-addr.arpa PTR 10-244-1-5.web.default.svc.cluster.local'] },
    },
    { q: ['7.1.244.10.in-addr.arpa', 'PTR'], want: { rcode: 'NOERROR', answer: ['7.1.244.10.in-addr.arpa PTR first.half.default.svc.cluster.local'] } },
    { q: ['6.1.244.10.in-addr.arpa', 'PTR'], want: 'pass' },
    {
      q: ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa', 'PTR'],
      want: { rcode: 'NOERROR', answer: ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa PTR fd00-244-8--1.api.default.svc.cluster.local'] },
    },
    { q: ['_http._tcp.half.default.svc.cluster.local', 'SRV'], want: { rcode: 'NOERROR', answer: ['_http._tcp.half.default.svc.cluster.local SRV 0 100 80 half.default.svc.cluster.local'] } },
    // An ExternalName holding an IP is not a CNAME: CoreDNS skips it (HostType() != TypeCNAME), so NXDOMAIN, and
    // a chain reaching it ends there without asking anyone for the IP as a name.
    { q: ['extip.default.svc.cluster.local', 'A'], want: nx },
    { q: ['extip.default.svc.cluster.local', 'CNAME'], want: nx },
    { q: ['toextip.default.svc.cluster.local', 'A'], want: { rcode: 'NXDOMAIN', answer: ['toextip.default.svc.cluster.local CNAME extip.default.svc.cluster.local'] } },
    { q: ['7.2.244.10.in-addr.arpa', 'PTR'], want: { rcode: 'NOERROR', answer: ['7.2.244.10.in-addr.arpa PTR db-0.db.shop.svc.cluster.local'] } },
    // --reverse-cidr 10.96.0.0/16 is the zone 96.10.in-addr.arpa: its negative answers carry its own SOA.
    { q: ['99.0.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NXDOMAIN', aa: true, answer: [], ns: revSoa } },
    { q: ['10.0.96.10.in-addr.arpa', 'A'], want: { rcode: 'NOERROR', answer: [], ns: revSoa } },
    { q: ['96.10.in-addr.arpa', 'SOA'], want: { rcode: 'NOERROR', aa: true, answer: revSoa, ns: [] } },
    // A reverse zone's apex names our nameserver, as the cluster zone's does (found by an audit: NODATA).
    { q: ['96.10.in-addr.arpa', 'NS'], want: { rcode: 'NOERROR', aa: true, answer: ['96.10.in-addr.arpa NS ns.dns.cluster.local'], ns: [], extra: ['ns.dns.cluster.local A 10.96.0.53'] } },
    { q: ['0.96.10.in-addr.arpa', 'NS'], want: { rcode: 'NOERROR', answer: [], ns: revSoa } },
    { q: ['0.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NOERROR', answer: [], ns: revSoa } },
    { q: ['x.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NXDOMAIN', ns: revSoa } },
    { q: ['1.99.0.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NXDOMAIN', ns: revSoa } },
    { q: ['10.in-addr.arpa', 'SOA'], want: 'pass' },
    // Outside --reverse-cidr, the SOA of the reverse tree CoreDNS serves by default, not the cluster zone's (found by
    // an audit).
    { q: ['7.2.244.10.in-addr.arpa', 'TXT'], want: { rcode: 'NOERROR', answer: [], ns: ['in-addr.arpa SOA ns.dns.cluster.local hostmaster.cluster.local'] } },
    { q: ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa', 'A'], want: { rcode: 'NOERROR', answer: [], ns: ['ip6.arpa SOA ns.dns.cluster.local hostmaster.cluster.local'] } },
    { q: ['1.1.168.192.in-addr.arpa', 'PTR'], want: 'pass' },
    { q: ['dns-version.cluster.local', 'TXT'], want: { rcode: 'NOERROR', answer: ['dns-version.cluster.local TXT 1.1.0'] } },
    { q: ['cluster.local', 'SOA'], want: { rcode: 'NOERROR', answer: soa } },
    { q: ['cluster.local', 'NS'], want: { rcode: 'NOERROR', answer: ['cluster.local NS ns.dns.cluster.local'], extra: ['ns.dns.cluster.local A 10.96.0.53'] } },
    { q: ['ns.dns.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['ns.dns.cluster.local A 10.96.0.53'] } },
    { q: ['10-244-1-5.default.pod.cluster.local', 'A'], want: nx },
    { q: ['whatever.cluster.local', 'A'], want: nx },
    { q: ['example.com', 'A'], want: 'pass' },
  ];
  for (const c of cases) {
    it(`${c.q[0]} ${c.q[1]}`, async () => {
      const got = await ask(handler, ...c.q);
      if (c.want === 'pass') expect(got).toBe('pass');
      else expect(got).toMatchObject(c.want);
    });
  }
});

describe('cluster zone behaviour', () => {
  it('refuses zone transfers (AXFR, IXFR) of the zone and of its reverse zones, and passes others on', async () => {
    const { handler } = setup();
    for (const [type, qtype] of [['AXFR', 252], ['IXFR', 251]] as const) {
      for (const name of ['cluster.local', 'web.default.svc.cluster.local', '96.10.in-addr.arpa']) {
        expect(await handler.handle({ ...query(name, type), qtype })).toMatchObject({ rcode: 'REFUSED', answers: [] });
      }
      expect(await handler.handle({ ...query('example.com', type), qtype })).toBe('pass');
    }
  });

  it('answers class ANY from the zone, refuses our names in other classes and passes other names on', async () => {
    const { handler } = setup();
    const inClass = (name: string, type: string, qclass: number) => handler.handle({ ...query(name, type), qclass });
    const web = (await inClass('web.default.svc.cluster.local', 'A', 1)) as DnsAnswer;
    expect(await inClass('web.default.svc.cluster.local', 'A', 255)).toBe(web);
    for (const qclass of [3, 4, 254]) {
      expect(await inClass('web.default.svc.cluster.local', 'A', qclass)).toMatchObject({ rcode: 'REFUSED', answers: [] });
      expect(await inClass('cluster.local', 'SOA', qclass)).toMatchObject({ rcode: 'REFUSED' });
      expect(await inClass('99.0.96.10.in-addr.arpa', 'PTR', qclass)).toMatchObject({ rcode: 'REFUSED' });
      expect(await inClass('7.2.244.10.in-addr.arpa', 'PTR', qclass)).toMatchObject({ rcode: 'REFUSED' });
      expect(await inClass('version.bind', 'TXT', qclass)).toBe('pass');
      expect(await inClass('1.1.168.192.in-addr.arpa', 'PTR', qclass)).toBe('pass');
    }
  });

  it('names endpoints after their Pod with endpointPodNames, as CoreDNS endpoint_pod_names (hostname first)', async () => {
    const store = new Store();
    store.apply(cluster().flatMap((r) => parseObject(r)));
    const map = new ServiceMap(store, { nodeName: 'n1' });
    const index = new RecordIndex('cluster.local', { endpointPodNames: true });
    index.update(map);
    const handler = new ClusterZoneHandler(index, { ttl: 5, pods: 'disabled', reverseCIDRs: [], nameservers: () => [], synced: () => true });
    const cases: Array<[string, string, object]> = [
      ['api-7d9f.api.default.svc.cluster.local', 'A', { rcode: 'NOERROR', answer: ['api-7d9f.api.default.svc.cluster.local A 10.244.8.1'] }],
      ['10-244-8-1.api.default.svc.cluster.local', 'A', nx],
      ['1.8.244.10.in-addr.arpa', 'PTR', { answer: ['1.8.244.10.in-addr.arpa PTR api-7d9f.api.default.svc.cluster.local'] }],
      ['first.half.default.svc.cluster.local', 'A', { answer: ['first.half.default.svc.cluster.local A 10.244.1.7'] }],
      ['fd00-244-8--1.api.default.svc.cluster.local', 'AAAA', { answer: ['fd00-244-8--1.api.default.svc.cluster.local AAAA fd00:244:8::1'] }],
    ];
    for (const [name, type, want] of cases) expect(await ask(handler, name, type), `${name} ${type}`).toMatchObject(want);
  });

  it('answers pod names from the name alone with --pods insecure', async () => {
    const { handler } = setup({ pods: 'insecure' });
    expect(await ask(handler, '10-244-1-5.default.pod.cluster.local', 'A')).toMatchObject({ rcode: 'NOERROR', answer: ['10-244-1-5.default.pod.cluster.local A 10.244.1.5'] });
    expect(await ask(handler, 'fd00--5.default.pod.cluster.local', 'AAAA')).toMatchObject({ answer: ['fd00--5.default.pod.cluster.local AAAA fd00::5'] });
    // Not an address as Go's net.ParseIP reads it (CoreDNS): leading zeros, an octet past 255.
    for (const label of ['010-244-001-005', '10-244-1-05', '10-244-1-256']) expect(await ask(handler, `${label}.default.pod.cluster.local`, 'A')).toMatchObject(nx);
  });

  describe('pod names exist only in namespaces that exist, as CoreDNS findPods (--pods insecure)', () => {
    const { handler, store, index } = setup({ pods: 'insecure' });
    // `empty` has a Namespace object and nothing in it; `shop` has Services; `nope` has neither.
    store.apply(parseObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'empty' } }));
    followNamespaces(store, index);
    const pod = (ns: string) => ({ rcode: 'NOERROR', answer: [`10-244-1-5.${ns}.pod.cluster.local A 10.244.1.5`] });
    const rows: Array<[string, string, object]> = [
      ['10-244-1-5.shop.pod.cluster.local', 'A', pod('shop')],
      ['10-244-1-5.empty.pod.cluster.local', 'A', pod('empty')],
      ['10-244-1-5.nope.pod.cluster.local', 'A', nx],
      ['10-244-1-5.nope.pod.cluster.local', 'AAAA', nx],
      ['fd00--5.nope.pod.cluster.local', 'AAAA', nx],
      ['shop.pod.cluster.local', 'A', nodata],
      ['empty.pod.cluster.local', 'A', nodata],
      ['nope.pod.cluster.local', 'A', nx],
      // `*` and `any` were wildcards in CoreDNS before 1.9; no namespace has that name now.
      ['10-244-1-5.any.pod.cluster.local', 'A', nx],
      ['empty.svc.cluster.local', 'A', nodata],
      ['pod.cluster.local', 'A', nodata],
    ];
    for (const [name, type, want] of rows) it(`${name} ${type}`, async () => expect(await ask(handler, name, type)).toMatchObject(want));

    it('follows Namespaces as they come and go', async () => {
      store.apply(parseObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'late' } }));
      expect(await ask(handler, '10-244-1-5.late.pod.cluster.local', 'A')).toMatchObject(pod('late'));
      store.apply([{ kind: 'Namespace', key: 'late', object: undefined }]);
      expect(await ask(handler, '10-244-1-5.late.pod.cluster.local', 'A')).toMatchObject(nx);
      // A namespace whose object is gone still has its Services until they are deleted too.
      store.apply(parseObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }));
      store.apply([{ kind: 'Namespace', key: 'shop', object: undefined }]);
      expect(await ask(handler, '10-244-1-5.shop.pod.cluster.local', 'A')).toMatchObject(pod('shop'));
    });
  });

  it('keeps no pod answer: a flood of distinct pod names leaves the memo empty', async () => {
    const { handler, index } = setup({ pods: 'insecure' });
    for (let i = 0; i < 1000; i++) index.setNamespace(`ns${i}`, true);
    for (let i = 0; i < 20_000; i++) {
      const a = await ask(handler, `10-${i >> 16}-${(i >> 8) & 255}-${i & 255}.ns${i % 1000}.pod.cluster.local`, 'A');
      expect(a).toMatchObject({ rcode: 'NOERROR' });
    }
    expect(handler.memoized).toBe(0);
  });

  it('memoizes at most maxMemoized answers, starting again empty when full', async () => {
    const { handler } = setup({ maxMemoized: 3 });
    const names = ['web.default', 'db.shop', 'eager.shop', 'dns.kube-system'].map((n) => `${n}.svc.cluster.local`);
    for (const n of [...names, ...names]) {
      await handler.handle(query(n, 'A'));
      expect(handler.memoized).toBeLessThanOrEqual(3);
    }
    expect(await ask(handler, names[0]!, 'A')).toMatchObject({ answer: ['web.default.svc.cluster.local A 10.96.0.10'] });
  });

  it('SERVFAILs zone queries until the first full view is loaded', async () => {
    const s = setup();
    s.setSynced(false);
    expect(await ask(s.handler, 'web.default.svc.cluster.local', 'A')).toMatchObject({ rcode: 'SERVFAIL' });
    expect(await ask(s.handler, '99.0.96.10.in-addr.arpa', 'PTR')).toMatchObject({ rcode: 'SERVFAIL' });
    expect(await ask(s.handler, 'example.com', 'A')).toBe('pass');
    s.setSynced(true);
    expect(await ask(s.handler, 'web.default.svc.cluster.local', 'A')).toMatchObject({ rcode: 'NOERROR' });
  });

  it('hands back the same answer object until the index changes, then a new one', async () => {
    const s = setup();
    const q = query('web.default.svc.cluster.local', 'A');
    const a1 = (await s.handler.handle(q)) as DnsAnswer;
    expect(await s.handler.handle({ ...q, name: 'WEB.default.svc.cluster.local' })).toBe(a1);
    s.store.apply(parseObject(service('web', { clusterIPs: ['10.96.0.11'], ports: [{ name: 'http', port: 80 }] })));
    s.index.update(s.map, ['default/web']);
    const a2 = (await s.handler.handle(q)) as DnsAnswer;
    expect(a2).not.toBe(a1);
    expect(a2.answers.map(line)).toEqual(['web.default.svc.cluster.local A 10.96.0.11']);
    expect(await ask(s.handler, '10.0.96.10.in-addr.arpa', 'PTR')).toMatchObject({ rcode: 'NXDOMAIN' });
  });

  it('caps the SOA TTL at 300 s while MINIMUM is the TTL given, as CoreDNS', async () => {
    const cases: Array<[number, string, string, { ttl: number; minimum: number }]> = [
      [30, 'x.default.svc.cluster.local', 'A', { ttl: 30, minimum: 30 }],
      [300, 'x.default.svc.cluster.local', 'A', { ttl: 300, minimum: 300 }],
      [3600, 'x.default.svc.cluster.local', 'A', { ttl: 300, minimum: 3600 }],
      [3600, 'cluster.local', 'SOA', { ttl: 300, minimum: 3600 }],
      [3600, '99.0.96.10.in-addr.arpa', 'PTR', { ttl: 300, minimum: 3600 }],
    ];
    for (const [ttl, name, type, want] of cases) {
      const a = (await setup({ ttl }).handler.handle(query(name, type))) as DnsAnswer;
      const soaRecord = (a.answers[0] ?? a.authorities[0]) as { ttl: number; data: { minimum: number } };
      expect({ ttl: soaRecord.ttl, minimum: soaRecord.data.minimum }, `--ttl ${ttl} ${name} ${type}`).toEqual(want);
    }
  });

  it('uses the TTL given, in answers and as the SOA minimum', async () => {
    const { handler } = setup({ ttl: 30 });
    const a = (await handler.handle(query('web.default.svc.cluster.local', 'A'))) as DnsAnswer;
    expect((a.answers[0] as { ttl: number }).ttl).toBe(30);
    const n = (await handler.handle(query('x.default.svc.cluster.local', 'A'))) as DnsAnswer;
    expect((n.authorities[0] as { data: { minimum: number } }).data.minimum).toBe(30);
  });
});

describe('ignore empty_service', () => {
  const { handler } = setup({ ignoreEmptyService: true });
  const cases: Array<{ q: [string, string]; want: object }> = [
    // No endpoint at all: NXDOMAIN, its port names too, so that a resolver tries its next search domain.
    { q: ['single.default.svc.cluster.local', 'A'], want: nx },
    { q: ['single.default.svc.cluster.local', 'SRV'], want: nx },
    { q: ['noports.default.svc.cluster.local', 'A'], want: nx },
    // A published endpoint: answered as before; a headless Service and an ExternalName are not concerned.
    { q: ['web.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['web.default.svc.cluster.local A 10.96.0.10'] } },
    { q: ['_http._tcp.web.default.svc.cluster.local', 'SRV'], want: { rcode: 'NOERROR' } },
    { q: ['db.shop.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['db.shop.svc.cluster.local A 10.244.2.7', 'db.shop.svc.cluster.local A 10.244.2.8'] } },
    { q: ['search.default.svc.cluster.local', 'CNAME'], want: { rcode: 'NOERROR', answer: ['search.default.svc.cluster.local CNAME search.example.com'] } },
  ];
  for (const { q, want } of cases) it(`${q[0]} ${q[1]}`, async () => expect(await ask(handler, q[0], q[1])).toMatchObject(want));

  it('answers those Services as before without it', async () => {
    const { handler: plain } = setup();
    expect(await ask(plain, 'single.default.svc.cluster.local', 'A')).toMatchObject({ rcode: 'NOERROR', answer: ['single.default.svc.cluster.local A 10.96.0.20'] });
  });
});

describe('namespaces', () => {
  // Only default's names: shop's and kube-system's are as if they did not exist.
  const { handler } = setup({}, ['default']);
  const cases: Array<{ q: [string, string]; want: object | 'pass' }> = [
    { q: ['web.default.svc.cluster.local', 'A'], want: { rcode: 'NOERROR', answer: ['web.default.svc.cluster.local A 10.96.0.10'] } },
    { q: ['db.shop.svc.cluster.local', 'A'], want: nx },
    { q: ['db-0.db.shop.svc.cluster.local', 'A'], want: nx },
    { q: ['_pg._tcp.db.shop.svc.cluster.local', 'SRV'], want: nx },
    { q: ['shop.svc.cluster.local', 'A'], want: nx },
    { q: ['default.svc.cluster.local', 'A'], want: nodata },
    { q: ['10.0.96.10.in-addr.arpa', 'PTR'], want: { rcode: 'NOERROR', answer: ['10.0.96.10.in-addr.arpa PTR web.default.svc.cluster.local'] } },
    // db-0's address is an endpoint of shop's db only: no name here, so it goes on as an unknown address does.
    { q: ['7.2.244.10.in-addr.arpa', 'PTR'], want: 'pass' },
  ];
  for (const { q, want } of cases) it(`${q[0]} ${q[1]}`, async () => (want === 'pass' ? expect(await ask(handler, q[0], q[1])).toBe('pass') : expect(await ask(handler, q[0], q[1])).toMatchObject(want)));
});

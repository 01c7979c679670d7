// The external zone's answers (--external-zone, CoreDNS k8s_external) as a table: query name and type in, rcode
// and records out, from Services with external IPs and load-balancer ingress IPs.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import type { DnsQuery, ResourceRecord } from '../../../dns/types.ts';
import { ExternalZoneHandler } from '../../../dns/zone/external.ts';
import { followNamespaces, RecordIndex } from '../../../dns/zone/records.ts';
import { service } from '../../fixtures/objects.ts';

function setup() {
  const store = new Store();
  store.apply(
    [
      service('shop', { type: 'LoadBalancer', clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10', ipMode: 'Proxy' }, { hostname: 'lb.example.net' }] } } }),
      service('legacy', { clusterIP: '10.96.1.2', externalIPs: ['198.51.100.7'], ports: [{ port: 8080 }] }, { namespace: 'apps' }),
      service('inside', { clusterIP: '10.96.1.3', ports: [{ name: 'http', port: 80 }] }),
      service('dns', { type: 'LoadBalancer', clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }, { namespace: 'kube-system', status: { loadBalancer: { ingress: [{ ip: '203.0.113.53' }] } } }),
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } },
    ].flatMap((o) => parseObject(o)),
  );
  store.markSynced('Service');
  const map = new ServiceMap(store, { nodeName: 'n1' });
  const index = new RecordIndex('cluster.local');
  index.update(map);
  followNamespaces(store, index);
  let synced = true;
  const handler = new ExternalZoneHandler(index, { zones: ['example.org'], ttl: 5, apex: 'dns', nameservers: () => index.service('kube-system', 'dns')?.externalIPs ?? [], synced: () => synced });
  return { handler, setSynced: (v: boolean) => (synced = v) };
}

const query = (name: string, type: string): DnsQuery => ({ id: 1, name, lname: name.toLowerCase(), type, qtype: 0, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address: '127.0.0.1', port: 1 } });
const line = (r: ResourceRecord) => {
  const d = (r as { data: unknown }).data as Record<string, unknown> | string;
  const data = r.type === 'SRV' ? `${(d as any).priority} ${(d as any).weight} ${(d as any).port} ${(d as any).target}` : r.type === 'SOA' ? `${(d as any).mname} ${(d as any).rname}` : String(d);
  return `${r.name} ${(r as { ttl?: number }).ttl} ${r.type} ${data}`;
};
function ask(h: ExternalZoneHandler, name: string, type: string) {
  const a = h.handle(query(name, type));
  if (a === 'pass') return 'pass';
  return { rcode: a.rcode, aa: a.authoritative, answer: a.answers.map(line), ns: a.authorities.map(line), extra: a.additionals.map(line) };
}

const soa = ['example.org 5 SOA ns1.dns.example.org hostmaster.example.org'];
const nx = { rcode: 'NXDOMAIN', aa: true, answer: [], ns: soa, extra: [] };
const nodata = { rcode: 'NOERROR', aa: true, answer: [], ns: soa, extra: [] };

describe('external zone answers', () => {
  const { handler } = setup();
  const cases: Array<[string, string, object | 'pass']> = [
    // Load-balancer ingress IPs, whatever their ipMode; a hostname ingress has no address.
    ['shop.default.example.org', 'A', { rcode: 'NOERROR', aa: true, answer: ['shop.default.example.org 5 A 203.0.113.10'], ns: [], extra: [] }],
    ['SHOP.Default.example.org', 'AAAA', { rcode: 'NOERROR', aa: true, answer: ['shop.default.example.org 5 AAAA 2001:db8::10'], ns: [], extra: [] }],
    ['shop.default.example.org', 'TXT', nodata],
    ['legacy.apps.example.org', 'A', { rcode: 'NOERROR', aa: true, answer: ['legacy.apps.example.org 5 A 198.51.100.7'], ns: [], extra: [] }],
    ['legacy.apps.example.org', 'AAAA', nodata],
    // A Service without external addresses is not there, nor is one that does not exist.
    ['inside.default.example.org', 'A', nx],
    ['nothing.default.example.org', 'A', nx],
    ['default.example.org', 'A', nodata],
    ['nowhere.example.org', 'A', nx],
    // SRV: every port at the Service's name, one at its port's name; the targets' addresses as glue.
    [
      'shop.default.example.org',
      'SRV',
      { rcode: 'NOERROR', aa: true, answer: ['shop.default.example.org 5 SRV 0 50 80 shop.default.example.org', 'shop.default.example.org 5 SRV 0 50 443 shop.default.example.org'], ns: [], extra: ['shop.default.example.org 5 A 203.0.113.10', 'shop.default.example.org 5 AAAA 2001:db8::10'] },
    ],
    [
      '_https._tcp.shop.default.example.org',
      'SRV',
      { rcode: 'NOERROR', aa: true, answer: ['_https._tcp.shop.default.example.org 5 SRV 0 100 443 shop.default.example.org'], ns: [], extra: ['shop.default.example.org 5 A 203.0.113.10', 'shop.default.example.org 5 AAAA 2001:db8::10'] },
    ],
    ['_https._udp.shop.default.example.org', 'SRV', nx],
    ['_https._tcp.shop.default.example.org', 'A', nodata],
    ['a.b.shop.default.example.org', 'A', nx],
    // The apex: its SOA and NS, the nameserver's address that of this DNS server's Service.
    ['example.org', 'SOA', { rcode: 'NOERROR', aa: true, answer: soa, ns: [], extra: [] }],
    ['example.org', 'NS', { rcode: 'NOERROR', aa: true, answer: ['example.org 5 NS ns1.dns.example.org'], ns: [], extra: ['ns1.dns.example.org 5 A 203.0.113.53'] }],
    ['example.org', 'A', nodata],
    ['ns1.dns.example.org', 'A', { rcode: 'NOERROR', aa: true, answer: ['ns1.dns.example.org 5 A 203.0.113.53'], ns: [], extra: [] }],
    ['dns.example.org', 'A', nodata],
    ['ns2.dns.example.org', 'A', nx],
    // Other zones pass on.
    ['shop.default.svc.cluster.local', 'A', 'pass'],
    ['example.com', 'A', 'pass'],
  ];
  for (const [name, type, want] of cases) it(`${name} ${type}`, () => expect(ask(handler, name, type)).toEqual(want));

  it('answers SERVFAIL until the first full view is loaded, as the cluster zone does', () => {
    const { handler: h, setSynced } = setup();
    setSynced(false);
    expect(ask(h, 'shop.default.example.org', 'A')).toMatchObject({ rcode: 'SERVFAIL', aa: false });
    expect(h.version()).toBe(-1);
    setSynced(true);
    expect(ask(h, 'shop.default.example.org', 'A')).toMatchObject({ rcode: 'NOERROR' });
  });
});

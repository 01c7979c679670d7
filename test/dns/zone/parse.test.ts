import { describe, expect, it } from 'vitest';
import { dashedIP, parseReverseName, parseZoneName, podLabelIP, reverseName, reversePlace, reverseZones } from '../../../dns/zone/parse.ts';
import { ReverseZones } from '../../../dns/zone/reverse.ts';

describe('parseZoneName', () => {
  const z = 'cluster.local';
  const cases: Array<[string, ReturnType<typeof parseZoneName>]> = [
    ['cluster.local', { kind: 'apex' }],
    ['dns-version.cluster.local', { kind: 'dns-version' }],
    ['ns.dns.cluster.local', { kind: 'nameserver' }],
    ['svc.cluster.local', { kind: 'svc-root' }],
    ['default.svc.cluster.local', { kind: 'namespace', namespace: 'default' }],
    ['web.default.svc.cluster.local', { kind: 'service', namespace: 'default', service: 'web' }],
    ['db-0.db.shop.svc.cluster.local', { kind: 'endpoint', namespace: 'shop', service: 'db', endpoint: 'db-0' }],
    ['_http._tcp.web.default.svc.cluster.local', { kind: 'srv', namespace: 'default', service: 'web', port: 'http', protocol: 'tcp' }],
    ['http.tcp.web.default.svc.cluster.local', { kind: 'none' }],
    ['a.b.c.d.e.svc.cluster.local', { kind: 'none' }],
    ['pod.cluster.local', { kind: 'pod-root' }],
    ['default.pod.cluster.local', { kind: 'pod-namespace', namespace: 'default' }],
    ['10-244-1-5.default.pod.cluster.local', { kind: 'pod', namespace: 'default', address: '10-244-1-5' }],
    ['other.cluster.local', { kind: 'none' }],
    ['example.com', undefined],
    ['notcluster.local', undefined],
    // An escaped dot is inside a label: `x.cluster` and `local` are not in cluster.local (found by an audit).
    ['x\\.cluster.local', undefined],
  ];
  for (const [name, want] of cases) it(name, () => expect(parseZoneName(name, z)).toEqual(want));
});

describe('addresses in names', () => {
  const pods: Array<[string, string | undefined]> = [
    ['10-244-1-5', '10.244.1.5'],
    ['10-244-1-256', undefined],
    // Leading zeros: Go's net.ParseIP (CoreDNS) rejects them; a lone 0 is an octet.
    ['010-244-001-005', undefined],
    ['10-244-1-05', undefined],
    ['10-0-0-0', '10.0.0.0'],
    ['fd00--1', 'fd00::1'],
    ['5678-abcd--1', '5678:abcd::1'],
    ['not-an-ip', undefined],
  ];
  for (const [label, ip] of pods) it(`pod label ${label}`, () => expect(podLabelIP(label)).toBe(ip));
  it('dashes addresses as the spec shows', () => {
    expect(dashedIP('172.0.0.2')).toBe('172-0-0-2');
    expect(dashedIP('5678:abcd::1')).toBe('5678-abcd--1');
  });
  const reverse: Array<[string, string | undefined]> = [
    ['10.0.96.10.in-addr.arpa', '10.96.0.10'],
    ['0.96.10.in-addr.arpa', undefined],
    ['300.0.96.10.in-addr.arpa', undefined],
    [`1.${'0.'.repeat(31)}ip6.arpa`, '::1'],
    [`${'0.'.repeat(31)}1.ip6.arpa`, '1000::'],
    [reverseName('fd00:96::10'), 'fd00:96::10'],
    [reverseName('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'],
  ];
  for (const [name, ip] of reverse) it(`reverse ${name.slice(0, 40)}`, () => expect(parseReverseName(name)?.ip).toBe(ip));
  it('builds reverse names', () => {
    expect(reverseName('10.96.0.10')).toBe('10.0.96.10.in-addr.arpa');
    expect(reverseName('fd00::1')).toBe(`1.${'0.'.repeat(27)}0.0.d.f.ip6.arpa`);
  });
});

describe('reverse zones of CIDRs (octet and nibble aligned, as CoreDNS cuts them)', () => {
  const nibbles = (hex: string) => hex.split('').reverse().join('.');
  const cases: Array<[string, string[]]> = [
    ['10.96.0.0/16', ['96.10.in-addr.arpa']],
    ['10.0.0.0/8', ['10.in-addr.arpa']],
    ['10.96.0.0/12', Array.from({ length: 16 }, (_, i) => `${96 + i}.10.in-addr.arpa`)],
    ['10.96.0.0/20', Array.from({ length: 16 }, (_, i) => `${i}.96.10.in-addr.arpa`)],
    ['192.168.1.0/24', ['1.168.192.in-addr.arpa']],
    ['0.0.0.0/0', ['in-addr.arpa']],
    ['fd00:96::/64', [`${nibbles('fd00009600000000')}.ip6.arpa`]],
    ['fd00::/62', [0, 1, 2, 3].map((i) => `${nibbles(`fd0000000000000${i}`)}.ip6.arpa`)],
  ];
  it.each(cases)('%s', (cidr, want) => expect(reverseZones(cidr)).toEqual(want));

  const zones = new ReverseZones(['10.96.0.0/12', 'fd00:96::/64']);
  const zoneOf: Array<[string, string | undefined]> = [
    ['1.0.100.10.in-addr.arpa', '100.10.in-addr.arpa'],
    ['96.10.in-addr.arpa', '96.10.in-addr.arpa'],
    ['0.96.10.in-addr.arpa', '96.10.in-addr.arpa'],
    ['10.in-addr.arpa', undefined],
    ['1.0.112.10.in-addr.arpa', undefined],
    [`1.${'0.'.repeat(15)}${nibbles('fd00009600000000')}.ip6.arpa`, `${nibbles('fd00009600000000')}.ip6.arpa`],
    ['web.default.svc.cluster.local', undefined],
  ];
  it.each(zoneOf)('zone of %s', (name, want) => expect(zones.zoneOf(name)).toBe(want));

  const places: Array<[string, string, ReturnType<typeof reversePlace>]> = [
    ['96.10.in-addr.arpa', '96.10.in-addr.arpa', 'apex'],
    ['0.96.10.in-addr.arpa', '96.10.in-addr.arpa', 'inner'],
    ['x.96.10.in-addr.arpa', '96.10.in-addr.arpa', 'none'],
    ['256.96.10.in-addr.arpa', '96.10.in-addr.arpa', 'none'],
    ['1.2.3.96.10.in-addr.arpa', '96.10.in-addr.arpa', 'none'],
    ['a.b.ip6.arpa', 'ip6.arpa', 'inner'],
    ['ab.ip6.arpa', 'ip6.arpa', 'none'],
  ];
  it.each(places)('%s in %s: %s', (name, zone, want) => expect(reversePlace(name, zone)).toBe(want));
});

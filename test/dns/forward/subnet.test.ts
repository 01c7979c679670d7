import { describe, expect, it } from 'vitest';
import { echo, malformed, placement, querySubnet, serves } from '../../../dns/forward/subnet.ts';
import { ecsOption, subnetOf } from './ecs-options.ts';

const raw = (hex: string) => Buffer.from(`0008${(hex.length / 2).toString(16).padStart(4, '0')}${hex}`, 'hex');
const cookie = Buffer.from('000a0008' + '01'.repeat(8), 'hex');

describe('querySubnet', () => {
  const rows: Array<[string, Buffer, 'ok' | 'malformed' | 'none']> = [
    ['no ECS', cookie, 'none'],
    ['IPv4 /24', ecsOption('192.0.2.0/24'), 'ok'],
    ['IPv4 /32', ecsOption('192.0.2.1/32'), 'ok'],
    ['IPv4 /0 (dig +subnet=0)', ecsOption('0.0.0.0/0'), 'ok'],
    ['IPv4 /23, last octet within the prefix', raw('00011700c00002'), 'ok'],
    ['IPv6 /56', ecsOption('2001:db8:1:ff00::/56'), 'ok'],
    ['IPv6 /128', ecsOption('2001:db8::1/128'), 'ok'],
    ['after a cookie', Buffer.concat([cookie, ecsOption('192.0.2.0/24')]), 'ok'],
    ['SOURCE 33 for IPv4', raw('00012100c000020100'), 'malformed'],
    ['SOURCE 129 for IPv6', raw('00028100' + '20010db8'.padEnd(34, '0')), 'malformed'],
    ['unknown FAMILY 3', raw('00030000'), 'malformed'],
    ['FAMILY 0', raw('00000000'), 'malformed'],
    ['SCOPE not 0 in a query', raw('00011818c00002'), 'malformed'],
    ['ADDRESS one octet too long', raw('00011800c0000200'), 'malformed'],
    ['ADDRESS one octet too short', raw('00011800c000'), 'malformed'],
    ['a bit set past SOURCE /23', raw('00011700c00003'), 'malformed'],
    ['a bit set past SOURCE /20', raw('00011400c00008'), 'malformed'],
    ['shorter than FAMILY, SOURCE and SCOPE', raw('000118'), 'malformed'],
    ['two ECS options', Buffer.concat([ecsOption('192.0.2.0/24'), ecsOption('198.51.100.0/24')]), 'malformed'],
  ];
  for (const [what, options, want] of rows) {
    it(what, () => {
      const s = querySubnet(options);
      expect(s === undefined ? 'none' : s === malformed ? 'malformed' : 'ok').toBe(want);
    });
  }

  it('reads FAMILY, SOURCE and ADDRESS', () => {
    expect(subnetOf('2001:db8:1:ff00::/56')).toMatchObject({ family: 2, source: 56, address: Buffer.from('20010db80001ff', 'hex') });
  });
});

describe('which cached answer serves which query (RFC 7871 §7.3)', () => {
  // [answer asked for, SCOPE of its reply, later query (undefined: no ECS), served?]
  const rows: Array<[string, string | undefined, number, string | undefined, boolean]> = [
    ['the same /24', '10.1.1.0/24', 24, '10.1.1.0/24', true],
    ['a /25 inside the /24 scope', '10.1.1.0/24', 24, '10.1.1.128/25', true],
    ['a /32 inside the /24 scope', '10.1.1.0/24', 24, '10.1.1.77/32', true],
    ['another /24', '10.1.1.0/24', 24, '10.1.2.0/24', false],
    ['a /16 query: SOURCE shorter than SCOPE', '10.1.1.0/24', 24, '10.1.0.0/16', false],
    ['no ECS, for a /24 answer', '10.1.1.0/24', 24, undefined, false],
    ['SCOPE 16: another /24 of the /16', '10.1.1.0/24', 16, '10.1.200.0/24', true],
    ['SCOPE 16: a /24 outside the /16', '10.1.1.0/24', 16, '10.2.1.0/24', false],
    ['SCOPE 20: 10.1.15.0 shares the first 20 bits', '10.1.1.0/24', 20, '10.1.15.0/24', true],
    ['SCOPE 20: 10.1.16.0 differs in bit 20', '10.1.1.0/24', 20, '10.1.16.0/24', false],
    ['SCOPE 0: any IPv4 subnet', '10.1.1.0/24', 0, '192.0.2.0/24', true],
    ['SCOPE 0: a /0 query', '10.1.1.0/24', 0, '0.0.0.0/0', true],
    ['SCOPE 0: a query without ECS', '10.1.1.0/24', 0, undefined, true],
    ['SCOPE 0: not another FAMILY', '10.1.1.0/24', 0, '2001:db8::/48', false],
    ['SCOPE longer than SOURCE: the same SOURCE and ADDRESS', '10.1.0.0/16', 24, '10.1.0.0/16', true],
    ['SCOPE longer than SOURCE: a longer SOURCE', '10.1.0.0/16', 24, '10.1.0.0/24', false],
    ['SCOPE longer than SOURCE: another /16', '10.1.0.0/16', 24, '10.2.0.0/16', false],
    ['SOURCE 0: another /0 query', '0.0.0.0/0', 0, '0.0.0.0/0', true],
    ['SOURCE 0: not a /24 query (§7.3.1)', '0.0.0.0/0', 0, '10.1.1.0/24', false],
    ['SOURCE 0: not a query without ECS (§7.3.1)', '0.0.0.0/0', 0, undefined, false],
    ['IPv6 SCOPE 40: a /56 sharing the first 40 bits', '2001:db8:1::/48', 40, '2001:db8:ff:ff00::/56', true],
    ['IPv6 SCOPE 40: a /48 outside', '2001:db8:200::/48', 40, '2001:db8:100::/48', false],
    ['IPv6 SCOPE 48: not an IPv4 query', '2001:db8:1::/48', 48, '10.1.1.0/24', false],
    ['without ECS: a query without ECS', undefined, 0, undefined, true],
    ['without ECS: not a query with ECS (maybe tailored to our own address)', undefined, 0, '10.1.1.0/24', false],
  ];
  for (const [what, asked, scope, q, want] of rows) {
    it(what, () => expect(serves(asked === undefined ? undefined : subnetOf(asked), scope, q === undefined ? undefined : subnetOf(q))).toBe(want));
  }

  it('places answers under the base key only when they suit every network', () => {
    expect(placement('k', undefined, 0).key).toBe('k');
    expect(placement('k', subnetOf('10.1.1.0/24'), 0).key).toBe('k');
    expect(placement('k', subnetOf('10.1.1.0/24'), 20).key).toBe('k e1/20/0a0100');
    expect(placement('k', subnetOf('10.1.0.0/16'), 24).key).toBe('k x1/16/0a01');
    expect(placement('k', subnetOf('0.0.0.0/0'), 0).key).toBe('k x1/0/');
  });

  it("echoes the query's own option with the SCOPE", () => {
    expect(echo(subnetOf('10.1.1.128/25'), 24)).toEqual(ecsOption('10.1.1.128/25', 24));
  });
});

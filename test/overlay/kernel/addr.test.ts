// Address text ↔ bytes: IPv6 printed the way inet_ntop (and so `ip`) prints it, MACs, CIDRs.
import { describe, expect, it } from 'vitest';
import { canonicalIp, contains, formatMac, hasHostBits, parseCidr, parseIp, parseMac } from '../../../overlay/kernel/addr.ts';

describe('IP text', () => {
  it.each([
    ['10.244.1.0', '10.244.1.0'],
    ['FD00:0:0:0::1', 'fd00::1'],
    ['fe80:0000:0000:0000:0858:0aff:fef4:0100', 'fe80::858:aff:fef4:100'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['::10.0.0.1', '::10.0.0.1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
  ])('%s → %s', (text, canonical) => {
    expect(canonicalIp(text)).toBe(canonical);
  });

  it.each(['10.0.0', '10.0.0.256', 'fd00::1::2', 'x', ''])('rejects %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe('MAC and CIDR text', () => {
  it('parses MACs in either case and prints them lower-case', () => {
    expect(formatMac(parseMac('0A:58:0a:F4:01:00')!)).toBe('0a:58:0a:f4:01:00');
    for (const bad of ['0a:58:0a:f4:01', '0a-58-0a-f4-01-00', '0a:58:0a:f4:01:000']) expect(parseMac(bad)).toBeUndefined();
  });

  it('parses CIDRs and knows host bits and containment', () => {
    const c = parseCidr('10.244.2.0/24')!;
    expect(c.prefixLength).toBe(24);
    expect(hasHostBits(c)).toBe(false);
    expect(hasHostBits(parseCidr('10.244.2.1/24')!)).toBe(true);
    expect(contains(c, parseIp('10.244.2.77')!)).toBe(true);
    expect(contains(c, parseIp('10.244.3.1')!)).toBe(false);
    expect(contains(c, parseIp('fd00::1')!)).toBe(false);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/x']) expect(parseCidr(bad)).toBeUndefined();
  });
});

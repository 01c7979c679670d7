// The overlay's CIDR text: what routes are keyed by and sent to the kernel as.
import { describe, expect, it } from 'vitest';
import { networkCIDR } from '../../overlay/plan/cidr.ts';

describe('networkCIDR', () => {
  it.each<[string, string | undefined]>([
    ['10.244.1.0/24', '10.244.1.0/24'],
    ['10.244.1.7/24', '10.244.1.0/24'],
    ['10.244.5.0/32', '10.244.5.0/32'],
    ['10.244.5.9', '10.244.5.9/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00:244:7::/128', 'fd00:244:7::/128'],
    ['FD00:0244:0001:0000::5/64', 'fd00:244:1::/64'],
    ['fd00:244::1', 'fd00:244::1/128'],
    ['10.244.1.0/33', undefined],
    ['nope/24', undefined],
  ])('%s → %s', (input, want) => {
    expect(networkCIDR(input)).toBe(want);
  });
});

// Which announced address changes the overlay agent answers with a full sync (the kernel read again and repaired)
// rather than a re-plan: an address removed from an interface its entries go through, and lost announcements.
import { describe, expect, it } from 'vitest';
import { addressDropsEntries, addressMatters, type HostUse } from '../../overlay/host-changes.ts';
import type { AddressChange } from '../../overlay/kernel/watch.ts';

const use: HostUse = { device: 'netplane.1', deviceIndex: 9, deviceUp: true, links: new Set([2]) };

describe('address changes', () => {
  const rows: Array<[what: string, change: AddressChange, matters: boolean, full: boolean]> = [
    ['removed from the underlay', { index: 2, cidr: '192.168.60.1/24', added: false }, true, true],
    ['added to the underlay', { index: 2, cidr: '192.168.60.1/24', added: true }, true, false],
    ['removed from another interface', { index: 3, cidr: '10.0.0.1/24', added: false }, true, false],
    ['added to another interface', { index: 3, cidr: '10.0.0.1/24', added: true }, true, false],
    ['added to the VXLAN device (the agent\'s own)', { index: 9, cidr: '10.244.1.0/32', added: true }, false, false],
    ['removed from the VXLAN device', { index: 9, cidr: '10.244.1.0/32', added: false }, true, true],
    ['an IPv6 link-local one removed from the VXLAN device', { index: 9, cidr: 'fe80::1/64', added: false }, false, true],
    ['an IPv6 link-local one removed from the underlay', { index: 2, cidr: 'fe80::1/64', added: false }, false, true],
    ['lost announcements', { index: undefined, cidr: undefined, added: false }, true, true],
  ];
  it.each(rows)('%s: matters %s, full sync %s', (_what, change, matters, full) => {
    expect(addressMatters(change, use)).toBe(matters);
    expect(addressDropsEntries(change, use)).toBe(full);
  });
});

// Which announced address changes the overlay agent answers with a full sync (the kernel read again and repaired)
// rather than a re-plan: an address removed from an interface its entries go through, and lost announcements.
import { describe, expect, it } from 'vitest';
import { addressDropsEntries, addressMatters, linkMatters, type HostUse } from '../../overlay/host-changes.ts';
import type { AddressChange, LinkChange, LinkSeen } from '../../overlay/kernel/watch.ts';

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

describe('interface changes', () => {
  const seen = (name: string, o: Partial<LinkSeen> = {}): LinkSeen => ({ name, up: true, lowerUp: true, operstate: 6, mtu: 1500, ...o });
  const named: HostUse = { ...use, named: (name) => name === 'uplink' || /^bond\d+$/.test(name) };
  const rows: Array<[what: string, change: LinkChange, matters: boolean, mattersNamed: boolean]> = [
    ['the underlay taken down', { index: 2, deleted: false, before: seen('eth0'), now: seen('eth0', { up: false }) }, true, true],
    ['another interface taken down', { index: 3, deleted: false, before: seen('eth1'), now: seen('eth1', { up: false }) }, false, false],
    ['another interface renamed to the name --iface gives', { index: 3, deleted: false, before: seen('eth1'), now: seen('uplink') }, false, true],
    ['the interface --iface named renamed away', { index: 3, deleted: false, before: seen('uplink'), now: seen('eth1') }, false, true],
    ['another interface renamed to a name --iface-regex matches', { index: 3, deleted: false, before: seen('eth1'), now: seen('bond0') }, false, true],
    ['another interface renamed to a name nothing asks for', { index: 3, deleted: false, before: seen('eth1'), now: seen('eth2') }, false, false],
    ['a new interface with the name --iface gives (no address yet: the address watch sees it get one)', { index: 5, deleted: false, before: undefined, now: seen('uplink') }, false, false],
    ['lost announcements', { index: undefined, deleted: false, before: undefined, now: undefined }, true, true],
  ];
  it.each(rows)('%s: matters %s, with --iface uplink --iface-regex ^bond\\d+$ %s', (_what, change, matters, mattersNamed) => {
    expect(linkMatters(change, use)).toBe(matters);
    expect(linkMatters(change, named)).toBe(mattersNamed);
  });
});

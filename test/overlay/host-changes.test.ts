// Which announced address changes the overlay agent answers with a full sync (the kernel read again and repaired)
// rather than a re-plan: an address removed from an interface its entries go through, and lost announcements.
import { describe, expect, it } from 'vitest';
import { addressDropsEntries, addressMatters, entryMatters, linkMatters, reachMatters, type HostUse } from '../../overlay/host-changes.ts';
import type { EntryChange } from '../../overlay/kernel/entry-watch.ts';
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

describe('neighbour, FDB and route changes', () => {
  const mac2 = '0e:6d:c0:a8:3c:02';
  const want = {
    neighbours: new Map([['10.244.2.0', mac2]]),
    fdb: new Map([[mac2, '192.168.60.2']]),
    routes: new Map([['10.244.2.0/24', '10.244.2.0']]),
    direct: new Map([['10.244.3.0/24', '192.168.60.3']]),
  };
  const planned: HostUse = { ...use, want, underlayIndex: 2 };
  const n = (o: Partial<Extract<EntryChange, { kind: 'neighbour' }>>): EntryChange => ({ kind: 'neighbour', index: 9, ip: '10.244.2.0', mac: mac2, permanent: true, deleted: false, ...o });
  const f = (o: Partial<Extract<EntryChange, { kind: 'fdb' }>>): EntryChange => ({ kind: 'fdb', index: 9, mac: mac2, dst: '192.168.60.2', extras: '', deleted: false, ...o });
  const r = (o: Partial<Extract<EntryChange, { kind: 'route' }>>): EntryChange => ({ kind: 'route', index: 9, dst: '10.244.2.0/24', gateway: '10.244.2.0', protocol: 4, deleted: false, ...o });
  const rows: Array<[what: string, change: EntryChange, matters: boolean]> = [
    ['a wanted neighbour added (the agent\'s own)', n({}), false],
    ['a wanted neighbour deleted', n({ deleted: true, mac: '' }), true],
    ['a wanted neighbour given another MAC', n({ mac: '02:00:00:00:00:01' }), true],
    ['a wanted neighbour made dynamic', n({ permanent: false }), true],
    ['the kernel resolving another address on the device', n({ ip: '10.244.9.9', permanent: false, mac: '' }), false],
    ['a permanent neighbour nobody wants put on the device', n({ ip: '10.244.9.9' }), true],
    ['an unwanted neighbour deleted (the agent\'s own)', n({ ip: '10.244.9.9', deleted: true }), false],
    ['a neighbour on another interface', n({ index: 3, deleted: true }), false],
    ['a wanted FDB entry added', f({}), false],
    ['a wanted FDB entry deleted', f({ deleted: true }), true],
    ['an FDB entry pointed elsewhere', f({ dst: '192.168.60.100' }), true],
    ['the old FDB entry of a moved node deleted (the agent\'s own)', f({ dst: '192.168.60.20', deleted: true }), false],
    ['an FDB entry on another interface', f({ index: 3, dst: '10.0.0.1' }), false],
    ['a wanted FDB entry given a port of its own', f({ extras: 'port 9999' }), true],
    ['a wanted FDB entry given a VNI of its own', f({ extras: 'vni 77' }), true],
    ['that entry deleted (nothing is left for the MAC)', f({ extras: 'vni 77', deleted: true }), true],
    ['an FDB entry for a MAC nobody wants added', f({ mac: '02:00:00:00:00:02' }), true],
    ['an FDB entry for a MAC nobody wants deleted', f({ mac: '02:00:00:00:00:02', deleted: true }), false],
    ['a wanted route added', r({}), false],
    ['a wanted route deleted', r({ deleted: true }), true],
    ['a route through the device to another gateway', r({ gateway: '10.244.2.1' }), true],
    ['a route without a gateway on the device (the kernel\'s)', r({ dst: '10.244.2.0/32', gateway: '' }), false],
    ['a route for a wanted destination through another interface deleted (it may have taken the place of ours)', r({ index: 3, deleted: true }), true],
    ['a wanted direct route deleted', r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.3', protocol: 110, deleted: true }), true],
    ['a direct route pointed elsewhere', r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.100', protocol: 110 }), true],
    ['a wanted direct route added', r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.3', protocol: 110 }), false],
    ['a direct route with the right gateway through another interface', r({ index: 5, dst: '10.244.3.0/24', gateway: '192.168.60.3', protocol: 110 }), true],
    ['a wanted direct route replaced by a static one of someone else', r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.99', protocol: 4 }), true],
    ['that static route deleted (the direct route is gone with it)', r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.99', protocol: 4, deleted: true }), true],
    ["a moved node's old direct route deleted (the agent's own)", r({ index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.30', protocol: 110, deleted: true }), false],
    ['a wanted VXLAN route replaced by one through another interface', r({ index: 4, gateway: '' }), true],
    ['that route deleted', r({ index: 4, gateway: '', deleted: true }), true],
    ['a wanted VXLAN route replaced by one through the device without a gateway', r({ gateway: '' }), true],
    ['a wanted VXLAN route made multipath', r({ index: -1, gateway: '' }), true],
    ["a route of the device with an old gateway deleted (the agent's own)", r({ gateway: '10.244.2.9', deleted: true }), false],
    ['a route nobody routes through another interface', r({ index: 3, dst: '192.0.2.0/24', gateway: '10.0.0.1' }), false],
    ['lost announcements', { kind: 'lost' }, true],
  ];
  it.each(rows)('%s: matters %s', (_what, change, matters) => {
    expect(entryMatters(change, planned)).toBe(matters);
  });

  it('before a plan with a device, only lost announcements matter', () => {
    expect(entryMatters(n({ deleted: true }), use)).toBe(false);
    expect(entryMatters({ kind: 'lost' }, use)).toBe(true);
  });
});

describe("the IPv6 device (--ipv6-device): its changes judged as the first device's, against its own plan", () => {
  const macA = '0a:00:00:00:00:02';
  const mac6 = '0a:00:00:00:06:02';
  const want = { neighbours: new Map([['10.244.2.0', macA]]), fdb: new Map([[macA, '192.168.60.2']]), routes: new Map([['10.244.2.0/24', '10.244.2.0']]), direct: new Map() };
  const want6 = { neighbours: new Map([['fd00:244:2::', mac6]]), fdb: new Map([[mac6, 'fd00:60::2']]), routes: new Map([['fd00:244:2::/64', 'fd00:244:2::']]), direct: new Map() };
  const both: HostUse = { ...use, want, device6: { name: 'netplane-v6.1', index: 11, up: true, want: want6 } };
  const seen = (name: string, o: Partial<LinkSeen> = {}): LinkSeen => ({ name, up: true, lowerUp: true, operstate: 6, mtu: 1430, ...o });
  const rows: Array<[what: string, change: EntryChange | LinkChange | AddressChange, matters: boolean]> = [
    ['its neighbour deleted', { kind: 'neighbour', index: 11, ip: 'fd00:244:2::', mac: mac6, permanent: true, deleted: true }, true],
    ['its neighbour added by the agent', { kind: 'neighbour', index: 11, ip: 'fd00:244:2::', mac: mac6, permanent: true, deleted: false }, false],
    ['its neighbour given another MAC', { kind: 'neighbour', index: 11, ip: 'fd00:244:2::', mac: macA, permanent: true, deleted: false }, true],
    ["the first device's neighbour on it (not its plan's)", { kind: 'neighbour', index: 11, ip: '10.244.2.0', mac: macA, permanent: true, deleted: false }, true],
    ['its FDB entry pointed elsewhere', { kind: 'fdb', index: 11, mac: mac6, dst: 'fd00:60::9', extras: '', deleted: false }, true],
    ['its FDB entry added by the agent', { kind: 'fdb', index: 11, mac: mac6, dst: 'fd00:60::2', extras: '', deleted: false }, false],
    ['its route deleted', { kind: 'route', index: 11, dst: 'fd00:244:2::/64', gateway: 'fd00:244:2::', protocol: 4, deleted: true }, true],
    ['its route added by the agent', { kind: 'route', index: 11, dst: 'fd00:244:2::/64', gateway: 'fd00:244:2::', protocol: 4, deleted: false }, false],
    ['its pod network routed through the first device instead', { kind: 'route', index: 9, dst: 'fd00:244:2::/64', gateway: 'fd00:244:2::', protocol: 4, deleted: false }, true],
    ['a route with a gateway nobody planned added to it', { kind: 'route', index: 11, dst: 'fd00:244:9::/64', gateway: 'fd00:244:9::', protocol: 4, deleted: false }, true],
    ['the device deleted', { index: 11, deleted: true, before: seen('netplane-v6.1'), now: seen('netplane-v6.1') }, true],
    ['the device taken down', { index: 11, deleted: false, before: seen('netplane-v6.1'), now: seen('netplane-v6.1', { up: false }) }, true],
    ['its address removed', { index: 11, cidr: 'fd00:244:1::/128', added: false }, true],
    ['its address added by the agent', { index: 11, cidr: 'fd00:244:1::/128', added: true }, false],
  ];
  it.each(rows)('%s: matters %s', (_what, change, matters) => {
    if ('kind' in change) expect(entryMatters(change, both)).toBe(matters);
    else if ('cidr' in change) expect(addressMatters(change, both)).toBe(matters);
    else expect(linkMatters(change, both)).toBe(matters);
  });
});

describe('route changes with --iface-can-reach 192.168.70.9 (fd00:70::9 for IPv6): whether the underlay is chosen again', () => {
  const reach4: HostUse = { ...use, reach: '192.168.70.9' };
  const reach6: HostUse = { ...use, reach: 'fd00:70::9' };
  const r = (o: Partial<Extract<EntryChange, { kind: 'route' }>>): EntryChange => ({ kind: 'route', index: 3, dst: '0.0.0.0/0', gateway: '10.0.0.254', protocol: 4, deleted: false, ...o });
  const rows: Array<[what: string, change: EntryChange, use: HostUse, matters: boolean]> = [
    ['a default route added through another interface', r({}), reach4, true],
    ['the default route deleted', r({ index: 2, deleted: true }), reach4, true],
    ['a more specific route to the address added', r({ dst: '192.168.70.0/24', gateway: '' }), reach4, true],
    ['a host route to the address deleted', r({ dst: '192.168.70.9/32', deleted: true }), reach4, true],
    ['a multipath default route', r({ index: -1, gateway: '' }), reach4, true],
    ['a route to another network', r({ dst: '192.168.71.0/24' }), reach4, false],
    ['a route to another host of the network', r({ dst: '192.168.70.8/32' }), reach4, false],
    ['an IPv6 default route, the address IPv4', r({ dst: '::/0', gateway: 'fe80::1' }), reach4, false],
    ['an IPv6 default route', r({ dst: '::/0', gateway: 'fe80::1' }), reach6, true],
    ['an IPv6 route to another network', r({ dst: 'fd00:71::/64', gateway: '' }), reach6, false],
    ['a default route without --iface-can-reach', r({}), use, false],
    ['a neighbour of the address', { kind: 'neighbour', index: 3, ip: '192.168.70.9', mac: '02:00:00:00:00:09', permanent: false, deleted: false }, reach4, false],
  ];
  it.each(rows)('%s: matters %s', (_what, change, u, matters) => {
    expect(reachMatters(change, u)).toBe(matters);
  });
});

describe('other routes and rules with --iface-can-reach: whether the underlay is chosen again (never an entry of the overlay)', () => {
  const reach4: HostUse = { ...use, reach: '192.168.70.9' };
  const reach6: HostUse = { ...use, reach: 'fd00:70::9' };
  // With a plan: entryMatters still judges only main-table unicast routes against it.
  const planned4: HostUse = { ...reach4, want: { neighbours: new Map(), fdb: new Map(), routes: new Map([['192.168.70.0/24', '192.168.70.0']]), direct: new Map() } };
  const o = (x: Partial<Extract<EntryChange, { kind: 'other-route' }>>): EntryChange => ({ kind: 'other-route', dst: '192.168.70.0/24', table: 254, type: 6, deleted: false, ...x });
  const rule = (family: number, deleted = false): EntryChange => ({ kind: 'rule', family, deleted });
  const rows: Array<[what: string, change: EntryChange, use: HostUse, matters: boolean]> = [
    ['a blackhole route to the address\'s network added', o({}), reach4, true],
    ['that blackhole route deleted', o({ deleted: true }), reach4, true],
    ['an unreachable default route', o({ dst: '0.0.0.0/0', type: 7 }), reach4, true],
    ['a prohibit host route to the address', o({ dst: '192.168.70.9/32', type: 8 }), reach4, true],
    ['a throw route holding the address in table 100', o({ dst: '192.168.0.0/16', type: 9, table: 100 }), reach4, true],
    ["a unicast route to the address's network in table 100", o({ table: 100, type: 1 }), reach4, true],
    ['a unicast route to the address\'s network in table 100 deleted', o({ table: 100, type: 1, deleted: true }), reach4, true],
    ['a local route of another address (table local)', o({ dst: '192.168.70.1/32', table: 255, type: 2 }), reach4, false],
    ['a blackhole route to another network', o({ dst: '192.168.71.0/24' }), reach4, false],
    ['a route in table 100 to another network', o({ dst: '10.0.0.0/8', table: 100, type: 1 }), reach4, false],
    ['an IPv6 blackhole default route, the address IPv4', o({ dst: '::/0' }), reach4, false],
    ['an IPv6 route in table 100 holding the address', o({ dst: 'fd00:70::/64', table: 100, type: 1 }), reach6, true],
    ['a blackhole route without --iface-can-reach', o({}), use, false],
    ['an IPv4 rule added', rule(2), reach4, true],
    ['an IPv4 rule deleted', rule(2, true), reach4, true],
    ['an IPv6 rule, the address IPv4', rule(10), reach4, false],
    ['an IPv6 rule, the address IPv6', rule(10, true), reach6, true],
    ['a rule of unknown family', rule(0), reach6, true],
    ['a rule without --iface-can-reach', rule(2), use, false],
  ];
  it.each(rows)('%s: matters %s', (_what, change, u, matters) => {
    expect(reachMatters(change, u)).toBe(matters);
    expect(entryMatters(change, u === use ? use : planned4)).toBe(false);
  });
});

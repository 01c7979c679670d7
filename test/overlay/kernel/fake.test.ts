// FakeKernel: the same operations the netlink tests run against the real kernel, asserted as dump text, with the
// kernel's keying (replace by key, one entry), its errno answers, what link down/up and deletes take with them,
// and injected failures.
import { describe, expect, it } from 'vitest';
import { isKernelError, KERNEL_ERROR_CODE } from '../../../overlay/kernel/errors.ts';
import { FakeKernel } from '../../../overlay/kernel/fake.ts';
import type { VxlanSpec } from '../../../overlay/kernel/types.ts';

const MAC = '0a:58:0a:f4:01:00';
const LL = 'fe80::858:aff:fef4:100/64'; // EUI-64 of MAC

function host(): { k: FakeKernel; eth0: number } {
  const k = new FakeKernel([{ name: 'lo', mtu: 65536, mac: '00:00:00:00:00:00', up: true, addresses: ['127.0.0.1/8'] }]);
  const eth0 = k.addDevice({ name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:aa', mtu: 1500, up: true, addresses: ['10.0.0.1/24'] }).index;
  return { k, eth0 };
}

const spec = (eth0: number, over: Partial<VxlanSpec> = {}): VxlanSpec => ({
  name: 'netplane.1', vni: 1, port: 8472, local: '10.0.0.1', underlayIndex: eth0, learning: false, mtu: 1450, mac: MAC, ...over,
});

async function withVxlan(): Promise<{ k: FakeKernel; eth0: number; vx: number }> {
  const { k, eth0 } = host();
  const vx = (await k.createVxlan(spec(eth0))).index;
  await k.setLink(vx, { up: true });
  return { k, eth0, vx };
}

const rejects = async (p: Promise<unknown>, errno: string): Promise<void> => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isKernelError(err, errno), `expected KernelError ${errno}, got ${String(err)}`).toBe(true);
};

describe('FakeKernel', () => {
  it('creates a VXLAN device (down) and reads it back through link() and links()', async () => {
    const { k, eth0 } = host();
    const created = await k.createVxlan(spec(eth0));
    const expected = { index: 3, name: 'netplane.1', kind: 'vxlan', mac: MAC, mtu: 1450, up: false, vxlan: { vni: 1, port: 8472, local: '10.0.0.1', underlayIndex: eth0, learning: false } };
    expect(created).toEqual(expected);
    expect(await k.link('netplane.1')).toEqual(expected);
    expect(await k.link('nope')).toBeUndefined();
    expect((await k.links()).map((l) => l.name)).toEqual(['lo', 'eth0', 'netplane.1']);
    expect(k.dump()).toBe([
      'addr eth0 10.0.0.1/24',
      'addr eth0 fe80::ff:fe00:aa/64',
      'addr lo 127.0.0.1/8',
      'link eth0 veth mtu 1500 up mac 02:00:00:00:00:aa',
      'link lo mtu 65536 up mac 00:00:00:00:00:00',
      `link netplane.1 vxlan vni 1 port 8472 local 10.0.0.1 dev eth0 nolearning mtu 1450 down mac ${MAC}`,
    ].join('\n'));
  });

  it.each([
    ['a taken name', { name: 'eth0' }, 'EEXIST'],
    ['a VNI and port in use', { name: 'netplane.2' }, 'EEXIST'],
    ['an absent underlay', { name: 'netplane.2', vni: 2, underlayIndex: 99 }, 'ENODEV'],
    ['an MTU below 68', { name: 'netplane.2', vni: 2, mtu: 67 }, 'EINVAL'],
    ['a VNI of 2^24', { name: 'netplane.2', vni: 1 << 24 }, 'ERANGE'],
    ['a multicast MAC', { name: 'netplane.2', vni: 2, mac: '01:00:5e:00:00:01' }, 'EADDRNOTAVAIL'],
    ['a bad MAC', { name: 'netplane.2', vni: 2, mac: '0a:58' }, 'EINVAL'],
    ['a bad local', { name: 'netplane.2', vni: 2, local: '10.0.0' }, 'EINVAL'],
    ['a name of 16 characters', { name: 'netplane.1234567', vni: 2 }, 'ERANGE'],
    ['a name with a slash', { name: 'netplane/2', vni: 2 }, 'EINVAL'],
  ] as const)('createVxlan rejects %s', async (_, over, errno) => {
    const { k, eth0 } = await withVxlan();
    const before = k.dump();
    await rejects(k.createVxlan(spec(eth0, over)), errno);
    expect(k.dump()).toBe(before);
  });

  it('allows the same VNI on another port or family, and lowers an MTU the underlay cannot carry', async () => {
    const { k, eth0 } = await withVxlan();
    expect((await k.createVxlan(spec(eth0, { name: 'netplane.2', port: 4789, mtu: 9000 }))).mtu).toBe(1450);
    await k.createVxlan(spec(eth0, { name: 'netplane.3', local: 'fd00::1', mtu: 1430 }));
    expect((await k.link('netplane.3'))?.vxlan?.local).toBe('fd00::1');
  });

  it('changes MTU, MAC and the up flag, and refuses an MTU the underlay cannot carry', async () => {
    const { k, vx } = await withVxlan();
    await k.setLink(vx, { mtu: 1400, mac: '0A:58:0A:F4:01:01', up: false });
    expect(await k.link('netplane.1')).toMatchObject({ mtu: 1400, mac: '0a:58:0a:f4:01:01', up: false });
    await rejects(k.setLink(vx, { mtu: 1451 }), 'EINVAL');
    await rejects(k.setLink(vx, { mac: 'ff:ff:ff:ff:ff:ff' }), 'EADDRNOTAVAIL');
    await rejects(k.setLink(99, { up: true }), 'ENODEV');
  });

  it('adds, lists and deletes addresses with the kernel keys (IPv4 by ip+length, IPv6 by ip)', async () => {
    const { k, vx } = await withVxlan();
    await k.addAddress({ index: vx, cidr: '10.244.1.0/32' });
    await k.addAddress({ index: vx, cidr: '10.244.1.0/24' });
    await k.addAddress({ index: vx, cidr: 'fd00:0::1/64' });
    await rejects(k.addAddress({ index: vx, cidr: '10.244.1.0/32' }), 'EEXIST');
    await rejects(k.addAddress({ index: vx, cidr: 'fd00::1/96' }), 'EEXIST');
    await rejects(k.addAddress({ index: 99, cidr: '10.9.9.9/32' }), 'ENODEV');
    await rejects(k.addAddress({ index: vx, cidr: '10.9.9.9' }), 'EINVAL');
    expect(await k.addresses(vx)).toEqual([LL, '10.244.1.0/32', '10.244.1.0/24', 'fd00::1/64'].map((cidr) => ({ index: vx, cidr })));
    await k.deleteAddress({ index: vx, cidr: '10.244.1.0/24' });
    await k.deleteAddress({ index: vx, cidr: 'fd00::1/96' }); // another length: absent, resolves
    await k.deleteAddress({ index: vx, cidr: '10.9.9.9/32' });
    expect((await k.addresses(vx)).map((a) => a.cidr)).toEqual([LL, '10.244.1.0/32', 'fd00::1/64']);
    expect((await k.addresses()).length).toBe(6);
  });

  it('replaces a neighbour by (index, ip): twice is one entry with the new MAC; delete ignores the MAC', async () => {
    const { k, vx } = await withVxlan();
    await k.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: '0a:58:0a:f4:02:00', permanent: true });
    await k.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: '0A:58:0A:F4:02:01', permanent: true });
    await k.replaceNeighbour({ index: vx, ip: 'FD00:0:0::2', mac: '0a:58:0a:f4:02:02', permanent: false });
    expect(await k.neighbours(vx)).toEqual([
      { index: vx, ip: '10.244.2.0', mac: '0a:58:0a:f4:02:01', permanent: true },
      { index: vx, ip: 'fd00::2', mac: '0a:58:0a:f4:02:02', permanent: true },
    ]);
    await k.deleteNeighbour({ index: vx, ip: '10.244.2.0', mac: '00:00:00:00:00:01', permanent: true });
    await k.deleteNeighbour({ index: vx, ip: '10.244.9.9', mac: '00:00:00:00:00:01', permanent: true });
    await k.deleteNeighbour({ index: 99, ip: '10.244.9.9', mac: '00:00:00:00:00:01', permanent: true });
    expect((await k.neighbours(vx)).map((n) => n.ip)).toEqual(['fd00::2']);
    await rejects(k.replaceNeighbour({ index: 99, ip: '10.244.2.0', mac: MAC, permanent: true }), 'ENODEV');
    await rejects(k.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: 'nope', permanent: true }), 'EINVAL');
  });

  it('replaces an FDB entry by MAC (new dst), deletes it only with its dst, and lists none on other devices', async () => {
    const { k, eth0, vx } = await withVxlan();
    const entry = { index: vx, mac: '0a:58:0a:f4:02:00', dst: '10.0.0.2', permanent: true };
    await k.replaceFdb(entry);
    await k.replaceFdb({ ...entry, dst: '10.0.0.3' });
    expect(await k.fdb(vx)).toEqual([{ ...entry, dst: '10.0.0.3' }]);
    await k.deleteFdb(entry); // the remote is 10.0.0.3 now: nothing to delete
    expect(await k.fdb(vx)).toHaveLength(1);
    await k.deleteFdb({ ...entry, dst: '10.0.0.3' });
    await k.deleteFdb({ ...entry, dst: '10.0.0.3' });
    expect(await k.fdb(vx)).toEqual([]);
    await k.replaceFdb({ ...entry, index: eth0 }); // the kernel only adds the MAC to eth0's unicast filter
    expect(await k.fdb(eth0)).toEqual([]);
    await rejects(k.replaceFdb({ ...entry, dst: 'fd00::2' }), 'EAFNOSUPPORT');
    await rejects(k.replaceFdb({ ...entry, index: 99 }), 'ENODEV');
  });

  it('adds routes by destination, onlink through the VXLAN device, never over another one, and knows the kernel refusals', async () => {
    const { k, eth0, vx } = await withVxlan();
    const route = { dst: '10.244.2.0/24', gateway: '10.244.2.0', index: vx, onlink: true };
    await k.addRoute({ ...route, gateway: '10.244.2.1' });
    await rejects(k.addRoute(route), 'EEXIST');
    // eth0's prefix route (10.0.0.1/24, up) is the kernel's: adding one of that prefix is refused.
    await rejects(k.addRoute({ ...route, dst: '10.0.0.0/24', gateway: '10.0.0.0' }), 'EEXIST');
    expect(await k.routes(vx)).toEqual([{ ...route, gateway: '10.244.2.1' }]);
    await k.deleteRoute(route); // another gateway: absent
    expect(await k.routes(vx)).toHaveLength(1);
    await k.deleteRoute({ ...route, gateway: '10.244.2.1' });
    await k.deleteRoute({ ...route, dst: '10.244.9.0/24' });
    expect(await k.routes(vx)).toEqual([]);
    await rejects(k.addRoute({ ...route, dst: '10.244.2.1/24' }), 'EINVAL');
    await rejects(k.addRoute({ ...route, onlink: false }), 'ENETUNREACH');
    await rejects(k.addRoute({ ...route, gateway: '10.0.0.2', onlink: false }), 'ENETUNREACH'); // on eth0, not here
    await k.addRoute({ dst: '192.168.0.0/16', gateway: '10.0.0.254', index: eth0, onlink: false });
    await k.setLink(vx, { up: false });
    await rejects(k.addRoute(route), 'ENETDOWN');
  });

  it('link down flushes neighbours, routes and IPv6 addresses but keeps permanent FDB entries; delete takes all', async () => {
    const { k, eth0, vx } = await withVxlan();
    await k.addAddress({ index: vx, cidr: '10.244.1.0/32' });
    await k.addAddress({ index: vx, cidr: 'fd00::1/64' });
    await k.replaceNeighbour({ index: vx, ip: '10.244.2.0', mac: '0a:58:0a:f4:02:00', permanent: true });
    await k.replaceFdb({ index: vx, mac: '0a:58:0a:f4:02:00', dst: '10.0.0.2', permanent: true });
    await k.addRoute({ dst: '10.244.2.0/24', gateway: '10.244.2.0', index: vx, onlink: true });
    await k.setLink(vx, { up: false });
    expect(k.dump().split('\n').filter((l) => l.includes('netplane.1'))).toEqual([
      'addr netplane.1 10.244.1.0/32',
      'fdb netplane.1 0a:58:0a:f4:02:00 dst 10.0.0.2 self permanent',
      `link netplane.1 vxlan vni 1 port 8472 local 10.0.0.1 dev eth0 nolearning mtu 1450 down mac ${MAC}`,
    ]);
    await k.setLink(vx, { up: true });
    expect((await k.addresses(vx)).map((a) => a.cidr)).toEqual(['10.244.1.0/32', LL]);
    await k.deleteLink(eth0); // the VXLAN device goes with its underlay
    await k.deleteLink(eth0);
    expect(k.dump()).toBe(['addr lo 127.0.0.1/8', 'link lo mtu 65536 up mac 00:00:00:00:00:00'].join('\n'));
  });

  it('fails the next calls of a method as asked, before changing anything, then works again', async () => {
    const { k, vx } = await withVxlan();
    k.failNext('addRoute', 'ENOBUFS', 2);
    const route = { dst: '10.244.2.0/24', gateway: '10.244.2.0', index: vx, onlink: true };
    for (let i = 0; i < 2; i++) {
      const err = await k.addRoute(route).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'KernelError', code: KERNEL_ERROR_CODE, errno: 'ENOBUFS' });
    }
    expect(await k.routes(vx)).toEqual([]);
    await k.addRoute(route);
    expect(await k.routes(vx)).toHaveLength(1);
    expect(k.calls.filter((c) => c === 'addRoute')).toHaveLength(3);
  });
});

// FakeKernel against the kernel it stands in for: one list of operations, run by NetlinkKernel in a namespace and
// by a FakeKernel built from that namespace's devices, must give the same results (errno names for failures,
// interfaces by name, lists in any order). Covers the keying, the errno answers and what link down and up and
// deleting the underlay do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKernel, type FakeDevice } from '../../../overlay/kernel/fake.ts';
import { errno, KernelHost, SPEC, VX } from './host.ts';
import { runOps, type KernelOp, type OpResult } from './ops.ts';

const n = { index: VX, ip: '10.244.2.0', mac: '0a:58:0a:f4:02:00', permanent: true };
const f = { index: VX, mac: '0a:58:0a:f4:02:00', dst: '10.0.0.2', permanent: true };
const r = { dst: '10.244.2.0/24', gateway: '10.244.2.0', index: VX, onlink: true };
/** A direct route (--direct-routing): netplane's protocol, via a neighbour on eth0's network, not onlink. */
const d = { dst: '10.244.6.0/24', gateway: '10.0.0.6', index: '$index:eth0', onlink: false, protocol: 110 };
const d6 = { ...d, dst: 'fd00:244:6::/64', gateway: 'fd00:10::6' };
const vxlan = (over: Record<string, unknown>): KernelOp => ({ op: 'createVxlan', args: [{ ...SPEC, name: 'netplane.2', vni: 2, ...over }] });
const reads = (index: string): KernelOp[] => ['addresses', 'neighbours', 'fdb', 'routes'].map((op) => ({ op, args: [index] }) as KernelOp);

const OPS: KernelOp[] = [
  { op: 'createVxlan', args: [SPEC] },
  { op: 'replaceNeighbour', args: [{ ...n, ip: '10.244.9.0' }] }, // allowed while down
  { op: 'addRoute', args: [r] }, // ENETDOWN
  { op: 'addAddress', args: [{ index: VX, cidr: 'fd00::9/64' }] },
  { op: 'setLink', args: [VX, { up: true }] },
  { op: 'link', args: ['netplane.1'] },
  { op: 'link', args: ['netplane.1234567'] },
  ...reads(VX),
  { op: 'addAddress', args: [{ index: VX, cidr: '10.244.1.0/32' }] },
  { op: 'addAddress', args: [{ index: VX, cidr: '10.244.1.0/24' }] },
  { op: 'addAddress', args: [{ index: VX, cidr: 'fd00::9/96' }] }, // EEXIST: IPv6 keys by address
  { op: 'addAddress', args: [{ index: VX, cidr: '10.244.1.0/32' }] }, // EEXIST
  { op: 'addAddress', args: [{ index: 9999, cidr: '10.244.1.0/32' }] }, // ENODEV
  { op: 'replaceNeighbour', args: [n] },
  { op: 'replaceNeighbour', args: [{ ...n, mac: '0a:58:0a:f4:02:01' }] },
  { op: 'replaceNeighbour', args: [{ ...n, ip: 'fd00::2' }] },
  { op: 'replaceNeighbour', args: [{ ...n, index: 9999 }] }, // ENODEV
  { op: 'replaceFdb', args: [f] },
  { op: 'replaceFdb', args: [{ ...f, dst: '10.0.0.3' }] },
  { op: 'replaceFdb', args: [{ ...f, mac: '0a:58:0a:f4:03:00', dst: 'fd00::3' }] }, // EAFNOSUPPORT
  { op: 'replaceFdb', args: [{ ...f, index: '$index:eth0' }] }, // accepted, not listed
  { op: 'replaceFdb', args: [{ ...f, index: 9999 }] }, // ENODEV
  { op: 'addRoute', args: [r] },
  { op: 'addRoute', args: [{ ...r, gateway: '10.244.2.1' }] }, // EEXIST: added, never replaced
  { op: 'addRoute', args: [{ ...r, dst: '10.0.0.0/24', gateway: '10.0.0.0' }] }, // EEXIST: eth0's prefix route stays
  { op: 'deleteRoute', args: [{ ...r, dst: '10.0.0.0/24', gateway: '10.0.0.0' }] }, // not on this device: stays
  { op: 'addRoute', args: [{ ...r, dst: '10.0.0.0/25', gateway: '10.0.0.0' }] }, // a more specific one is added: keeping podCIDRs off host networks is the planner's job
  { op: 'deleteRoute', args: [{ ...r, dst: '10.0.0.0/25', gateway: '10.0.0.0' }] },
  { op: 'addRoute', args: [{ dst: 'fd00:2::/64', gateway: 'fd00:2::1', index: VX, onlink: true }] },
  { op: 'addRoute', args: [{ ...r, dst: '10.244.3.1/24' }] }, // EINVAL: host bits
  { op: 'addRoute', args: [{ ...r, dst: '10.244.3.0/24', gateway: '10.9.9.9', onlink: false }] }, // ENETUNREACH
  { op: 'addRoute', args: [{ ...r, dst: '10.244.4.0/24', gateway: '10.0.0.2', onlink: false }] }, // ENETUNREACH: on eth0
  { op: 'addRoute', args: [{ ...r, dst: '10.244.5.0/24', gateway: '10.244.1.5', onlink: false }] },
  { op: 'addRoute', args: [{ dst: '192.168.0.0/16', gateway: '10.0.0.254', index: '$index:eth0', onlink: false }] },
  ...reads(VX),
  { op: 'fdb', args: ['$index:eth0'] },
  { op: 'routes', args: ['$index:eth0'] },
  { op: 'deleteFdb', args: [f] }, // another dst: stays
  { op: 'deleteRoute', args: [r] }, // another gateway: stays
  { op: 'deleteAddress', args: [{ index: VX, cidr: 'fd00::9/96' }] }, // another length: stays
  { op: 'deleteNeighbour', args: [{ ...n, ip: '10.244.77.0' }] },
  { op: 'deleteAddress', args: [{ index: VX, cidr: '10.244.77.0/32' }] },
  ...reads(VX),
  { op: 'setLink', args: [VX, { mac: '0a:58:0a:f4:01:09' }] }, // flushes the neighbours
  ...reads(VX),
  { op: 'setLink', args: [VX, { mtu: 1451 }] }, // EINVAL
  { op: 'setLink', args: [VX, { mac: '01:00:5e:00:00:01' }] }, // EADDRNOTAVAIL
  { op: 'setLink', args: [9999, { up: true }] }, // ENODEV
  vxlan({ vni: 1 }), // EEXIST: VNI and port in use
  vxlan({ port: 4789, mtu: 9000 }), // lowered to 1450
  vxlan({ name: 'netplane.3', vni: 1 << 24 }), // ERANGE
  vxlan({ name: 'netplane.1234567' }), // ERANGE
  vxlan({ name: 'netplane.3', underlayIndex: 9999 }), // ENODEV
  vxlan({ name: 'netplane.3', mac: '01:00:5e:00:00:01' }), // EADDRNOTAVAIL
  vxlan({ name: 'netplane.3', mtu: 67 }),
  vxlan({ name: 'netplane.6', vni: 1, local: 'fd00::1', mtu: 1430 }), // another family
  { op: 'setLink', args: [VX, { up: false }] },
  { op: 'link', args: ['netplane.1'] },
  ...reads(VX),
  { op: 'addRoute', args: [r] }, // ENETDOWN
  { op: 'setLink', args: [VX, { up: true }] },
  { op: 'addresses', args: [VX] },
  // The VTEP address changes: with the new IPv4 address on first, the routes and ARP entries stay; when the last
  // IPv4 address goes, they go too (permanent ones included), and the IPv6 ones stay.
  { op: 'replaceNeighbour', args: [n] },
  { op: 'replaceNeighbour', args: [{ ...n, ip: 'fd00::2' }] },
  { op: 'addRoute', args: [r] },
  { op: 'addAddress', args: [{ index: VX, cidr: '10.244.31.0/32' }] },
  { op: 'deleteAddress', args: [{ index: VX, cidr: '10.244.1.0/32' }] },
  { op: 'deleteAddress', args: [{ index: VX, cidr: '10.244.1.0/24' }] },
  ...reads(VX),
  { op: 'deleteAddress', args: [{ index: VX, cidr: '10.244.31.0/32' }] },
  ...reads(VX),
  // Direct routes: made with a protocol, found by it on any device, deleted only with it (or with none given).
  { op: 'addRoute', args: [d] },
  { op: 'addRoute', args: [{ ...d, dst: '10.244.7.0/24', gateway: '10.0.0.7' }] },
  { op: 'addRoute', args: [{ ...d, gateway: '10.0.0.66' }] }, // EEXIST
  { op: 'addRoute', args: [{ ...d, dst: '192.168.0.0/16' }] }, // EEXIST: a static route of someone else
  { op: 'addRoute', args: [{ ...d, dst: '10.244.8.0/24', gateway: '10.9.9.9' }] }, // ENETUNREACH: not on eth0's network
  { op: 'addAddress', args: [{ index: '$index:eth0', cidr: 'fd00:10::1/64' }] },
  { op: 'addRoute', args: [d6] },
  { op: 'addRoute', args: [{ ...d6, dst: 'fd00:244:8::/64', gateway: 'fd00:99::8' }] }, // not on eth0's network
  { op: 'routesByProtocol', args: [110] },
  { op: 'routesByProtocol', args: [4] },
  { op: 'routes', args: ['$index:eth0'] },
  { op: 'deleteRoute', args: [{ ...d, protocol: 4 }] }, // another protocol: stays
  { op: 'deleteRoute', args: [{ ...d6, protocol: 4 }] },
  { op: 'deleteRoute', args: [{ ...d, gateway: '10.0.0.66' }] }, // another gateway: stays
  { op: 'deleteRoute', args: [{ ...d, index: VX }] }, // another device: stays
  { op: 'routesByProtocol', args: [110] },
  { op: 'deleteRoute', args: [d] },
  { op: 'deleteRoute', args: [d6] },
  { op: 'deleteRoute', args: [{ ...d, dst: '10.244.7.0/24', gateway: '10.0.0.7', protocol: undefined }] }, // no protocol: any
  { op: 'routesByProtocol', args: [110] },
  { op: 'addRoute', args: [d] },
  { op: 'deleteLink', args: ['$index:eth0'] },
  { op: 'routesByProtocol', args: [110] }, // gone with eth0
  { op: 'link', args: ['netplane.1'] },
  { op: 'link', args: ['netplane.2'] },
  { op: 'deleteLink', args: [9999] },
  { op: 'deleteLink', args: [0] }, // EINVAL
];

/** Results with interfaces by name, failures by errno, and lists sorted. */
function normalize(results: OpResult[], names: Map<number, string>): unknown[] {
  for (const res of results) {
    const v = res.ok ? res.value : undefined;
    for (const l of Array.isArray(v) ? v : [v]) {
      const link = l as { index?: unknown; name?: unknown } | null;
      if (link && typeof link.index === 'number' && typeof link.name === 'string') names.set(link.index, link.name);
    }
  }
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    if (x && typeof x === 'object') {
      // The link-local address the kernel gives an interface it brings up is tentative until its duplicate address
      // detection ends, about a second later: whether a listing sees it so depends on timing, not on the fake.
      const { cidr, dad } = x as { cidr?: unknown; dad?: unknown };
      if (dad === 'tentative' && typeof cidr === 'string' && cidr.startsWith('fe80:')) x = Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'dad'));
      return Object.fromEntries(Object.entries(x as object).map(([k, v]) => [k, (k === 'index' || k === 'underlayIndex') && typeof v === 'number' ? (names.get(v) ?? `#${v}`) : walk(v)]));
    }
    return x;
  };
  return results.map((res, i) => ({ i, op: OPS[i]!.op, ...(res.ok ? { value: walk(res.value) } : { errno: errno(res) }) }));
}

describe('FakeKernel fidelity', () => {
  let h: KernelHost;
  let devices: FakeDevice[];
  let names: Map<number, string>;
  beforeAll(async () => {
    h = await KernelHost.create();
    type Link = { ifindex: number; ifname: string; address: string; mtu: number; flags: string[]; linkinfo?: { info_kind: string } };
    const links = await h.ip<Link[]>('-d', 'link', 'show');
    const addrs = await h.ip<{ ifname: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[]>('addr', 'show');
    names = new Map(links.map((l) => [l.ifindex, l.ifname]));
    devices = links.sort((a, b) => a.ifindex - b.ifindex).map((l) => ({
      name: l.ifname, mac: l.address, mtu: l.mtu, up: l.flags.includes('UP'),
      ...(l.linkinfo ? { kind: l.linkinfo.info_kind } : {}),
      // The fake adds the EUI-64 link-local address itself when a device comes up.
      addresses: (addrs.find((a) => a.ifname === l.ifname)?.addr_info ?? []).filter((a) => !a.local.startsWith('fe80:')).map((a) => `${a.local}/${a.prefixlen}`),
    }));
  }, 30_000);
  afterAll(async () => {
    await h?.destroy();
  });

  it('gives the results the kernel gives for the same operations', async () => {
    const real = await h.drive(OPS);
    const fake = new FakeKernel(devices);
    expect((await fake.links()).map((l) => `${l.index} ${l.name}`)).toEqual([...names].map(([i, name]) => `${i} ${name}`));
    const faked = await runOps(fake, OPS);
    expect(normalize(faked, new Map(names))).toEqual(normalize(real, new Map(names)));
  });
});

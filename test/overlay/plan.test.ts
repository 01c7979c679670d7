// The overlay planner: Nodes and the host's interfaces in, the device and the remote VTEPs out, as tables.
import { describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { derivedMac, podCIDRs, underlayAddress, vtepMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import type { HostView, OverlayOptions, OverlayPlan } from '../../overlay/plan/types.ts';
import { clusterNode, host1, node, options1 } from './fixtures.ts';

const mac2 = derivedMac('192.168.60.2');
const mac3 = derivedMac('192.168.60.3');

/** The plan's remotes and problems as lines. */
function summary(plan: OverlayPlan): string[] {
  return [
    ...plan.remotes.map((r) => `${r.node} ${r.underlayIP} ${r.vtepMAC} ${r.vtep4} ${r.podCIDR4}${r.podCIDR6 ? ` ${r.vtep6} ${r.podCIDR6}` : ''}`),
    ...plan.problems.map((p) => `problem ${p.node}: ${p.reason}`),
  ];
}

describe('derivedMac', () => {
  it('is the same for the same address, locally administered and unicast, and differs between addresses', () => {
    expect(derivedMac('192.168.60.2')).toBe(mac2);
    expect(mac2).not.toBe(mac3);
    for (const m of [mac2, mac3, derivedMac('fd00::1')]) {
      expect(m).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(parseInt(m.slice(0, 2), 16) & 0x03).toBe(0x02);
    }
  });
});

describe('node facts', () => {
  it.each<[string, Node, { v4?: string; v6?: string }]>([
    ['podCIDR only', node('a', { podCIDRs: ['10.244.1.0/24'] }), { v4: '10.244.1.0/24' }],
    ['dual-stack, IPv6 first', node('a', { podCIDRs: ['fd00:244:1::/64', '10.244.1.0/24'] }), { v4: '10.244.1.0/24', v6: 'fd00:244:1::/64' }],
    ['host bits cleared', node('a', { podCIDRs: ['10.244.1.7/24'] }), { v4: '10.244.1.0/24' }],
    ['a /32 and a /128 keep their length', node('a', { podCIDRs: ['10.244.5.0/32', 'fd00:244:7::/128'] }), { v4: '10.244.5.0/32', v6: 'fd00:244:7::/128' }],
    ['none', node('a'), {}],
  ])('podCIDRs: %s', (_name, n, want) => {
    expect(podCIDRs(n)).toEqual(want);
  });

  it.each<[string, Node, 'peer' | 'own' | 'none', { ip?: string; problem?: RegExp }]>([
    ['InternalIP', node('a', { ip: '192.168.60.2' }), 'peer', { ip: '192.168.60.2' }],
    ['ExternalIP when no InternalIP', node('a', { externalIP: '203.0.113.2' }), 'peer', { ip: '203.0.113.2' }],
    ['annotation wins', node('a', { ip: '192.168.60.2', annotations: { 'netplane.io/public-ip': '10.0.0.2' } }), 'peer', { ip: '10.0.0.2' }],
    ['annotation ignored for own node in kubernetes mode', node('a', { ip: '192.168.60.2', annotations: { 'netplane.io/public-ip': '10.0.0.2' } }), 'none', { ip: '192.168.60.2' }],
    ['bad annotation falls back', node('a', { ip: '192.168.60.2', annotations: { 'netplane.io/public-ip': 'nope' } }), 'peer', { ip: '192.168.60.2', problem: /netplane.io\/public-ip "nope" is not an IP address/ }],
    ['no address', node('a'), 'peer', { problem: /has no InternalIP or ExternalIP/ }],
    ["Flannel's public-ip", node('a', { ip: '192.168.60.2', annotations: { 'flannel.alpha.coreos.com/public-ip': '10.0.0.3' } }), 'peer', { ip: '10.0.0.3' }],
    ["Flannel's public-ip-overwrite wins over its public-ip", node('a', { ip: '192.168.60.2', annotations: { 'flannel.alpha.coreos.com/public-ip': '10.0.0.3', 'flannel.alpha.coreos.com/public-ip-overwrite': '10.0.0.4' } }), 'peer', { ip: '10.0.0.4' }],
    ["netplane's wins over Flannel's", node('a', { ip: '192.168.60.2', annotations: { 'flannel.alpha.coreos.com/public-ip': '10.0.0.3', 'netplane.io/public-ip': '10.0.0.2' } }), 'peer', { ip: '10.0.0.2' }],
    ["an overwrite (set by hand) wins over what an agent published", node('a', { ip: '192.168.60.2', annotations: { 'netplane.io/public-ip': '192.168.60.2', 'flannel.alpha.coreos.com/public-ip-overwrite': '203.0.113.2' } }), 'peer', { ip: '203.0.113.2' }],
    ["public-ipv6-overwrite on an IPv6 underlay", node('a', { ip: 'fd00:60::2', annotations: { 'flannel.alpha.coreos.com/public-ipv6-overwrite': '2001:db8::2' } }), 'peer', { ip: '2001:db8::2' }],
    ["this node's own source address from manifests: an overwrite is not one", node('a', { ip: '192.168.60.2', annotations: { 'flannel.alpha.coreos.com/public-ip-overwrite': '203.0.113.2' } }), 'own', { ip: '192.168.60.2' }],
    ["this node's own source address from manifests: netplane.io/public-ip is one", node('a', { ip: '192.168.60.2', annotations: { 'netplane.io/public-ip': '192.168.61.2' } }), 'own', { ip: '192.168.61.2' }],
  ])('underlayAddress: %s', (_name, n, keys, want) => {
    const got = underlayAddress(n, keys);
    expect(got.ip).toBe(want.ip);
    if (want.problem) expect(got.problem).toMatch(want.problem);
    else expect(got.problem).toBeUndefined();
  });

  it.each<[string, string | undefined, string, RegExp | undefined]>([
    ['absent: derived', undefined, mac2, undefined],
    ['annotated', '0A:58:0A:F4:02:00', '0a:58:0a:f4:02:00', undefined],
    ['multicast refused', '01:00:5e:00:00:01', mac2, /is not a unicast MAC/],
    ['garbage refused', 'zz', mac2, /is not a unicast MAC/],
  ])('vtepMac: %s', (_name, annotation, want, problem) => {
    const n = node('a', { ip: '192.168.60.2', annotations: annotation ? { 'netplane.io/vtep-mac': annotation } : {} });
    const got = vtepMac(n, '192.168.60.2');
    expect(got.mac).toBe(want);
    if (problem) expect(got.problem).toMatch(problem);
    else expect(got.problem).toBeUndefined();
  });
});

describe('planOverlay: this node', () => {
  it('plans the device from the node, the interface holding its address and the flags', () => {
    const plan = planOverlay([clusterNode(1), clusterNode(2)], options1, host1);
    expect(plan.device).toEqual({
      name: 'netplane.1', vni: 1, port: 8472, local: '192.168.60.1', underlayIndex: 2, underlay: 'eth0', mtu: 1450,
      mac: derivedMac('192.168.60.1'), addresses: ['10.244.1.0/32'],
    });
    expect(plan.problems).toEqual([]);
    expect(plan.nodes).toBe(2);
    expect(plan.podCIDRs).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
  });

  it('takes --mtu, --vni, --port and a dual-stack address', () => {
    const self = clusterNode(1, { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] });
    const plan = planOverlay([self], { ...options1, mtu: 1400, vni: 7, port: 4789 }, host1);
    expect(plan.device).toMatchObject({ mtu: 1400, vni: 7, port: 4789, addresses: ['10.244.1.0/32', 'fd00:244:1::/128'] });
  });

  it('takes the address of --iface, and the annotated MAC', () => {
    const self = clusterNode(1, { ip: '10.9.9.9', annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:01' } });
    const plan = planOverlay([self], { ...options1, ifaces: ['eth0'] }, host1);
    expect(plan.device).toMatchObject({ local: '192.168.60.1', underlayIndex: 2, mac: '0a:00:00:00:00:01' });
  });

  it('takes the first interface --iface-regex matches, each regex in order, with a usable address', () => {
    const host: HostView = {
      links: [...host1.links, { index: 3, name: 'ens5', kind: 'veth', mac: '02:00:00:00:00:03', mtu: 9001, up: true }, { index: 4, name: 'ens6', kind: 'veth', mac: '02:00:00:00:00:04', mtu: 1500, up: true }],
      addresses: [...host1.addresses, { index: 4, cidr: '10.20.0.4/24' }, { index: 3, cidr: 'fe80::1/64' }],
    };
    const self = clusterNode(1, { ip: '10.9.9.9' });
    // ens5 has only a link-local address: passed over for ens6.
    expect(planOverlay([self], { ...options1, ifaceRegex: [/^ens/] }, host).device).toMatchObject({ local: '10.20.0.4', underlay: 'ens6', mtu: 1450 });
    expect(planOverlay([self], { ...options1, ifaceRegex: [/^wlan/, /^eth/, /^ens/] }, host).device).toMatchObject({ local: '192.168.60.1', underlay: 'eth0' });
    const none = planOverlay([self], { ...options1, ifaceRegex: [/^wlan/] }, host);
    expect(none.device).toBeUndefined();
    expect(none.problems.map((p) => p.reason)).toContain('--iface-regex ^wlan: no interface here matches, by address or by name, with an IPv4 or global IPv6 address');
  });

  describe('--iface and --iface-regex, as Flannel reads them', () => {
    // eth0 192.168.60.1 and 192.168.61.1; ens5 only link-local; ens6 10.20.0.4 and fd00:20::4; ens7 only fd00:30::7.
    const host: HostView = {
      links: [
        ...host1.links,
        { index: 3, name: 'ens5', kind: 'veth', mac: '02:00:00:00:00:03', mtu: 9001, up: true },
        { index: 4, name: 'ens6', kind: 'veth', mac: '02:00:00:00:00:04', mtu: 1500, up: true },
        { index: 5, name: 'ens7', kind: 'veth', mac: '02:00:00:00:00:05', mtu: 1500, up: true },
      ],
      addresses: [
        ...host1.addresses,
        { index: 2, cidr: '192.168.61.1/24' },
        { index: 3, cidr: 'fe80::1/64' },
        { index: 4, cidr: 'fe80::4/64' },
        { index: 4, cidr: '10.20.0.4/24' },
        { index: 4, cidr: 'fd00:20::4/64' },
        { index: 5, cidr: 'fd00:30::7/64' },
      ],
    };
    const self = clusterNode(1, { ip: '10.9.9.9' });
    const rows: Array<[string, string[], RegExp[], string]> = [
      ['--iface NAME: its first IPv4 address', ['ens6'], [], 'ens6 10.20.0.4'],
      ['--iface NAME of an interface with only IPv6: its global address', ['ens7'], [], 'ens7 fd00:30::7'],
      ['--iface IP: the interface holding it, with that address (not its first)', ['192.168.61.1'], [], 'eth0 192.168.61.1'],
      ['--iface IPv6 address', ['fd00:20::4'], [], 'ens6 fd00:20::4'],
      ['--iface IPv6 address in another spelling', ['FD00:20:0::4'], [], 'ens6 fd00:20::4'],
      ['--iface repeated: the first that is here', ['eth9', '10.9.9.9', 'ens5', 'ens6', 'eth0'], [], 'ens6 10.20.0.4'],
      ['--iface first, --iface-regex when none fits', ['eth9'], [/^eth/], 'eth0 192.168.60.1'],
      ['--iface wins over --iface-regex', ['ens6'], [/^eth/], 'ens6 10.20.0.4'],
      ['--iface-regex on an address', [], [/^10\.20\./], 'ens6 10.20.0.4'],
      ['--iface-regex on an IPv6 address', [], [/^fd00:30:/], 'ens7 fd00:30::7'],
      ['--iface-regex: addresses before names', [], [/^(eth0|10\.20\.0\.4)$/], 'ens6 10.20.0.4'],
      ['--iface-regex: a name when no address matches', [], [/^ens6$/], 'ens6 10.20.0.4'],
      ['--iface-regex: each in order', [], [/^wlan/, /^192\.168\.61\./, /^ens/], 'eth0 192.168.61.1'],
      ['--iface-regex never picks loopback', [], [/^127\./, /^lo$/], 'problem --iface-regex ^127\\., ^lo$: no interface here matches, by address or by name, with an IPv4 or global IPv6 address'],
      ['--iface-regex never picks a link-local address', [], [/^fe80:/], 'problem --iface-regex ^fe80:: no interface here matches, by address or by name, with an IPv4 or global IPv6 address'],
      ['--iface IP that no interface has', ['10.9.9.9'], [], 'problem --iface 10.9.9.9: no interface here has that address'],
      ['--iface link-local IP', ['fe80::4'], [], 'problem --iface fe80::4: a link-local address does not reach other links'],
      ['every --iface and --iface-regex fails: each reason', ['eth9', 'ens5'], [/^wlan/], 'problem --iface eth9: there is no such interface here; --iface ens5: the interface has no IPv4 or global IPv6 address; --iface-regex ^wlan: no interface here matches, by address or by name, with an IPv4 or global IPv6 address'],
    ];
    it.each(rows)('%s', (_name, ifaces, ifaceRegex, want) => {
      const plan = planOverlay([self], { ...options1, ifaces, ifaceRegex }, host);
      expect(plan.device ? `${plan.device.underlay} ${plan.device.local}` : `problem ${plan.problems.map((p) => p.reason).join(' | ')}`).toBe(want);
    });
    const reachRows: Array<[string, string[], HostView['reach'], string]> = [
      ['--iface-can-reach: the route\'s interface and source', [], { ip: '10.20.0.99', index: 4, src: '10.20.0.4' }, 'ens6 10.20.0.4'],
      ['--iface-can-reach without a source: the interface\'s first address of that family', [], { ip: 'fd00:20::99', index: 4 }, 'ens6 fd00:20::4'],
      ['--iface first, --iface-can-reach when none fits', ['eth9'], { ip: '10.20.0.99', index: 4, src: '10.20.0.4' }, 'ens6 10.20.0.4'],
      ['--iface-can-reach with no route', [], { ip: '203.0.113.9' }, 'problem --iface-can-reach 203.0.113.9: this host has no route to it'],
      ['--iface-can-reach to this host', [], { ip: '127.0.0.9', index: 1, src: '127.0.0.1' }, 'problem --iface-can-reach 127.0.0.9: it is reached through the loopback interface (an address of this host)'],
    ];
    it.each(reachRows)('%s', (_name, ifaces, reach, want) => {
      const plan = planOverlay([self], { ...options1, ifaces, ifaceCanReach: reach!.ip }, { ...host, reach });
      expect(plan.device ? `${plan.device.underlay} ${plan.device.local}` : `problem ${plan.problems.map((p) => p.reason).join(' | ')}`).toBe(want);
    });
  });

  const waiting: Array<[string, Node[], OverlayOptions, RegExp]> = [
    ['not in the view', [clusterNode(2)], options1, /^node1 is not in the cluster view/],
    ['no podCIDR yet', [node('node1', { ip: '192.168.60.1' })], options1, /^node1 has no podCIDR yet/],
    ['address on no interface', [clusterNode(1, { ip: '192.168.99.1' })], options1, /^node1 its underlay address 192.168.99.1 is on no interface of this host/],
    ['loopback address (the quick start)', [clusterNode(1, { ip: '127.0.0.1' })], options1, /^node1 its underlay address 127.0.0.1 is on the loopback interface/],
    ['unknown --iface', [clusterNode(1)], { ...options1, ifaces: ['eth9'] }, /^node1 --iface eth9: there is no such interface here/],
  ];
  it.each(waiting)('plans no device when this node is %s', (_name, nodes, options, problem) => {
    const plan = planOverlay(nodes, options, host1);
    expect(plan.device).toBeUndefined();
    expect(plan.problems.map((p) => `${p.node} ${p.reason}`)).toContainEqual(expect.stringMatching(problem));
  });

  it('cuts an --mtu the underlay cannot carry to what fits, with a problem, and plans on', () => {
    const plan = planOverlay([clusterNode(1), clusterNode(2)], { ...options1, mtu: 1460 }, host1);
    expect(plan.device).toMatchObject({ mtu: 1450 });
    expect(plan.remotes.map((r) => r.node)).toEqual(['node2']);
    expect(plan.problems.map((p) => `${p.node} ${p.reason}`)).toContain('node1 --mtu 1460 does not fit: the underlay eth0 has MTU 1500, so at most 1450 is left for VXLAN; using 1450');
  });

  it('in kubernetes mode ignores its own public-ip annotation (its own output) but keeps its annotated MAC', () => {
    const self = clusterNode(1, { annotations: { 'netplane.io/public-ip': '192.168.99.1', 'netplane.io/vtep-mac': '0a:00:00:00:00:01' } });
    expect(planOverlay([self], options1, host1).device).toBeUndefined();
    expect(planOverlay([self], { ...options1, publishes: true }, host1).device).toMatchObject({ local: '192.168.60.1', mac: '0a:00:00:00:00:01' });
  });
});

describe('planOverlay: an IPv6 underlay', () => {
  const host6: HostView = {
    links: host1.links,
    addresses: [{ index: 1, cidr: '::1/128' }, { index: 2, cidr: 'fe80::1/64' }, { index: 2, cidr: 'fd00:60::1/64' }],
  };
  const v6Node = (i: number, extra: Parameters<typeof clusterNode>[1] = {}) => clusterNode(i, { ip: `fd00:60::${i}`, podCIDRs: [`10.244.${i}.0/24`, `fd00:244:${i}::/64`], ...extra });

  it('runs the device over IPv6 (MTU less 70) and reaches each remote at an IPv6 address, both pod families', () => {
    // node3's InternalIP is IPv4 and its ExternalIP IPv6: on an IPv6 underlay the IPv6 one is its address.
    const withBoth = node('node3', { podCIDRs: ['10.244.3.0/24', 'fd00:244:3::/64'], ip: '192.168.60.3', externalIP: 'fd00:60::3' });
    const plan = planOverlay([v6Node(1), v6Node(2), withBoth], options1, host6);
    expect(plan.device).toMatchObject({ local: 'fd00:60::1', underlayIndex: 2, mtu: 1430, mac: derivedMac('fd00:60::1'), addresses: ['10.244.1.0/32', 'fd00:244:1::/128'] });
    expect(summary(plan)).toEqual([
      `node2 fd00:60::2 ${derivedMac('fd00:60::2')} 10.244.2.0 10.244.2.0/24 fd00:244:2:: fd00:244:2::/64`,
      `node3 fd00:60::3 ${derivedMac('fd00:60::3')} 10.244.3.0 10.244.3.0/24 fd00:244:3:: fd00:244:3::/64`,
    ]);
  });

  it.each<[string, 'tentative' | 'dadfailed', RegExp]>([
    ['still tentative', 'tentative', /^its underlay address fd00:60::1 is still tentative \(IPv6 duplicate address detection has not finished\); the overlay waits/],
    ['failed DAD', 'dadfailed', /^its underlay address fd00:60::1 failed IPv6 duplicate address detection \(another host on the link has it\)/],
  ])('plans no device while its own address is %s, and takes the next usable one by --iface name', (_name, dad, problem) => {
    const host: HostView = { links: host1.links, addresses: [{ index: 2, cidr: 'fd00:60::1/64', dad }, { index: 2, cidr: 'fd00:60::9/64' }] };
    const plan = planOverlay([v6Node(1)], options1, host);
    expect(plan.device).toBeUndefined();
    expect(plan.problems.map((p) => p.reason)).toContainEqual(expect.stringMatching(problem));
    expect(planOverlay([v6Node(1)], { ...options1, ifaces: ['eth0'] }, host).device).toMatchObject({ local: 'fd00:60::9' });
  });

  it('serves IPv6-only pod networks, and leaves out a remote with only an IPv4 address', () => {
    const only6 = (i: number) => clusterNode(i, { ip: `fd00:60::${i}`, podCIDRs: [`fd00:244:${i}::/64`] });
    const plan = planOverlay([only6(1), only6(2), clusterNode(3)], options1, host6);
    expect(plan.device).toMatchObject({ local: 'fd00:60::1', addresses: ['fd00:244:1::/128'] });
    expect(plan.remotes).toEqual([{ node: 'node2', underlayIP: 'fd00:60::2', vtepMAC: derivedMac('fd00:60::2'), vtep6: 'fd00:244:2::', podCIDR6: 'fd00:244:2::/64' }]);
    expect(plan.problems.map((p) => `${p.node} ${p.reason}`)).toEqual([
      "node3 has no IPv6 underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv6",
    ]);
  });

  it.each(['::', '::1', 'ff02::1', 'fe80::2', '::ffff:192.168.60.2'])('leaves out a remote whose underlay address is %s, with a problem', (bad) => {
    const plan = planOverlay([v6Node(1), v6Node(2, { annotations: { 'netplane.io/public-ip': bad } }), v6Node(3)], options1, host6);
    expect(plan.remotes.map((r) => r.node)).toEqual(['node3']);
    expect(plan.problems.map((p) => `${p.node} ${p.reason}`)).toEqual([expect.stringMatching(new RegExp(`^node2 its underlay address \\S+ is (unspecified|loopback|multicast|link-local|IPv4-mapped) \\(.+\\): VXLAN packets sent there would not reach it; left out$`))]);
  });

  it('--iface takes a global IPv6 address when the interface has no IPv4 one, never the link-local one', () => {
    const plan = planOverlay([v6Node(1, { ip: '10.9.9.9' })], { ...options1, ifaces: ['eth0'] }, host6);
    expect(plan.device).toMatchObject({ local: 'fd00:60::1', mtu: 1430 });
    const linkLocalOnly: HostView = { links: host1.links, addresses: [{ index: 2, cidr: 'fe80::1/64' }] };
    expect(planOverlay([v6Node(1)], { ...options1, ifaces: ['eth0'] }, linkLocalOnly).problems.map((p) => p.reason)).toContain('--iface eth0: the interface has no IPv4 or global IPv6 address');
  });
});

/** The annotations Flannel's kube subnet manager puts on a node. */
function flannelNode(backendData: string, publicIP?: string): Record<string, string> {
  return {
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/backend-data': backendData,
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    ...(publicIP ? { 'flannel.alpha.coreos.com/public-ip': publicIP } : {}),
  };
}

describe('planOverlay: other nodes', () => {
  const rows: Array<[string, Node[], string[]]> = [
    ['two remotes, sorted by name', [clusterNode(3), clusterNode(1), clusterNode(2)], [
      `node2 192.168.60.2 ${mac2} 10.244.2.0 10.244.2.0/24`,
      `node3 192.168.60.3 ${mac3} 10.244.3.0 10.244.3.0/24`,
    ]],
    ['dual-stack remote', [clusterNode(1), clusterNode(2, { podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'] })], [
      `node2 192.168.60.2 ${mac2} 10.244.2.0 10.244.2.0/24 fd00:244:2:: fd00:244:2::/64`,
    ]],
    ['annotations win', [clusterNode(1), clusterNode(2, { annotations: { 'netplane.io/public-ip': '192.168.61.2', 'netplane.io/vtep-mac': '0a:00:00:00:00:02' } })], [
      'node2 192.168.61.2 0a:00:00:00:00:02 10.244.2.0 10.244.2.0/24',
    ]],
    ['a Flannel node (its kube subnet manager annotations)', [clusterNode(1), clusterNode(2, { annotations: flannelNode('{"VNI":1,"VtepMAC":"2E:F7:D3:70:96:48"}', '192.168.61.2') })], [
      'node2 192.168.61.2 2e:f7:d3:70:96:48 10.244.2.0 10.244.2.0/24',
    ]],
    ['an old Flannel node (backend data without VNI)', [clusterNode(1), clusterNode(2, { annotations: flannelNode('{"VtepMAC":"ce:fc:e9:ca:db:28"}') })], [
      'node2 192.168.60.2 ce:fc:e9:ca:db:28 10.244.2.0 10.244.2.0/24',
    ]],
    ['netplane annotations win over Flannel ones', [clusterNode(1), clusterNode(2, { annotations: { ...flannelNode('{"VNI":1,"VtepMAC":"2e:f7:d3:70:96:48"}', '192.168.61.2'), 'netplane.io/public-ip': '192.168.62.2', 'netplane.io/vtep-mac': '0a:00:00:00:00:02' } })], [
      'node2 192.168.62.2 0a:00:00:00:00:02 10.244.2.0 10.244.2.0/24',
    ]],
    ['a Flannel node on another VNI: left out', [clusterNode(1), clusterNode(2, { annotations: flannelNode('{"VNI":4096,"VtepMAC":"2e:f7:d3:70:96:48"}') })], [
      "problem node2: its Flannel backend data names VNI 4096, not this overlay's 1 (--vni): its VXLAN packets would not be taken; left out",
    ]],
    ['unreadable Flannel backend data: a derived MAC', [clusterNode(1), clusterNode(2, { annotations: flannelNode('{"VtepMAC":') })], [
      `node2 192.168.60.2 ${mac2} 10.244.2.0 10.244.2.0/24`,
      'problem node2: annotation flannel.alpha.coreos.com/backend-data "{\\"VtepMAC\\":" is not Flannel\'s {"VNI":N,"VtepMAC":"..."}; using a MAC derived from 192.168.60.2',
    ]],
    ['a /32 and a /128 podCIDR: routed as such', [clusterNode(1), clusterNode(5, { podCIDRs: ['10.244.5.0/32', 'fd00:244:7::/128'] })], [
      `node5 192.168.60.5 ${derivedMac('192.168.60.5')} 10.244.5.0 10.244.5.0/32 fd00:244:7:: fd00:244:7::/128`,
    ]],
    ['no podCIDR: left out', [clusterNode(1), node('node2', { ip: '192.168.60.2' })], [
      'problem node2: has no podCIDR yet; its pods are not reachable over the overlay until it has one',
    ]],
    ['no address: left out', [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] })], [
      "problem node2: has no IPv4 underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv4",
    ]],
    ['podCIDR overlapping this node: left out', [clusterNode(1), clusterNode(2, { podCIDRs: ['10.244.1.0/25'] })], [
      "problem node2: its podCIDR 10.244.1.0/25 overlaps node node1's 10.244.1.0/24; left out",
    ]],
    ['same address as another: the later name is left out', [clusterNode(1), clusterNode(2), clusterNode(3, { ip: '192.168.60.2' })], [
      `node2 192.168.60.2 ${mac2} 10.244.2.0 10.244.2.0/24`,
      "problem node3: its underlay address 192.168.60.2 is also node node2's; left out",
    ]],
    ['same MAC as another: left out', [clusterNode(1), clusterNode(2, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:09' } }), clusterNode(3, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:09' } })], [
      'node2 192.168.60.2 0a:00:00:00:00:09 10.244.2.0 10.244.2.0/24',
      "problem node3: its VTEP MAC 0a:00:00:00:00:09 is also node node2's; left out",
    ]],
    ['a loopback public-ip: left out', [clusterNode(1), clusterNode(2, { annotations: { 'netplane.io/public-ip': '127.0.0.1' } }), clusterNode(3)], [
      `node3 192.168.60.3 ${mac3} 10.244.3.0 10.244.3.0/24`,
      'problem node2: its underlay address 127.0.0.1 is loopback (127.0.0.0/8): VXLAN packets sent there would not reach it; left out',
    ]],
    ['unspecified, multicast, link-local and broadcast addresses: left out', [
      clusterNode(1),
      clusterNode(2, { ip: '0.0.0.0' }),
      clusterNode(3, { annotations: { 'netplane.io/public-ip': '224.0.0.1' } }),
      clusterNode(4, { annotations: { 'flannel.alpha.coreos.com/public-ip': '169.254.0.4' } }),
      clusterNode(5, { ip: '255.255.255.255' }),
    ], [
      'problem node2: its underlay address 0.0.0.0 is unspecified (0.0.0.0/8): VXLAN packets sent there would not reach it; left out',
      'problem node3: its underlay address 224.0.0.1 is multicast (224.0.0.0/4): VXLAN packets sent there would not reach it; left out',
      'problem node4: its underlay address 169.254.0.4 is link-local (169.254.0.0/16): VXLAN packets sent there would not reach it; left out',
      'problem node5: its underlay address 255.255.255.255 is reserved or broadcast (240.0.0.0/4): VXLAN packets sent there would not reach it; left out',
    ]],
    ['only an IPv6 address where the underlay is IPv4: left out', [clusterNode(1), clusterNode(2, { ip: 'fd00:60::2' })], [
      "problem node2: has no IPv4 underlay address (InternalIP, ExternalIP or netplane.io/public-ip), and this node's underlay is IPv4",
    ]],
    ['an IPv6 public-ip annotation where the underlay is IPv4: its IPv4 InternalIP is used', [clusterNode(1), clusterNode(2, { annotations: { 'netplane.io/public-ip': 'fd00:60::2' } })], [
      `node2 192.168.60.2 ${mac2} 10.244.2.0 10.244.2.0/24`,
    ]],
  ];
  it.each(rows)('%s', (_name, nodes, want) => {
    expect(summary(planOverlay(nodes, options1, host1))).toEqual(want);
  });

  const fenced: Array<[string, Node, OverlayOptions, string | undefined]> = [
    ["a podCIDR equal to this host's underlay network", clusterNode(2, { podCIDRs: ['192.168.60.0/24'] }), options1, "its podCIDR 192.168.60.0/24 overlaps this host's address 192.168.60.1/24 on eth0; left out"],
    ['a podCIDR inside the underlay network', clusterNode(2, { podCIDRs: ['192.168.60.128/25'] }), options1, "its podCIDR 192.168.60.128/25 overlaps this host's address 192.168.60.1/24 on eth0; left out"],
    ['a podCIDR covering the underlay network', clusterNode(2, { podCIDRs: ['192.168.0.0/16'] }), options1, "its podCIDR 192.168.0.0/16 overlaps this host's address 192.168.60.1/24 on eth0; left out"],
    ['a podCIDR over loopback', clusterNode(2, { podCIDRs: ['127.0.0.0/16'] }), options1, "its podCIDR 127.0.0.0/16 overlaps this host's address 127.0.0.1/8 on lo; left out"],
    ['a podCIDR outside --cluster-cidr', clusterNode(2, { podCIDRs: ['10.245.2.0/24'] }), { ...options1, clusterCIDRs: ['10.244.0.0/16'] }, 'its podCIDR 10.245.2.0/24 is outside --cluster-cidr 10.244.0.0/16; left out'],
    ['a podCIDR straddling --cluster-cidr', clusterNode(2, { podCIDRs: ['10.246.0.0/15'] }), { ...options1, clusterCIDRs: ['10.246.0.0/16'] }, 'its podCIDR 10.246.0.0/15 is outside --cluster-cidr 10.246.0.0/16; left out'],
    ['an IPv6 podCIDR outside the IPv6 --cluster-cidr', clusterNode(2, { podCIDRs: ['10.244.2.0/24', 'fd00:245:2::/64'] }), { ...options1, clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/32'] }, 'its podCIDR fd00:245:2::/64 is outside --cluster-cidr fd00:244::/32; left out'],
    ['inside --cluster-cidr: used', clusterNode(2), { ...options1, clusterCIDRs: ['10.244.0.0/16'] }, undefined],
    ['an IPv6 podCIDR when --cluster-cidr names no IPv6 network: used', clusterNode(2, { podCIDRs: ['10.244.2.0/24', 'fd00:245:2::/64'] }), { ...options1, clusterCIDRs: ['10.244.0.0/16'] }, undefined],
  ];
  it.each(fenced)('%s', (_name, remote, options, problem) => {
    const plan = planOverlay([clusterNode(1), remote], options, host1);
    expect(plan.remotes.map((r) => r.node)).toEqual(problem ? [] : ['node2']);
    expect(plan.problems.map((p) => `${p.node} ${p.reason}`)).toEqual(problem ? [`node2 ${problem}`] : []);
  });

  it("does not count the overlay device's own addresses (a stale VTEP address is deleted, not a fence)", () => {
    const host: HostView = {
      links: [...host1.links, { index: 3, name: 'netplane.1', kind: 'vxlan', mac: '02:00:00:00:00:03', mtu: 1450, up: true }],
      addresses: [...host1.addresses, { index: 3, cidr: '10.244.1.0/32' }, { index: 3, cidr: '10.244.9.0/32' }],
    };
    expect(summary(planOverlay([clusterNode(1), clusterNode(9)], options1, host))).toEqual([`node9 192.168.60.9 ${derivedMac('192.168.60.9')} 10.244.9.0 10.244.9.0/24`]);
  });

  it.each<[string, Node[], string[]]>([
    ['every node in use', [clusterNode(1), clusterNode(2, { podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'] })], ['10.244.1.0/24', '10.244.2.0/24', 'fd00:244:2::/64']],
    ["a node whose podCIDR overlaps another node's (0.0.0.0/0)", [clusterNode(1), clusterNode(2), clusterNode(7, { podCIDRs: ['0.0.0.0/0'] })], ['10.244.1.0/24', '10.244.2.0/24']],
    ["a node whose podCIDR is the underlay's network", [clusterNode(1), clusterNode(4, { podCIDRs: ['192.168.60.0/24'] })], ['10.244.1.0/24']],
    ['a node without an address', [clusterNode(1), node('node2', { podCIDRs: ['10.244.2.0/24'] })], ['10.244.1.0/24']],
  ])('counts only the nodes in use as the pod networks (masquerade, subnet.env): %s', (_name, nodes, want) => {
    expect(planOverlay(nodes, options1, host1).podCIDRs).toEqual(want);
  });

  it('plans the remotes while this node waits, so they are ready when it can have a device', () => {
    const plan = planOverlay([clusterNode(2), clusterNode(3)], options1, host1);
    expect(plan.device).toBeUndefined();
    expect(plan.remotes.map((r) => r.node)).toEqual(['node2', 'node3']);
  });
});

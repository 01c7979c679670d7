// What this node announces in kubernetes mode, as a table: Nodes and the host in, the published VTEP out.
import { describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import type { HostView, SelfVtep } from '../../overlay/plan/types.ts';
import { clusterNode, host1, node, options1 } from './fixtures.ts';

const mac1 = derivedMac('192.168.60.1');
/** host1 with IPv6 on eth0 too: a link-local and a global address. */
const dualHost: HostView = { links: host1.links, addresses: [...host1.addresses, { index: 2, cidr: 'fe80::1/64' }, { index: 2, cidr: 'fd00:60::1/64' }] };
const linkLocalOnly: HostView = { links: host1.links, addresses: [...host1.addresses, { index: 2, cidr: 'fe80::1/64' }] };
const overwrite = (v4?: string, v6?: string) => ({
  ...(v4 !== undefined ? { 'flannel.alpha.coreos.com/public-ip-overwrite': v4 } : {}),
  ...(v6 !== undefined ? { 'flannel.alpha.coreos.com/public-ipv6-overwrite': v6 } : {}),
});
const dual = (extra: { externalIP?: string; annotations?: Record<string, string> } = {}) => node('node1', { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], ip: '192.168.60.1', ...extra });
/** dualHost with a second global IPv6 address on eth0, listed first. */
const twoV6: HostView = { links: host1.links, addresses: [...host1.addresses, { index: 2, cidr: 'fd00:61::1/64' }, { index: 2, cidr: 'fd00:60::1/64' }] };

describe('planAnnouncement (kubernetes mode)', () => {
  const rows: Array<[string, Node, HostView, SelfVtep]> = [
    ['IPv4 pods over IPv4: the VXLAN source address', clusterNode(1), host1, { mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1' }],
    ["Flannel's public-ip-overwrite: published, the source stays the interface's", clusterNode(1, { annotations: overwrite('203.0.113.1') }), host1, { mac: mac1, ip: '203.0.113.1', ip4: '203.0.113.1' }],
    ['an overwrite that is no IPv4 address: the source address, with a note', clusterNode(1, { annotations: overwrite('fd00::1') }), host1, {
      mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1', notes: ['annotation flannel.alpha.coreos.com/public-ip-overwrite "fd00::1" is not an IPv4 address; publishing 192.168.60.1'],
    }],
    ['a loopback overwrite: the source address, with a note', clusterNode(1, { annotations: overwrite('127.0.0.9') }), host1, {
      mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1', notes: ['annotation flannel.alpha.coreos.com/public-ip-overwrite 127.0.0.9 is loopback (127.0.0.0/8): other nodes could not reach it; publishing 192.168.60.1'],
    }],
    ["dual-stack pods: the Node's IPv6 address held here, before the interface's first", dual({ externalIP: 'fd00:60::1' }), twoV6, { mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1', ip6: 'fd00:60::1' }],
    ['dual-stack pods, no IPv6 InternalIP: the global IPv6 address of the underlay interface', dual(), dualHost, { mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1', ip6: 'fd00:60::1' }],
    ['dual-stack pods with public-ipv6-overwrite', dual({ annotations: overwrite(undefined, '2001:db8::1') }), dualHost, { mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1', ip6: '2001:db8::1' }],
    ['dual-stack pods, only a link-local IPv6 address: no IPv6, with a note for Flannel', dual(), linkLocalOnly, {
      mac: mac1, ip: '192.168.60.1', ip4: '192.168.60.1',
      flannelNotes: [
        'has an IPv6 podCIDR but no IPv6 underlay address (an InternalIP or ExternalIP on this host, or a global address on eth0, or flannel.alpha.coreos.com/public-ipv6-overwrite): Flannel nodes with IPv6 enabled do not accept it',
      ],
    }],
  ];
  it.each(rows)('%s', (_name, self, host, want) => {
    const plan = planOverlay([self], { ...options1, publishes: true }, host);
    expect(plan.device?.local).toBe('192.168.60.1');
    expect(plan.self).toEqual(want);
  });

  it('over an IPv6 underlay announces the IPv6 address, and the IPv4 one for IPv4 pods', () => {
    const host6: HostView = { links: host1.links, addresses: [{ index: 2, cidr: 'fd00:60::1/64' }, { index: 2, cidr: '192.168.60.1/24' }] };
    const self = node('node1', { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], ip: 'fd00:60::1', annotations: overwrite(undefined, '2001:db8::1') });
    expect(planOverlay([self], { ...options1, publishes: true }, host6).self).toEqual({ mac: derivedMac('fd00:60::1'), ip: '2001:db8::1', ip4: '192.168.60.1', ip6: '2001:db8::1' });
  });
});

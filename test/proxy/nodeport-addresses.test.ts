// `--nodeport-addresses`: CIDRs as given, or `primary`: the Node's InternalIP of each family (else its ExternalIP),
// loopback ones skipped; when the Node gives none, every local address but loopback, with a warning (as kube-proxy
// does). A family without CIDRs of its own accepts NodePorts on every address. Loopback never accepts NodePorts:
// loopback CIDRs are dropped and ranges around loopback lose it.
import { describe, expect, it } from 'vitest';
import { parseKind } from '../../cluster/model/index.ts';
import { nodePortCIDRs } from '../../proxy/component.ts';
import { nodePortAddressesOf } from '../../proxy/plan/nodeports.ts';
import { planProxy } from '../../proxy/plan/plan.ts';
import type { Family } from '../../proxy/plan/types.ts';

const node = (addresses: Array<[type: string, address: string]>) =>
  parseKind('Node', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, status: { addresses: addresses.map(([type, address]) => ({ type, address })) } });

describe('--nodeport-addresses', () => {
  it.each<[string, string[], ReturnType<typeof node> | undefined, string[]]>([
    ['CIDRs as given', ['192.168.50.0/24', 'fd00:50::/64'], node([['InternalIP', '192.168.50.1']]), ['192.168.50.0/24', 'fd00:50::/64']],
    ['none: every local address (the planner reads [] as all)', [], undefined, []],
    ['primary: the InternalIP of each family', ['primary'], node([['Hostname', 'node1'], ['ExternalIP', '203.0.113.1'], ['InternalIP', '192.168.50.1'], ['InternalIP', '192.168.50.2'], ['InternalIP', 'fd00:50::1']]), ['192.168.50.1/32', 'fd00:50::1/128']],
    ['primary: the ExternalIP when there is no InternalIP', ['primary'], node([['ExternalIP', '203.0.113.1']]), ['203.0.113.1/32']],
    ['primary: a loopback InternalIP is skipped, the other family kept', ['primary'], node([['InternalIP', '127.0.0.1'], ['InternalIP', 'fd00:50::1']]), ['fd00:50::1/128']],
  ])('%s', (_what, flag, n, want) => {
    const warnings: string[] = [];
    expect(nodePortCIDRs(flag, n, (m) => warnings.push(m))).toEqual(want);
    expect(warnings).toEqual([]);
  });

  it.each<[string, ReturnType<typeof node> | undefined, RegExp]>([
    ['the Node is not in the view', undefined, /the Node is not in the cluster view; NodePorts are accepted on every local address but loopback/],
    ['the Node has no address', node([['Hostname', 'node1']]), /the Node has no InternalIP or ExternalIP but loopback; NodePorts are accepted on every local address but loopback/],
    ['the Node has only loopback addresses', node([['InternalIP', '127.0.0.1'], ['InternalIP', '::1']]), /has no InternalIP or ExternalIP but loopback/],
  ])('primary when %s: every local address but loopback, with a warning', (_what, n, warning) => {
    const warnings: string[] = [];
    expect(nodePortCIDRs(['primary'], n, (m) => warnings.push(m))).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(warning);
  });

  it.each<[string[], Family, string[] | 'all']>([
    [[], 4, 'all'],
    [['0.0.0.0/0', '::/0'], 4, 'all'],
    [['0.0.0.0/0', '::/0'], 6, 'all'],
    [['127.0.0.0/8', '192.168.77.0/24'], 4, ['192.168.77.0/24']],
    [['127.0.0.1/32'], 4, []],
    [['::1/128', 'fd00::/8'], 6, ['fd00::/8']],
    [['96.0.0.0/3'], 4, ['96.0.0.0/4', '112.0.0.0/5', '120.0.0.0/6', '124.0.0.0/7', '126.0.0.0/8']],
    // A family without CIDRs of its own accepts NodePorts on all its addresses (kube-proxy adds 0.0.0.0/0 or ::/0).
    [['192.168.77.0/24'], 6, 'all'],
    [['fd00:77::/64'], 4, 'all'],
    [['fd00:77::/64'], 6, ['fd00:77::/64']],
  ])('%j, IPv%i: %j (loopback never accepts NodePorts)', (flag, family, want) => {
    expect(nodePortAddressesOf(flag, family)).toEqual(want);
  });

  it.each<[string, ReturnType<typeof node>, Record<Family, string[] | 'all'>]>([
    ['an IPv4 InternalIP only: IPv6 NodePorts on every address', node([['InternalIP', '192.168.50.1']]), { 4: ['192.168.50.1/32'], 6: 'all' }],
    ['an IPv6 InternalIP only: IPv4 NodePorts on every address', node([['InternalIP', 'fd00:50::1']]), { 4: 'all', 6: ['fd00:50::1/128'] }],
    ['a loopback IPv4 InternalIP: IPv4 NodePorts on every address but loopback', node([['InternalIP', '127.0.0.1'], ['InternalIP', 'fd00:50::1']]), { 4: 'all', 6: ['fd00:50::1/128'] }],
  ])('primary on a node with %s', (_what, n, want) => {
    const cidrs = nodePortCIDRs(['primary'], n, () => {});
    const config = { nodeName: 'node1', clusterCIDRs: [], masqueradeAll: false, nodePortAddresses: cidrs };
    expect(planProxy([], config).nodePortAddresses).toEqual(want);
  });
});

import { describe, expect, it } from 'vitest';
import { conntrackArgs, deleteFlows, staleFlows } from '../../proxy/conntrack.ts';
import type { PortPlan, ProxyPlan } from '../../proxy/plan/types.ts';
import { portPlan } from '../fixtures/plans.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import { CommandError } from '../../runtime/exec.ts';
import { silentLogger } from '../../runtime/logger.ts';

const port = (over: Partial<PortPlan>): PortPlan => portPlan('dns', 'dns', { protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'], ...over });
const plan = (...ports: PortPlan[]): ProxyPlan => ({ ports, clusterCIDRs: { 4: [], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] });
const eps = (...ips: string[]) => ips.map((ip) => ({ ip, port: 5353 }));

describe('staleFlows', () => {
  const cases: Array<{ name: string; prev?: ProxyPlan; next: ProxyPlan; want: string[][] }> = [
    { name: 'nothing before: nothing to delete', next: plan(port({ clusterEndpoints: eps('10.244.1.1') })), want: [] },
    {
      name: 'a removed UDP endpoint: flows DNATed to it, per frontend',
      prev: plan(port({ clusterEndpoints: eps('10.244.1.1', '10.244.1.2'), externalEndpoints: eps('10.244.1.1', '10.244.1.2'), nodePort: 30053 })),
      next: plan(port({ clusterEndpoints: eps('10.244.1.1'), externalEndpoints: eps('10.244.1.1'), nodePort: 30053 })),
      want: [
        ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', '--dst-nat', '10.244.1.2'],
        ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', '30053', '--dst-nat', '10.244.1.2'],
      ],
    },
    {
      name: 'from no endpoint to some: every flow to the frontend (they were never DNATed)',
      prev: plan(port({})),
      next: plan(port({ clusterEndpoints: eps('10.244.1.1'), externalEndpoints: eps('10.244.1.1') })),
      want: [['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53']],
    },
    {
      name: 'TCP is left alone (a reset ends it)',
      prev: plan(port({ protocol: 'TCP', key: 't', clusterEndpoints: eps('10.244.1.1') })),
      next: plan(port({ protocol: 'TCP', key: 't' })),
      want: [],
    },
    {
      name: 'a removed Service: flows to its old endpoints, IPv6 and SCTP too',
      prev: plan(port({ key: 'x/v6', family: 6, protocol: 'SCTP', clusterIPs: ['fd00::10'], clusterEndpoints: [{ ip: 'fd00:244::1', port: 9 }] })),
      next: plan(),
      want: [['-D', '-f', 'ipv6', '-p', 'sctp', '--orig-dst', 'fd00::10', '--orig-port-dst', '53', '--dst-nat', 'fd00:244::1']],
    },
  ];
  for (const c of cases) it(c.name, () => expect(staleFlows(c.prev, c.next).map(conntrackArgs)).toEqual(c.want));
});

describe('deleteFlows', () => {
  it('runs conntrack per filter, takes "0 flow entries" as done, and logs other failures without throwing', async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = {
      async run(cmd, args) {
        calls.push([cmd, ...args]);
        if (args.includes('10.244.1.2')) throw new CommandError('conntrack', 1, 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
        if (args.includes('10.244.1.3')) throw new CommandError('conntrack', 1, 'Operation not permitted');
        return { stdout: '', stderr: '' };
      },
    };
    const filters = ['10.244.1.1', '10.244.1.2', '10.244.1.3'].map((ip) => ({ family: 4 as const, protocol: 'udp' as const, origPortDst: 53, dstNat: ip }));
    expect(await deleteFlows(runner, filters, silentLogger())).toBe(2);
    expect(calls.map((c) => c[0])).toEqual(['conntrack', 'conntrack', 'conntrack']);
  });
});

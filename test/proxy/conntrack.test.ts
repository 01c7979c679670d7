import { describe, expect, it } from 'vitest';
import { cleanStaleFlows, conntrackArgs, deleteFlows, parseConntrackList, staleFlows, tablesToList, type ConntrackEntry } from '../../proxy/conntrack.ts';
import type { PortPlan, ProxyPlan } from '../../proxy/plan/types.ts';
import { portPlan } from '../fixtures/plans.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import { CommandError } from '../../runtime/exec.ts';
import { silentLogger } from '../../runtime/logger.ts';

const port = (over: Partial<PortPlan>): PortPlan => portPlan('dns', 'dns', { protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'], ...over });
const plan = (...ports: PortPlan[]): ProxyPlan => ({ ports, clusterCIDRs: { 4: [], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] });
const eps = (...ips: string[]) => ips.map((s) => ({ ip: s.split(':')[0]!, port: Number(s.split(':')[1] ?? 5353) }));
/** An entry `origDst:port -> replySrc:port`. */
const entry = (to: string, from: string): ConntrackEntry => {
  const [origDst = '', origPortDst = ''] = to.split(/:(?=\d+$)/);
  const [replySrc = '', replyPortSrc = ''] = from.split(/:(?=\d+$)/);
  return { origDst, origPortDst: Number(origPortDst), replySrc, replyPortSrc: Number(replyPortSrc) };
};
/** The deletions as `origDst:port <- replySrc:port`. */
const shown = (fs: ReturnType<typeof staleFlows>) => fs.map((f) => `${f.origDst}:${f.origPortDst} <- ${f.replySrc}:${f.replyPortSrc}`);

describe('staleFlows', () => {
  const dns = (...endpoints: string[]) => plan(port({ clusterEndpoints: eps(...endpoints), externalEndpoints: eps(...endpoints), nodePort: 30053 }));
  const cases: Array<{ name: string; prev?: ProxyPlan; next: ProxyPlan; entries: string[][]; want: string[] }> = [
    {
      name: 'after a restart (no previous plan): entries to an endpoint that is gone',
      next: dns('10.244.1.1'),
      entries: [['10.96.0.10:53', '10.244.1.3:5353'], ['10.96.0.10:53', '10.244.1.1:5353']],
      want: ['10.96.0.10:53 <- 10.244.1.3:5353'],
    },
    {
      name: 'an endpoint whose port changed: the old port is stale, the address alone does not keep it',
      prev: dns('10.244.1.1:5353'),
      next: dns('10.244.1.1:5354'),
      entries: [['10.96.0.10:53', '10.244.1.1:5353'], ['10.96.0.10:53', '10.244.1.1:5354']],
      want: ['10.96.0.10:53 <- 10.244.1.1:5353'],
    },
    {
      name: 'a new Service: entries made before it existed (never DNATed) go',
      prev: plan(),
      next: dns('10.244.1.1'),
      entries: [['10.96.0.10:53', '10.96.0.10:53']],
      want: ['10.96.0.10:53 <- 10.96.0.10:53'],
    },
    {
      name: 'NodePort entries to any node address, stale or never DNATed; live ones stay',
      next: dns('10.244.1.1'),
      entries: [['192.168.50.1:30053', '10.244.1.2:5353'], ['10.244.1.1:30053', '10.244.1.1:30053'], ['192.168.50.1:30053', '10.244.1.1:5353']],
      want: ['192.168.50.1:30053 <- 10.244.1.2:5353', '10.244.1.1:30053 <- 10.244.1.1:30053'],
    },
    {
      name: 'a serving endpoint left out by policy, topology or termination keeps its flows',
      next: plan(port({ clusterEndpoints: eps('10.244.1.1'), externalEndpoints: eps('10.244.1.1'), servingEndpoints: eps('10.244.1.1', '10.244.2.1') })),
      entries: [['10.96.0.10:53', '10.244.2.1:5353']],
      want: [],
    },
    {
      name: 'the pod/node short-cut endpoints count as the Service\'s own',
      next: plan(port({ clusterEndpoints: [], externalEndpoints: [], shortcutEndpoints: eps('10.244.2.1'), servingEndpoints: [] })),
      entries: [['10.96.0.10:53', '10.244.2.1:5353']],
      want: [],
    },
    {
      name: 'a Service without serving endpoints keeps its entries (nothing better to send them to)',
      next: plan(port({})),
      entries: [['10.96.0.10:53', '10.244.1.1:5353']],
      want: [],
    },
    {
      name: 'a removed Service: its DNATed entries go, others to that address are not ours',
      prev: dns('10.244.1.1'),
      next: plan(),
      entries: [['10.96.0.10:53', '10.244.1.1:5353'], ['10.96.0.10:53', '10.96.0.10:53']],
      want: ['10.96.0.10:53 <- 10.244.1.1:5353'],
    },
    {
      name: 'other traffic is left alone; many clients of one stale endpoint need one deletion',
      next: dns('10.244.1.1'),
      entries: [['8.8.8.8:53', '8.8.8.8:53'], ['10.96.0.10:54', '10.244.1.9:54'], ['10.96.0.10:53', '10.244.1.3:5353'], ['10.96.0.10:53', '10.244.1.3:5353']],
      want: ['10.96.0.10:53 <- 10.244.1.3:5353'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(shown(staleFlows(c.prev, c.next, 4, 'udp', c.entries.map(([to, from]) => entry(to!, from!))))).toEqual(c.want));
  }

  it('compares IPv6 addresses whatever their spelling, and keeps families and protocols apart', () => {
    const six = plan(port({ key: 'x/v6', family: 6, protocol: 'SCTP', clusterIPs: ['fd00:96:0::10'], clusterEndpoints: [{ ip: 'fd00:244:0::1', port: 9 }] }));
    const entries = [entry('fd00:96::10:53', 'fd00:244::1:9'), entry('fd00:96::10:53', 'fd00:244::2:9')];
    expect(shown(staleFlows(undefined, six, 6, 'sctp', entries))).toEqual(['fd00:96::10:53 <- fd00:244::2:9']);
    expect(staleFlows(undefined, six, 6, 'udp', entries)).toEqual([]);
    expect(staleFlows(undefined, six, 4, 'sctp', entries)).toEqual([]);
  });
});

describe('tablesToList', () => {
  it('lists only the families and protocols with a UDP or SCTP port, before or now', () => {
    expect(tablesToList(undefined, plan(port({ protocol: 'TCP' })))).toEqual([]);
    expect(tablesToList(plan(port({ key: 'a', family: 6 })), plan(port({ protocol: 'SCTP' })))).toEqual([[4, 'sctp'], [6, 'udp']]);
  });
});

describe('parseConntrackList', () => {
  it('reads the original destination and the reply source of UDP and SCTP lines, skipping anything else', () => {
    const text = [
      'udp      17 29 src=10.244.1.12 dst=10.96.0.14 sport=27500 dport=27053 src=10.244.1.13 dst=10.244.1.12 sport=27053 dport=27500 [ASSURED] mark=0 use=1',
      'udp      17 27 src=10.244.1.12 dst=10.96.0.20 sport=27501 dport=27053 [UNREPLIED] src=10.96.0.20 dst=10.244.1.12 sport=27053 dport=27501 mark=0 use=1',
      'sctp     132 3 ESTABLISHED src=fd00::1 dst=fd00:96::1 sport=1000 dport=3868 src=fd00:244::1 dst=fd00::1 sport=3869 dport=1000 [ASSURED] mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
      '',
    ].join('\n');
    expect(parseConntrackList(text)).toEqual([
      entry('10.96.0.14:27053', '10.244.1.13:27053'),
      entry('10.96.0.20:27053', '10.96.0.20:27053'),
      entry('fd00:96::1:3868', 'fd00:244::1:3869'),
    ]);
  });
});

describe('cleanStaleFlows', () => {
  it('lists each needed table once, deletes by destination and stale source, and takes an empty table as no work', async () => {
    const calls: string[] = [];
    const runner: CommandRunner = {
      async run(cmd, args) {
        calls.push([cmd, ...args].join(' '));
        if (args[0] === '-L' && args.includes('ipv6')) throw new CommandError('conntrack', 1, 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.');
        if (args[0] === '-L') return { stdout: 'udp      17 29 src=10.0.0.2 dst=10.96.0.10 sport=1 dport=53 src=10.244.1.3 dst=10.0.0.2 sport=5353 dport=1 mark=0 use=1\n', stderr: '' };
        return { stdout: '', stderr: '' };
      },
    };
    const next = plan(port({ clusterEndpoints: eps('10.244.1.1') }), port({ key: 'y', family: 6, clusterIPs: ['fd00::10'] }));
    expect(await cleanStaleFlows(runner, undefined, next, silentLogger())).toBe(1);
    expect(calls).toEqual([
      'conntrack -L -f ipv4 -p udp',
      'conntrack -D -f ipv4 -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --reply-src 10.244.1.3 --reply-port-src 5353',
      'conntrack -L -f ipv6 -p udp',
    ]);
  });
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
    const filters = ['10.244.1.1', '10.244.1.2', '10.244.1.3'].map((ip) => ({ family: 4 as const, protocol: 'udp' as const, origDst: '10.96.0.10', origPortDst: 53, replySrc: ip, replyPortSrc: 5353 }));
    expect(await deleteFlows(runner, filters, silentLogger())).toBe(2);
    expect(calls.map((c) => c[0])).toEqual(['conntrack', 'conntrack', 'conntrack']);
    expect(conntrackArgs(filters[0]!)).toEqual(['-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', '--reply-src', '10.244.1.1', '--reply-port-src', '5353']);
  });
});

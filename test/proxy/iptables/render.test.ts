import { describe, expect, it } from 'vitest';
import { render } from '../../../proxy/iptables/render.ts';
import { buildRuleset, type RulesetOptions } from '../../../proxy/iptables/ruleset.ts';
import type { ProxyPlan } from '../../../proxy/plan/types.ts';
import { chainDump, eps, plan, port, readable, type Family } from './plans.ts';

const C = (text: string) => `-m comment --comment "${text}"`;
const web = C('default/web:http');
const cip = `${C('default/web:http cluster IP')} -d 10.96.0.10 -p tcp -m tcp --dport 80`;
const nodePortsJump = `${C('netplane service nodeports; must be the last rule in this chain')} -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j NETPLANE-NODEPORTS`;
const three = eps('10.244.1.11:8080', '10.244.1.12:8080', '10.244.1.13:8080');
const one = eps('10.244.1.11:8080');
const to = (ep: string) => C(`default/web:http -> ${ep}`);

interface Case {
  name: string;
  plan: ProxyPlan;
  family?: Family;
  options?: RulesetOptions;
  table: 'nat' | 'filter';
  chains: string[];
  want: string[];
}

const cases: Case[] = [
  {
    name: 'ClusterIP with 3 endpoints: probabilities 1/3, 1/2, then always; pod CIDR masquerades the rest',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: three })]),
    table: 'nat',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-SVC-web'],
    want: [
      `-A NETPLANE-SERVICES ${cip} -j NETPLANE-SVC-web`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
      `-A NETPLANE-SVC-web ${cip} -j NETPLANE-MARK-NONPOD`,
      `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -m statistic --mode random --probability 0.3333333333 -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-SVC-web ${to('10.244.1.12:8080')} -m statistic --mode random --probability 0.5000000000 -j NETPLANE-SEP-web/10.244.1.12:8080`,
      `-A NETPLANE-SVC-web ${to('10.244.1.13:8080')} -j NETPLANE-SEP-web/10.244.1.13:8080`,
    ],
  },
  {
    name: 'endpoint chain: hairpin mark, then DNAT',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: one })]),
    table: 'nat',
    chains: ['NETPLANE-SEP-web/10.244.1.11:8080', 'NETPLANE-MARK-NONPOD', 'NETPLANE-POSTROUTING'],
    want: [
      '-A NETPLANE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A NETPLANE-POSTROUTING -j MARK --xor-mark 0x4000',
      `-A NETPLANE-POSTROUTING ${C('netplane service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
      `-A NETPLANE-MARK-NONPOD ${C('pod traffic is not masqueraded')} -s 10.244.0.0/16 -j RETURN`,
      '-A NETPLANE-MARK-NONPOD -j NETPLANE-MARK-MASQ',
      `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -s 10.244.1.11 -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -p tcp -m tcp -j DNAT --to-destination 10.244.1.11:8080`,
    ],
  },
  {
    name: 'no endpoints, TCP: REJECT with a TCP reset in filter',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], externalIPs: ['192.168.60.20'] })]),
    table: 'filter',
    chains: ['NETPLANE-SERVICES'],
    want: [
      `-A NETPLANE-SERVICES ${C('default/web:http has no endpoints')} -d 10.96.0.10 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset`,
      `-A NETPLANE-SERVICES ${C('default/web:http has no endpoints')} -d 192.168.60.20 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
    ],
  },
  {
    name: 'no endpoints: nothing in nat',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], externalIPs: ['192.168.60.20'], nodePort: 30080 })]),
    table: 'nat',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-NODEPORTS'],
    want: [`-A NETPLANE-SERVICES ${nodePortsJump}`],
  },
  {
    name: 'no endpoints, UDP NodePort: ICMP port unreachable',
    plan: plan([port('dns', { protocol: 'UDP', clusterIPs: ['10.96.0.53'], nodePort: 30053 })]),
    table: 'filter',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-NODEPORTS'],
    want: [
      `-A NETPLANE-SERVICES ${C('default/dns:http has no endpoints')} -d 10.96.0.53 -p udp -m udp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
      `-A NETPLANE-NODEPORTS ${C('default/dns:http has no endpoints')} -p udp -m udp --dport 30053 -j REJECT --reject-with icmp-port-unreachable`,
    ],
  },
  {
    name: 'no endpoints, IPv6 UDP: ICMPv6 port unreachable; node ports exclude ::1',
    plan: plan([port('dns', { family: 6, protocol: 'UDP', clusterIPs: ['fd00:96::53'] })]),
    family: 6,
    table: 'filter',
    chains: ['NETPLANE-SERVICES'],
    want: [
      `-A NETPLANE-SERVICES ${C('default/dns:http has no endpoints')} -d fd00:96::53 -p udp -m udp --dport 80 -j REJECT --reject-with icmp6-port-unreachable`,
      `-A NETPLANE-SERVICES ${C('netplane service nodeports; must be the last rule in this chain')} -m addrtype --dst-type LOCAL ! -d ::1/128 -j NETPLANE-NODEPORTS`,
    ],
  },
  {
    name: 'Cluster policy NodePort and external IP: masquerade from outside the pod network, all endpoints',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], externalIPs: ['192.168.60.20'], nodePort: 30080, clusterEndpoints: one })]),
    table: 'nat',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-NODEPORTS', 'NETPLANE-EXT-web'],
    want: [
      `-A NETPLANE-SERVICES ${cip} -j NETPLANE-SVC-web`,
      `-A NETPLANE-SERVICES ${C('default/web:http external IP')} -d 192.168.60.20 -p tcp -m tcp --dport 80 -j NETPLANE-EXT-web`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
      `-A NETPLANE-NODEPORTS ${C('default/web:http node port')} -p tcp -m tcp --dport 30080 -j NETPLANE-EXT-web`,
      `-A NETPLANE-EXT-web ${C('masquerade traffic for default/web:http external destinations')} -j NETPLANE-MARK-MASQ`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVC-web',
    ],
  },
  {
    name: 'Local policy with a local endpoint: pods and the node use all endpoints, outside keeps its address',
    plan: plan([port('web', { nodePort: 30080, externalLocal: true, clusterEndpoints: eps('10.244.1.11:8080', '10.244.2.11:8080'), externalEndpoints: one })]),
    table: 'nat',
    chains: ['NETPLANE-EXT-web', 'NETPLANE-SVX-web'],
    want: [
      `-A NETPLANE-SVX-web ${to('10.244.1.11:8080')} -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-EXT-web ${C('pod traffic for default/web:http external destinations')} -s 10.244.0.0/16 -j NETPLANE-SVC-web`,
      `-A NETPLANE-EXT-web ${C('masquerade LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-EXT-web ${C('route LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-SVC-web`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVX-web',
    ],
  },
  {
    name: 'Local policy without a local endpoint: short cuts in nat, DROP in filter',
    plan: plan([port('web', { nodePort: 30080, externalLocal: true, clusterEndpoints: eps('10.244.2.11:8080'), externalEndpoints: [], externalNoEndpoints: 'drop' })]),
    table: 'filter',
    chains: ['NETPLANE-NODEPORTS'],
    want: [`-A NETPLANE-NODEPORTS ${C('default/web:http has no local endpoints')} -p tcp -m tcp --dport 30080 -j DROP`],
  },
  {
    name: 'Local policy without a local endpoint: EXT has no fall-through to endpoints',
    plan: plan([port('web', { nodePort: 30080, externalLocal: true, clusterEndpoints: eps('10.244.2.11:8080'), externalEndpoints: [], externalNoEndpoints: 'drop' })]),
    table: 'nat',
    chains: ['NETPLANE-EXT-web', 'NETPLANE-SVX-web'],
    want: [
      `-A NETPLANE-EXT-web ${C('pod traffic for default/web:http external destinations')} -s 10.244.0.0/16 -j NETPLANE-SVC-web`,
      `-A NETPLANE-EXT-web ${C('masquerade LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-EXT-web ${C('route LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-SVC-web`,
    ],
  },
  {
    name: 'both policies Local: pods and the node short-cut through SCA to every endpoint, not the local-only SVC',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, externalLocal: true, clusterEndpoints: one, externalEndpoints: one, shortcutEndpoints: eps('10.244.1.11:8080', '10.244.2.11:8080') })]),
    table: 'nat',
    chains: ['NETPLANE-EXT-web', 'NETPLANE-SCA-web'],
    want: [
      `-A NETPLANE-SCA-web ${to('10.244.1.11:8080')} -m statistic --mode random --probability 0.5000000000 -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-SCA-web ${to('10.244.2.11:8080')} -j NETPLANE-SEP-web/10.244.2.11:8080`,
      `-A NETPLANE-EXT-web ${C('pod traffic for default/web:http external destinations')} -s 10.244.0.0/16 -j NETPLANE-SCA-web`,
      `-A NETPLANE-EXT-web ${C('masquerade LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-EXT-web ${C('route LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-SCA-web`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVC-web',
    ],
  },
  {
    name: 'no pod CIDR: cluster IP never masqueraded, Cluster-policy external always',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: one })], { clusterCIDRs: { 4: [], 6: [] } }),
    table: 'nat',
    chains: ['NETPLANE-SVC-web', 'NETPLANE-EXT-web'],
    want: [
      `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-EXT-web ${C('masquerade traffic for default/web:http external destinations')} -j NETPLANE-MARK-MASQ`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVC-web',
    ],
  },
  {
    name: 'masquerade-all: cluster IP and Cluster-policy external always marked',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: one })], { masqueradeAll: true }),
    table: 'nat',
    chains: ['NETPLANE-SVC-web', 'NETPLANE-EXT-web'],
    want: [
      `-A NETPLANE-SVC-web ${cip} -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-EXT-web ${C('masquerade traffic for default/web:http external destinations')} -j NETPLANE-MARK-MASQ`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVC-web',
    ],
  },
  {
    name: 'masquerade-all with the Local policy: pods marked, traffic from outside still not',
    plan: plan([port('web', { nodePort: 30080, externalLocal: true, clusterEndpoints: one })], { masqueradeAll: true }),
    table: 'nat',
    chains: ['NETPLANE-EXT-web'],
    want: [
      `-A NETPLANE-EXT-web ${C('masquerade pod traffic for default/web:http external destinations')} -s 10.244.0.0/16 -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-EXT-web ${C('pod traffic for default/web:http external destinations')} -s 10.244.0.0/16 -j NETPLANE-SVC-web`,
      `-A NETPLANE-EXT-web ${C('masquerade LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-EXT-web ${C('route LOCAL traffic for default/web:http external destinations')} -m addrtype --src-type LOCAL -j NETPLANE-SVC-web`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVC-web',
    ],
  },
  {
    name: 'ClientIP affinity: recent checks first, set in the endpoint chain',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: eps('10.244.1.11:8080', '10.244.1.12:8080'), affinitySeconds: 600 })], { clusterCIDRs: { 4: [], 6: [] } }),
    table: 'nat',
    chains: ['NETPLANE-SVC-web', 'NETPLANE-SEP-web/10.244.1.11:8080'],
    want: [
      `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -m recent --name NETPLANE-SEP-web/10.244.1.11:8080 --rcheck --seconds 600 --reap -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-SVC-web ${to('10.244.1.12:8080')} -m recent --name NETPLANE-SEP-web/10.244.1.12:8080 --rcheck --seconds 600 --reap -j NETPLANE-SEP-web/10.244.1.12:8080`,
      `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -m statistic --mode random --probability 0.5000000000 -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-SVC-web ${to('10.244.1.12:8080')} -j NETPLANE-SEP-web/10.244.1.12:8080`,
      `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -s 10.244.1.11 -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -m recent --name NETPLANE-SEP-web/10.244.1.11:8080 --set -p tcp -m tcp -j DNAT --to-destination 10.244.1.11:8080`,
    ],
  },
  {
    name: 'source ranges: FW chain lets the ranges through',
    plan: plan([port('web', { loadBalancerIPs: ['192.168.60.10'], sourceRanges: ['192.168.50.0/24', '10.0.0.0/8'], clusterEndpoints: one })]),
    table: 'nat',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-FW-web'],
    want: [
      `-A NETPLANE-SERVICES ${C('default/web:http loadbalancer IP')} -d 192.168.60.10 -p tcp -m tcp --dport 80 -j NETPLANE-FW-web`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
      `-A NETPLANE-FW-web ${C('default/web:http loadbalancer IP')} -s 192.168.50.0/24 -j NETPLANE-EXT-web`,
      `-A NETPLANE-FW-web ${C('default/web:http loadbalancer IP')} -s 10.0.0.0/8 -j NETPLANE-EXT-web`,
      `-A NETPLANE-FW-web ${C('other traffic to default/web:http will be dropped by the filter table')}`,
    ],
  },
  {
    name: 'source ranges: what was not DNATed is dropped in filter, before anything else',
    plan: plan([
      port('web', { loadBalancerIPs: ['192.168.60.10'], sourceRanges: ['192.168.50.0/24'], clusterEndpoints: one }),
      port('a', { clusterIPs: ['10.96.0.1'] }),
    ]),
    table: 'filter',
    chains: ['NETPLANE-SERVICES'],
    want: [
      `-A NETPLANE-SERVICES ${C('default/web:http traffic not accepted by NETPLANE-FW-web')} -d 192.168.60.10 -p tcp -m tcp --dport 80 -j DROP`,
      `-A NETPLANE-SERVICES ${C('default/a:http has no endpoints')} -d 10.96.0.1 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset`,
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
    ],
  },
  {
    name: 'IPv6 ClusterIP: bracketed DNAT target, IPv6 pod CIDR',
    plan: plan([port('web', { family: 6, clusterIPs: ['fd00:96::10'], clusterEndpoints: eps('[fd00:244:1::11]:8080') })]),
    family: 6,
    table: 'nat',
    chains: ['NETPLANE-SVC-web', 'NETPLANE-SEP-web/[fd00:244:1::11]:8080', 'NETPLANE-MARK-NONPOD'],
    want: [
      `-A NETPLANE-MARK-NONPOD ${C('pod traffic is not masqueraded')} -s fd00:244::/48 -j RETURN`,
      '-A NETPLANE-MARK-NONPOD -j NETPLANE-MARK-MASQ',
      `-A NETPLANE-SVC-web ${C('default/web:http cluster IP')} -d fd00:96::10 -p tcp -m tcp --dport 80 -j NETPLANE-MARK-NONPOD`,
      `-A NETPLANE-SVC-web ${to('[fd00:244:1::11]:8080')} -j NETPLANE-SEP-web/[fd00:244:1::11]:8080`,
      `-A NETPLANE-SEP-web/[fd00:244:1::11]:8080 ${web} -s fd00:244:1::11 -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-SEP-web/[fd00:244:1::11]:8080 ${web} -p tcp -m tcp -j DNAT --to-destination [fd00:244:1::11]:8080`,
    ],
  },
  {
    name: 'internal Local policy without a local endpoint: cluster IP dropped, external traffic to all endpoints',
    plan: plan([port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: [], clusterNoEndpoints: 'drop', externalEndpoints: one })]),
    table: 'nat',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-EXT-web', 'NETPLANE-SVX-web', 'NETPLANE-SVC-web'],
    want: [
      `-A NETPLANE-SERVICES ${nodePortsJump}`,
      `-A NETPLANE-SVX-web ${to('10.244.1.11:8080')} -j NETPLANE-SEP-web/10.244.1.11:8080`,
      `-A NETPLANE-EXT-web ${C('masquerade traffic for default/web:http external destinations')} -j NETPLANE-MARK-MASQ`,
      '-A NETPLANE-EXT-web -j NETPLANE-SVX-web',
    ],
  },
  {
    name: 'node-port CIDRs: one jump per CIDR, local addresses only',
    plan: plan([port('web', { nodePort: 30080, clusterEndpoints: one })], { nodePortAddresses: { 4: ['192.168.50.0/24', '10.0.0.1/32'], 6: [] } }),
    table: 'nat',
    chains: ['NETPLANE-SERVICES'],
    want: [
      `-A NETPLANE-SERVICES ${C('netplane service nodeports; must be the last rule in this chain')} -d 192.168.50.0/24 -m addrtype --dst-type LOCAL -j NETPLANE-NODEPORTS`,
      `-A NETPLANE-SERVICES ${C('netplane service nodeports; must be the last rule in this chain')} -d 10.0.0.1/32 -m addrtype --dst-type LOCAL -j NETPLANE-NODEPORTS`,
    ],
  },
  {
    name: 'SCTP',
    plan: plan([port('sig', { protocol: 'SCTP', clusterIPs: ['10.96.0.30'], clusterEndpoints: eps('10.244.1.11:3868') })], { clusterCIDRs: { 4: [], 6: [] } }),
    table: 'nat',
    chains: ['NETPLANE-SEP-sig/10.244.1.11:3868'],
    want: [
      `-A NETPLANE-SEP-sig/10.244.1.11:3868 ${C('default/sig:http')} -s 10.244.1.11 -j NETPLANE-MARK-MASQ`,
      `-A NETPLANE-SEP-sig/10.244.1.11:3868 ${C('default/sig:http')} -p sctp -m sctp -j DNAT --to-destination 10.244.1.11:3868`,
    ],
  },
  {
    name: 'health-check node ports are accepted in a chain of their own (INPUT jumps to it for every packet)',
    plan: plan([], { healthChecks: [{ port: 32000, namespace: 'default', name: 'web', localEndpoints: 1 }] }),
    table: 'filter',
    chains: ['NETPLANE-SERVICES', 'NETPLANE-HEALTH-CHECKS'],
    want: [`-A NETPLANE-SERVICES ${nodePortsJump}`, `-A NETPLANE-HEALTH-CHECKS ${C('default/web health check node port')} -p tcp -m tcp --dport 32000 -j ACCEPT`],
  },
  {
    name: "forwarding (kube-proxy's KUBE-FORWARD): INVALID dropped, marked and established traffic accepted",
    plan: plan([]),
    table: 'filter',
    chains: ['NETPLANE-FORWARD'],
    want: [
      '-A NETPLANE-FORWARD -m conntrack --ctstate INVALID -j DROP',
      `-A NETPLANE-FORWARD ${C('netplane forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`,
      `-A NETPLANE-FORWARD ${C('netplane forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ],
  },
  {
    name: 'forwarding with nf_conntrack_tcp_be_liberal: INVALID packets are not dropped',
    plan: plan([]),
    family: 6,
    options: { tcpBeLiberal: true },
    table: 'filter',
    chains: ['NETPLANE-FORWARD'],
    want: [
      `-A NETPLANE-FORWARD ${C('netplane forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`,
      `-A NETPLANE-FORWARD ${C('netplane forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ],
  },
];

describe('buildRuleset', () => {
  it.each(cases)('$name', (c) => {
    const rs = buildRuleset(c.plan, c.family ?? 4, c.options);
    expect(chainDump(rs, c.plan, c.table, (n) => c.chains.includes(n))).toBe(c.want.join('\n'));
  });

  it('counts endpoints once per port and endpoint, shared by the SVC and SVX chains', () => {
    const p = plan([port('web', { nodePort: 30080, externalLocal: true, clusterEndpoints: eps('10.244.1.11:8080', '10.244.2.11:8080'), externalEndpoints: one })]);
    const rs = buildRuleset(p, 4);
    expect(rs.endpoints).toBe(2);
    expect([...rs.tables.nat.keys()].filter((n) => n.startsWith('NETPLANE-SEP-'))).toHaveLength(2);
  });

  it('keeps every chain name within the 28 characters iptables allows', () => {
    const p = plan([port('a-very-long-service-name-that-goes-on-and-on', { clusterIPs: ['10.96.0.10'], nodePort: 30000, loadBalancerIPs: ['1.2.3.4'], sourceRanges: ['1.0.0.0/8'], externalLocal: true, clusterEndpoints: three, externalEndpoints: one })]);
    const names = [...buildRuleset(p, 4).tables.nat.keys()];
    expect(names.length).toBeGreaterThan(8);
    for (const n of names) expect(n.length).toBeLessThanOrEqual(28);
  });

  it('leaves out ports with addresses of the wrong family or malformed ones, and says so', () => {
    const p = plan([
      port('bad', { clusterIPs: ['10.96.0.10 -j ACCEPT'], clusterEndpoints: one }),
      port('v6', { clusterIPs: ['fd00::1'], clusterEndpoints: one }),
      port('ok', { clusterIPs: ['10.96.0.11'], clusterEndpoints: one }),
    ]);
    const rs = buildRuleset(p, 4);
    expect(rs.skipped).toHaveLength(2);
    expect(rs.skipped[0]).toContain('default/bad:http/TCP/v4');
    expect(render(p, 4)).not.toMatch(/10\.96\.0\.10|fd00::1/);
    expect(render(p, 4)).toContain('-d 10.96.0.11 ');
  });

  // kube-proxy declares a Service's chains only where something jumps to them (found by an audit: a ClusterIP
  // Service with internalTrafficPolicy Local got an SVX chain, and SEP chains, for the external traffic it cannot have).
  it.each([
    ['internal Local policy, ClusterIP only', port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: one, externalEndpoints: three, shortcutEndpoints: three })],
    ['internal Local policy with a node port', port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: one, externalEndpoints: three, shortcutEndpoints: three })],
    ['both Local policies, no local endpoint', port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, externalLocal: true, clusterEndpoints: [], clusterNoEndpoints: 'drop', externalEndpoints: [], externalNoEndpoints: 'drop', shortcutEndpoints: three })],
    ['external Local policy, load balancer with source ranges', port('web', { clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['192.168.60.10'], sourceRanges: ['10.0.0.0/8'], externalLocal: true, clusterEndpoints: three, externalEndpoints: one, shortcutEndpoints: three })],
  ])('%s: every chain of the port is jumped to, and only the endpoints it can reach get one', (_name, p) => {
    const rs = buildRuleset(plan([p]), 4);
    const rules = [...rs.tables.nat.values()].flat().join('\n');
    const own = [...rs.tables.nat.keys()].filter((c) => /^NETPLANE-(SVC|SVX|SCA|EXT|FW|SEP)-/.test(c));
    expect(own.filter((c) => !rules.includes(`-j ${c}`))).toEqual([]);
  });

  it('an empty plan still has the fixed chains in both families', () => {
    for (const f of [4, 6] as const) {
      const text = render(plan([]), f);
      for (const c of ['NETPLANE-SERVICES', 'NETPLANE-NODEPORTS', 'NETPLANE-POSTROUTING', 'NETPLANE-MARK-MASQ', 'NETPLANE-MARK-NONPOD', 'NETPLANE-FORWARD', 'NETPLANE-HEALTH-CHECKS']) {
        expect(text).toContain(`:${c} - [0:0]`);
      }
    }
  });
});

describe('render', () => {
  it('writes a whole plan as one restore input: declarations, rules, COMMIT per table', () => {
    const p = plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: one })], { nodePortAddresses: { 4: [], 6: [] } });
    expect(readable(render(p, 4), p)).toBe(
      [
        '*nat',
        ':NETPLANE-SERVICES - [0:0]',
        ':NETPLANE-NODEPORTS - [0:0]',
        ':NETPLANE-POSTROUTING - [0:0]',
        ':NETPLANE-MARK-MASQ - [0:0]',
        ':NETPLANE-MARK-NONPOD - [0:0]',
        ':NETPLANE-SVC-web - [0:0]',
        ':NETPLANE-SEP-web/10.244.1.11:8080 - [0:0]',
        `-A NETPLANE-SERVICES ${cip} -j NETPLANE-SVC-web`,
        '-A NETPLANE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
        '-A NETPLANE-POSTROUTING -j MARK --xor-mark 0x4000',
        `-A NETPLANE-POSTROUTING ${C('netplane service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
        '-A NETPLANE-MARK-MASQ -j MARK --or-mark 0x4000',
        `-A NETPLANE-MARK-NONPOD ${C('pod traffic is not masqueraded')} -s 10.244.0.0/16 -j RETURN`,
        '-A NETPLANE-MARK-NONPOD -j NETPLANE-MARK-MASQ',
        `-A NETPLANE-SVC-web ${cip} -j NETPLANE-MARK-NONPOD`,
        `-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -j NETPLANE-SEP-web/10.244.1.11:8080`,
        `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -s 10.244.1.11 -j NETPLANE-MARK-MASQ`,
        `-A NETPLANE-SEP-web/10.244.1.11:8080 ${web} -p tcp -m tcp -j DNAT --to-destination 10.244.1.11:8080`,
        'COMMIT',
        '*filter',
        ':NETPLANE-SERVICES - [0:0]',
        ':NETPLANE-NODEPORTS - [0:0]',
        ':NETPLANE-FORWARD - [0:0]',
        ':NETPLANE-HEALTH-CHECKS - [0:0]',
        '-A NETPLANE-FORWARD -m conntrack --ctstate INVALID -j DROP',
        `-A NETPLANE-FORWARD ${C('netplane forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`,
        `-A NETPLANE-FORWARD ${C('netplane forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
});

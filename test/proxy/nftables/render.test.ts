// What the nftables backend programs for a plan, asserted as sorted text dumps of a fake nft (which also checks
// that every transaction only references what exists, in order, as the kernel does).
import { describe, expect, it } from 'vitest';
import { affinityIdKey, affinityIds, type AffinityRole } from '../../../proxy/nftables/affinity.ts';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import { FakeNft } from '../../../proxy/nftables/fake.ts';
import { render } from '../../../proxy/nftables/render.ts';
import type { PortPlan, ProxyPlan } from '../../../proxy/plan/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { eps, plan, port, served, smallPlan as small } from './plans.ts';

/** The state a fake nft holds after a full sync of `p`. */
async function programmed(p: ProxyPlan): Promise<string[]> {
  const fake = new FakeNft();
  await new NftablesBackend(fake, { log: silentLogger() }).sync(p, { full: true });
  return fake.dump();
}

/** The affinity ID of a port's endpoint list in a plan, as element text. */
function idOf(p: ProxyPlan, name: string, role: AffinityRole = 'all', family: 4 | 6 = 4): string {
  const port = p.ports.find((x: PortPlan) => x.name === name && x.family === family)!;
  return String(affinityIds(p.ports).get(affinityIdKey(port, role)));
}


describe('nftables render', () => {
  it('puts every Service into shared maps, with one load-balancing chain per pool and endpoint count', async () => {
    const dump = await programmed(small);
    const [sticky, web6, mixed6] = [idOf(small, 'sticky'), idOf(small, 'web6', 'all', 6), idOf(small, 'mixed6', 'all', 6)];
    expect(dump.filter((l) => l.startsWith('element') || /-lb-\d+ 00 /.test(l))).toEqual([
      `element ip netplane affinity-10800 ${sticky}`,
      `element ip netplane affinity-ids 10.96.0.40 . tcp . 80 : ${sticky}`,
      // Every cluster IP once, whatever its ports: what still heads for one after DNAT is refused.
      'element ip netplane cluster-ips 10.96.0.10',
      'element ip netplane cluster-ips 10.96.0.20',
      'element ip netplane cluster-ips 10.96.0.30',
      'element ip netplane cluster-ips 10.96.0.40',
      'element ip netplane cluster-lb-1-endpoints 10.96.0.10 . udp . 53 . 0 : 10.244.1.11 . 5353',
      'element ip netplane cluster-lb-2-endpoints 10.96.0.10 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane cluster-lb-2-endpoints 10.96.0.10 . tcp . 80 . 1 : 10.244.1.12 . 8080',
      'element ip netplane cluster-lb-2-endpoints 10.96.0.20 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane cluster-lb-2-endpoints 10.96.0.20 . tcp . 80 . 1 : 10.244.2.21 . 8080',
      'element ip netplane cluster-lb-2-endpoints 203.0.113.20 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane cluster-lb-2-endpoints 203.0.113.20 . tcp . 80 . 1 : 10.244.2.21 . 8080',
      'element ip netplane cluster-lb-3-endpoints 10.96.0.40 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane cluster-lb-3-endpoints 10.96.0.40 . tcp . 80 . 1 : 10.244.1.12 . 8080',
      'element ip netplane cluster-lb-3-endpoints 10.96.0.40 . tcp . 80 . 2 : 10.244.1.13 . 8080',
      'element ip netplane cluster-vips 10.96.0.10 . tcp . 80 : goto cluster-lb-2',
      'element ip netplane cluster-vips 10.96.0.10 . udp . 53 : goto cluster-lb-1',
      'element ip netplane cluster-vips 10.96.0.20 . tcp . 80 : goto cluster-lb-2',
      'element ip netplane cluster-vips 10.96.0.40 . tcp . 80 : goto cluster-lb-3',
      'element ip netplane external-lb-1-endpoints 203.0.113.20 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane external-lb-1-endpoints 203.0.113.30 . tcp . 80 . 0 : 10.244.1.13 . 8080',
      'element ip netplane external-lb-2-endpoints 203.0.113.10 . tcp . 80 . 0 : 10.244.1.11 . 8080',
      'element ip netplane external-lb-2-endpoints 203.0.113.10 . tcp . 80 . 1 : 10.244.1.12 . 8080',
      'element ip netplane external-vips 203.0.113.10 . tcp . 80 : goto external-lb-2',
      'element ip netplane external-vips 203.0.113.30 . tcp . 80 : goto external-lb-1',
      'element ip netplane fallback-nodeport-lb-2-endpoints tcp . 30081 . 0 : 10.244.1.11 . 8080',
      'element ip netplane fallback-nodeport-lb-2-endpoints tcp . 30081 . 1 : 10.244.2.21 . 8080',
      'element ip netplane fallback-nodeports tcp . 30081 : goto fallback-nodeport-lb-2',
      'element ip netplane fallback-vips 203.0.113.20 . tcp . 80 : goto cluster-lb-2',
      'element ip netplane hairpin 10.244.1.11 . 10.244.1.11',
      'element ip netplane hairpin 10.244.1.12 . 10.244.1.12',
      'element ip netplane hairpin 10.244.1.13 . 10.244.1.13',
      'element ip netplane hairpin 10.244.2.21 . 10.244.2.21',
      'element ip netplane local-nodeports tcp . 30081 : goto nodeport-lb-1',
      'element ip netplane local-vips 203.0.113.20 . tcp . 80 : goto external-lb-1',
      'element ip netplane no-endpoints 10.96.0.30 . tcp . 80 : goto service-reject',
      'element ip netplane nodeport-lb-1-endpoints tcp . 30081 . 0 : 10.244.1.11 . 8080',
      'element ip netplane nodeport-lb-2-endpoints tcp . 30080 . 0 : 10.244.1.11 . 8080',
      'element ip netplane nodeport-lb-2-endpoints tcp . 30080 . 1 : 10.244.1.12 . 8080',
      'element ip netplane nodeports tcp . 30080 : goto nodeport-lb-2',
      'element ip netplane pod-cidrs 10.244.0.0/16',
      'element ip netplane source-ranged-vips 203.0.113.30 . tcp . 80',
      'element ip netplane source-ranges 203.0.113.30 . tcp . 80 . 10.0.0.0/8',
      'element ip netplane source-ranges 203.0.113.30 . tcp . 80 . 192.168.7.1',
      `element ip6 netplane affinity-60 ${web6}`,
      `element ip6 netplane affinity-ids fd00:96::10 . tcp . 80 : ${web6}`,
      `element ip6 netplane affinity-ids fd00:96::50 . tcp . 80 : ${mixed6}`,
      `element ip6 netplane affinity-ports ${web6} : 8080`,
      'element ip6 netplane cluster-ips fd00:96::10',
      'element ip6 netplane cluster-ips fd00:96::50',
      'element ip6 netplane cluster-lb-1-endpoints fd00:96::10 . tcp . 80 . 0 : fd00:244:1::11 . 8080',
      'element ip6 netplane cluster-vips fd00:96::10 . tcp . 80 : goto cluster-lb-1',
      'element ip6 netplane cluster-vips fd00:96::50 . tcp . 80 : goto sticky-2-60',
      'element ip6 netplane hairpin fd00:244:1::11 . fd00:244:1::11',
      'element ip6 netplane hairpin fd00:244:1::12 . fd00:244:1::12',
      'element ip6 netplane pod-cidrs fd00:244::/32',
      `element ip6 netplane sticky-2-60-endpoints-0 ${mixed6} : fd00:244:1::11 . 8080`,
      `element ip6 netplane sticky-2-60-endpoints-1 ${mixed6} : fd00:244:1::12 . 8081`,
      'rule ip netplane cluster-lb-1 00 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @cluster-lb-1-endpoints',
      'rule ip netplane cluster-lb-2 00 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @cluster-lb-2-endpoints',
      'rule ip netplane cluster-lb-3 00 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @cluster-lb-3-endpoints',
      'rule ip netplane external-lb-1 00 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @external-lb-1-endpoints',
      'rule ip netplane external-lb-2 00 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @external-lb-2-endpoints',
      'rule ip netplane fallback-nodeport-lb-2 00 dnat ip to meta l4proto . th dport . numgen random mod 2 map @fallback-nodeport-lb-2-endpoints',
      'rule ip netplane nodeport-lb-1 00 dnat ip to meta l4proto . th dport . numgen random mod 1 map @nodeport-lb-1-endpoints',
      'rule ip netplane nodeport-lb-2 00 dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-lb-2-endpoints',
      'rule ip6 netplane cluster-lb-1 00 dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 1 map @cluster-lb-1-endpoints',
    ].sort());
  });

  it('keeps ClientIP affinity per Service port: its cluster IP, external and LB IPs and NodePort all map to the ID of their endpoint list', async () => {
    const p = plan([served('a', eps(['10.244.1.11', '10.244.1.12']), { clusterIPs: ['10.96.0.1'], externalIPs: ['198.51.100.1'], loadBalancerIPs: ['203.0.113.1'], nodePort: 30001, affinitySeconds: 30 })]);
    const id = idOf(p, 'a');
    expect((await programmed(p)).filter((l) => /^element ip netplane affinity/.test(l))).toEqual([
      `element ip netplane affinity-30 ${id}`,
      `element ip netplane affinity-ids 10.96.0.1 . tcp . 80 : ${id}`,
      `element ip netplane affinity-ids 198.51.100.1 . tcp . 80 : ${id}`,
      `element ip netplane affinity-ids 203.0.113.1 . tcp . 80 : ${id}`,
      `element ip netplane affinity-nodeport-ids tcp . 30001 : ${id}`,
    ]);
  });

  it('gives a Local-policy affinity port two IDs: this node\'s list for outside clients, the Cluster list for pods, the node and the cluster IP', async () => {
    const p = plan([
      port('l', { clusterIPs: ['10.96.0.2'], loadBalancerIPs: ['203.0.113.2'], nodePort: 30002, externalLocal: true, clusterEndpoints: eps(['10.244.1.11', '10.244.2.21']), externalEndpoints: eps(['10.244.1.11']), affinitySeconds: 30 }),
    ]);
    const [all, local] = [idOf(p, 'l', 'all'), idOf(p, 'l', 'local')];
    expect(all).not.toBe(local);
    expect((await programmed(p)).filter((l) => /^element ip netplane affinity/.test(l))).toEqual([
      `element ip netplane affinity-30 ${all}`,
      `element ip netplane affinity-30 ${local}`,
      `element ip netplane affinity-fallback-ids 203.0.113.2 . tcp . 80 : ${all}`,
      `element ip netplane affinity-fallback-nodeport-ids tcp . 30002 : ${all}`,
      `element ip netplane affinity-ids 10.96.0.2 . tcp . 80 : ${all}`,
      `element ip netplane affinity-local-ids 203.0.113.2 . tcp . 80 : ${local}`,
      `element ip netplane affinity-local-nodeport-ids tcp . 30002 : ${local}`,
    ].sort());
  });

  it('records IPv6 ClientIP affinity under a hash of client and ID and the ID, with the endpoint address, its port from affinity-ports', async () => {
    const p = plan([served('a', eps(['fd00:244:1::11', 'fd00:244:1::12']), { family: 6, clusterIPs: ['fd00:96::1'], affinitySeconds: 30, nodePort: 30002 })]);
    const id = idOf(p, 'a', 'all', 6);
    const dump = await programmed(p);
    const hash = 'jhash ip6 saddr . meta mark mod 4294967295 seed 0x6e70';
    const lines = (re: RegExp) => dump.filter((l) => re.test(l));
    expect(lines(/^element ip6 netplane affinity/)).toEqual([
      `element ip6 netplane affinity-30 ${id}`,
      `element ip6 netplane affinity-ids fd00:96::1 . tcp . 80 : ${id}`,
      `element ip6 netplane affinity-nodeport-ids tcp . 30002 : ${id}`,
      `element ip6 netplane affinity-ports ${id} : 8080`,
    ]);
    expect(lines(/^rule ip6 netplane affinity-record /)).toEqual([
      `rule ip6 netplane affinity-record 00 ct status dnat meta mark @affinity-30 update @affinity { ${hash} . meta mark timeout 30s : ip6 daddr }`,
      'rule ip6 netplane affinity-record 01 meta mark set ct id map @affinity-saved delete @affinity-pending { ct id }',
    ]);
    expect(dump).toEqual(expect.arrayContaining([
      'map ip6 netplane affinity { typeof numgen random mod 2 . meta mark : ip6 daddr; size 1048576; flags dynamic,timeout; timeout 3h; }',
      'map ip6 netplane affinity-ports { type mark : inet_service; }',
      'set ip6 netplane affinity-30 { type mark; }',
      `rule ip6 netplane services 03 meta l4proto { tcp, udp, sctp } ip6 daddr . meta l4proto . th dport @affinity-ids update @affinity-saved { ct id : meta mark } update @affinity-pending { ct id } meta mark set ip6 daddr . meta l4proto . th dport map @affinity-ids dnat ip6 to ${hash} . meta mark map @affinity : meta mark map @affinity-ports`,
      `rule ip6 netplane nodeports 02 meta l4proto { tcp, udp, sctp } meta l4proto . th dport @affinity-nodeport-ids update @affinity-saved { ct id : meta mark } update @affinity-pending { ct id } meta mark set meta l4proto . th dport map @affinity-nodeport-ids dnat ip6 to ${hash} . meta mark map @affinity : meta mark map @affinity-ports`,
    ]));
    // New clients are balanced by the ordinary chains.
    expect(dump.filter((l) => /sticky-/.test(l))).toEqual([]);
    expect(dump).toContain('element ip6 netplane cluster-vips fd00:96::1 . tcp . 80 : goto cluster-lb-2');
  });

  it('gives IPv6 affinity lists whose endpoints listen on different ports a chain per endpoint count and timeout, shared by every address and NodePort: known (client, ID) hashes first, then a random pick', async () => {
    const twoWay = plan([
      served('a', [...eps(['fd00:244:1::11']), ...eps(['fd00:244:1::12'], 8081)], { family: 6, clusterIPs: ['fd00:96::1'], affinitySeconds: 30 }),
      served('b', [...eps(['fd00:244:1::21']), ...eps(['fd00:244:1::22'], 8081)], { family: 6, clusterIPs: ['fd00:96::2'], affinitySeconds: 30, nodePort: 30002 }),
    ]);
    const [a, b] = [idOf(twoWay, 'a', 'all', 6), idOf(twoWay, 'b', 'all', 6)];
    const dump = (await programmed(twoWay)).filter((l) => /^(element|rule) .*sticky|^element ip6 netplane affinity-(nodeport-)?ids /.test(l));
    const hash = 'jhash ip6 saddr . meta mark mod 4294967295 seed 0x6e70';
    const c = 'sticky-2-30';
    expect(dump).toEqual([
      `element ip6 netplane affinity-ids fd00:96::1 . tcp . 80 : ${a}`,
      `element ip6 netplane affinity-ids fd00:96::2 . tcp . 80 : ${b}`,
      `element ip6 netplane affinity-nodeport-ids tcp . 30002 : ${b}`,
      'element ip6 netplane cluster-vips fd00:96::1 . tcp . 80 : goto sticky-2-30',
      'element ip6 netplane cluster-vips fd00:96::2 . tcp . 80 : goto sticky-2-30',
      'element ip6 netplane nodeports tcp . 30002 : goto sticky-2-30',
      `element ip6 netplane ${c}-endpoints-0 ${a} : fd00:244:1::11 . 8080`,
      `element ip6 netplane ${c}-endpoints-0 ${b} : fd00:244:1::21 . 8080`,
      `element ip6 netplane ${c}-endpoints-1 ${a} : fd00:244:1::12 . 8081`,
      `element ip6 netplane ${c}-endpoints-1 ${b} : fd00:244:1::22 . 8081`,
      `rule ip6 netplane ${c} 00 ${hash} @${c}-affinity-0 goto ${c}-pick-0`,
      `rule ip6 netplane ${c} 01 ${hash} @${c}-affinity-1 goto ${c}-pick-1`,
      `rule ip6 netplane ${c} 02 numgen random mod 2 vmap { 0 : goto ${c}-pick-0, 1 : goto ${c}-pick-1 }`,
      ...[0, 1].flatMap((i) => [
        `rule ip6 netplane ${c}-pick-${i} 00 update @${c}-affinity-${i} { ${hash} timeout 30s }`,
        `rule ip6 netplane ${c}-pick-${i} 01 meta l4proto { tcp, udp, sctp } dnat ip6 to meta mark map @${c}-endpoints-${i}`,
      ]),
    ].sort());
  });

  it('gives every affinity endpoint list an ID of its own, settling a hash collision the same way whatever else the plan holds', () => {
    // The port keys of s412789 and s649192 have the same 32-bit hash, 2048655195.
    const a = served('s412789', eps(['10.244.1.11']), { clusterIPs: ['10.96.0.1'], affinitySeconds: 30 });
    const b = served('s649192', eps(['10.244.1.12']), { clusterIPs: ['10.96.0.2'], affinitySeconds: 30 });
    const both = affinityIds([a, b]);
    expect(both.get(affinityIdKey(a, 'all'))).toBe(2048655195);
    expect(both.get(affinityIdKey(b, 'all'))).not.toBe(2048655195);
    expect(affinityIds([b, a])).toEqual(both);
    expect(affinityIds([b]).get(affinityIdKey(b, 'all'))).toBe(2048655195);
    expect(affinityIds([a, b, served('c', eps(['10.244.1.13']), { clusterIPs: ['10.96.0.3'] })]).size).toBe(2);
  });

  it('has a fixed set of hooked chains and rules (IPv4 with one affinity timeout)', async () => {
    const rules = (await programmed(small)).filter((l) => l.startsWith('rule ip netplane') && !/-lb-\d+ /.test(l));
    // The affinity ID of the address or NodePort replaces the (saved) mark, by traffic class, and a known client is
    // DNATed to its endpoint.
    const assign = (chain: string, first: number, key: string, np: string) =>
      ([['', ''], ['ip saddr @pod-cidrs ', 'fallback-'], ['fib saddr type local ', 'fallback-'], ['ip saddr != @pod-cidrs fib saddr type != local ', 'local-']] as const).map(
        ([from, m], i) =>
          `rule ip netplane ${chain} ${String(first + i).padStart(2, '0')} meta l4proto { tcp, udp, sctp } ${from}${key} @affinity-${m}${np}ids update @affinity-saved { ct id : meta mark } update @affinity-pending { ct id } meta mark set ${key} map @affinity-${m}${np}ids dnat ip to ip saddr . meta mark map @affinity`,
      );
    expect(rules).toEqual([
      'rule ip netplane affinity-output 00 ct state new ct id @affinity-pending jump affinity-record',
      'rule ip netplane affinity-prerouting 00 ct state new ct id @affinity-pending jump affinity-record',
      'rule ip netplane affinity-record 00 ct status dnat meta mark @affinity-10800 update @affinity { ip saddr . meta mark timeout 10800s : ip daddr . th dport }',
      'rule ip netplane affinity-record 01 meta mark set ct id map @affinity-saved delete @affinity-pending { ct id }',
      'rule ip netplane filter-forward 00 ct state new ip daddr @cluster-ips goto service-reject',
      'rule ip netplane filter-nodeports 00 meta l4proto . th dport vmap @nodeport-no-endpoints',
      'rule ip netplane filter-nodeports 01 ip saddr @pod-cidrs meta l4proto . th dport vmap @fallback-nodeport-no-endpoints',
      'rule ip netplane filter-nodeports 02 fib saddr type local meta l4proto . th dport vmap @fallback-nodeport-no-endpoints',
      'rule ip netplane filter-nodeports 03 ip saddr != @pod-cidrs fib saddr type != local meta l4proto . th dport vmap @local-nodeport-no-endpoints',
      'rule ip netplane filter-output 00 ct state new jump filter-services',
      'rule ip netplane filter-output-post-dnat 00 ct state new ip daddr @cluster-ips goto service-reject',
      'rule ip netplane filter-prerouting 00 ct state new jump filter-services',
      'rule ip netplane filter-services 00 ip daddr . meta l4proto . th dport @source-ranged-vips ip daddr . meta l4proto . th dport . ip saddr != @source-ranges drop',
      'rule ip netplane filter-services 01 ip daddr . meta l4proto . th dport vmap @no-endpoints',
      'rule ip netplane filter-services 02 ip saddr @pod-cidrs ip daddr . meta l4proto . th dport vmap @fallback-no-endpoints',
      'rule ip netplane filter-services 03 fib saddr type local ip daddr . meta l4proto . th dport vmap @fallback-no-endpoints',
      'rule ip netplane filter-services 04 ip saddr != @pod-cidrs fib saddr type != local ip daddr . meta l4proto . th dport vmap @local-no-endpoints',
      'rule ip netplane filter-services 05 fib daddr type local ip daddr != 127.0.0.0/8 jump filter-nodeports',
      'rule ip netplane nat-output 00 jump services',
      'rule ip netplane nat-postrouting 00 ct status dnat ip saddr . ip daddr @hairpin meta mark set meta mark | 0x4000',
      'rule ip netplane nat-postrouting 01 meta mark & 0x4000 == 0x4000 meta mark set meta mark ^ 0x4000 masquerade fully-random',
      'rule ip netplane nat-prerouting 00 jump services',
      'rule ip netplane nodeports 00 meta l4proto . th dport @nodeports meta mark set meta mark | 0x4000',
      'rule ip netplane nodeports 01 fib saddr type local meta l4proto . th dport @fallback-nodeports meta mark set meta mark | 0x4000',
      ...assign('nodeports', 2, 'meta l4proto . th dport', 'nodeport-'),
      'rule ip netplane nodeports 06 ip saddr @pod-cidrs meta l4proto . th dport vmap @fallback-nodeports',
      'rule ip netplane nodeports 07 fib saddr type local meta l4proto . th dport vmap @fallback-nodeports',
      'rule ip netplane nodeports 08 meta l4proto . th dport vmap @nodeports',
      'rule ip netplane nodeports 09 meta l4proto . th dport vmap @local-nodeports',
      'rule ip netplane service-reject 00 meta l4proto tcp reject with tcp reset',
      'rule ip netplane service-reject 01 reject',
      'rule ip netplane services 00 ip saddr != @pod-cidrs ip daddr . meta l4proto . th dport @cluster-vips meta mark set meta mark | 0x4000',
      'rule ip netplane services 01 ip daddr . meta l4proto . th dport @external-vips meta mark set meta mark | 0x4000',
      'rule ip netplane services 02 fib saddr type local ip daddr . meta l4proto . th dport @fallback-vips meta mark set meta mark | 0x4000',
      ...assign('services', 3, 'ip daddr . meta l4proto . th dport', ''),
      'rule ip netplane services 07 ip daddr . meta l4proto . th dport vmap @cluster-vips',
      'rule ip netplane services 08 ip saddr @pod-cidrs ip daddr . meta l4proto . th dport vmap @fallback-vips',
      'rule ip netplane services 09 fib saddr type local ip daddr . meta l4proto . th dport vmap @fallback-vips',
      'rule ip netplane services 10 ip daddr . meta l4proto . th dport vmap @external-vips',
      'rule ip netplane services 11 ip daddr . meta l4proto . th dport vmap @local-vips',
      'rule ip netplane services 12 fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports',
    ].sort());
  });

  it('gives IPv6 the same layout in ip6 terms, but for affinity', async () => {
    const dump = await programmed(small);
    // Rule positions differ (the two families have different affinity timeouts), so compare without them.
    const unindexed = (l: string) => l.replace(/^(rule \S+ \S+ \S+) \d\d /, '$1 ');
    const v4 = dump.filter((l) => / ip netplane /.test(l) && !/affinity|-lb-|sticky-|^element/.test(l)).map(unindexed);
    const v6 = dump.filter((l) => / ip6 netplane /.test(l) && !/affinity|-lb-|sticky-|^element/.test(l)).map(unindexed);
    const as6 = (l: string) =>
      l.replaceAll(' ip netplane ', ' ip6 netplane ').replaceAll('ip saddr', 'ip6 saddr').replaceAll('ip daddr', 'ip6 daddr').replaceAll('ipv4_addr', 'ipv6_addr').replace('127.0.0.0/8', '::1');
    expect(v6.sort()).toEqual(v4.map(as6).sort());
  });

  const services = (p: ProxyPlan) => render(p)[4].chains.get('services')!.rules;
  const nodeports = (p: ProxyPlan) => render(p)[4].chains.get('nodeports')!.rules;
  const mark = 'meta mark set meta mark | 0x4000';
  const cases: Array<{ name: string; plan: ProxyPlan; services: string[]; nodeports: string[] }> = [
    {
      name: 'cluster CIDRs: cluster IPs from outside the pods, all Cluster-policy external traffic, this node under the Local policy',
      plan: plan([]),
      services: [
        `ip saddr != @pod-cidrs ip daddr . meta l4proto . th dport @cluster-vips ${mark}`,
        `ip daddr . meta l4proto . th dport @external-vips ${mark}`,
        `fib saddr type local ip daddr . meta l4proto . th dport @fallback-vips ${mark}`,
      ],
      nodeports: [`meta l4proto . th dport @nodeports ${mark}`, `fib saddr type local meta l4proto . th dport @fallback-nodeports ${mark}`],
    },
    {
      name: 'no cluster CIDR: never cluster-IP traffic',
      plan: plan([], { clusterCIDRs: { 4: [], 6: [] } }),
      services: [`ip daddr . meta l4proto . th dport @external-vips ${mark}`, `fib saddr type local ip daddr . meta l4proto . th dport @fallback-vips ${mark}`],
      nodeports: [`meta l4proto . th dport @nodeports ${mark}`, `fib saddr type local meta l4proto . th dport @fallback-nodeports ${mark}`],
    },
    {
      name: 'masqueradeAll: everything but Local-policy traffic from outside',
      plan: plan([], { masqueradeAll: true }),
      services: [
        `ip daddr . meta l4proto . th dport @cluster-vips ${mark}`,
        `ip daddr . meta l4proto . th dport @external-vips ${mark}`,
        `ip saddr @pod-cidrs ip daddr . meta l4proto . th dport @fallback-vips ${mark}`,
        `fib saddr type local ip daddr . meta l4proto . th dport @fallback-vips ${mark}`,
      ],
      nodeports: [
        `meta l4proto . th dport @nodeports ${mark}`,
        `ip saddr @pod-cidrs meta l4proto . th dport @fallback-nodeports ${mark}`,
        `fib saddr type local meta l4proto . th dport @fallback-nodeports ${mark}`,
      ],
    },
  ];
  for (const c of cases) {
    it(`masquerade marks: ${c.name}`, () => {
      expect(services(c.plan).filter((r) => r.endsWith(mark))).toEqual(c.services);
      expect(nodeports(c.plan).filter((r) => r.endsWith(mark))).toEqual(c.nodeports);
    });
  }

  it('short-cuts pods and the node to the short-cut endpoints, not the narrowed cluster ones (both policies Local)', async () => {
    const both = plan([
      port('both', {
        clusterIPs: ['10.96.0.60'],
        loadBalancerIPs: ['203.0.113.60'],
        nodePort: 30086,
        externalLocal: true,
        clusterEndpoints: [],
        clusterNoEndpoints: 'drop',
        externalEndpoints: [],
        externalNoEndpoints: 'drop',
        shortcutEndpoints: eps(['10.244.2.21']),
      }),
    ]);
    expect((await programmed(both)).filter((l) => l.startsWith('element') && !l.includes('pod-cidrs'))).toEqual([
      'element ip netplane cluster-ips 10.96.0.60',
      'element ip netplane cluster-lb-1-endpoints 203.0.113.60 . tcp . 80 . 0 : 10.244.2.21 . 8080',
      'element ip netplane fallback-nodeport-lb-1-endpoints tcp . 30086 . 0 : 10.244.2.21 . 8080',
      'element ip netplane fallback-nodeports tcp . 30086 : goto fallback-nodeport-lb-1',
      'element ip netplane fallback-vips 203.0.113.60 . tcp . 80 : goto cluster-lb-1',
      'element ip netplane hairpin 10.244.2.21 . 10.244.2.21',
      'element ip netplane local-no-endpoints 203.0.113.60 . tcp . 80 : drop',
      'element ip netplane local-nodeport-no-endpoints tcp . 30086 : drop',
      'element ip netplane no-endpoints 10.96.0.60 . tcp . 80 : drop',
    ]);
  });

  it('accepts NodePorts on the listed addresses only, when given', () => {
    const t = render(plan([], { nodePortAddresses: { 4: ['192.168.50.0/24', '192.168.50.7/32'], 6: [] } }));
    expect([...t[4].sets.get('nodeport-addresses')!.elements!.keys()]).toEqual(['192.168.50.0/24']);
    expect(t[4].chains.get('services')!.rules.at(-1)).toBe('fib daddr type local ip daddr @nodeport-addresses jump nodeports');
    expect(t[6].sets.get('nodeport-addresses')!.elements!.size).toBe(0);
  });

  it('keeps the first port of two claiming the same key, and counts no Service in chains or sets', () => {
    const many = plan(Array.from({ length: 50 }, (_, i) => served(`s${i}`, eps(['10.244.1.11', '10.244.1.12']), { clusterIPs: [`10.96.1.${i}`] })));
    const t = render(many)[4];
    expect(t.chains.size).toBe(render(plan([served('one', eps(['10.244.1.11', '10.244.1.12']), { clusterIPs: ['10.96.2.1'] })]))[4].chains.size);
    expect(t.sets.get('cluster-vips')!.elements!.size).toBe(50);
    const clash = render(plan([served('a', eps(['10.244.1.11']), { clusterIPs: ['10.96.0.1'] }), served('b', eps(['10.244.1.12', '10.244.1.13']), { clusterIPs: ['10.96.0.1'] })]))[4];
    expect(clash.sets.get('cluster-vips')!.elements!.get('10.96.0.1 . tcp . 80')).toBe('goto cluster-lb-1');
  });
});

// Incremental syncs: from one plan to the next, the transaction holds only the difference, and applying it gives
// exactly what a full sync of the new plan gives.
import { describe, expect, it } from 'vitest';
import { affinityIdKey, affinityIds } from '../../../proxy/nftables/affinity.ts';
import { diff } from '../../../proxy/nftables/diff.ts';
import { FakeNft } from '../../../proxy/nftables/fake.ts';
import { Ledger } from '../../../proxy/nftables/ledger.ts';
import { absent } from '../../../proxy/nftables/model.ts';
import { render } from '../../../proxy/nftables/render.ts';
import type { ProxyPlan } from '../../../proxy/plan/types.ts';
import { eps, plan, port, served } from './plans.ts';

const web = (ips: string[], o: Parameters<typeof served>[2] = {}) => served('web', eps(ips), { clusterIPs: ['10.96.0.10'], ...o });
const other = served('other', eps(['10.244.1.21', '10.244.1.22']), { clusterIPs: ['10.96.0.11'] });
const lb = (cluster: string[], local: string[]) =>
  port('lb', { loadBalancerIPs: ['203.0.113.20'], externalLocal: true, clusterEndpoints: eps(cluster), externalEndpoints: eps(local), externalNoEndpoints: 'drop' });
/** An IPv6 Service port whose endpoints listen on 8080 (the first) and 8081 (the others). */
const mixed6 = (ips: string[], o: Parameters<typeof served>[2] = {}) =>
  served('web', ips.map((ip, i) => ({ ip, port: i === 0 ? 8080 : 8081 })), { family: 6, clusterIPs: ['fd00:96::10'], ...o });
const lbChainRule = (f: 'ip' | 'ip6', n: number) =>
  `add rule ${f} netplane cluster-lb-${n} dnat ${f} to ${f} daddr . meta l4proto . th dport . numgen random mod ${n} map @cluster-lb-${n}-endpoints comment`;

/** The (client, ID) hash keying IPv6 affinity. */
const hash6 = 'jhash ip6 saddr . meta mark mod 4294967295 seed 0x6e70';
/** The affinity ID of mixed6's (Cluster-policy) endpoint list. */
const mixedId = affinityIds([mixed6([], { affinitySeconds: 60 })]).get(affinityIdKey(mixed6([], { affinitySeconds: 60 }), 'all'));

/** The transaction from `a` to `b`, comments (rule digests) cut off. */
function step(a: ProxyPlan, b: ProxyPlan): string[] {
  const ledger = new Ledger();
  ledger.change(a)!.commit();
  const change = ledger.change(b)!;
  return diff(change.prev, change.next).text().split('\n').filter(Boolean).map((l) => l.replace(/ comment "[0-9a-f]{16}".*$/, ' comment'));
}

const cases: Array<{ name: string; from: ProxyPlan; to: ProxyPlan; tx: string[] }> = [
  { name: 'no change', from: plan([web(['10.244.1.11']), other]), to: plan([web(['10.244.1.11']), other]), tx: [] },
  {
    name: 'an endpoint added: the Service moves to the 3-way chain, which is created',
    from: plan([web(['10.244.1.11', '10.244.1.12']), other]),
    to: plan([web(['10.244.1.11', '10.244.1.12', '10.244.1.13']), other]),
    tx: [
      'delete element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 }',
      'delete element ip netplane cluster-lb-2-endpoints { 10.96.0.10 . tcp . 80 . 0, 10.96.0.10 . tcp . 80 . 1 }',
      'add map ip netplane cluster-lb-3-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; comment',
      'add chain ip netplane cluster-lb-3',
      lbChainRule('ip', 3),
      'add element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 : goto cluster-lb-3 }',
      'add element ip netplane hairpin { 10.244.1.13 . 10.244.1.13 }',
      'add element ip netplane cluster-lb-3-endpoints { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.11 . 8080, 10.96.0.10 . tcp . 80 . 1 : 10.244.1.12 . 8080, 10.96.0.10 . tcp . 80 . 2 : 10.244.1.13 . 8080 }',
    ],
  },
  {
    name: 'an endpoint removed: the 3-way chain, now unused, is deleted after the last reference',
    from: plan([web(['10.244.1.11', '10.244.1.12', '10.244.1.13'])]),
    to: plan([web(['10.244.1.11', '10.244.1.13'])]),
    tx: [
      'flush chain ip netplane cluster-lb-3',
      'delete element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 }',
      'delete element ip netplane hairpin { 10.244.1.12 . 10.244.1.12 }',
      'delete map ip netplane cluster-lb-3-endpoints',
      'delete chain ip netplane cluster-lb-3',
      'add map ip netplane cluster-lb-2-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; comment',
      'add chain ip netplane cluster-lb-2',
      lbChainRule('ip', 2),
      'add element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 : goto cluster-lb-2 }',
      'add element ip netplane cluster-lb-2-endpoints { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.11 . 8080, 10.96.0.10 . tcp . 80 . 1 : 10.244.1.13 . 8080 }',
    ],
  },
  {
    name: 'an endpoint replaced: one map value changes (delete and add)',
    from: plan([web(['10.244.1.11', '10.244.1.12']), other]),
    to: plan([web(['10.244.1.11', '10.244.1.14']), other]),
    tx: [
      'delete element ip netplane hairpin { 10.244.1.12 . 10.244.1.12 }',
      'delete element ip netplane cluster-lb-2-endpoints { 10.96.0.10 . tcp . 80 . 1 }',
      'add element ip netplane hairpin { 10.244.1.14 . 10.244.1.14 }',
      'add element ip netplane cluster-lb-2-endpoints { 10.96.0.10 . tcp . 80 . 1 : 10.244.1.14 . 8080 }',
    ],
  },
  {
    name: 'a Service removed: its elements go, the chain another Service uses stays',
    from: plan([web(['10.244.1.11', '10.244.1.12']), other]),
    to: plan([other]),
    tx: [
      'delete element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 }',
      'delete element ip netplane hairpin { 10.244.1.11 . 10.244.1.11, 10.244.1.12 . 10.244.1.12 }',
      'delete element ip netplane cluster-ips { 10.96.0.10 }',
      'delete element ip netplane cluster-lb-2-endpoints { 10.96.0.10 . tcp . 80 . 0, 10.96.0.10 . tcp . 80 . 1 }',
    ],
  },
  {
    name: 'a hairpin element two Services share stays while one of them uses it',
    from: plan([web(['10.244.1.21']), other]),
    to: plan([other]),
    tx: [
      'flush chain ip netplane cluster-lb-1',
      'delete element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 }',
      'delete element ip netplane cluster-ips { 10.96.0.10 }',
      'delete map ip netplane cluster-lb-1-endpoints',
      'delete chain ip netplane cluster-lb-1',
    ],
  },
  {
    name: 'the last endpoint gone: the Service is refused at once',
    from: plan([web(['10.244.1.11'])]),
    to: plan([web([])]),
    tx: [
      'flush chain ip netplane cluster-lb-1',
      'delete element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 }',
      'delete element ip netplane hairpin { 10.244.1.11 . 10.244.1.11 }',
      'delete map ip netplane cluster-lb-1-endpoints',
      'delete chain ip netplane cluster-lb-1',
      'add element ip netplane no-endpoints { 10.96.0.10 . tcp . 80 : goto service-reject }',
    ],
  },
  {
    name: 'Local policy without a local endpoint: outside traffic dropped, pods and the node still served',
    from: plan([lb(['10.244.1.11', '10.244.2.21'], ['10.244.1.11'])]),
    to: plan([lb(['10.244.2.21'], [])]),
    tx: [
      'flush chain ip netplane external-lb-1',
      'flush chain ip netplane cluster-lb-2',
      'delete element ip netplane fallback-vips { 203.0.113.20 . tcp . 80 }',
      'delete element ip netplane local-vips { 203.0.113.20 . tcp . 80 }',
      'delete element ip netplane hairpin { 10.244.1.11 . 10.244.1.11 }',
      'delete map ip netplane external-lb-1-endpoints',
      'delete map ip netplane cluster-lb-2-endpoints',
      'delete chain ip netplane external-lb-1',
      'delete chain ip netplane cluster-lb-2',
      'add map ip netplane cluster-lb-1-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; comment',
      'add chain ip netplane cluster-lb-1',
      lbChainRule('ip', 1),
      'add element ip netplane fallback-vips { 203.0.113.20 . tcp . 80 : goto cluster-lb-1 }',
      'add element ip netplane local-no-endpoints { 203.0.113.20 . tcp . 80 : drop }',
      'add element ip netplane cluster-lb-1-endpoints { 203.0.113.20 . tcp . 80 . 0 : 10.244.2.21 . 8080 }',
    ],
  },
  {
    name: 'IPv6: the same, in the ip6 table only',
    from: plan([web(['fd00:244:1::11'], { family: 6, clusterIPs: ['fd00:96::10'] })]),
    to: plan([web(['fd00:244:1::11', 'fd00:244:1::12'], { family: 6, clusterIPs: ['fd00:96::10'] })]),
    tx: [
      'flush chain ip6 netplane cluster-lb-1',
      'delete element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 }',
      'delete map ip6 netplane cluster-lb-1-endpoints',
      'delete chain ip6 netplane cluster-lb-1',
      'add map ip6 netplane cluster-lb-2-endpoints { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 2 : ip6 daddr . th dport; comment',
      'add chain ip6 netplane cluster-lb-2',
      lbChainRule('ip6', 2),
      'add element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 : goto cluster-lb-2 }',
      'add element ip6 netplane hairpin { fd00:244:1::12 . fd00:244:1::12 }',
      'add element ip6 netplane cluster-lb-2-endpoints { fd00:96::10 . tcp . 80 . 0 : fd00:244:1::11 . 8080, fd00:96::10 . tcp . 80 . 1 : fd00:244:1::12 . 8080 }',
    ],
  },
  {
    name: 'IPv6 affinity, an endpoint added: only balancing changes; the recorded clients keep their endpoints',
    from: plan([web(['fd00:244:1::11', 'fd00:244:1::12'], { family: 6, clusterIPs: ['fd00:96::10'], affinitySeconds: 60 })]),
    to: plan([web(['fd00:244:1::11', 'fd00:244:1::12', 'fd00:244:1::13'], { family: 6, clusterIPs: ['fd00:96::10'], affinitySeconds: 60 })]),
    tx: [
      'flush chain ip6 netplane cluster-lb-2',
      'delete element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 }',
      'delete map ip6 netplane cluster-lb-2-endpoints',
      'delete chain ip6 netplane cluster-lb-2',
      'add map ip6 netplane cluster-lb-3-endpoints { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 2 : ip6 daddr . th dport; comment',
      'add chain ip6 netplane cluster-lb-3',
      lbChainRule('ip6', 3),
      'add element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 : goto cluster-lb-3 }',
      'add element ip6 netplane hairpin { fd00:244:1::13 . fd00:244:1::13 }',
      'add element ip6 netplane cluster-lb-3-endpoints { fd00:96::10 . tcp . 80 . 0 : fd00:244:1::11 . 8080, fd00:96::10 . tcp . 80 . 1 : fd00:244:1::12 . 8080, fd00:96::10 . tcp . 80 . 2 : fd00:244:1::13 . 8080 }',
    ],
  },
  {
    name: 'IPv6 affinity, endpoints now on two ports: the Service keeps its ID but leaves the recorded IDs for a sticky chain, with a pick chain, map and timed set per endpoint',
    from: plan([mixed6(['fd00:244:1::11'], { affinitySeconds: 60 })]),
    to: plan([mixed6(['fd00:244:1::11', 'fd00:244:1::12'], { affinitySeconds: 60 })]),
    tx: [
      'flush chain ip6 netplane cluster-lb-1',
      'delete element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 }',
      `delete element ip6 netplane affinity-ports { ${mixedId} }`,
      `delete element ip6 netplane affinity-60 { ${mixedId} }`,
      'delete map ip6 netplane cluster-lb-1-endpoints',
      'delete chain ip6 netplane cluster-lb-1',
      ...[0, 1].flatMap((i) => [
        `add map ip6 netplane sticky-2-60-endpoints-${i} { typeof meta mark : ip6 daddr . th dport; comment`,
        `add set ip6 netplane sticky-2-60-affinity-${i} { typeof numgen random mod 2; size 1048576; flags dynamic,timeout; timeout 60s; comment`,
      ]),
      'add chain ip6 netplane sticky-2-60',
      'add chain ip6 netplane sticky-2-60-pick-0',
      'add chain ip6 netplane sticky-2-60-pick-1',
      ...[0, 1].map((i) => `add rule ip6 netplane sticky-2-60 ${hash6} @sticky-2-60-affinity-${i} goto sticky-2-60-pick-${i} comment`),
      'add rule ip6 netplane sticky-2-60 numgen random mod 2 vmap { 0 : goto sticky-2-60-pick-0, 1 : goto sticky-2-60-pick-1 } comment',
      ...[0, 1].flatMap((i) => [
        `add rule ip6 netplane sticky-2-60-pick-${i} update @sticky-2-60-affinity-${i} { ${hash6} timeout 60s } comment`,
        `add rule ip6 netplane sticky-2-60-pick-${i} meta l4proto { tcp, udp, sctp } dnat ip6 to meta mark map @sticky-2-60-endpoints-${i} comment`,
      ]),
      'add element ip6 netplane cluster-vips { fd00:96::10 . tcp . 80 : goto sticky-2-60 }',
      'add element ip6 netplane hairpin { fd00:244:1::12 . fd00:244:1::12 }',
      `add element ip6 netplane sticky-2-60-endpoints-0 { ${mixedId} : fd00:244:1::11 . 8080 }`,
      `add element ip6 netplane sticky-2-60-endpoints-1 { ${mixedId} : fd00:244:1::12 . 8081 }`,
    ],
  },
  {
    name: 'IPv6 affinity, endpoints on two ports: an endpoint replaced changes one element of its index map, and nothing else',
    from: plan([mixed6(['fd00:244:1::11', 'fd00:244:1::12'], { affinitySeconds: 60 })]),
    to: plan([mixed6(['fd00:244:1::11', 'fd00:244:1::13'], { affinitySeconds: 60 })]),
    tx: [
      'delete element ip6 netplane hairpin { fd00:244:1::12 . fd00:244:1::12 }',
      `delete element ip6 netplane sticky-2-60-endpoints-1 { ${mixedId} }`,
      'add element ip6 netplane hairpin { fd00:244:1::13 . fd00:244:1::13 }',
      `add element ip6 netplane sticky-2-60-endpoints-1 { ${mixedId} : fd00:244:1::13 . 8081 }`,
    ],
  },
];

describe('nftables incremental sync', () => {
  for (const c of cases) {
    it(c.name, () => expect(step(c.from, c.to)).toEqual(c.tx));
  }

  it('IPv4 affinity with a new timeout: its set and the recording chains are created, the two dispatching chains rewritten', () => {
    const next = web(['10.244.1.11'], { affinitySeconds: 30 });
    const id = affinityIds([next]).get(affinityIdKey(next, 'all'));
    const tx = step(plan([other]), plan([other, next]));
    expect(tx.filter((l) => !l.startsWith('add rule'))).toEqual([
      'flush chain ip netplane services',
      'flush chain ip netplane nodeports',
      'add set ip netplane affinity-30 { type mark; comment',
      'add map ip netplane cluster-lb-1-endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; comment',
      'add chain ip netplane affinity-prerouting { type filter hook prerouting priority -99; policy accept; }',
      'add chain ip netplane affinity-output { type route hook output priority -99; policy accept; }',
      'add chain ip netplane affinity-record',
      'add chain ip netplane cluster-lb-1',
      'add element ip netplane cluster-vips { 10.96.0.10 . tcp . 80 : goto cluster-lb-1 }',
      'add element ip netplane hairpin { 10.244.1.11 . 10.244.1.11 }',
      'add element ip netplane cluster-ips { 10.96.0.10 }',
      `add element ip netplane affinity-ids { 10.96.0.10 . tcp . 80 : ${id} }`,
      `add element ip netplane affinity-30 { ${id} }`,
      'add element ip netplane cluster-lb-1-endpoints { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.11 . 8080 }',
    ]);
    expect(tx.filter((l) => l.includes('@affinity-30 update @affinity'))).toHaveLength(1);
    expect(tx.filter((l) => l.includes('update @affinity-saved'))).toHaveLength(8);
  });

  it('changing one of 10,000 Services sends a handful of lines', () => {
    const many = (changed: boolean) =>
      plan(Array.from({ length: 10_000 }, (_, i) => served(`s${String(i).padStart(5, '0')}`, eps(Array.from({ length: changed && i === 5000 ? 9 : 10 }, (_, e) => `10.${128 + (i >> 8)}.${i & 255}.${e + 1}`)), { clusterIPs: [`10.96.${i >> 8}.${i & 255}`] })));
    const tx = step(many(false), many(true));
    expect(tx.length).toBeLessThanOrEqual(8);
  });

  // Random walks over a pool of Services: every step applies cleanly on the fake nft (which refuses dangling
  // references like the kernel), and the result equals a full sync of the same plan and render()'s tables.
  it('ends where a full sync ends, over random changes', async () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const randomPlan = () =>
      plan(
        Array.from({ length: 12 }, (_, i) => i)
          .filter(() => rand(4) > 0)
          .map((i) => {
            const ips = Array.from({ length: rand(4) }, () => `10.244.1.${10 + rand(6)}`).filter((x, j, a) => a.indexOf(x) === j);
            const local = rand(3) === 0;
            return port(`s${i}`, {
              family: i % 5 === 0 ? 6 : 4,
              ...(i % 5 === 0
                ? { clusterIPs: [`fd00:96::${i}`], clusterEndpoints: eps(ips.map((x) => x.replace('10.244.1.', 'fd00:244:1::'))) }
                : // Some ports share a cluster or load-balancer IP (same port): they claim the same keys.
                  { clusterIPs: [`10.96.0.${rand(4) === 0 ? 99 : i}`], loadBalancerIPs: rand(2) ? [`203.0.113.${rand(3) === 0 ? 99 : i}`] : [], nodePort: rand(2) ? 30000 + i : undefined, clusterEndpoints: eps(ips) }),
              externalEndpoints: eps(local ? ips.slice(0, 1) : ips),
              externalLocal: local,
              externalNoEndpoints: local && ips.length > 0 ? 'drop' : 'reject',
              affinitySeconds: rand(4) === 0 ? [10, 20][rand(2)]! : 0,
              sourceRanges: rand(4) === 0 ? ['10.0.0.0/8'] : [],
            });
          }),
        { masqueradeAll: rand(5) === 0 },
      );
    const incremental = new FakeNft();
    const ledger = new Ledger();
    for (let i = 0; i < 40; i++) {
      const p = randomPlan();
      const change = ledger.change(p)!;
      await incremental.run('nft', ['-f', '-'], diff(change.prev, change.next).text());
      change.commit();
      const full = new FakeNft();
      const fresh = new Ledger().change(p)!;
      await full.run('nft', ['-f', '-'], diff(fresh.prev, fresh.next).text());
      expect(incremental.dump()).toEqual(full.dump());
      const rendered = new FakeNft();
      await rendered.run('nft', ['-f', '-'], diff({ 4: absent(4), 6: absent(6) }, render(p)).text());
      expect(rendered.dump()).toEqual(full.dump());
      expect(ledger.counts()).toEqual({
        rules: full.dump().filter((l) => l.startsWith('rule')).length,
        elements: full.dump().filter((l) => l.startsWith('element')).length,
      });
    }
  });
});

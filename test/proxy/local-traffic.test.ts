// --detect-local-mode as data: the flags' checks, the planner's choice (resolveDetectLocal, planProxy), and the
// local / not-local matches both kernel backends render for it (nftables through the fake nft, which also checks
// that each transaction is one nft would take), as tables.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeSchema, type Node } from '../../cluster/model/node.ts';
import { render as renderIptables } from '../../proxy/iptables/render.ts';
import { buildRuleset } from '../../proxy/iptables/ruleset.ts';
import { NftablesBackend } from '../../proxy/nftables/backend.ts';
import { FakeNft } from '../../proxy/nftables/fake.ts';
import { detectLocalProblem, parseInterfaceName, resolveDetectLocal, type DetectLocal, type DetectLocalFlags } from '../../proxy/plan/local.ts';
import { planProxy, type PlanConfig } from '../../proxy/plan/plan.ts';
import type { LocalTraffic, ProxyPlan } from '../../proxy/plan/types.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { eps, plan, port } from './nftables/plans.ts';

const node = (podCIDRs: string[]): Node => nodeSchema.parse({ metadata: { name: 'n1' }, spec: { podCIDRs } });
const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const quickstart = fileURLToPath(new URL('../../examples/quickstart', import.meta.url));

describe('netplane proxy refuses bad --detect-local-mode flags with one sentence and exit code 2', () => {
  const rows: Array<[args: string[], stderr: string]> = [
    [['--detect-local-mode', 'bridge'], 'netplane proxy: --detect-local-mode "bridge": must be one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix'],
    [['--detect-local-mode', 'BridgeInterface'], "netplane proxy: --detect-local-mode BridgeInterface needs --pod-bridge-interface NAME, the bridge this node's pods are attached to (e.g. cni0)"],
    [['--detect-local-mode', 'InterfaceNamePrefix', '--pod-interface-name-prefix', 'cali*'], 'netplane proxy: --pod-interface-name-prefix "cali*": must be the start of an interface name of 1 to 14 characters: a letter, then letters, digits, "_", "." or "-", e.g. cali'],
    // The wildcard the rules add must fit IFNAMSIZ too (nft and iptables-restore refuse 16 characters).
    [['--detect-local-mode', 'InterfaceNamePrefix', '--pod-interface-name-prefix', 'abcdefghijklmno'], 'netplane proxy: --pod-interface-name-prefix "abcdefghijklmno": must be the start of an interface name of 1 to 14 characters: a letter, then letters, digits, "_", "." or "-", e.g. cali'],
    [['--pod-bridge-interface', 'cni0'], 'netplane proxy: --pod-bridge-interface is used only with --detect-local-mode BridgeInterface, not ClusterCIDR'],
  ];
  for (const [args, stderr] of rows) {
    it(args.join(' '), async () => {
      const { code, err } = await new Promise<{ code: number | null; err: string }>((resolve) => {
        // A manifests directory that exists: the source is checked before these flags.
        const child = execFile(process.execPath, [bin, 'proxy', '--mode', 'userspace', '--manifests', quickstart, ...args], (_e, _out, err) => resolve({ code: child.exitCode, err }));
      });
      expect({ code, err: err.trim() }).toEqual({ code: 2, err: stderr });
    });
  }
});

describe('--pod-bridge-interface and --pod-interface-name-prefix values', () => {
  const rows: Array<[raw: string, ok: string | undefined]> = [
    ['cni0', 'cni0'],
    [' cbr0 ', 'cbr0'],
    ['br-4f2a9c1d0e7b', 'br-4f2a9c1d0e7b'],
    ['flannel.1', 'flannel.1'],
    ['veth_X', 'veth_X'],
    ['a23456789012345', 'a23456789012345'],
    ['a234567890123456', undefined],
    ['', undefined],
    ['0eth', undefined],
    ['cali*', undefined],
    ['veth+', undefined],
    ['!cni0', undefined],
    ['cni 0', undefined],
    ['cni"0', undefined],
    ['eth0/1', undefined],
  ];
  for (const [raw, ok] of rows) {
    it(`${JSON.stringify(raw)} → ${ok ?? 'refused'}`, () => {
      if (ok === undefined) expect(() => parseInterfaceName(raw)).toThrow(/must be an interface name of 1 to 15 characters/);
      else expect(parseInterfaceName(raw)).toBe(ok);
    });
  }
  it('a prefix takes at most 14 characters, so that prefix* fits the 15 of an interface name', () => {
    expect(parseInterfaceName('a2345678901234', true)).toBe('a2345678901234');
    expect(() => parseInterfaceName('a23456789012345', true)).toThrow(/must be the start of an interface name of 1 to 14 characters/);
  });
});

describe('--detect-local-mode flag combinations', () => {
  const rows: Array<[flags: DetectLocalFlags, problem: RegExp | undefined]> = [
    [{ mode: 'ClusterCIDR' }, undefined],
    [{ mode: 'NodeCIDR' }, undefined],
    [{ mode: 'BridgeInterface', bridge: 'cni0' }, undefined],
    [{ mode: 'InterfaceNamePrefix', prefix: 'veth' }, undefined],
    [{ mode: 'BridgeInterface' }, /^--detect-local-mode BridgeInterface needs --pod-bridge-interface NAME/],
    [{ mode: 'InterfaceNamePrefix' }, /^--detect-local-mode InterfaceNamePrefix needs --pod-interface-name-prefix PREFIX/],
    [{ mode: 'ClusterCIDR', bridge: 'cni0' }, /^--pod-bridge-interface is used only with --detect-local-mode BridgeInterface, not ClusterCIDR$/],
    [{ mode: 'BridgeInterface', bridge: 'cni0', prefix: 'veth' }, /^--pod-interface-name-prefix is used only with --detect-local-mode InterfaceNamePrefix, not BridgeInterface$/],
  ];
  for (const [flags, problem] of rows) {
    it(`${JSON.stringify(flags)} → ${problem ?? 'fine'}`, () => {
      const got = detectLocalProblem(flags);
      if (problem) expect(got).toMatch(problem);
      else expect(got).toBeUndefined();
    });
  }
});

describe('resolveDetectLocal', () => {
  const cidrPlan = (cidrs: string[]): ProxyPlan => ({ ...plan([]), localTraffic: { by: 'cidr', cidrs: { 4: cidrs.filter((c) => !c.includes(':')), 6: cidrs.filter((c) => c.includes(':')) } } });
  type Row = { name: string; flags: DetectLocalFlags; node?: Node; last?: ProxyPlan; detect?: DetectLocal; waitFor?: RegExp; warning?: RegExp; notice?: RegExp };
  const rows: Row[] = [
    { name: 'ClusterCIDR never looks at the Node', flags: { mode: 'ClusterCIDR' }, detect: { mode: 'ClusterCIDR' } },
    { name: 'BridgeInterface', flags: { mode: 'BridgeInterface', bridge: 'cni0' }, detect: { mode: 'BridgeInterface', bridge: 'cni0' } },
    { name: 'InterfaceNamePrefix', flags: { mode: 'InterfaceNamePrefix', prefix: 'cali' }, detect: { mode: 'InterfaceNamePrefix', prefix: 'cali' } },
    { name: "NodeCIDR takes the Node's podCIDRs, both families", flags: { mode: 'NodeCIDR' }, node: node(['10.244.1.0/24', 'fd00:244:1::/64']), detect: { mode: 'NodeCIDR', podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] } },
    { name: 'NodeCIDR waits for a Node the view does not have', flags: { mode: 'NodeCIDR' }, waitFor: /^waiting for Node "n1"'s spec\.podCIDRs \(--detect-local-mode NodeCIDR\): it is not in the cluster view yet \(--node-name\); no rule is programmed until it has them$/ },
    { name: 'NodeCIDR waits for a Node without podCIDRs', flags: { mode: 'NodeCIDR' }, node: node([]), waitFor: /^waiting for Node "n1"'s spec\.podCIDRs \(--detect-local-mode NodeCIDR\): it has none yet;/ },
    {
      name: 'NodeCIDR keeps the last plan\'s CIDRs when the Node loses them',
      flags: { mode: 'NodeCIDR' },
      node: node([]),
      last: cidrPlan(['10.244.1.0/24']),
      detect: { mode: 'NodeCIDR', podCIDRs: ['10.244.1.0/24'] },
      warning: /the Node "n1" has no spec.podCIDRs any more; traffic from 10.244.1.0\/24 stays local until it has pod CIDRs again$/,
    },
    { name: 'NodeCIDR keeps them when the Node leaves the view', flags: { mode: 'NodeCIDR' }, last: cidrPlan(['10.244.1.0/24', 'fd00:244:1::/64']), detect: { mode: 'NodeCIDR', podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] }, warning: /is not in the cluster view any more/ },
    { name: 'NodeCIDR follows new podCIDRs live, with a notice', flags: { mode: 'NodeCIDR' }, node: node(['10.244.9.0/24']), last: cidrPlan(['10.244.1.0/24']), detect: { mode: 'NodeCIDR', podCIDRs: ['10.244.9.0/24'] }, notice: /has new spec.podCIDRs 10.244.9.0\/24 \(were 10.244.1.0\/24\)/ },
    { name: 'NodeCIDR: the same CIDRs in another order are no change', flags: { mode: 'NodeCIDR' }, node: node(['fd00:244:1::/64', '10.244.1.0/24']), last: cidrPlan(['10.244.1.0/24', 'fd00:244:1::/64']), detect: { mode: 'NodeCIDR', podCIDRs: ['fd00:244:1::/64', '10.244.1.0/24'] } },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = resolveDetectLocal(r.flags, 'n1', r.node, r.last);
      if (r.waitFor) {
        expect(got).toEqual({ waitFor: expect.stringMatching(r.waitFor), giveUpAfterMs: 300_000 });
        return;
      }
      expect('detect' in got && got.detect).toEqual(r.detect);
      expect('detect' in got ? got.warning : 'waits').toEqual(r.warning ? expect.stringMatching(r.warning) : undefined);
      expect('detect' in got ? got.notice : 'waits').toEqual(r.notice ? expect.stringMatching(r.notice) : undefined);
    });
  }
});

describe('planProxy: the choice becomes plan data', () => {
  const config: PlanConfig = { nodeName: 'n1', clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/48'], masqueradeAll: false, nodePortAddresses: [] };
  const rows: Array<[detect: DetectLocal | undefined, want: LocalTraffic]> = [
    [undefined, { by: 'cidr', cidrs: { 4: ['10.244.0.0/16'], 6: ['fd00:244::/48'] } }],
    [{ mode: 'ClusterCIDR' }, { by: 'cidr', cidrs: { 4: ['10.244.0.0/16'], 6: ['fd00:244::/48'] } }],
    [{ mode: 'NodeCIDR', podCIDRs: ['10.244.1.0/24'] }, { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: [] } }],
    [{ mode: 'NodeCIDR', podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'] }, { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: ['fd00:244:1::/64'] } }],
    [{ mode: 'BridgeInterface', bridge: 'cni0' }, { by: 'interface', name: 'cni0', prefix: false }],
    [{ mode: 'InterfaceNamePrefix', prefix: 'cali' }, { by: 'interface', name: 'cali', prefix: true }],
  ];
  for (const [detect, want] of rows) {
    it(`${detect?.mode ?? 'no choice'} → ${JSON.stringify(want)}`, () => {
      const p = planProxy([], { ...config, ...(detect ? { detectLocal: detect } : {}) });
      expect(p.localTraffic).toEqual(want);
      // --cluster-cidr stays what it is (userspace mode reads it).
      expect(p.clusterCIDRs).toEqual({ 4: ['10.244.0.0/16'], 6: ['fd00:244::/48'] });
    });
  }
});

// A Local-policy LoadBalancer Service with a local and a remote endpoint: its rules use "local" (the short-circuit)
// and "not local" (cluster-IP masquerade, the no-endpoints check from outside).
const localPolicy = port('l', { clusterIPs: ['10.96.0.2'], loadBalancerIPs: ['203.0.113.2'], nodePort: 30002, externalLocal: true, clusterEndpoints: eps(['10.244.1.11', '10.244.2.21']), externalEndpoints: eps(['10.244.1.11']) });
const localPolicy6 = port('l6', { family: 6, clusterIPs: ['fd00:96::2'], clusterEndpoints: eps(['fd00:244:1::11']), externalEndpoints: eps(['fd00:244:1::11']) });
const withLocal = (localTraffic: LocalTraffic | undefined): ProxyPlan => plan([localPolicy, localPolicy6], localTraffic ? { localTraffic } : {});

describe('nftables: local and not-local matches', () => {
  async function programmed(p: ProxyPlan): Promise<string[]> {
    const fake = new FakeNft();
    await new NftablesBackend(fake, { log: silentLogger() }).sync(p, { full: true });
    return fake.dump();
  }
  const key = (ip: string) => `${ip} daddr . meta l4proto . th dport`;
  /** The rules that decide by local traffic, and the pod-cidrs elements, of one family. */
  const localLines = (dump: string[], ip: 'ip' | 'ip6') =>
    dump.filter((l) => l.startsWith(`rule ${ip} `) && /@pod-cidrs|iifname|@cluster-vips meta mark/.test(l)).map((l) => l.replace(/^rule \S+ netplane /, '').replace(/ \d\d /, ': ')).concat(dump.filter((l) => l.startsWith(`element ${ip} netplane pod-cidrs`)));
  const rules = (ip: 'ip' | 'ip6', local: string, notLocal: string) => [
    `filter-nodeports: ${local} meta l4proto . th dport vmap @fallback-nodeport-no-endpoints`,
    `filter-nodeports: ${notLocal} fib saddr type != local meta l4proto . th dport vmap @local-nodeport-no-endpoints`,
    `filter-services: ${local} ${key(ip)} vmap @fallback-no-endpoints`,
    `filter-services: ${notLocal} fib saddr type != local ${key(ip)} vmap @local-no-endpoints`,
    `nodeports: ${local} meta l4proto . th dport vmap @fallback-nodeports`,
    `services: ${notLocal} ${key(ip)} @cluster-vips meta mark set meta mark | 0x4000`,
    `services: ${local} ${key(ip)} vmap @fallback-vips`,
  ];
  const rows: Array<{ name: string; local: LocalTraffic | undefined; v4: string[]; v6: string[] }> = [
    {
      name: 'ClusterCIDR (a plan without localTraffic): sources in pod-cidrs, filled with the cluster CIDRs',
      local: undefined,
      v4: [...rules('ip', 'ip saddr @pod-cidrs', 'ip saddr != @pod-cidrs'), 'element ip netplane pod-cidrs 10.244.0.0/16'],
      v6: [...rules('ip6', 'ip6 saddr @pod-cidrs', 'ip6 saddr != @pod-cidrs'), 'element ip6 netplane pod-cidrs fd00:244::/32'],
    },
    {
      name: "NodeCIDR: the Node's podCIDRs in pod-cidrs; a family without one masquerades nothing by source",
      local: { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: [] } },
      v4: [...rules('ip', 'ip saddr @pod-cidrs', 'ip saddr != @pod-cidrs'), 'element ip netplane pod-cidrs 10.244.1.0/24'],
      v6: rules('ip6', 'ip6 saddr @pod-cidrs', 'ip6 saddr != @pod-cidrs').filter((r) => !r.includes('@cluster-vips')),
    },
    {
      name: 'BridgeInterface: iifname, the same in both families, pod-cidrs left empty',
      local: { by: 'interface', name: 'cni0', prefix: false },
      v4: rules('ip', 'iifname "cni0"', 'iifname != "cni0"'),
      v6: rules('ip6', 'iifname "cni0"', 'iifname != "cni0"'),
    },
    {
      name: "InterfaceNamePrefix: nft's prefix match",
      local: { by: 'interface', name: 'cali', prefix: true },
      v4: rules('ip', 'iifname "cali*"', 'iifname != "cali*"'),
      v6: rules('ip6', 'iifname "cali*"', 'iifname != "cali*"'),
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const dump = await programmed(withLocal(r.local));
      expect(localLines(dump, 'ip').sort()).toEqual([...r.v4].sort());
      expect(localLines(dump, 'ip6').sort()).toEqual([...r.v6].sort());
    });
  }

  it('new pod CIDRs are a partial sync that only swaps the set elements; a family gaining one gains its masquerade rule', async () => {
    const fake = new FakeNft();
    const sent: string[] = [];
    const runner = { run: (command: string, args: readonly string[], input?: string) => (input !== undefined && sent.push(input), fake.run(command, args, input)) };
    const backend = new NftablesBackend(runner, { log: silentLogger() });
    await backend.sync(withLocal({ by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: [] } }), { full: true });
    sent.length = 0;
    await backend.sync(withLocal({ by: 'cidr', cidrs: { 4: ['10.244.9.0/24'], 6: [] } }), { full: false });
    expect(sent.join('').trim().split('\n').sort()).toEqual(['add element ip netplane pod-cidrs { 10.244.9.0/24 }', 'delete element ip netplane pod-cidrs { 10.244.1.0/24 }']);
    sent.length = 0;
    await backend.sync(withLocal({ by: 'cidr', cidrs: { 4: ['10.244.9.0/24'], 6: ['fd00:244:9::/64'] } }), { full: false });
    const lines = sent.join('').trim().split('\n');
    expect(lines).toContain('add element ip6 netplane pod-cidrs { fd00:244:9::/64 }');
    expect(lines.filter((l) => l.startsWith('add rule')).map((l) => l.replace(/ comment .*/, ''))).toContain(
      'add rule ip6 netplane services ip6 saddr != @pod-cidrs ip6 daddr . meta l4proto . th dport @cluster-vips meta mark set meta mark | 0x4000',
    );
    expect(fake.dump().filter((l) => l.startsWith('element') && l.includes('pod-cidrs'))).toEqual(['element ip netplane pod-cidrs 10.244.9.0/24', 'element ip6 netplane pod-cidrs fd00:244:9::/64']);
  });
});

describe('iptables: local and not-local matches', () => {
  const C = (text: string) => `-m comment --comment "${text}"`;
  /** MARK-NONPOD's RETURN rules and the Local-policy EXT chain's short-circuit rules, chain names left out. */
  const localRules = (p: ProxyPlan, family: 4 | 6) => {
    const rs = buildRuleset(p, family);
    const out: string[] = [];
    for (const [chain, rules] of rs.tables.nat) {
      for (const r of rules) if (chain === 'NETPLANE-MARK-NONPOD' || (chain.startsWith('NETPLANE-EXT-') && r.includes('pod traffic'))) out.push(r);
    }
    return { out, skipped: rs.skipped, svcMarks: [...rs.tables.nat.values()].flat().filter((r) => r.includes('cluster IP') && r.endsWith('-j NETPLANE-MARK-NONPOD')).length };
  };
  const cases: Array<{ name: string; local: LocalTraffic | undefined; family: 4 | 6; matches: string[]; svcMarks: number }> = [
    { name: 'ClusterCIDR: -s per cluster CIDR', local: undefined, family: 4, matches: ['-s 10.244.0.0/16'], svcMarks: 1 },
    { name: 'NodeCIDR: -s the Node podCIDR', local: { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: ['fd00:244:1::/64'] } }, family: 4, matches: ['-s 10.244.1.0/24'], svcMarks: 1 },
    { name: 'NodeCIDR, IPv6', local: { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: ['fd00:244:1::/64'] } }, family: 6, matches: ['-s fd00:244:1::/64'], svcMarks: 1 },
    { name: 'NodeCIDR, a family without a podCIDR: nothing is local, cluster-IP traffic is not masqueraded', local: { by: 'cidr', cidrs: { 4: ['10.244.1.0/24'], 6: [] } }, family: 6, matches: [], svcMarks: 0 },
    { name: 'BridgeInterface: -i NAME', local: { by: 'interface', name: 'cni0', prefix: false }, family: 4, matches: ['-i cni0'], svcMarks: 1 },
    { name: 'BridgeInterface, IPv6 alike', local: { by: 'interface', name: 'cni0', prefix: false }, family: 6, matches: ['-i cni0'], svcMarks: 1 },
    { name: "InterfaceNamePrefix: iptables' PREFIX+", local: { by: 'interface', name: 'cali', prefix: true }, family: 4, matches: ['-i cali+'], svcMarks: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = withLocal(c.local);
      const { out, skipped, svcMarks } = localRules(p, c.family);
      expect(skipped).toEqual([]);
      expect(svcMarks).toBe(c.svcMarks);
      const returns = out.filter((r) => r.endsWith('-j RETURN'));
      expect(returns).toEqual(c.matches.map((m) => `${C('pod traffic is not masqueraded')} ${m} -j RETURN`));
      // The IPv4 Local-policy port short-circuits local traffic to its cluster endpoints.
      const shortCuts = out.filter((r) => r.includes('pod traffic for')).map((r) => r.replace(/ -j NETPLANE-\S+$/, ''));
      expect(shortCuts).toEqual(c.family === 4 ? c.matches.map((m) => `${C('pod traffic for default/l:p external destinations')} ${m}`) : []);
    });
  }

  it('renders restore input iptables-restore reads: the interface names bare, no quotes', () => {
    const text = renderIptables(withLocal({ by: 'interface', name: 'cali', prefix: true }), 4);
    expect(text).toContain(`-A NETPLANE-MARK-NONPOD ${C('pod traffic is not masqueraded')} -i cali+ -j RETURN\n`);
    expect(text).not.toContain('-s 10.244.0.0/16');
  });
});

// The nftables backend in a real kernel: a node namespace with three pods and an outside client (topology.ts),
// plans made by hand, the backend run in-process with nft executed inside the node namespace and its netlink
// socket for set elements held there too (as the proxy process has them), real packets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { affinityIdKey, affinityIds } from '../../../proxy/nftables/affinity.ts';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import { parseTable } from '../../../proxy/nftables/kernel.ts';
import type { PortPlan, ProxyPlan } from '../../../proxy/plan/types.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { NamespacedElementChannel } from '../../../lab/nft-elements.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from '../topology.ts';
import { eps, plan, port, served } from './plans.ts';

const names = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? r.name : r.error));
const seen = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? `${r.name} ${r.seenAs}` : r.error));
const spread = (rs: ProbeResult[]) => [...new Set(names(rs))].sort();

describe('nftables backend in the kernel', () => {
  let t: ProxyTopology;
  let runner: CommandRunner;
  let backend: NftablesBackend;
  let channel: NamespacedElementChannel;
  const pod = (i: number) => t.pods[i - 1]!;

  /** The cluster as a plan; `web` lists the pods behind the web Service, `sticky` and `sticky6` those behind the sticky ones. */
  function cluster(web: number[], sticky: number[] = [1, 2, 3], sticky6: number[] = [1, 2, 3]): ProxyPlan {
    const v4 = (list: number[]) => eps(list.map((i) => pod(i).ip4));
    const v6 = (list: number[]) => eps(list.map((i) => pod(i).ip6));
    const ports: PortPlan[] = [
      served('web', v4(web), { clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['203.0.113.10'], nodePort: 30080 }),
      served('web', v4(web), { portName: 'dns', protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'], nodePort: 30053 }),
      served('web', v6(web), { family: 6, clusterIPs: ['fd00:96::10'] }),
      served('web', v6(web), { family: 6, portName: 'dns', protocol: 'UDP', port: 53, clusterIPs: ['fd00:96::10'] }),
      port('empty', { clusterIPs: ['10.96.0.30'] }),
      port('empty', { portName: 'dns', protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.30'] }),
      port('local', { clusterIPs: ['10.96.0.20'], loadBalancerIPs: ['203.0.113.20'], nodePort: 30081, externalLocal: true, clusterEndpoints: v4([1, 2]), externalEndpoints: v4([1]) }),
      port('remote-only', { clusterIPs: ['10.96.0.21'], nodePort: 30082, externalLocal: true, clusterEndpoints: v4([2]), externalEndpoints: [], externalNoEndpoints: 'drop' }),
      served('sticky', v4(sticky), { clusterIPs: ['10.96.0.40'], affinitySeconds: 30 }),
      served('sticky', v6(sticky6), { family: 6, clusterIPs: ['fd00:96::40'], affinitySeconds: 30, nodePort: 30040 }),
      served('self', v4([1]), { clusterIPs: ['10.96.0.50'] }),
      served('ranged', v4([3]), { clusterIPs: ['10.96.0.60'], loadBalancerIPs: ['203.0.113.30'], sourceRanges: ['10.0.0.0/8'] }),
      // Affinity on every kind of address, both families.
      served('affx', v4([1, 2, 3]), { clusterIPs: ['10.96.0.45'], externalIPs: ['198.51.100.45'], loadBalancerIPs: ['203.0.113.45'], nodePort: 30045, affinitySeconds: 60 }),
      served('affx', v6([1, 2, 3]), { family: 6, clusterIPs: ['fd00:96::45'], loadBalancerIPs: ['2001:db8::45'], nodePort: 30045, affinitySeconds: 60 }),
      // IPv6 affinity with endpoints on two ports (a sticky chain keyed by the list's ID).
      served('mixed6', [{ ip: pod(1).ip6, port: 8080 }, { ip: pod(2).ip6, port: 8081 }, { ip: pod(3).ip6, port: 8081 }], { family: 6, clusterIPs: ['fd00:96::47'], loadBalancerIPs: ['2001:db8::47'], nodePort: 30047, affinitySeconds: 60 }),
      // Affinity under the Local policy: outside clients keep to this node's endpoints (pods 1 and 2).
      port('affl', { clusterIPs: ['10.96.0.46'], loadBalancerIPs: ['203.0.113.46'], nodePort: 30046, externalLocal: true, clusterEndpoints: v4([1, 2, 3]), externalEndpoints: v4([1, 2]), affinitySeconds: 60 }),
    ];
    return plan(ports);
  }

  beforeAll(async () => {
    t = await buildTopology(3, [8080, 8081]);
    runner = { run: (command, args, input, options) => t.lab.exec(t.node, command, args, input, options) };
    channel = await NamespacedElementChannel.open(t.node);
    backend = new NftablesBackend(runner, { log: silentLogger(), elements: () => channel });
    await backend.sync(cluster([1, 2, 3]), { full: true });
  }, 60_000);
  afterAll(async () => {
    await backend?.close();
    await t?.lab.destroy();
  });

  it('ClusterIP TCP and UDP reach every endpoint, from a pod and from outside', async () => {
    expect(spread(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(pod(1).ns, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(pod(1).ns, 'udp', '10.96.0.10', 53, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it('NodePorts on the node IP and the load-balancer IP reach every endpoint', async () => {
    expect(spread(await t.probe(t.client, 'tcp', t.nodeIP4, 30080, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(t.client, 'udp', t.nodeIP4, 30053, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(t.client, 'tcp', '203.0.113.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it('IPv6 ClusterIP TCP and UDP work', async () => {
    expect(spread(await t.probe(t.client, 'tcp', 'fd00:96::10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(t.client, 'udp', 'fd00:96::10', 53, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it('refuses a Service without endpoints at once: TCP reset, ICMP port unreachable for UDP', async () => {
    for (const from of [t.client, pod(1).ns]) {
      for (const [proto, p] of [['tcp', 80], ['udp', 53]] as const) {
        const [r] = await t.probe(from, proto, '10.96.0.30', p);
        expect(r).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
        expect(r!.ms).toBeLessThan(300);
      }
    }
  });

  it('masquerades outside traffic to cluster IPs and all Cluster-policy external traffic, keeps pod sources to cluster IPs', async () => {
    const masqueraded = (rs: ProbeResult[]) => rs.every((r) => r.ok && r.seenAs === '10.244.1.1');
    expect(masqueraded(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 6))).toBe(true);
    expect(masqueraded(await t.probe(t.client, 'tcp', '203.0.113.10', 80, 6))).toBe(true);
    expect(masqueraded(await t.probe(pod(2).ns, 'tcp', '203.0.113.10', 80, 6))).toBe(true);
    expect(seen(await t.probe(pod(2).ns, 'tcp', '10.96.0.50', 80, 3))).toEqual(Array(3).fill(`pod1 ${pod(2).ip4}`));
  });

  it('Local policy: outside traffic keeps its source and stays on this node; pods and the node may use any endpoint', async () => {
    expect(seen(await t.probe(t.client, 'tcp', '203.0.113.20', 80, 8))).toEqual(Array(8).fill('pod1 192.168.50.2'));
    expect(seen(await t.probe(t.client, 'tcp', t.nodeIP4, 30081, 8))).toEqual(Array(8).fill('pod1 192.168.50.2'));
    expect(spread(await t.probe(pod(3).ns, 'tcp', '203.0.113.20', 80, 24))).toEqual(['pod1', 'pod2']);
    expect(spread(await t.probe(pod(3).ns, 'tcp', t.nodeIP4, 30081, 24))).toEqual(['pod1', 'pod2']);
    // No local endpoint: outside traffic is dropped, a pod still reaches the remote one.
    expect(names(await t.probe(t.client, 'tcp', t.nodeIP4, 30082))).toEqual(['timeout']);
    expect(names(await t.probe(pod(3).ns, 'tcp', t.nodeIP4, 30082, 3))).toEqual(['pod2', 'pod2', 'pod2']);
  });

  it('from the node itself: ClusterIP and NodePort work, Local-policy addresses take any endpoint, masqueraded', async () => {
    expect(spread(await t.probe(t.node, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    expect(spread(await t.probe(t.node, 'tcp', t.nodeIP4, 30080, 24))).toEqual(['pod1', 'pod2', 'pod3']);
    const local = await t.probe(t.node, 'tcp', '203.0.113.20', 80, 24);
    expect(spread(local)).toEqual(['pod1', 'pod2']);
    expect(local.every((r) => r.ok && r.seenAs === '10.244.1.1')).toBe(true);
  });

  it('hairpin: a pod reaching itself through its Service is masqueraded', async () => {
    expect(seen(await t.probe(pod(1).ns, 'tcp', '10.96.0.50', 80, 3))).toEqual(Array(3).fill('pod1 10.244.1.1'));
  });

  it('loadBalancerSourceRanges: drops outside the ranges on the LB IP, admits inside them and on the cluster IP', async () => {
    expect(names(await t.probe(t.client, 'tcp', '203.0.113.30', 80))).toEqual(['timeout']);
    expect(names(await t.probe(pod(1).ns, 'tcp', '203.0.113.30', 80))).toEqual(['pod3']);
    expect(names(await t.probe(t.client, 'tcp', '10.96.0.60', 80))).toEqual(['pod3']);
  });

  it('ClientIP affinity sticks, and a removed endpoint releases its clients', async () => {
    const first = names(await t.probe(t.client, 'tcp', '10.96.0.40', 80, 12));
    expect(new Set(first).size).toBe(1);
    const stuck = Number(first[0]!.replace('pod', ''));
    const rest = [1, 2, 3].filter((i) => i !== stuck);
    const result = await backend.sync(cluster([1, 2, 3], rest), { full: false });
    expect(result.operations).toBeLessThan(20);
    const after = names(await t.probe(t.client, 'tcp', '10.96.0.40', 80, 6));
    expect(new Set(after).size).toBe(1);
    expect(rest.map((i) => `pod${i}`)).toContain(after[0]);
  });

  it('IPv6 ClientIP affinity holds while other endpoints come and go; a removed endpoint releases its clients', async () => {
    for (const [host, p] of [['fd00:96::40', 80], [t.nodeIP6, 30040]] as const) {
      const first = names(await t.probe(t.client, 'tcp', host, p, 8));
      expect(new Set(first).size).toBe(1);
      const stuck = Number(first[0]!.replace('pod', ''));
      const others = [1, 2, 3].filter((i) => i !== stuck);
      // Another endpoint leaves and comes back: the endpoint count changes twice, the client stays.
      await backend.sync(cluster([1, 2, 3], [1, 2, 3], [stuck, others[0]!]), { full: false });
      expect(names(await t.probe(t.client, 'tcp', host, p, 6))).toEqual(Array(6).fill(`pod${stuck}`));
      await backend.sync(cluster([1, 2, 3]), { full: false });
      expect(names(await t.probe(t.client, 'tcp', host, p, 6))).toEqual(Array(6).fill(`pod${stuck}`));
      // The kernel's entry carries the ID of the Service port's endpoint list (affinity.ts), and the endpoint.
      const { stdout } = await runner.run('nft', ['-j', 'list', 'map', 'ip6', 'netplane', 'affinity']);
      const plan6 = cluster([1, 2, 3]).ports.find((x) => x.name === 'sticky' && x.family === 6)!;
      const id = affinityIds(cluster([1, 2, 3]).ports).get(affinityIdKey(plan6, 'all'));
      const entries = [...parseTable(6, stdout).sets.get('affinity')!.elements];
      expect(entries.filter(([k]) => k.endsWith(` . ${id}`)).map(([, v]) => v)).toEqual([pod(stuck).ip6]);
      // Its endpoint leaves: the entry goes, and the client is balanced anew over the rest.
      await backend.sync(cluster([1, 2, 3], [1, 2, 3], others), { full: false });
      const after = names(await t.probe(t.client, 'tcp', host, p, 6));
      expect(new Set(after).size).toBe(1);
      expect(others.map((i) => `pod${i}`)).toContain(after[0]);
      await backend.sync(cluster([1, 2, 3]), { full: false });
    }
  });

  it('ClientIP affinity is per Service port: a client keeps one endpoint over the cluster IP, external and LB IPs and the NodePort on every node address (IPv6 also with endpoints on two ports)', async () => {
    const v4: Array<[string, number]> = [['10.96.0.45', 80], ['198.51.100.45', 80], ['203.0.113.45', 80], [t.nodeIP4, 30045], ['10.244.1.1', 30045]];
    const v6: Array<[string, number]> = [['fd00:96::45', 80], ['2001:db8::45', 80], [t.nodeIP6, 30045], ['fd00:244:1::1', 30045]];
    const mixed6: Array<[string, number]> = [['fd00:96::47', 80], ['2001:db8::47', 80], [t.nodeIP6, 30047], ['fd00:244:1::1', 30047]];
    // (Not from the node: its source address is chosen per destination, so it is another client each time.)
    for (const from of [t.client, pod(1).ns]) {
      for (const targets of [v4, v6, mixed6]) {
        const seenBy: string[] = [];
        for (const [host, p] of [...targets, ...targets]) seenBy.push(...names(await t.probe(from, 'tcp', host, p, 2)));
        expect([from, new Set(seenBy).size, seenBy.every((n) => n.startsWith('pod'))]).toEqual([from, 1, true]);
      }
    }
    // Masquerading is decided as without affinity: the client's mark comes back after the affinity ID used it.
    expect(seen(await t.probe(t.client, 'tcp', '10.96.0.45', 80, 2)).every((x) => x.endsWith(' 10.244.1.1'))).toBe(true);
    expect(seen(await t.probe(pod(2).ns, 'tcp', '10.96.0.45', 80, 2)).every((x) => x.endsWith(` ${pod(2).ip4}`) || x.endsWith(' 10.244.1.1'))).toBe(true);
    // About 100 probe processes in sequence: over 20 s on a loaded 2-core machine.
  }, 60_000);

  it('ClientIP affinity under the Local policy: outside clients stick to a local endpoint, pods to any, over every address', async () => {
    const outside = [...names(await t.probe(t.client, 'tcp', '203.0.113.46', 80, 3)), ...names(await t.probe(t.client, 'tcp', t.nodeIP4, 30046, 3))];
    expect(new Set(outside).size).toBe(1);
    expect(['pod1', 'pod2']).toContain(outside[0]);
    const inside = [...names(await t.probe(pod(3).ns, 'tcp', '203.0.113.46', 80, 3)), ...names(await t.probe(pod(3).ns, 'tcp', t.nodeIP4, 30046, 3)), ...names(await t.probe(pod(3).ns, 'tcp', '10.96.0.46', 80, 3))];
    expect(new Set(inside).size).toBe(1);
    expect(inside[0]).toMatch(/^pod[123]$/);
  });

  it("keeps a packet's own mark: the affinity ID replaces it only between NAT and routing", async () => {
    // Another table marks the client's packets before netplane (priority mangle) and counts them after it: the
    // mark is exactly its own again (netplane's masquerade bit came and went).
    await runner.run('nft', ['-f', '-'], [
      'table ip marker {',
      '  chain pre {',
      '    type filter hook prerouting priority -150; policy accept;',
      '    ip saddr 192.168.50.2 tcp dport { 80, 30045 } meta mark set meta mark | 0x10000',
      '  }',
      '  chain out {',
      '    type route hook output priority -150; policy accept;',
      '    ip daddr 10.96.0.45 meta mark set meta mark | 0x10000',
      '  }',
      '  chain post {',
      '    type filter hook postrouting priority 200; policy accept;',
      '    ct state new ct original ip daddr { 10.96.0.45, 192.168.50.1 } meta mark 0x10000 counter',
      '  }',
      '}',
    ].join('\n'));
    try {
      // From outside (prerouting) to the cluster IP and the NodePort, and from the node itself (output).
      const rs = [...(await t.probe(t.client, 'tcp', '10.96.0.45', 80, 3)), ...(await t.probe(t.client, 'tcp', t.nodeIP4, 30045, 3)), ...(await t.probe(t.node, 'tcp', '10.96.0.45', 80, 2))];
      expect(rs.every((r) => r.ok)).toBe(true);
      const { stdout } = await runner.run('nft', ['list', 'chain', 'ip', 'marker', 'post']);
      expect(/counter packets (\d+)/.exec(stdout)?.[1]).toBe('8');
    } finally {
      await runner.run('nft', ['delete', 'table', 'ip', 'marker']);
    }
  });

  it('applies an endpoint change with a small transaction', async () => {
    // Four Service ports (TCP, UDP, both families) on eight addresses and NodePorts move from 3 to 2 endpoints.
    const result = await backend.sync(cluster([1, 2], [1, 2]), { full: false });
    expect(result.operations).toBeLessThan(40);
    expect(spread(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2']);
    expect(spread(await t.probe(t.client, 'udp', 'fd00:96::10', 53, 24))).toEqual(['pod1', 'pod2']);
    await backend.sync(cluster([1, 2, 3], [1, 2]), { full: false });
    expect(spread(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it('a restarted backend resyncs without operations, and connections keep working', async () => {
    const held = t.probe(t.client, 'tcp', '10.96.0.10', 80, 1, ['--hold', '1500']);
    await new Promise((r) => setTimeout(r, 200));
    // It reads the tables back with their elements listed by netlink, as the proxy does: one element read other
    // than as nft lists it would be an operation.
    backend = new NftablesBackend(runner, { log: silentLogger(), elements: () => channel });
    expect(await backend.sync(cluster([1, 2, 3], [1, 2]), { full: true })).toMatchObject({ operations: 0 });
    expect((await held)[0]).toMatchObject({ ok: true });
    expect(spread(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it("the canary and inherited() read netplane's two tables only, whatever else the ruleset holds", async () => {
    const foreign = [
      'add table inet netplane', 'add chain inet netplane services', 'add rule inet netplane services accept',
      'add table ip other', 'add chain ip other services', 'add rule ip other services accept',
      'add set ip other cluster-vips { type ipv4_addr; }', 'add element ip other cluster-vips { 10.96.0.10 }',
    ];
    await runner.run('nft', ['-f', '-'], `${foreign.join('\n')}\n`);
    try {
      expect(await backend.verify()).toBeUndefined();
      expect(await backend.inherited()).toBe(true);
      await runner.run('nft', ['add', 'rule', 'ip', 'netplane', 'services', 'accept']);
      expect(await backend.verify()).toMatch(/rules of chain services of ip netplane were changed/);
      await backend.sync(cluster([1, 2, 3], [1, 2]), { full: true });
      expect(await backend.verify()).toBeUndefined();
      await runner.run('nft', ['delete', 'table', 'ip6', 'netplane']);
      expect(await backend.verify()).toMatch(/table ip6 netplane is missing/);
      expect(await backend.inherited()).toBe(true);
      await backend.cleanup();
      expect(await backend.inherited()).toBe(false);
    } finally {
      await runner.run('nft', ['-f', '-'], 'delete table inet netplane\ndelete table ip other\n');
    }
    await backend.sync(cluster([1, 2, 3], [1, 2]), { full: true });
    expect(spread(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 24))).toEqual(['pod1', 'pod2', 'pod3']);
  });

  it('cleanup leaves no table behind', async () => {
    await backend.cleanup();
    expect((await runner.run('nft', ['list', 'tables'])).stdout.trim()).toBe('');
    expect(names(await t.probe(t.client, 'tcp', '10.96.0.10', 80))).not.toEqual(['pod1']);
  });
});

// netplane overlay on hosts whose firewall drops forwarded packets, as Docker leaves them (iptables FORWARD policy
// DROP, a DOCKER-USER chain): node1 drops in iptables-nft, node2 in iptables-legacy. Pod traffic must flow all the
// same, through netplane's accept chain in the variant that drops (Flannel's FLANNEL-FWD), and `--cleanup` takes
// it away. Real packets between pods on two dual-stack nodes; every namespace is removed at the end.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const jump = '-A FORWARD -m comment --comment "netplane overlay: forward pod traffic" -j NETPLANE-OVERLAY-FWD';

describe('netplane overlay where the FORWARD policy is DROP', () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;
  const filter = async (i: number, command: string) => (await t.sh(node(i).ns, command, ['-t', 'filter'])).split('\n').filter((l) => /^[-:]/.test(l));

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, true);
    await t.writeNodes();
    for (const cmd of ['iptables-nft', 'ip6tables-nft']) {
      await t.lab.exec(node(1).ns, cmd, ['-P', 'FORWARD', 'DROP']);
      await t.lab.exec(node(1).ns, cmd, ['-N', 'DOCKER-USER']);
      await t.lab.exec(node(1).ns, cmd, ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
    }
    for (const cmd of ['iptables-legacy', 'ip6tables-legacy']) await t.lab.exec(node(2).ns, cmd, ['-P', 'FORWARD', 'DROP']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it("an accept in a nftables table of netplane's own would not do: the other table's drop still applies", async () => {
    // Without the overlay: pod11 → the outside host, routed by node1 (the outside host routes the reply back).
    const n1 = node(1);
    await t.lab.exec(t.outside.ns, 'ip', ['route', 'add', '10.244.1.0/24', 'via', n1.ip]);
    try {
      const pod = n1.pods[0]!;
      const quick = async () => (await t.lab.exec(pod.ns, process.execPath, [fileURLToPath(new URL('../helpers/probe.ts', import.meta.url)), 'tcp', t.outside.ip, '8080', '1', '700'])).stdout;
      expect(JSON.parse(await quick())).toMatchObject({ ok: false });
      const accept = ['table ip np-test {', '  chain forward {', '    type filter hook forward priority filter - 10; policy accept;', '    ip saddr 10.244.0.0/16 accept', '    ip daddr 10.244.0.0/16 accept', '  }', '}', ''].join('\n');
      await t.lab.exec(n1.ns, 'nft', ['-f', '-'], accept);
      expect(JSON.parse(await quick())).toMatchObject({ ok: false });
      await t.lab.exec(n1.ns, 'nft', ['delete', 'table', 'ip', 'np-test']);
    } finally {
      await t.lab.exec(t.outside.ns, 'ip', ['route', 'del', '10.244.1.0/24']);
    }
  });

  it('pods reach pods on the other node (IPv4 and IPv6) and the outside, through the accept chain of the variant that drops', async () => {
    await Promise.all(t.nodes.map((n) => t.startAgent(n)));
    const [p1, p2] = [node(1).pods[0]!, node(2).pods[0]!];
    for (const [from, to] of [[p1, p2], [p2, p1]] as const) {
      expect(await t.probe(from.ns, 'tcp', to.ip)).toEqual([expect.objectContaining({ ok: true, name: to.name, seenAs: from.ip })]);
      expect(await t.probe(from.ns, 'tcp', to.ip6!)).toEqual([expect.objectContaining({ ok: true, name: to.name, seenAs: from.ip6 })]);
      expect(await t.probe(from.ns, 'tcp', t.outside.ip)).toEqual([expect.objectContaining({ ok: true, name: 'outside' })]);
    }
    // node1: after Docker's DOCKER-USER jump, in iptables-nft; node2: in iptables-legacy; the other variant untouched.
    expect(await filter(1, 'iptables-nft-save')).toEqual([
      ':INPUT ACCEPT [0:0]', expect.stringMatching(/^:FORWARD DROP /), ':OUTPUT ACCEPT [0:0]', ':DOCKER-USER - [0:0]', ':NETPLANE-OVERLAY-FWD - [0:0]',
      '-A FORWARD -j DOCKER-USER', jump,
      '-A NETPLANE-OVERLAY-FWD -s 10.244.0.0/16 -m comment --comment "netplane overlay: forward pod traffic" -j ACCEPT',
      '-A NETPLANE-OVERLAY-FWD -d 10.244.0.0/16 -m comment --comment "netplane overlay: forward pod traffic" -j ACCEPT',
    ]);
    expect(await filter(1, 'ip6tables-nft-save')).toContain('-A NETPLANE-OVERLAY-FWD -s fd00:244::/32 -m comment --comment "netplane overlay: forward pod traffic" -j ACCEPT');
    expect(await filter(2, 'iptables-legacy-save')).toContain(jump);
    expect(await filter(2, 'iptables-nft-save')).not.toContain(jump);
    expect(t.agents.get('node1')!.logs).toContainEqual(expect.objectContaining({ msg: "iptables-nft FORWARD may drop forwarded packets: pod traffic is accepted there through NETPLANE-OVERLAY-FWD, as Flannel's FLANNEL-FWD" }));
  });

  it('a start (a full sync, as each resync is) puts back a chain someone flushed', async () => {
    await t.lab.exec(node(2).ns, 'iptables-legacy', ['-F', 'NETPLANE-OVERLAY-FWD']);
    await t.stopAgent(node(2));
    await t.startAgent(node(2));
    expect(await filter(2, 'iptables-legacy-save')).toContain('-A NETPLANE-OVERLAY-FWD -d 10.244.0.0/16 -m comment --comment "netplane overlay: forward pod traffic" -j ACCEPT');
  });

  it('--cleanup removes the chain and its jump, and nothing else', async () => {
    await t.stopAgent(node(1));
    await t.lab.exec(node(1).ns, process.execPath, [bin, 'overlay', '--cleanup']);
    for (const cmd of ['iptables-nft-save', 'ip6tables-nft-save']) {
      expect(await filter(1, cmd)).toEqual([':INPUT ACCEPT [0:0]', expect.stringMatching(/^:FORWARD DROP /), ':OUTPUT ACCEPT [0:0]', ':DOCKER-USER - [0:0]', '-A FORWARD -j DOCKER-USER']);
    }
  });
});

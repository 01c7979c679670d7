// --iptables-variant auto: which iptables the host uses. The choice as a table, then in the kernel: a node whose
// FORWARD policy is DROP in iptables-legacy (found by an audit: netplane wrote its accepts into iptables-nft, where
// they do not get a packet past legacy's DROP, and NodePorts timed out). Every namespace is removed at the end.
import { describe, expect, it } from 'vitest';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import { hostUse, installedVariants, pickVariant, resolveVariant } from '../../../proxy/iptables/variant.ts';
import type { Target } from '../../../proxy/plan/types.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { topologyForSuite } from '../topology.ts';
import { plan, port } from './plans.ts';

const save = (...lines: string[]) => ['*filter', ':INPUT ACCEPT [0:0]', ...lines, 'COMMIT'].join('\n');
const hint = '*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT';

describe('pickVariant', () => {
  it.each([
    ["kubelet's hint in nft", { nft: hint, legacy: save(':FORWARD DROP [0:0]') }, 'nft'],
    ["kubelet's canary in legacy (IPv6 only)", { nft: save('-A INPUT -j ACCEPT'), legacy: '\n*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT' }, 'legacy'],
    ["Docker's FORWARD DROP in legacy, nothing in nft", { nft: '', legacy: save(':FORWARD DROP [0:0]', '-A FORWARD -j DOCKER-USER') }, 'legacy'],
    ['more of the host in nft', { nft: save('-A INPUT -i lo -j ACCEPT', '-A INPUT -p tcp -j ACCEPT'), legacy: save('-A INPUT -j ACCEPT') }, 'nft'],
    ["netplane's own rules do not count", { nft: save(':NETPLANE-FORWARD - [0:0]', '-A FORWARD -j NETPLANE-FORWARD', '-A NETPLANE-FORWARD -j ACCEPT'), legacy: save('-A INPUT -j ACCEPT') }, 'legacy'],
    ['nothing anywhere', { nft: '', legacy: '' }, 'nft'],
    ['no iptables-nft at all', { legacy: '' }, 'legacy'],
  ] as const)('%s: %s', (_name, facts, variant) => {
    const got = pickVariant(facts);
    expect(got.variant).toBe(variant);
    expect(got.why.length).toBeGreaterThan(10);
  });

  it('counts the rules of others and DROP policies', () => {
    expect(hostUse(save(':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':MINE - [0:0]', '-A MINE -j RETURN', '-A FORWARD -j NETPLANE-FORWARD'))).toBe(2);
    expect(hostUse(undefined)).toBe(0);
  });
});

const ep = (i: number): Target => ({ ip: `10.244.1.${10 + i}`, port: 8080 });
const services = plan([port('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: [ep(1), ep(2)] })]);

describe('--iptables-variant auto on a host whose FORWARD DROP is in iptables-legacy', () => {
  let runner: CommandRunner;
  const suite = topologyForSuite(2, [8080], async (t) => {
    runner = { run: (command, args, input) => t.lab.exec(t.node, command, args, input) };
    for (const cmd of ['iptables-legacy', 'ip6tables-legacy']) await runner.run(cmd, ['-P', 'FORWARD', 'DROP']);
  });

  it('in iptables-nft, the accepts do not pass legacy\'s DROP: a NodePort from outside times out', async () => {
    const nft = new IptablesBackend(runner, { log: silentLogger(), variant: 'nft', tcpBeLiberal: async () => false });
    await nft.sync(services, { full: true });
    const [r] = await suite().probe(suite().client, 'tcp', suite().nodeIP4, 30080, 1);
    expect(r!.ok).toBe(false);
    await nft.cleanup();
  });

  it('auto picks legacy, and there the NodePort reaches the pods; a clean-up of each installed variant leaves nothing', async () => {
    const chosen = await resolveVariant('auto', runner);
    expect(chosen.variant).toBe('legacy');
    expect(chosen.why).toContain('iptables-legacy');
    const legacy = new IptablesBackend(runner, { log: silentLogger(), variant: chosen.variant, tcpBeLiberal: async () => false });
    await legacy.sync(services, { full: true });
    const rs = await suite().probe(suite().client, 'tcp', suite().nodeIP4, 30080, 4);
    expect(rs.map((r) => r.ok)).toEqual([true, true, true, true]);
    // The choice does not move once netplane's own rules are in legacy.
    expect((await resolveVariant('auto', runner)).variant).toBe('legacy');
    expect(await installedVariants(runner)).toEqual(['nft', 'legacy']);
    for (const variant of await installedVariants(runner)) await new IptablesBackend(runner, { log: silentLogger(), variant }).cleanup();
    for (const command of ['iptables-legacy-save', 'iptables-nft-save']) expect((await runner.run(command, [])).stdout).not.toContain('NETPLANE');
  });
});

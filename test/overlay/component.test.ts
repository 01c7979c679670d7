// The overlay component wired as the CLI wires it, in kubernetes mode against the test API server, with the
// in-memory kernel and a recording nft runner: other nodes' annotations are used, this node's VTEP is published,
// and its own stale public-ip annotation is corrected rather than believed. Plus the flags' error sentences.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { Store } from '../../cluster/store.ts';
import { overlayComponent, runOverlay, type OverlayFlags } from '../../overlay/component.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { AdminServer } from '../../runtime/admin.ts';
import { commonFlags, type ComponentContext } from '../../runtime/component.ts';
import type { CommandOutput, CommandRunner } from '../../runtime/exec.ts';
import { parseFlags } from '../../runtime/flags.ts';
import { Shutdown } from '../../runtime/shutdown.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';
import { rawNode } from './fixtures.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

describe('netplane overlay in kubernetes mode (in-memory kernel)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('uses the other nodes\' annotations, publishes its own VTEP, and corrects a stale annotation of its own', async () => {
    const api = await TestApiServer.start();
    cleanups.push(() => api.close());
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }));
    api.apply(rawNode('node2', { podCIDRs: ['10.244.2.0/24'], ip: '192.168.60.2', annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:02', 'netplane.io/public-ip': '192.168.61.2' } }));
    api.apply(rawNode('node3', { podCIDRs: ['10.244.3.0/24'], ip: '192.168.60.3' }));
    const kubeconfig = await api.kubeconfigPath();

    const { log, records } = captureLogger();
    const store = new Store(overlayComponent.kinds);
    const registry = new Registry();
    const source = new KubernetesSource(loadKubeConfig(kubeconfig), { log, initialBackoffMs: 50, maxBackoffMs: 200 });
    const shutdown = new Shutdown(log, { exit: () => {} });
    cleanups.push(() => shutdown.run(0));
    const ctx: ComponentContext = {
      name: 'overlay', log, registry, store, source, nodeName: 'node1', admin: new AdminServer(registry, store), shutdown,
      serviceMap: () => {
        throw new Error('the overlay needs no service map');
      },
    };
    shutdown.add('source', () => source.stop());
    const flags = parseFlags('netplane overlay', { ...commonFlags(overlayComponent.defaultAdmin), ...overlayComponent.flags }, ['--kubeconfig', kubeconfig, '--node-name', 'node1', '--iface', 'eth9', '--iface', '192.168.60.1']) as OverlayFlags;
    // --iface is repeatable and takes an address, as Flannel's: eth9 is not here, the interface holding 192.168.60.1 is.
    expect(flags.iface).toEqual(['eth9', '192.168.60.1']);
    const kernel = new FakeKernel([{ name: 'eth0', kind: 'veth', up: true, addresses: ['192.168.60.1/24'] }]);
    const nft: string[] = [];
    const runner: CommandRunner = {
      async run(cmd, args, input): Promise<CommandOutput> {
        nft.push(`${cmd} ${args.join(' ')}\n${input ?? ''}`);
        return { stdout: '', stderr: '' };
      },
    };
    await source.start(store);
    const agent = (await runOverlay(ctx, flags, { openKernel: async () => kernel, runner }))!;
    await agent.settled();

    const fdb = kernel.dump().split('\n').filter((l) => l.startsWith('fdb'));
    expect(fdb).toEqual([`fdb netplane.1 0a:00:00:00:00:02 dst 192.168.61.2 self permanent`, `fdb netplane.1 ${derivedMac('192.168.60.3')} dst 192.168.60.3 self permanent`].sort());
    // No --cluster-cidr: the nodes' podCIDRs are the cluster.
    expect(nft.filter((c) => c.startsWith('nft ')).at(-1)).toContain('elements = { 10.244.1.0/24, 10.244.2.0/24, 10.244.3.0/24 }');

    const mine = { 'netplane.io/vtep-mac': derivedMac('192.168.60.1'), 'netplane.io/public-ip': '192.168.60.1' };
    const annotations = () => store.get('Node', 'node1')?.metadata.annotations ?? {};
    await waitFor('the published annotations', () => annotations()['netplane.io/public-ip'] === '192.168.60.1');
    expect(annotations()).toEqual(mine);

    // Someone (an older agent, a restore from backup) leaves a wrong public-ip on this node: the agent keeps using
    // its real address and writes it back; the MAC annotation is kept (stable across address changes).
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: { ...mine, 'netplane.io/public-ip': '10.9.9.9', 'netplane.io/vtep-mac': '0a:00:00:00:00:01' } }));
    await waitFor('the corrected annotation', () => annotations()['netplane.io/public-ip'] === '192.168.60.1' && annotations()['netplane.io/vtep-mac'] === '0a:00:00:00:00:01', 5000);
    await agent.settled();
    expect(kernel.dump()).toMatch(/link netplane.1 vxlan vni 1 port 8472 local 192.168.60.1 dev eth0 nolearning mtu 1450 up mac 0a:00:00:00:00:01/);
    expect(records.filter((r) => Number(r.level) >= 50)).toEqual([]);
  });
});

describe('netplane overlay in kubernetes mode: a node behind NAT, and its NetworkUnavailable condition', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** The component on node1 against a fresh API server holding `nodes`, with the in-memory kernel. */
  async function boot(nodes: Array<Record<string, unknown>>, args: string[] = [], addresses = ['192.168.60.1/24']) {
    const api = await TestApiServer.start();
    cleanups.push(() => api.close());
    for (const n of nodes) api.apply(n);
    const kubeconfig = await api.kubeconfigPath();
    const { log, records } = captureLogger();
    const store = new Store(overlayComponent.kinds);
    const registry = new Registry();
    const source = new KubernetesSource(loadKubeConfig(kubeconfig), { log, initialBackoffMs: 50, maxBackoffMs: 200 });
    const shutdown = new Shutdown(log, { exit: () => {} });
    cleanups.push(() => shutdown.run(0));
    const ctx: ComponentContext = {
      name: 'overlay', log, registry, store, source, nodeName: 'node1', admin: new AdminServer(registry, store), shutdown,
      serviceMap: () => {
        throw new Error('the overlay needs no service map');
      },
    };
    shutdown.add('source', () => source.stop());
    const flags = parseFlags('netplane overlay', { ...commonFlags(overlayComponent.defaultAdmin), ...overlayComponent.flags }, ['--kubeconfig', kubeconfig, '--node-name', 'node1', ...args]) as OverlayFlags;
    const kernel = new FakeKernel([{ name: 'eth0', kind: 'veth', up: true, addresses }]);
    const runner: CommandRunner = { run: async () => ({ stdout: '', stderr: '' }) };
    await source.start(store);
    const agent = (await runOverlay(ctx, flags, { openKernel: async () => kernel, runner }))!;
    await agent.settled();
    const annotations = () => store.get('Node', 'node1')?.metadata.annotations ?? {};
    const node = async () => (await (await fetch(`${api.url}/api/v1/nodes/node1`)).json()) as { status: { conditions?: Array<Record<string, string>> } };
    return { api, kernel, records, annotations, node };
  }

  const nat = { 'flannel.alpha.coreos.com/public-ip-overwrite': '203.0.113.1' };

  it('--public-ip and --public-ipv6: announced in place of the VXLAN source, which stays the interface\'s; the overwrite annotation still wins', async () => {
    const self = (annotations: Record<string, string> = {}) => rawNode('node1', { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], ip: '192.168.60.1', annotations });
    const { api, kernel, annotations } = await boot([self()], ['--public-ip', '203.0.113.7', '--public-ipv6', '2001:db8::7', '--flannel-annotations', '--set-node-network-unavailable', 'false'], ['192.168.60.1/24', 'fd00:60::1/64']);
    await waitFor('the published addresses', () => annotations()['netplane.io/public-ip'] === '203.0.113.7');
    expect(annotations()).toMatchObject({ 'flannel.alpha.coreos.com/public-ip': '203.0.113.7', 'flannel.alpha.coreos.com/public-ipv6': '2001:db8::7' });
    expect(kernel.dump()).toMatch(/link netplane.1 vxlan vni 1 port 8472 local 192.168.60.1 dev eth0 /);
    api.apply(self({ ...annotations(), ...nat }));
    await waitFor('the overwrite published', () => annotations()['netplane.io/public-ip'] === '203.0.113.1', 5000);
  });

  it('--public-ip held by an interface here chooses it as the underlay when no --iface is given, as Flannel looks it up', async () => {
    const { kernel, annotations } = await boot([rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' })], ['--public-ip', '192.168.60.9', '--set-node-network-unavailable', 'false'], ['192.168.60.1/24', '192.168.60.9/24']);
    expect(kernel.dump()).toMatch(/link netplane.1 vxlan vni 1 port 8472 local 192.168.60.9 dev eth0 /);
    await waitFor('the published address', () => annotations()['netplane.io/public-ip'] === '192.168.60.9');
  });

  it('--ipv6-device auto: builds netplane-v6.1, sends a Flannel node its IPv6 pods over it, keeps a netplane node without one on netplane.1, and announces it', async () => {
    const dual = (i: number, annotations: Record<string, string>) => rawNode(`node${i}`, { podCIDRs: [`10.244.${i}.0/24`, `fd00:244:${i}::/64`], ip: `192.168.60.${i}`, externalIP: `fd00:60::${i}`, annotations });
    const flannel = {
      'flannel.alpha.coreos.com/backend-type': 'vxlan', 'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
      'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:f1:02"}', 'flannel.alpha.coreos.com/backend-v6-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:f6:02"}',
      'flannel.alpha.coreos.com/public-ip': '192.168.60.2', 'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::2',
    };
    const old = { 'netplane.io/vtep-mac': '0a:00:00:00:00:03', 'netplane.io/public-ip': '192.168.60.3' };
    const { api, kernel, annotations, records } = await boot([dual(1, {}), dual(2, flannel), dual(3, old)], ['--ipv6-device', 'auto', '--flannel-annotations', '--set-node-network-unavailable', 'false'], ['192.168.60.1/24', 'fd00:60::1/64']);
    const lines = () => kernel.dump().split('\n');
    expect(lines()).toContainEqual(expect.stringMatching(/^link netplane-v6.1 vxlan vni 1 port 8472 local fd00:60::1 dev eth0 nolearning mtu 1430 up mac /));
    expect(lines().filter((l) => l.includes('netplane-v6.1') && /^(fdb|route|neigh)/.test(l))).toEqual([
      'fdb netplane-v6.1 0a:00:00:00:f6:02 dst fd00:60::2 self permanent',
      'neigh netplane-v6.1 fd00:244:2:: lladdr 0a:00:00:00:f6:02 permanent',
      'route fd00:244:2::/64 via fd00:244:2:: dev netplane-v6.1 onlink',
    ]);
    expect(lines()).toContain('route fd00:244:3::/64 via fd00:244:3:: dev netplane.1 onlink');
    const mac6 = derivedMac('fd00:60::1');
    await waitFor('the published annotations', () => annotations()['netplane.io/vtep-v6-mac'] !== undefined, 5000);
    expect(annotations()).toMatchObject({
      'netplane.io/vtep-v6-mac': mac6, 'netplane.io/public-ipv6': 'fd00:60::1',
      'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: 1, VtepMAC: mac6 }), 'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::1',
    });
    // node3's agent is upgraded and announces its IPv6 device: its IPv6 pods move over.
    api.apply(dual(3, { ...old, 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:03', 'netplane.io/public-ipv6': 'fd00:60::3' }));
    await waitFor("node3's IPv6 pods on netplane-v6.1", () => kernel.dump().includes('route fd00:244:3::/64 via fd00:244:3:: dev netplane-v6.1 onlink'), 5000);
    expect(lines().filter((l) => l.includes('fd00:244:3::/64'))).toHaveLength(1);
    expect(records.filter((r) => Number(r.level) >= 50)).toEqual([]);
  });

  it("publishes Flannel's public-ip-overwrite as its public IP, keeps the interface address as the VXLAN source, and leaves a matching hand-set value alone", async () => {
    // Without the NetworkUnavailable reporter, every PATCH of node1's status is the publisher's.
    const { api, kernel, annotations } = await boot([rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: nat }), rawNode('node2', { podCIDRs: ['10.244.2.0/24'], ip: '192.168.60.2' })], ['--flannel-annotations', '--set-node-network-unavailable', 'false']);
    await waitFor('the published annotations', () => annotations()['netplane.io/public-ip'] === '203.0.113.1', 5000);
    expect(annotations()).toMatchObject({ 'netplane.io/public-ip': '203.0.113.1', 'flannel.alpha.coreos.com/public-ip': '203.0.113.1', ...nat });
    expect(kernel.dump()).toMatch(/link netplane.1 vxlan vni 1 port 8472 local 192.168.60.1 dev eth0 /);
    const patches = () => api.requests.filter((r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/node1/status').length;
    const before = patches();
    expect(before).toBeGreaterThan(0);
    // Someone sets netplane.io/public-ip by hand to the NAT address as well: nothing to write back.
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: { ...annotations(), 'netplane.io/public-ip': '203.0.113.1' } }));
    api.apply(rawNode('node2', { podCIDRs: ['10.244.2.0/24'], ip: '192.168.60.3' }));
    await waitFor("node2's move", () => kernel.dump().includes('dst 192.168.60.3'), 5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(patches()).toBe(before);
    expect(annotations()['netplane.io/public-ip']).toBe('203.0.113.1');
  });

  it('sets NetworkUnavailable to False once the overlay is up, unless --set-node-network-unavailable false', async () => {
    const withCondition = () => {
      const n = rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }) as { status: Record<string, unknown> };
      n.status.conditions = [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }, { type: 'Ready', status: 'True', reason: 'KubeletReady' }];
      return n as Record<string, unknown>;
    };
    const on = await boot([withCondition()]);
    await waitFor('the condition', async () => (await on.node()).status.conditions?.[0]?.status === 'False', 5000);
    expect((await on.node()).status.conditions).toEqual([
      expect.objectContaining({ type: 'NetworkUnavailable', status: 'False', reason: 'NetplaneOverlayIsUp' }),
      { type: 'Ready', status: 'True', reason: 'KubeletReady' },
    ]);
    const off = await boot([withCondition()], ['--set-node-network-unavailable', 'false']);
    await new Promise((r) => setTimeout(r, 300));
    // The annotations still go through nodes/status; the conditions are left as they were.
    await waitFor('the published annotations', () => off.annotations()['netplane.io/vtep-mac'] !== undefined, 5000);
    expect((await off.node()).status.conditions).toEqual((withCondition() as { status: { conditions: unknown } }).status.conditions);
  });
});

describe('netplane overlay command line', () => {
  const wrong: Array<[string[], RegExp]> = [
    [['--vni', '16777216'], /^netplane overlay: --vni "16777216": must be a whole number from 0 to 16777215/],
    [['--port', '0'], /^netplane overlay: --port "0": must be a whole number from 1 to 65535/],
    [['--mtu', '20'], /^netplane overlay: --mtu "20": must be a whole number from 68 to 65535/],
    [['--device', 'a/b'], /^netplane overlay: --device "a\/b": must be an interface name of 1 to 15 characters/],
    [['--iface', 'fd00::1::2'], /^netplane overlay: --iface "fd00::1::2": must be an IP address or an interface name of 1 to 15 characters/],
    [['--cluster-cidr', '10.244.0.0/33'], /^netplane overlay: --cluster-cidr "10.244.0.0\/33": "10.244.0.0\/33" is not a CIDR/],
    [['--ipv6-device', 'on'], /^netplane overlay: --ipv6-device "on": must be one of auto, off/],
    // Checked after the source flags: with a directory that exists.
    [['--manifests', '/tmp', '--ipv6-device-name', 'netplane.1'], /^netplane overlay: --ipv6-device-name netplane.1 is also --device; give the IPv6 device a name of its own/],
  ];
  it.each(wrong)('exits 2 with one sentence for %j', (args, message) => {
    const r = spawnSync(process.execPath, [bin, 'overlay', ...args], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

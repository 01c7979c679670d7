// The second (IPv6) VXLAN device, --ipv6-device auto: the planner's tables (when this node has one, which remotes
// go over it), the agent on the in-memory kernel (a pod network moving between the devices, the flag turned off, a
// restart), and the annotations that announce it.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../../cluster/model/index.ts';
import { Store } from '../../cluster/store.ts';
import { OverlayAgent } from '../../overlay/agent.ts';
import { FakeKernel } from '../../overlay/kernel/fake.ts';
import { registerOverlayMetrics } from '../../overlay/metrics.ts';
import { devicePlans } from '../../overlay/plan/device6.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { planOverlay } from '../../overlay/plan/plan.ts';
import type { HostView, OverlayOptions } from '../../overlay/plan/types.ts';
import { annotationsFor } from '../../overlay/publish.ts';
import { captureLogger } from '../helpers/wait.ts';
import { node, options1, type NodeSpec } from './fixtures.ts';

const auto: OverlayOptions = { ...options1, ipv6Device: { name: 'netplane-v6.1', auto: true } };
const kube: OverlayOptions = { ...auto, publishes: true };

/** Node i on a dual-stack underlay with dual-stack pods. */
const dual = (i: number, extra: NodeSpec = {}): Node =>
  node(`node${i}`, { podCIDRs: [`10.244.${i}.0/24`, `fd00:244:${i}::/64`], ...extra, annotations: extra.annotations ?? {} });
/** As dual(), but listing both underlay addresses as InternalIPs (NodeSpec has one: the second goes in as ExternalIP). */
const dualNode = (i: number, extra: NodeSpec = {}): Node => dual(i, { ip: `192.168.60.${i}`, externalIP: `fd00:60::${i}`, ...extra });

const mac6 = (i: number) => derivedMac(`fd00:60::${i}`);
const flannel6 = (mac: string, vni = 1) => ({ 'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: vni, VtepMAC: mac }), 'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::3' });

function hostView(extra: Array<{ index: number; cidr: string }> = [{ index: 2, cidr: 'fd00:60::1/64' }], mtu = 1500): HostView {
  return {
    links: [
      { index: 1, name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true },
      { index: 2, name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', mtu, up: true },
    ],
    addresses: [{ index: 1, cidr: '127.0.0.1/8' }, { index: 2, cidr: '192.168.60.1/24' }, { index: 2, cidr: 'fe80::2/64' }, ...extra],
  };
}

describe('planDevice6: when this node has the IPv6 device', () => {
  it.each<[string, Node, OverlayOptions, HostView, string | RegExp | undefined]>([
    ['auto, dual-stack pods and underlay: local, MTU 1430, MAC derived from the IPv6 address', dualNode(1), auto, hostView(), `netplane-v6.1 local fd00:60::1 mtu 1430 mac ${mac6(1)} fd00:244:1::/128`],
    ['off', dualNode(1), { ...auto, ipv6Device: { name: 'netplane-v6.1', auto: false } }, hostView(), undefined],
    ['no option', dualNode(1), options1, hostView(), undefined],
    ['no IPv6 podCIDR', node('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }), auto, hostView(), undefined],
    ['no global IPv6 address on the underlay interface (link-local only)', dualNode(1), auto, hostView([]), /no global IPv6 address on its underlay interface eth0: no netplane-v6.1/],
    ['an IPv6 address on another interface does not count', dualNode(1), auto, hostView([{ index: 1, cidr: 'fd00:99::1/128' }]), /no global IPv6 address/],
    ["the node's IPv6 address wins over the interface's first", dualNode(1, { externalIP: 'fd00:60::11' }), auto, hostView([{ index: 2, cidr: 'fd00:60::1/64' }, { index: 2, cidr: 'fd00:60::11/64' }]), /local fd00:60::11 /],
    ['--mtu 1400: 20 bytes less', dualNode(1), { ...auto, mtu: 1400 }, hostView(), /mtu 1380 /],
    ['netplane.io/vtep-v6-mac', dualNode(1, { annotations: { 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:01' } }), auto, hostView(), /mac 0a:00:00:00:06:01 /],
    ["a node Flannel announced keeps flannel-v6.1's MAC", dualNode(1, { annotations: { 'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: 1, VtepMAC: '0a:00:00:00:f6:01' }) } }), auto, hostView(), /mac 0a:00:00:00:f6:01 /],
    ["but not a netplane node's backend-v6-data (an older netplane wrote the first device's MAC there)", dualNode(1, { annotations: { 'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: 1, VtepMAC: '0a:00:00:00:f6:01' }), 'netplane.io/vtep-mac': '0a:00:00:00:00:01' } }), auto, hostView(), new RegExp(`mac ${mac6(1)} `)],
  ])('%s', (_name, self, options, host, want) => {
    const plan = planOverlay([self], options, host);
    const d = plan.device6;
    const text = d ? `${d.name} local ${d.local} mtu ${d.mtu} mac ${d.mac} ${d.addresses.join(',')}` : plan.problems.map((p) => p.reason).join('\n') || undefined;
    if (want === undefined) expect(text).toBeUndefined();
    else if (typeof want === 'string') expect(text).toBe(want);
    else expect(text).toMatch(want);
    if (d) expect([d.vni, d.port, d.underlayIndex]).toEqual([1, 8472, 2]);
  });

  it('over an IPv6 underlay there is none: the one device carries both families', () => {
    const self = dual(1, { ip: 'fd00:60::1' });
    expect(planOverlay([self], auto, hostView()).device6).toBeUndefined();
  });
});

describe('remoteVxlan6: which IPv6 pod networks go over the IPv6 device', () => {
  const v6 = (extra: NodeSpec['annotations']) => dualNode(2, { annotations: extra ?? {} });
  it.each<[string, Node, OverlayOptions, string]>([
    ['from manifests: every node with an IPv6 address, its MAC derived', v6({}), auto, `v6 fd00:60::2 ${mac6(2)}`],
    ['from manifests, netplane.io/vtep-v6-mac', v6({ 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:02' }), auto, 'v6 fd00:60::2 0a:00:00:00:06:02'],
    ['kubernetes: a netplane node that announces no IPv6 device stays on the first', v6({ 'netplane.io/vtep-mac': '0a:00:00:00:00:02' }), kube, 'main'],
    ['kubernetes: one that does', v6({ 'netplane.io/vtep-mac': '0a:00:00:00:00:02', 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:02', 'netplane.io/public-ipv6': 'fd00:60::22' }), kube, 'v6 fd00:60::22 0a:00:00:00:06:02'],
    ["kubernetes: a Flannel node by its backend-v6-data and public-ipv6", v6(flannel6('0a:00:00:00:f6:02')), kube, 'v6 fd00:60::3 0a:00:00:00:f6:02'],
    ["kubernetes: a Flannel node of another VNI stays on the first, with a problem", v6(flannel6('0a:00:00:00:f6:02', 7)), kube, 'main | its Flannel backend-v6-data names VNI 7'],
    ['kubernetes: a malformed netplane.io/vtep-v6-mac', v6({ 'netplane.io/vtep-mac': '0a:00:00:00:00:02', 'netplane.io/vtep-v6-mac': 'nope' }), kube, 'main | annotation netplane.io/vtep-v6-mac "nope" is not a unicast MAC'],
    ['an unusable IPv6 address', v6({ 'netplane.io/public-ipv6': 'fe80::2' }), auto, 'main | its IPv6 underlay address fe80::2 is link-local'],
    ["this node's own IPv6 address", v6({ 'netplane.io/public-ipv6': 'fd00:60::1' }), auto, "main | its IPv6 underlay address fd00:60::1 is also node node1's"],
  ])('%s', (_name, remote, options, want) => {
    const plan = planOverlay([dualNode(1), remote], options, hostView());
    const r = plan.remotes.find((x) => x.node === 'node2')!;
    const where = r.vxlan6 ? `v6 ${r.vxlan6.underlayIP} ${r.vxlan6.vtepMAC}` : 'main';
    const problem = plan.problems.find((p) => p.node === 'node2')?.reason;
    expect(problem ? `${where} | ${problem}` : where).toMatch(new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The first device always has the IPv4 pod network; the IPv6 one goes over exactly one of the two.
    const parts = devicePlans(plan);
    const main = parts.main.remotes.find((x) => x.node === 'node2')!;
    expect(main.podCIDR4).toBe('10.244.2.0/24');
    expect(main.podCIDR6 === undefined).toBe(r.vxlan6 !== undefined);
    expect(parts.v6?.remotes.some((x) => x.node === 'node2') ?? false).toBe(r.vxlan6 !== undefined);
  });

  it('a direct-routed IPv6 pod network stays direct', () => {
    const plan = planOverlay([dualNode(1), dualNode(2)], { ...auto, directRouting: true }, hostView());
    const r = plan.remotes[0]!;
    expect([r.direct6, r.vxlan6]).toEqual(['fd00:60::2', undefined]);
  });
});

describe('annotationsFor with the IPv6 device', () => {
  const self = { mac: '0a:00:00:00:00:01', ip: '192.168.60.1', ip4: '192.168.60.1', ip6: 'fd00:60::1', v6: { mac: '0a:00:00:00:06:01', ip: 'fd00:60::1' } };
  it("names it in netplane's annotations and in Flannel's backend-v6-data", () => {
    expect(annotationsFor(self)).toEqual({ 'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': self.ip, 'netplane.io/vtep-v6-mac': self.v6.mac, 'netplane.io/public-ipv6': self.v6.ip });
    expect(annotationsFor(self, 1)).toMatchObject({
      'flannel.alpha.coreos.com/backend-data': JSON.stringify({ VNI: 1, VtepMAC: self.mac }),
      'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: 1, VtepMAC: self.v6.mac }),
      'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::1',
    });
  });
});

describe('OverlayAgent with --ipv6-device on the in-memory kernel', () => {
  const agents: OverlayAgent[] = [];
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
  });

  function kernelWithDualUnderlay(): FakeKernel {
    return new FakeKernel([
      { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true, addresses: ['127.0.0.1/8'] },
      { name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', up: true, addresses: ['192.168.60.1/24', 'fd00:60::1/64'] },
    ]);
  }

  async function start(nodes: Node[], kernel: FakeKernel, overlay: OverlayOptions = kube) {
    const store = new Store(['Node']);
    store.apply(nodes.map((object) => ({ kind: 'Node' as const, object })));
    store.markSynced('Node');
    const registry = new Registry();
    const { log, records } = captureLogger();
    const agent = new OverlayAgent({ kernel, store, overlay, clusterCIDRs: [], metrics: registerOverlayMetrics(registry), log, resyncPeriodMs: 600_000, retryBaseMs: 2 });
    agents.push(agent);
    agent.start();
    await agent.settled();
    const put = async (...ns: Node[]) => {
      store.apply(ns.map((object) => ({ kind: 'Node' as const, object })));
      await agent.settled();
    };
    const metric = async (line: string) => Number((await registry.metrics()).split('\n').find((l) => l.startsWith(`${line} `))?.split(' ')[1]);
    return { agent, store, put, records, metric };
  }

  /** The kernel's lines about a device's entries and addresses (no link-local), sorted. */
  const on = (k: FakeKernel, dev: string) => k.dump().split('\n').filter((l) => l.includes(` ${dev}`) && !l.includes(' fe80:') && !l.startsWith('link ')).sort();
  const failures = (records: Array<Record<string, unknown>>) => records.filter((r) => r.msg === 'programming the overlay failed; what works stays, retrying with a full sync');

  const netplane2 = (withV6: boolean) => dualNode(2, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:02', ...(withV6 ? { 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:02', 'netplane.io/public-ipv6': 'fd00:60::2' } : {}) } });

  it('moves a pod network between the devices both ways in one sync each, with no refused route', async () => {
    const k = kernelWithDualUnderlay();
    const r = await start([dualNode(1), netplane2(false)], k);
    expect(on(k, 'netplane.1')).toContain('route fd00:244:2::/64 via fd00:244:2:: dev netplane.1 onlink');
    expect(on(k, 'netplane-v6.1')).toEqual(['addr netplane-v6.1 fd00:244:1::/128']);
    expect(await r.metric('netplane_overlay_nodes{state="usable"}')).toBe(2);

    await r.put(netplane2(true));
    expect(on(k, 'netplane-v6.1')).toEqual([
      'addr netplane-v6.1 fd00:244:1::/128',
      'fdb netplane-v6.1 0a:00:00:00:06:02 dst fd00:60::2 self permanent',
      'neigh netplane-v6.1 fd00:244:2:: lladdr 0a:00:00:00:06:02 permanent',
      'route fd00:244:2::/64 via fd00:244:2:: dev netplane-v6.1 onlink',
    ]);
    expect(on(k, 'netplane.1').filter((l) => l.includes('fd00:244:2'))).toEqual([]);
    expect(await r.metric('netplane_overlay_ipv6_device_entries{kind="route"}')).toBe(1);
    expect(await r.metric('netplane_overlay_nodes{state="usable"}')).toBe(2);

    await r.put(netplane2(false));
    expect(on(k, 'netplane-v6.1')).toEqual(['addr netplane-v6.1 fd00:244:1::/128']);
    expect(on(k, 'netplane.1')).toContain('route fd00:244:2::/64 via fd00:244:2:: dev netplane.1 onlink');
    expect(failures(r.records)).toEqual([]);
  });

  it('a node gone takes its IPv6 device entries; a restart finds them all and changes nothing; turned off, the device goes and the first takes the pod network back', async () => {
    const k = kernelWithDualUnderlay();
    const first = await start([dualNode(1), netplane2(true), dualNode(3, { annotations: { 'netplane.io/vtep-mac': '0a:00:00:00:00:03', 'netplane.io/vtep-v6-mac': '0a:00:00:00:06:03' } })], k);
    expect(on(k, 'netplane-v6.1').filter((l) => l.startsWith('route'))).toHaveLength(2);
    first.store.apply([{ kind: 'Node', key: 'node3', object: undefined }]);
    await first.agent.settled();
    expect(on(k, 'netplane-v6.1').filter((l) => l.includes('fd00:244:3') || l.includes('06:03'))).toEqual([]);
    await first.agent.stop();

    const dump = k.dump();
    const again = await start([dualNode(1), netplane2(true)], k);
    expect(k.dump()).toBe(dump);
    expect(again.records.filter((l) => l.msg === 'overlay synced').map((l) => l.operations)).toEqual([0]);
    await again.agent.stop();

    const off = await start([dualNode(1), netplane2(true)], k, { ...kube, ipv6Device: { name: 'netplane-v6.1', auto: false } });
    expect(k.dump()).not.toContain('netplane-v6.1');
    expect(on(k, 'netplane.1')).toContain('route fd00:244:2::/64 via fd00:244:2:: dev netplane.1 onlink');
    expect(failures(off.records)).toEqual([]);
  });
});

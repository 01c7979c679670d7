// --ipv6-device auto in the kernel: three nodes on a dual-stack underlay with dual-stack pods. node1 and node2 run
// netplane; node3 is a Flannel node (its VXLAN backend with IPv6 enabled), built by hand as flanneld builds it:
// flannel.1 over IPv4 and flannel-v6.1 over IPv6, announced only with Flannel's annotations. IPv6 pod traffic
// crosses over the second device both ways (Flannel sends it only over flannel-v6.1), IPv4 over the first.
// Scenarios run in order on one network.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const v6 = 'netplane-v6.1';
const flannelMac = { 4: '0a:00:00:00:f1:03', 6: '0a:00:00:00:f6:03' } as const;

/** A device's permanent neighbours, FDB entries and routes with a gateway (both families), sorted; [] when it is missing. */
async function deviceEntries(t: OverlayTopology, n: TestNode, dev: string): Promise<string[]> {
  const here = await t.lab.exec(n.ns, 'ip', ['link', 'show', dev]).then(() => true, () => false);
  if (!here) return [];
  const json = async <T>(args: string[]) => JSON.parse((await t.lab.exec(n.ns, args[0]!, ['-j', ...args.slice(1)])).stdout || '[]') as T[];
  const neigh = await json<{ dst: string; lladdr: string }>(['ip', 'neigh', 'show', 'dev', dev, 'nud', 'permanent']);
  const fdb = await json<{ mac: string; dst?: string }>(['bridge', 'fdb', 'show', 'dev', dev]);
  const routes = [...(await json<{ dst: string; gateway?: string }>(['ip', 'route', 'show', 'dev', dev])), ...(await json<{ dst: string; gateway?: string }>(['ip', '-6', 'route', 'show', 'dev', dev]))];
  return [
    ...neigh.map((x) => `neigh ${x.dst} ${x.lladdr}`),
    ...fdb.filter((f) => f.dst).map((f) => `fdb ${f.mac} ${f.dst}`),
    ...routes.filter((r) => r.gateway).map((r) => `route ${r.dst} via ${r.gateway}`),
  ].sort();
}

/** The entries a netplane node holds for `others` on each device. */
function expected(others: TestNode[]): { main: string[]; v6: string[] } {
  const main: string[] = [];
  const six: string[] = [];
  for (const o of others) {
    const flannel = o.name === 'node3';
    const mac4 = flannel ? flannelMac[4] : derivedMac(o.ip);
    const mac6 = flannel ? flannelMac[6] : derivedMac(o.ip6!);
    const vtep = o.podCIDR.split('/')[0]!;
    const vtep6 = o.podCIDR6!.split('/')[0]!;
    main.push(`neigh ${vtep} ${mac4}`, `fdb ${mac4} ${o.ip}`, `route ${o.podCIDR} via ${vtep}`);
    six.push(`neigh ${vtep6} ${mac6}`, `fdb ${mac6} ${o.ip6}`, `route ${o.podCIDR6} via ${vtep6}`);
  }
  return { main: main.sort(), v6: six.sort() };
}

/** A device's received packets. */
async function rxPackets(t: OverlayTopology, n: TestNode, dev: string): Promise<number> {
  const [link] = JSON.parse((await t.lab.exec(n.ns, 'ip', ['-s', '-j', 'link', 'show', dev])).stdout) as Array<{ stats64: { rx: { packets: number } } }>;
  return link!.stats64.rx.packets;
}

/** Runs `netplane overlay ARGS` in a namespace to its end. */
function runOnce(t: OverlayTopology, ns: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, 'overlay', ...args]);
    let out = '';
    p.stdout.on('data', (d) => (out += String(d)));
    p.stderr.on('data', (d) => (out += String(d)));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

describe('netplane overlay --ipv6-device auto in the kernel: a dual-stack underlay, netplane and Flannel nodes', () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;
  const pod = (i: number) => node(i).pods[0]!;
  const flannelAnnotations = () => ({
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    'flannel.alpha.coreos.com/backend-data': JSON.stringify({ VNI: 1, VtepMAC: flannelMac[4] }),
    'flannel.alpha.coreos.com/backend-v6-data': JSON.stringify({ VNI: 1, VtepMAC: flannelMac[6] }),
    'flannel.alpha.coreos.com/public-ip': node(3).ip,
    'flannel.alpha.coreos.com/public-ipv6': node(3).ip6!,
  });
  const manifests = (list: TestNode[]) => list.map((n) => ({ ...n, ...(n.name === 'node3' ? { annotations: flannelAnnotations() } : {}) }));
  // A resync an hour away: what the kernel or someone else undoes is put back by following the kernel's announcements.
  const start = (n: TestNode) => t.startAgent(n, ['--ipv6-device', 'auto', '--resync-period', '1h']);

  /** node3 as flanneld (VXLAN, EnableIPv6) builds it, with entries for node1 and node2. */
  async function buildFlannelNode(): Promise<void> {
    const n = node(3);
    const sh = (args: string[]) => t.lab.exec(n.ns, args[0]!, args.slice(1));
    await sh(['ip', 'link', 'add', 'flannel.1', 'address', flannelMac[4], 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', n.ip, 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
    await sh(['ip', 'link', 'add', 'flannel-v6.1', 'address', flannelMac[6], 'mtu', '1430', 'type', 'vxlan', 'id', '1', 'local', n.ip6!, 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
    await sh(['ip', 'addr', 'add', '10.244.3.0/32', 'dev', 'flannel.1']);
    await sh(['ip', 'addr', 'add', 'fd00:244:3::/128', 'dev', 'flannel-v6.1', 'nodad']);
    await sh(['ip', 'link', 'set', 'flannel.1', 'up']);
    await sh(['ip', 'link', 'set', 'flannel-v6.1', 'up']);
    for (const o of [node(1), node(2)]) {
      const vtep = o.podCIDR.split('/')[0]!;
      const vtep6 = o.podCIDR6!.split('/')[0]!;
      await sh(['ip', 'neigh', 'replace', vtep, 'lladdr', derivedMac(o.ip), 'dev', 'flannel.1', 'nud', 'permanent']);
      await sh(['bridge', 'fdb', 'replace', derivedMac(o.ip), 'dev', 'flannel.1', 'dst', o.ip, 'self', 'permanent']);
      await sh(['ip', 'route', 'add', o.podCIDR, 'via', vtep, 'dev', 'flannel.1', 'onlink']);
      // Flannel sends IPv6 pod traffic to the IPv6 device's MAC (backend-v6-data) at public-ipv6.
      await sh(['ip', 'neigh', 'replace', vtep6, 'lladdr', derivedMac(o.ip6!), 'dev', 'flannel-v6.1', 'nud', 'permanent']);
      await sh(['bridge', 'fdb', 'replace', derivedMac(o.ip6!), 'dev', 'flannel-v6.1', 'dst', o.ip6!, 'self', 'permanent']);
      await sh(['ip', '-6', 'route', 'add', o.podCIDR6!, 'via', vtep6, 'dev', 'flannel-v6.1', 'onlink']);
    }
  }

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1, true, 'dual', 's18cv6dev');
    await t.writeNodes(manifests(t.nodes));
    await buildFlannelNode();
    await Promise.all([start(node(1)), start(node(2))]);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('builds netplane-v6.1 over IPv6 (VNI, port, source address, MTU less 70, the pod network /128) with the IPv6 pod networks on it', async () => {
    for (const i of [1, 2]) {
      const n = node(i);
      const link = await t.sh(n.ns, 'ip', ['-d', 'link', 'show', v6]);
      expect(link).toMatch(/mtu 1430 /);
      expect(link).toContain(`link/ether ${derivedMac(n.ip6!)}`);
      expect(link).toMatch(new RegExp(`vxlan id 1 local fd00:60::${i} dev eth0 .*dstport 8472 nolearning`));
      // Over IPv6 the outer UDP checksum is kept: receivers drop zero ones unless configured otherwise.
      expect(link).toMatch(/ udpcsum noudp6zerocsumtx noudp6zerocsumrx /);
      expect(await t.sh(n.ns, 'ip', ['addr', 'show', 'dev', v6])).toContain(`inet6 fd00:244:${i}::/128`);
      const want = expected(t.nodes.filter((o) => o !== n));
      expect(await deviceEntries(t, n, v6)).toEqual(want.v6);
      // The first device keeps the IPv4 pod networks only.
      expect(await deviceEntries(t, n, 'netplane.1')).toEqual(want.main);
    }
  });

  it('IPv6 pods ping and connect across nodes over netplane-v6.1, Flannel node included; IPv4 pods over netplane.1', async () => {
    for (const [from, to] of [[1, 2], [2, 1], [1, 3], [3, 1], [3, 2]] as const) {
      const before6 = to === 3 ? 0 : await rxPackets(t, node(to), v6);
      const [tcp6] = await t.probe(pod(from).ns, 'tcp', pod(to).ip6!);
      expect(tcp6, `pod${from}1 → pod${to}1 (tcp, IPv6)`).toMatchObject({ ok: true, name: pod(to).name, seenAs: pod(from).ip6 });
      expect(await t.sh(pod(from).ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', pod(to).ip6!])).toMatch(/2 packets transmitted, 2 received/);
      // What reaches a netplane node's IPv6 pods came in over its IPv6 device.
      if (to !== 3) expect(await rxPackets(t, node(to), v6)).toBeGreaterThanOrEqual(before6 + 5);
      const before4 = to === 3 ? 0 : await rxPackets(t, node(to), 'netplane.1');
      const six = to === 3 ? 0 : await rxPackets(t, node(to), v6);
      const [tcp] = await t.probe(pod(from).ns, 'tcp', pod(to).ip);
      expect(tcp, `pod${from}1 → pod${to}1 (tcp)`).toMatchObject({ ok: true, name: pod(to).name, seenAs: pod(from).ip });
      expect(await t.sh(pod(from).ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', pod(to).ip])).toMatch(/2 packets transmitted, 2 received/);
      if (to !== 3) {
        expect(await rxPackets(t, node(to), 'netplane.1')).toBeGreaterThanOrEqual(before4 + 5);
        expect(await rxPackets(t, node(to), v6)).toBe(six);
      }
    }
  });

  it('keeps the VXLAN packets of both devices out of conntrack on the netplane nodes', async () => {
    for (const i of [1, 2]) await t.sh(node(i).ns, 'conntrack', ['-F']);
    for (const ip of [pod(2).ip6!, pod(2).ip]) expect(await t.sh(pod(1).ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', ip])).toMatch(/2 packets transmitted, 2 received/);
    for (const i of [1, 2]) {
      const tracked = await t.sh(node(i).ns, 'conntrack', ['-L', '-p', 'udp']);
      expect(tracked, `node${i}`).not.toMatch(/dport=8472/);
      expect(await t.sh(node(i).ns, 'nft', ['list', 'chain', 'ip6', 'netplane-overlay', 'vxlan-in'])).toContain(`ip6 daddr fd00:60::${i} udp dport 8472 notrack`);
    }
  });

  it('counts the IPv6 device\'s entries in the metrics', async () => {
    const text = await t.sh(node(1).ns, 'curl', ['-sf', 'http://127.0.0.1:10247/metrics']);
    expect(text).toContain('netplane_overlay_nodes{state="usable"} 3');
    expect(text).toContain('netplane_overlay_ipv6_device_entries{kind="route"} 2');
    expect(text).toContain('netplane_overlay_ipv6_device_entries{kind="fdb"} 2');
    expect(text).toContain('netplane_overlay_entries{kind="route"} 2');
    const lint = await t.lab.exec(node(1).ns, 'promtool', ['check', 'metrics'], text).catch((e: { stderr?: string; stdout?: string }) => e);
    expect('stderr' in lint ? lint.stderr : '').toBe('');
  });

  it('a node removed takes its entries on netplane-v6.1 with it, and they come back with it', async () => {
    const n1 = node(1);
    await t.writeNodes(manifests([node(1), node(3)]));
    const without = expected([node(3)]);
    await waitFor('node1 to drop node2', async () => JSON.stringify(await deviceEntries(t, n1, v6)) === JSON.stringify(without.v6), 5000);
    expect(await deviceEntries(t, n1, 'netplane.1')).toEqual(without.main);
    await t.writeNodes(manifests(t.nodes));
    const all = expected([node(2), node(3)]);
    await waitFor('node1 to add node2 again', async () => JSON.stringify(await deviceEntries(t, n1, v6)) === JSON.stringify(all.v6), 5000);
    const [tcp6] = await t.probe(pod(1).ns, 'tcp', pod(2).ip6!);
    expect(tcp6).toMatchObject({ ok: true, name: pod(2).name });
  });

  it("moves node2's IPv6 entries when its IPv6 address changes", async () => {
    const n2 = node(2);
    await t.lab.exec(n2.ns, 'ip', ['addr', 'add', 'fd00:60::22/64', 'dev', 'eth0', 'nodad']);
    const moved = { ...n2, ip6: 'fd00:60::22' };
    await t.writeNodes(manifests([node(1), moved, node(3)]));
    const want = expected([moved, node(3)]);
    await waitFor("node1 to move node2's entries", async () => JSON.stringify(await deviceEntries(t, node(1), v6)) === JSON.stringify(want.v6), 5000);
    await waitFor('node2 to make its device anew over fd00:60::22', async () => /local fd00:60::22 /.test(await t.sh(n2.ns, 'ip', ['-d', 'link', 'show', v6])), 5000);
    const [tcp6] = await t.probe(pod(1).ns, 'tcp', pod(2).ip6!);
    expect(tcp6).toMatchObject({ ok: true, name: pod(2).name, seenAs: pod(1).ip6 });
    await t.writeNodes(manifests(t.nodes));
    const back = expected([node(2), node(3)]);
    await waitFor("node1 to move node2's entries back", async () => JSON.stringify(await deviceEntries(t, node(1), v6)) === JSON.stringify(back.v6), 5000);
    await t.lab.exec(n2.ns, 'ip', ['addr', 'del', 'fd00:60::22/64', 'dev', 'eth0']);
  });

  it('puts back at once what is deleted by hand on netplane-v6.1: a neighbour, a route, the device itself', async () => {
    const n1 = node(1);
    const want = await deviceEntries(t, n1, v6);
    const same = async () => JSON.stringify(await deviceEntries(t, n1, v6)) === JSON.stringify(want);
    await t.lab.exec(n1.ns, 'ip', ['neigh', 'del', 'fd00:244:2::', 'dev', v6]);
    await waitFor('the neighbour back', same, 3000);
    await t.lab.exec(n1.ns, 'ip', ['-6', 'route', 'del', 'fd00:244:3::/64', 'dev', v6]);
    await waitFor('the route back', same, 3000);
    await t.lab.exec(n1.ns, 'ip', ['link', 'del', v6]);
    await waitFor('the device and its entries back', same, 3000);
    const [tcp6] = await t.probe(pod(3).ns, 'tcp', pod(1).ip6!);
    expect(tcp6).toMatchObject({ ok: true, name: pod(1).name });
  });

  it('a restart keeps the device (same index and MAC) and adds no duplicates', async () => {
    const n1 = node(1);
    const link = async () => (JSON.parse(await t.sh(n1.ns, 'ip', ['-j', 'link', 'show', v6])) as Array<{ ifindex: number; address: string }>)[0]!;
    const before = { link: await link(), v6: await deviceEntries(t, n1, v6), main: await deviceEntries(t, n1, 'netplane.1') };
    await t.stopAgent(n1);
    await start(n1);
    await t.stopAgent(n1, 'SIGTERM');
    await start(n1);
    expect(await link()).toEqual(before.link);
    expect(await deviceEntries(t, n1, v6)).toEqual(before.v6);
    expect(await deviceEntries(t, n1, 'netplane.1')).toEqual(before.main);
    expect(await t.sh(n1.ns, 'ip', ['addr', 'show', 'dev', v6])).toContain('inet6 fd00:244:1::/128');
    const [tcp6] = await t.probe(pod(3).ns, 'tcp', pod(1).ip6!);
    expect(tcp6).toMatchObject({ ok: true, name: pod(1).name });
  });

  it('--cleanup removes both devices and leaves nothing of them', async () => {
    const n1 = node(1);
    await t.stopAgent(n1, 'SIGTERM');
    const r = await runOnce(t, n1.ns, ['--cleanup']);
    expect(r.code, r.out).toBe(0);
    for (const dev of ['netplane.1', v6]) await expect(t.lab.exec(n1.ns, 'ip', ['link', 'show', dev])).rejects.toThrow();
    // Only the node's own pod network (on cni0) is left of the pod routes.
    const routes = (await t.sh(n1.ns, 'ip', ['-6', 'route', 'show'])) + (await t.sh(n1.ns, 'ip', ['route', 'show']));
    expect(routes.split('\n').filter((l) => /^(fd00:244|10\.244)/.test(l)).map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['fd00:244:1::/64 dev cni0', '10.244.1.0/24 dev cni0']);
  });
});

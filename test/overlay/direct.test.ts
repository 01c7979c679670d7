// netplane overlay --direct-routing in the kernel, as users run it (the CLI, one agent per node namespace): nodes
// on one underlay network route each other's pod networks directly, a node behind a router is reached over VXLAN,
// and switching (a node moving, the flag turned off and on across restarts, --cleanup) leaves nothing stale.
// Scenarios run in order on one network:
//
//   br0 192.168.60.0/24 ─┬─ node1 .1, node2 .2, node3 .3 (until it moves to br1 as 192.168.61.3)
//                        └─ router .254 ── br1 192.168.61.0/24 (router .254)
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

/**
 * What a node holds for the others, as sorted lines: `direct DST via GW dev DEV` for its direct routes (protocol
 * 110, any device), then the VXLAN device's permanent neighbours, FDB entries and routes with a gateway.
 */
async function state(t: OverlayTopology, n: TestNode): Promise<string[]> {
  const json = async <T>(cmd: string, args: string[]): Promise<T[]> => JSON.parse((await t.sh(n.ns, cmd, ['-j', ...args])) || '[]') as T[];
  type Route = { dst: string; gateway?: string; dev: string };
  const direct = [...(await json<Route>('ip', ['route', 'show', 'proto', '110'])), ...(await json<Route>('ip', ['-6', 'route', 'show', 'proto', '110']))];
  const hasDevice = (await t.sh(n.ns, 'ip', ['-br', 'link'])).includes('netplane.1');
  const onDevice = hasDevice
    ? [
        ...(await json<{ dst: string; lladdr: string }>('ip', ['neigh', 'show', 'dev', 'netplane.1', 'nud', 'permanent'])).map((x) => `neigh ${x.dst} ${x.lladdr}`),
        ...(await json<{ mac: string; dst: string }>('bridge', ['fdb', 'show', 'dev', 'netplane.1'])).map((x) => `fdb ${x.mac} ${x.dst}`),
        ...[...(await json<Route>('ip', ['route', 'show', 'dev', 'netplane.1'])), ...(await json<Route>('ip', ['-6', 'route', 'show', 'dev', 'netplane.1']))]
          .filter((r) => r.gateway)
          .map((r) => `route ${r.dst} via ${r.gateway}`),
      ]
    : [];
  return [...direct.map((r) => `direct ${r.dst} via ${r.gateway} dev ${r.dev}`), ...onDevice].sort();
}

/** The lines `state` should show for the others: each reached directly through eth0 or over VXLAN (IPv4 pods). */
function expected(others: ReadonlyArray<{ ip: string; podCIDR: string; way: 'direct' | 'vxlan' }>): string[] {
  return others
    .flatMap((o) => {
      const vtep = o.podCIDR.split('/')[0]!;
      const mac = derivedMac(o.ip);
      return o.way === 'direct' ? [`direct ${o.podCIDR} via ${o.ip} dev eth0`] : [`neigh ${vtep} ${mac}`, `fdb ${mac} ${o.ip}`, `route ${o.podCIDR} via ${vtep}`];
    })
    .sort();
}

/** Packets the VXLAN device of a node has sent (encapsulated) so far. */
async function vxlanTx(t: OverlayTopology, n: TestNode): Promise<number> {
  const [link] = JSON.parse(await t.sh(n.ns, 'ip', ['-s', '-j', 'link', 'show', 'dev', 'netplane.1'])) as Array<{ stats64: { tx: { packets: number } } }>;
  return link!.stats64.tx.packets;
}

describe('netplane overlay --direct-routing in the kernel: three nodes on one network, one of them moving behind a router', () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;
  const pod = (i: number) => node(i).pods[0]!;
  /** The other nodes of node i with how node i reaches them. */
  const ways = (i: number, way: (o: TestNode) => 'direct' | 'vxlan') => t.nodes.filter((o) => o !== node(i)).map((o) => ({ ip: o.ip, podCIDR: o.podCIDR, way: way(o) }));
  const settledTo = (i: number, want: string[]) => waitFor(`node${i}'s routes and entries`, async () => JSON.stringify(await state(t, node(i))) === JSON.stringify(want), 8000);
  /** Every pod reaches every other by TCP (seen with its own address: not masqueraded) and by ping. */
  async function podsReachEachOther(): Promise<void> {
    for (const from of t.nodes.map((n) => n.pods[0]!)) {
      for (const to of t.nodes.map((n) => n.pods[0]!)) {
        if (from === to) continue;
        const [tcp] = await t.probe(from.ns, 'tcp', to.ip);
        expect(tcp, `${from.name} → ${to.name}`).toMatchObject({ ok: true, name: to.name, seenAs: from.ip });
        expect(await t.sh(from.ns, 'ping', ['-c', '1', '-W', '2', to.ip])).toMatch(/1 packets transmitted, 1 received/);
      }
    }
  }
  async function restartAll(extra: string[]): Promise<void> {
    for (const n of t.nodes) await t.stopAgent(n, 'SIGTERM');
    for (const n of t.nodes) await t.startAgent(n, extra);
  }

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1);
    const { lab, underlay } = t;
    await lab.bridge({ ns: underlay, ifname: 'br1' });
    await lab.exec(underlay, 'ip', ['link', 'set', 'br1', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    const router = await lab.ns('router');
    await lab.attach({ ns: underlay, ifname: 'br0' }, { ns: router, ifname: 'eth0', addrs: ['192.168.60.254/24'] }, 'nrt0');
    await lab.attach({ ns: underlay, ifname: 'br1' }, { ns: router, ifname: 'eth1', addrs: ['192.168.61.254/24'] }, 'nrt1');
    await lab.exec(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0']);
    for (const n of t.nodes) {
      await t.sh(n.ns, 'ip', ['route', 'add', '192.168.61.0/24', 'via', '192.168.60.254']);
      // Strict reverse-path filtering, as many distributions set it: a direct route must be answered the same way.
      await t.sh(n.ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=1']);
    }
    await t.writeNodes();
    await Promise.all(t.nodes.map((n) => t.startAgent(n, ['--direct-routing'])));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('routes the pod networks of nodes on its network to their addresses, with no VXLAN entry, and pods reach each other', async () => {
    for (const i of [1, 2, 3]) await settledTo(i, expected(ways(i, () => 'direct')));
    expect((await t.sh(node(1).ns, 'ip', ['route', 'show', '10.244.2.0/24'])).trim()).toBe('10.244.2.0/24 via 192.168.60.2 dev eth0 proto 110');
    const tx = await Promise.all(t.nodes.map((n) => vxlanTx(t, n)));
    await podsReachEachOther();
    // Nothing went through VXLAN.
    expect(await Promise.all(t.nodes.map((n) => vxlanTx(t, n)))).toEqual(tx);
    // The MTU stays VXLAN's, as Flannel's does.
    expect(await t.sh(node(1).ns, 'ip', ['link', 'show', 'netplane.1'])).toMatch(/mtu 1450 /);
  });

  it('reaches a node that moved behind the router over VXLAN, and keeps the direct routes of the others', async () => {
    const n3 = node(3);
    await t.sh(t.underlay, 'ip', ['link', 'set', 'n3', 'master', 'br1']);
    await t.sh(n3.ns, 'ip', ['addr', 'add', '192.168.61.3/24', 'dev', 'eth0']);
    await t.sh(n3.ns, 'ip', ['addr', 'del', '192.168.60.3/24', 'dev', 'eth0']);
    await t.sh(n3.ns, 'ip', ['route', 'add', '192.168.60.0/24', 'via', '192.168.61.254']);
    n3.ip = '192.168.61.3';
    await t.writeNodes();
    for (const i of [1, 2]) await settledTo(i, expected(ways(i, (o) => (o === n3 ? 'vxlan' : 'direct'))));
    await settledTo(3, expected(ways(3, () => 'vxlan')));
    const tx = await vxlanTx(t, node(1));
    await podsReachEachOther();
    expect(await vxlanTx(t, node(1))).toBeGreaterThan(tx);
    // node1 ↔ node2 still go direct: traffic between them alone sends nothing over VXLAN.
    const before = await Promise.all([vxlanTx(t, node(1)), vxlanTx(t, node(2))]);
    expect(await t.probe(pod(1).ns, 'tcp', pod(2).ip, undefined, 5)).toEqual(Array(5).fill(expect.objectContaining({ ok: true, name: pod(2).name })));
    expect(await Promise.all([vxlanTx(t, node(1)), vxlanTx(t, node(2))])).toEqual(before);
  });

  it('swaps the VXLAN entries of a node that moves back onto the network for a direct route, leaving none behind', async () => {
    const n3 = node(3);
    await t.sh(t.underlay, 'ip', ['link', 'set', 'n3', 'master', 'br0']);
    await t.sh(n3.ns, 'ip', ['route', 'del', '192.168.60.0/24', 'via', '192.168.61.254']);
    await t.sh(n3.ns, 'ip', ['addr', 'add', '192.168.60.3/24', 'dev', 'eth0']);
    await t.sh(n3.ns, 'ip', ['addr', 'del', '192.168.61.3/24', 'dev', 'eth0']);
    n3.ip = '192.168.60.3';
    await t.writeNodes();
    for (const i of [1, 2, 3]) await settledTo(i, expected(ways(i, () => 'direct')));
    await podsReachEachOther();
  });

  it('an agent started after a node went away removes that direct route only: the working ones are not touched', async () => {
    await t.stopAgent(node(1), 'SIGTERM');
    await t.writeNodes(t.nodes.filter((n) => n.name !== 'node2'));
    const agent = await t.startAgent(node(1), ['--direct-routing']);
    expect(agent.logs.find((l) => l.msg === 'overlay synced')).toMatchObject({ full: true, operations: 1, direct: 1 });
    expect(await state(t, node(1))).toEqual(expected([{ ip: node(3).ip, podCIDR: node(3).podCIDR, way: 'direct' }]));
    await t.writeNodes();
    await settledTo(1, expected(ways(1, () => 'direct')));
  });

  // Six agent starts in sequence: on a loaded machine they take most of the default 20 s.
  it('restarted without --direct-routing, every node goes back to VXLAN and keeps no direct route; with it again, back', { timeout: 60_000 }, async () => {
    await restartAll([]);
    for (const i of [1, 2, 3]) expect(await state(t, node(i))).toEqual(expected(ways(i, () => 'vxlan')));
    const tx = await vxlanTx(t, node(1));
    await podsReachEachOther();
    expect(await vxlanTx(t, node(1))).toBeGreaterThan(tx);
    await restartAll(['--direct-routing']);
    for (const i of [1, 2, 3]) expect(await state(t, node(i))).toEqual(expected(ways(i, () => 'direct')));
    await podsReachEachOther();
  });

  it('--cleanup removes the device and the direct routes, and leaves the routes of others', async () => {
    for (const n of t.nodes) await t.stopAgent(n, 'SIGTERM');
    const n1 = node(1);
    await t.sh(n1.ns, 'ip', ['route', 'add', '10.99.0.0/16', 'via', '192.168.60.2', 'dev', 'eth0']);
    await t.lab.exec(n1.ns, process.execPath, [bin, 'overlay', '--cleanup']);
    expect(await state(t, n1)).toEqual([]);
    await expect(t.sh(n1.ns, 'ip', ['link', 'show', 'netplane.1'])).rejects.toThrow(/does not exist/);
    const routes = await t.sh(n1.ns, 'ip', ['route']);
    expect(routes).not.toMatch(/10\.244\.[23]\./);
    expect(routes).toMatch(/10\.99\.0\.0\/16 via 192\.168\.60\.2 dev eth0/);
    expect(routes).toMatch(/192\.168\.61\.0\/24 via 192\.168\.60\.254 dev eth0/);
    // Running it again, with nothing left to remove, succeeds.
    await t.lab.exec(n1.ns, process.execPath, [bin, 'overlay', '--cleanup']);
  });
});

describe('netplane overlay --direct-routing in the kernel: dual-stack pods on an IPv6 underlay', () => {
  let t: OverlayTopology;
  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, true, 6);
    await t.writeNodes();
    await Promise.all(t.nodes.map((n) => t.startAgent(n, ['--direct-routing'])));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('routes IPv6 pods directly and IPv4 pods (no IPv4 network here) over VXLAN, per family as Flannel', async () => {
    const [n1, n2] = t.nodes as [TestNode, TestNode];
    const mac = derivedMac(n2.ip);
    expect(await state(t, n1)).toEqual([
      `direct ${n2.podCIDR6} via ${n2.ip} dev eth0`,
      `fdb ${mac} ${n2.ip}`,
      `neigh 10.244.2.0 ${mac}`,
      'route 10.244.2.0/24 via 10.244.2.0',
    ].sort());
    for (const [from, to] of [[n1, n2], [n2, n1]] as const) {
      const [tcp] = await t.probe(from.pods[0]!.ns, 'tcp', to.pods[0]!.ip);
      expect(tcp).toMatchObject({ ok: true, name: to.pods[0]!.name, seenAs: from.pods[0]!.ip });
      const [tcp6] = await t.probe(from.pods[0]!.ns, 'tcp', to.pods[0]!.ip6!);
      expect(tcp6).toMatchObject({ ok: true, name: to.pods[0]!.name, seenAs: from.pods[0]!.ip6 });
    }
    expect(await t.sh(n1.pods[0]!.ns, 'ping', ['-c', '1', '-W', '2', n2.pods[0]!.ip6!])).toMatch(/1 packets transmitted, 1 received/);
  });
});

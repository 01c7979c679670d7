// netplane overlay as users run it (the CLI, one agent per node namespace, from a manifest directory), tested
// with real packets between pods on three nodes joined by an underlay bridge. Scenarios run in order on one network.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

/** node's overlay entries as `ip`/`bridge` print them: neighbours, FDB entries and routes of netplane.1, sorted. */
async function entries(t: OverlayTopology, node: TestNode): Promise<string[]> {
  const neigh = await t.sh(node.ns, 'ip', ['neigh', 'show', 'dev', 'netplane.1', 'nud', 'permanent']);
  const fdb = await t.sh(node.ns, 'bridge', ['fdb', 'show', 'dev', 'netplane.1']);
  const routes = await t.sh(node.ns, 'ip', ['route', 'show', 'dev', 'netplane.1']);
  // IPv6 routes with a gateway: the kernel's own (link-local, the device's /128) are not netplane's.
  const routes6 = (await t.sh(node.ns, 'ip', ['-6', 'route', 'show', 'dev', 'netplane.1'])).split('\n').filter((l) => l.includes(' via '));
  return [
    ...routes6.map((l) => `route ${l.trim()}`),
    ...neigh.split('\n').filter(Boolean).map((l) => `neigh ${l.trim()}`),
    ...fdb.split('\n').filter(Boolean).map((l) => `fdb ${l.trim()}`),
    ...routes.split('\n').filter(Boolean).map((l) => `route ${l.trim()}`),
  ].sort();
}

/** The entries node `self` should hold for the other nodes. */
function expectedEntries(self: TestNode, others: Array<{ ip: string; podCIDR: string; podCIDR6?: string; mac?: string }>): string[] {
  return others
    .flatMap((o) => {
      const vtep = o.podCIDR.split('/')[0]!;
      const vtep6 = o.podCIDR6?.split('/')[0];
      const mac = o.mac ?? derivedMac(o.ip);
      return [
        `neigh ${vtep} lladdr ${mac} PERMANENT`,
        `fdb ${mac} dst ${o.ip} self permanent`,
        `route ${o.podCIDR} via ${vtep} proto static onlink`,
        ...(vtep6 ? [`neigh ${vtep6} lladdr ${mac} PERMANENT`, `route ${o.podCIDR6} via ${vtep6} proto static metric 1024 onlink pref medium`] : []),
      ];
    })
    .sort();
}

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const ok = (rs: Array<{ ok: boolean }>) => rs.every((r) => r.ok);

describe('netplane overlay in the kernel: three dual-stack nodes on an underlay bridge', () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;
  const others = (i: number, list = t.nodes) => list.filter((n) => n.name !== `node${i}`);

  let envDir: string;

  beforeAll(async () => {
    envDir = await mkdtemp(join(tmpdir(), 'netplane-subnet-env-'));
    t = await buildOverlayTopology(3, 2, true);
    await t.writeNodes();
    await Promise.all(t.nodes.map((n) => t.startAgent(n, ['--subnet-file', join(envDir, n.name, 'subnet.env')])));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
    await rm(envDir, { recursive: true, force: true });
  });

  it('creates the device as configured and one neighbour, FDB entry and route per other node', async () => {
    const link = await t.sh(node(1).ns, 'ip', ['-d', 'link', 'show', 'netplane.1']);
    expect(link).toMatch(/mtu 1450 /);
    expect(link).toMatch(/state UNKNOWN|state UP/);
    expect(link).toContain(`link/ether ${derivedMac('192.168.60.1')}`);
    expect(link).toMatch(/vxlan id 1 local 192\.168\.60\.1 dev eth0 .*dstport 8472 nolearning/);
    // The outer UDP checksum is sent as zero over IPv4 (RFC 7348 §5).
    expect(link).toMatch(/ noudpcsum /);
    const addr = await t.sh(node(1).ns, 'ip', ['addr', 'show', 'dev', 'netplane.1']);
    expect(addr).toContain('inet 10.244.1.0/32');
    expect(addr).toContain('inet6 fd00:244:1::/128');
    // Flannel's subnet.env, for the flannel CNI plugin: written (asynchronously) after the first sync.
    const envFile = join(envDir, 'node2', 'subnet.env');
    await waitFor('subnet.env to be written', async () => (await readFile(envFile, 'utf8').catch(() => '')) !== '', 5000, 20);
    expect(await readFile(envFile, 'utf8')).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_IPV6_NETWORK=fd00:244::/32\nFLANNEL_IPV6_SUBNET=fd00:244:2::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    for (const n of t.nodes) {
      const i = Number(n.name.slice(4));
      expect(await entries(t, n)).toEqual(expectedEntries(n, others(i)));
    }
  });

  it('pods reach pods on the other nodes over TCP and UDP, IPv4 and IPv6, with their own addresses', async () => {
    for (const from of [node(1).pods[0]!, node(2).pods[1]!, node(3).pods[0]!]) {
      for (const to of t.nodes.flatMap((n) => n.pods)) {
        if (to.ns === from.ns) continue;
        const [tcp] = await t.probe(from.ns, 'tcp', to.ip);
        expect(tcp, `${from.name} → ${to.name} (tcp)`).toMatchObject({ ok: true, name: to.name, seenAs: from.ip });
        const [tcp6] = await t.probe(from.ns, 'tcp', to.ip6!);
        expect(tcp6, `${from.name} → ${to.name} (tcp, IPv6)`).toMatchObject({ ok: true, name: to.name, seenAs: from.ip6 });
      }
    }
    // ICMP echo with the real ping, IPv4 and IPv6.
    for (const target of [node(3).pods[1]!.ip, node(3).pods[1]!.ip6!]) {
      expect(await t.sh(node(1).pods[0]!.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', target])).toMatch(/2 packets transmitted, 2 received/);
    }
    const udp = await t.probe(node(1).pods[1]!.ns, 'udp', node(3).pods[1]!.ip, undefined, 5);
    expect(udp.map((r) => (r.ok ? `${r.name} ${r.seenAs}` : r.error))).toEqual(Array(5).fill(`pod32 ${node(1).pods[1]!.ip}`));
  });

  it('masquerades pod traffic leaving the cluster CIDR, and the node reaches remote pods', async () => {
    const [out] = await t.probe(node(2).pods[0]!.ns, 'tcp', t.outside.ip);
    expect(out).toMatchObject({ ok: true, name: 'outside', seenAs: node(2).ip });
    // A node talks to a remote pod from its VTEP address, which is in the cluster CIDR: not masqueraded.
    const [fromNode] = await t.probe(node(2).ns, 'tcp', node(3).pods[0]!.ip);
    expect(fromNode).toMatchObject({ ok: true, name: 'pod31', seenAs: '10.244.2.0' });
    for (const family of ['ip', 'ip6']) {
      expect(await t.sh(node(2).ns, 'nft', ['list', 'table', family, 'netplane-overlay'])).toMatch(/masquerade fully-random/);
    }
    // The VXLAN packets themselves are not tracked (the pods' flows inside them are).
    const tracked = async (args: string[]) => (await t.lab.exec(node(2).ns, 'conntrack', ['-L', ...args]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout;
    expect(await tracked(['-p', 'udp', '--dport', '8472'])).toBe('');
    expect(await tracked(['-p', 'tcp', '--dst', node(3).pods[0]!.ip])).toContain(`dport=8080`);
  });

  it('serves promtool-clean metrics with the nodes and entries', async () => {
    const text = await t.sh(node(1).ns, 'curl', ['-sf', 'http://127.0.0.1:10247/metrics']);
    expect(text).toContain('netplane_overlay_nodes{state="usable"} 3');
    expect(text).toContain('netplane_overlay_entries{kind="fdb"} 2');
    expect(text).toMatch(/netplane_overlay_programming_errors_total(\{[^}]*\})? 0|# TYPE netplane_overlay_programming_errors_total counter/);
    const lint = await t.lab.exec(node(1).ns, 'promtool', ['check', 'metrics'], text).catch((e: { stderr?: string; stdout?: string }) => e);
    expect('stderr' in lint ? lint.stderr : '').toBe('');
  });

  it("a Node whose podCIDR covers the underlay network is left out: the host's route stays, also when the Node goes", async () => {
    const n1 = node(1);
    const unusable = async () => /netplane_overlay_nodes\{state="unusable"\} (\d+)/.exec(await t.sh(n1.ns, 'curl', ['-sf', 'http://127.0.0.1:10247/metrics']))?.[1];
    const underlayRoute = async () => (await t.sh(n1.ns, 'ip', ['route', 'show', '192.168.60.0/24'])).trim();
    expect(await underlayRoute()).toBe('192.168.60.0/24 dev eth0 proto kernel scope link src 192.168.60.1');
    await t.writeNodes([...t.nodes, { name: 'node4', ip: '192.168.60.4', podCIDR: '192.168.60.0/24' }]);
    await waitFor('node1 to leave node4 out', async () => (await unusable()) === '1', 5000);
    const agent = t.agents.get('node1')!;
    expect(agent.logs).toContainEqual(expect.objectContaining({ level: 40, msg: "node node4 its podCIDR 192.168.60.0/24 overlaps this host's address 192.168.60.1/24 on eth0; left out" }));
    expect(await underlayRoute()).toBe('192.168.60.0/24 dev eth0 proto kernel scope link src 192.168.60.1');
    await t.writeNodes();
    await waitFor('node1 to forget node4', async () => (await unusable()) === '0', 5000);
    expect(await underlayRoute()).toBe('192.168.60.0/24 dev eth0 proto kernel scope link src 192.168.60.1');
    // The underlay and the overlay both still carry traffic.
    expect(await t.probe(n1.ns, 'tcp', t.outside.ip)).toEqual([expect.objectContaining({ ok: true, name: 'outside' })]);
    expect(await t.probe(n1.pods[0]!.ns, 'tcp', node(2).pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);
  });

  it('a Node with a /32 and a /128 podCIDR gets routes of that length; nothing fails, and they go with it', async () => {
    const n1 = node(1);
    const agent = t.agents.get('node1')!;
    const errorsBefore = agent.logs.filter((l) => Number(l.level) >= 50).length;
    const routes = async () => [
      (await t.sh(n1.ns, 'ip', ['route', 'show', '10.244.5.0/32'])).trim(),
      (await t.sh(n1.ns, 'ip', ['-6', 'route', 'show', 'fd00:244:7::/128'])).trim(),
    ];
    await t.writeNodes([...t.nodes, { name: 'node5', ip: '192.168.60.5', podCIDR: '10.244.5.0/32', podCIDR6: 'fd00:244:7::/128' }]);
    await waitFor("node1 to route node5's /32", async () => (await routes())[0] !== '', 5000);
    expect(await routes()).toEqual(['10.244.5.0 via 10.244.5.0 dev netplane.1 proto static onlink', 'fd00:244:7:: via fd00:244:7:: dev netplane.1 proto static metric 1024 onlink pref medium']);
    expect(agent.logs.slice(errorsBefore).filter((l) => Number(l.level) >= 50)).toEqual([]);
    await t.writeNodes();
    await waitFor("node1 to remove node5's routes", async () => (await routes()).join('') === '', 5000);
  });

  it('removing a node from the manifests removes its entries on the others; adding it back restores them', async () => {
    const two = t.nodes.slice(0, 2);
    await t.writeNodes(two);
    for (const n of two) {
      const i = Number(n.name.slice(4));
      await waitFor(`${n.name} to drop node3's entries`, async () => JSON.stringify(await entries(t, n)) === JSON.stringify(expectedEntries(n, others(i, two))), 5000);
    }
    const [gone] = await t.probe(node(1).pods[0]!.ns, 'tcp', node(3).pods[0]!.ip);
    expect(gone!.ok).toBe(false);
    await t.writeNodes();
    await waitFor('node1 to reach node3 again', async () => ok(await t.probe(node(1).pods[0]!.ns, 'tcp', node(3).pods[0]!.ip)), 5000);
    expect(await entries(t, node(1))).toEqual(expectedEntries(node(1), others(1)));
  });

  it("changing a node's IP moves its FDB entry on the others (the old one is removed) and its own device", async () => {
    const moved = t.nodes.map((n) => (n.name === 'node3' ? { ...n, ip: '192.168.60.13' } : n));
    await t.sh(node(3).ns, 'ip', ['addr', 'add', '192.168.60.13/24', 'dev', 'eth0']);
    await t.writeNodes(moved);
    for (const n of t.nodes.slice(0, 2)) {
      await waitFor(`${n.name} to move node3's FDB entry`, async () => {
        const fdb = await t.sh(n.ns, 'bridge', ['fdb', 'show', 'dev', 'netplane.1']);
        return fdb.includes('dst 192.168.60.13 ') && !fdb.includes('dst 192.168.60.3 ');
      }, 5000);
      const i = Number(n.name.slice(4));
      expect(await entries(t, n)).toEqual(expectedEntries(n, others(i, moved)));
    }
    await waitFor("node3's device to use its new address", async () => /local 192\.168\.60\.13 /.test(await t.sh(node(3).ns, 'ip', ['-d', 'link', 'show', 'netplane.1'])), 5000);
    // Without the old address, traffic can only go over the new one. (Deleting a primary address deletes the
    // secondaries of its subnet too, unless they are promoted.)
    await t.sh(node(3).ns, 'sysctl', ['-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
    await t.sh(node(3).ns, 'ip', ['addr', 'del', '192.168.60.3/24', 'dev', 'eth0']);
    const rs = await t.probe(node(1).pods[0]!.ns, 'tcp', node(3).pods[1]!.ip, undefined, 3);
    expect(rs.map((r) => (r.ok ? r.name : r.error))).toEqual(['pod32', 'pod32', 'pod32']);
    node(3).ip = '192.168.60.13';
  });

  it('restarting an agent (SIGKILL) loses no traffic and creates no duplicate entries', async () => {
    const before = await entries(t, node(1));
    const held = t.probe(node(1).pods[0]!.ns, 'tcp', node(2).pods[0]!.ip, undefined, 1, ['--hold', '3000']);
    const pinging = t.ping(node(1).pods[1]!.ns, node(3).pods[0]!.ip, 3000);
    await new Promise((r) => setTimeout(r, 300));
    await t.stopAgent(node(1), 'SIGKILL');
    const restarted = await t.startAgent(node(1));
    const sync = restarted.logs.find((l) => l.msg === 'overlay synced');
    expect(sync).toMatchObject({ full: true, operations: 0 });
    const pinged = await pinging;
    expect(pinged.sent).toBeGreaterThan(100);
    expect(pinged.lost).toBe(0);
    expect((await held)[0]).toMatchObject({ ok: true, name: 'pod21' });
    expect(await entries(t, node(1))).toEqual(before);
  });

  it('an agent that restarts after nodes changed removes the entries of nodes that no longer exist', async () => {
    await t.stopAgent(node(1), 'SIGTERM');
    const two = t.nodes.slice(0, 2);
    await t.writeNodes(two);
    // node2 keeps running and drops node3; node1 is down and learns of it only at start.
    await waitFor('node2 to drop node3', async () => !(await entries(t, node(2))).some((l) => l.includes('10.244.3.0')), 5000);
    expect((await entries(t, node(1))).some((l) => l.includes('10.244.3.0'))).toBe(true);
    await t.startAgent(node(1));
    expect(await entries(t, node(1))).toEqual(expectedEntries(node(1), others(1, two)));
    await t.writeNodes();
    await waitFor('node1 to add node3 back', async () => JSON.stringify(await entries(t, node(1))) === JSON.stringify(expectedEntries(node(1), others(1))), 5000);
  });

  it("a node announced the way Flannel announces it is reached at Flannel's VTEP MAC, and its own agent takes that MAC", async () => {
    const mac = 'b2:94:ef:49:0c:e8';
    const flannel = { 'flannel.alpha.coreos.com/backend-type': 'vxlan', 'flannel.alpha.coreos.com/backend-data': `{"VNI":1,"VtepMAC":"${mac}"}`, 'flannel.alpha.coreos.com/kube-subnet-manager': 'true', 'flannel.alpha.coreos.com/public-ip': node(3).ip };
    const announced = t.nodes.map((n) => (n.name === 'node3' ? { ...n, annotations: flannel } : n));
    await t.writeNodes(announced);
    await waitFor("node3's device to take Flannel's MAC", async () => (await t.sh(node(3).ns, 'ip', ['link', 'show', 'netplane.1'])).includes(`link/ether ${mac}`), 5000);
    for (const n of t.nodes.slice(0, 2)) {
      const i = Number(n.name.slice(4));
      await waitFor(`${n.name} to use Flannel's MAC for node3`, async () => JSON.stringify(await entries(t, n)) === JSON.stringify(expectedEntries(n, others(i).map((o) => (o.name === 'node3' ? { ...o, mac } : o)))), 5000);
    }
    const rs = await t.probe(node(1).pods[0]!.ns, 'tcp', node(3).pods[0]!.ip, undefined, 3);
    expect(rs.map((r) => (r.ok ? r.name : r.error))).toEqual(['pod31', 'pod31', 'pod31']);
    await t.writeNodes();
    await waitFor("node1 to go back to node3's derived MAC", async () => JSON.stringify(await entries(t, node(1))) === JSON.stringify(expectedEntries(node(1), others(1))), 5000);
  });

  it('--cleanup removes the device, its routes and the masquerade tables, and nothing else', async () => {
    for (const n of t.nodes) await t.stopAgent(n, 'SIGTERM');
    const n1 = node(1);
    await t.sh(n1.ns, 'nft', ['add', 'table', 'inet', 'someone-else']);
    await t.sh(n1.ns, 'ip', ['route', 'add', '10.99.0.0/16', 'dev', 'cni0']);
    await t.lab.exec(n1.ns, process.execPath, [bin, 'overlay', '--cleanup']);
    await expect(t.sh(n1.ns, 'ip', ['link', 'show', 'netplane.1'])).rejects.toThrow(/does not exist/);
    expect(await t.sh(n1.ns, 'ip', ['route'])).not.toMatch(/10\.244\.[23]\.0/);
    expect(await t.sh(n1.ns, 'ip', ['-6', 'route'])).not.toMatch(/fd00:244:[23]::/);
    expect(await t.sh(n1.ns, 'ip', ['route'])).toMatch(/10\.99\.0\.0\/16 dev cni0/);
    const tables = await t.sh(n1.ns, 'nft', ['list', 'tables']);
    expect(tables).not.toMatch(/netplane-overlay/);
    expect(tables).toMatch(/someone-else/);
    expect(await t.sh(n1.ns, 'ip', ['-br', 'link'])).toMatch(/cni0/);
    // Running it again, with nothing left to remove, succeeds.
    await t.lab.exec(n1.ns, process.execPath, [bin, 'overlay', '--cleanup']);
  });
});

describe('netplane overlay in the kernel: dual-stack pods on an IPv6 underlay', () => {
  let t: OverlayTopology;
  const node = (i: number) => t.nodes[i - 1]!;

  beforeAll(async () => {
    t = await buildOverlayTopology(3, 1, true, 6);
    await t.writeNodes();
    await Promise.all(t.nodes.map((n) => t.startAgent(n)));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('runs the device over IPv6 with 70 bytes of headroom, and reaches every other node at its IPv6 address', async () => {
    const link = await t.sh(node(1).ns, 'ip', ['-d', 'link', 'show', 'netplane.1']);
    expect(link).toMatch(/mtu 1430 /);
    expect(link).toMatch(/vxlan id 1 local fd00:60::1 dev eth0 .*dstport 8472 nolearning/);
    for (const n of t.nodes) {
      const i = Number(n.name.slice(4));
      expect(await entries(t, n)).toEqual(expectedEntries(n, t.nodes.filter((o) => o.name !== `node${i}`)));
    }
    expect(await t.sh(node(1).ns, 'nft', ['list', 'chain', 'ip6', 'netplane-overlay', 'vxlan-in'])).toContain('ip6 daddr fd00:60::1 udp dport 8472 notrack');
  });

  it('pods reach pods on the other nodes over TCP, IPv4 and IPv6, and ping', async () => {
    for (const from of t.nodes.map((n) => n.pods[0]!)) {
      for (const to of t.nodes.map((n) => n.pods[0]!)) {
        if (to.ns === from.ns) continue;
        const [tcp] = await t.probe(from.ns, 'tcp', to.ip);
        expect(tcp, `${from.name} → ${to.name} (tcp)`).toMatchObject({ ok: true, name: to.name, seenAs: from.ip });
        const [tcp6] = await t.probe(from.ns, 'tcp', to.ip6!);
        expect(tcp6, `${from.name} → ${to.name} (tcp, IPv6)`).toMatchObject({ ok: true, name: to.name, seenAs: from.ip6 });
      }
    }
    for (const target of [node(3).pods[0]!.ip, node(3).pods[0]!.ip6!]) {
      expect(await t.sh(node(1).pods[0]!.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', target])).toMatch(/2 packets transmitted, 2 received/);
    }
    // The underlay has no IPv4 at all: what carried the pods' IPv4 packets across was VXLAN over IPv6.
    expect(await t.sh(node(1).ns, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0'])).toBe('');
  });

  it('masquerades IPv6 pod traffic leaving the cluster CIDR (fd00:244::/32) to the node address, and not pod-to-pod', async () => {
    for (const n of t.nodes) {
      const [out] = await t.probe(n.pods[0]!.ns, 'tcp', t.outside.ip);
      expect(out, `${n.pods[0]!.name} → outside`).toMatchObject({ ok: true, name: 'outside', seenAs: n.ip });
    }
    expect(await t.sh(node(1).ns, 'nft', ['list', 'set', 'ip6', 'netplane-overlay', 'cluster'])).toMatch(/elements = \{ fd00:244::\/32 \}/);
    const [across] = await t.probe(node(1).pods[0]!.ns, 'tcp', node(2).pods[0]!.ip6!);
    expect(across).toMatchObject({ ok: true, name: node(2).pods[0]!.name, seenAs: node(1).pods[0]!.ip6 });
  });
});

// Pod-to-pod TCP throughput across the overlay beside pod-to-pod on the underlay directly, in one network and one
// run: two nodes on an underlay bridge, each with a pod on its cni0 (10.244.i.0/24, reached over netplane.1, MTU
// 1450 as Flannel's CNI sets) and a pod on a second bridge (10.245.i.0/24, reached by a plain route via the other
// node's underlay address, MTU 1500). iperf3 runs over each path back to back, in alternating order; the ratio
// of each pair is kept, so that load from other processes, which drifts over seconds, cancels out in the median.
// Node-to-node on the underlay (the shortest path, which DESIGN.md's figures compare with) runs in each round too.
// Then the agents are restarted with --direct-routing (both nodes are on one network, so the same overlay pods are
// reached by a plain route via the other node's address, no VXLAN) and the same pods are measured again, paired
// with the underlay path in the same way.
// With ethtool, between the two, the underlay veths are made to segment VXLAN only without outer UDP checksums
// (tx-udp_tnl-csum-segmentation off, as some NICs are) and the overlay is measured again: with netplane's devices
// (outer checksum zero over IPv4), and with devices made by hand as the kernel makes them by default (checksummed),
// which that NIC has segmented in software.
import { setTimeout as sleep } from 'node:timers/promises';
import { which } from '../cli.ts';
import { buildOverlayTopology, type OverlayTopology } from '../../test/overlay/topology.ts';
import { waitFor } from '../../test/helpers/wait.ts';

/** Gbit/s per round, per path. */
export interface ThroughputResult {
  seconds: number;
  overlay: number[];
  underlay: number[];
  /** Node to node on the underlay. */
  nodes: number[];
  /** overlay / underlay of each back-to-back pair. */
  ratios: number[];
  /** overlay / node-to-node of each round. */
  nodeRatios: number[];
  /** The overlay pods again with --direct-routing, and the underlay pods paired with them. */
  direct: number[];
  directUnderlay: number[];
  /** direct / underlay of each back-to-back pair. */
  directRatios: number[];
  /**
   * With tx-udp_tnl-csum-segmentation off on the underlay (absent without ethtool): the overlay with netplane's
   * devices and with kernel-default (checksummed) devices, and the underlay paired with each.
   */
  tunnelCsumOff?: { overlay: number[]; underlay: number[]; checksummed: number[]; checksummedUnderlay: number[] };
}

/** Runs `rounds` alternating iperf3 measurements of `seconds` each; every namespace made is removed. */
export async function benchThroughput(options: { rounds?: number; seconds?: number; log?: (line: string) => void } = {}): Promise<ThroughputResult> {
  const rounds = options.rounds ?? 6;
  const seconds = options.seconds ?? 3;
  const say = options.log ?? (() => {});
  const t = await buildOverlayTopology(2, 1);
  try {
    const { lab } = t;
    const direct: string[] = [];
    for (const [k, node] of t.nodes.entries()) {
      const i = k + 1;
      const br = { ns: node.ns, ifname: 'dir0', addrs: [`10.245.${i}.1/24`] };
      await lab.bridge(br);
      await lab.exec(node.ns, 'ip', ['link', 'set', 'dir0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
      const pod = await lab.ns(`direct${i}`);
      await lab.attach(br, { ns: pod, ifname: 'eth0', addrs: [`10.245.${i}.11/24`] }, `vdirect${i}`);
      await lab.exec(pod, 'ip', ['route', 'add', 'default', 'via', `10.245.${i}.1`]);
      const other = 3 - i;
      await lab.exec(node.ns, 'ip', ['route', 'add', `10.245.${other}.0/24`, 'via', `192.168.60.${other}`]);
      direct.push(pod);
    }
    await t.writeNodes();
    for (const node of t.nodes) await t.startAgent(node);
    const servers = [t.nodes[1]!.pods[0]!.ns, direct[1]!, t.nodes[1]!.ns].map((ns) => lab.spawn(ns, 'iperf3', ['-s', '-p', '5201']));
    await sleep(300);
    for (const s of servers) if (s.exitCode !== null) throw new Error('iperf3 -s exited');
    const run = async (ns: string, target: string): Promise<number> => {
      const { stdout } = await lab.exec(ns, 'iperf3', ['-c', target, '-p', '5201', '-t', String(seconds), '-J']);
      const doc = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
      return doc.end.sum_received.bits_per_second / 1e9;
    };
    const result: ThroughputResult = { seconds, overlay: [], underlay: [], nodes: [], ratios: [], nodeRatios: [], direct: [], directUnderlay: [], directRatios: [] };
    const paths = {
      overlay: () => run(t.nodes[0]!.pods[0]!.ns, t.nodes[1]!.pods[0]!.ip),
      underlay: () => run(direct[0]!, '10.245.2.11'),
      nodes: () => run(t.nodes[0]!.ns, t.nodes[1]!.ip),
    };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['underlay', 'overlay', 'nodes'] as const) : (['overlay', 'underlay', 'nodes'] as const);
      const got = { overlay: 0, underlay: 0, nodes: 0 };
      for (const path of order) {
        got[path] = await paths[path]();
        result[path].push(got[path]);
      }
      result.ratios.push(got.overlay / got.underlay);
      result.nodeRatios.push(got.overlay / got.nodes);
      say(`  round ${r + 1}: pod-to-pod underlay ${got.underlay.toFixed(2)} Gbit/s, overlay ${got.overlay.toFixed(2)} Gbit/s, ratio ${(got.overlay / got.underlay).toFixed(3)}; node-to-node ${got.nodes.toFixed(2)} Gbit/s`);
    }
    if (which('ethtool') !== '') result.tunnelCsumOff = await withoutTunnelCsumOffload(t, paths, Math.max(2, Math.ceil(rounds / 2)), say);
    for (const node of t.nodes) await t.stopAgent(node, 'SIGTERM');
    for (const node of t.nodes) await t.startAgent(node, ['--direct-routing']);
    const route = await t.sh(t.nodes[0]!.ns, 'ip', ['route', 'show', '10.244.2.0/24']);
    if (!route.includes('via 192.168.60.2 dev eth0 proto 110')) throw new Error(`--direct-routing did not route 10.244.2.0/24 directly: ${route.trim()}`);
    const routed = await pairs(paths, rounds, (r, overlay, underlay) => say(`  round ${r + 1} --direct-routing: pod-to-pod underlay ${underlay.toFixed(2)} Gbit/s, direct ${overlay.toFixed(2)} Gbit/s, ratio ${(overlay / underlay).toFixed(3)}`));
    result.direct = routed.overlay;
    result.directUnderlay = routed.underlay;
    result.directRatios = routed.overlay.map((x, i) => x / routed.underlay[i]!);
    return result;
  } finally {
    await t.destroy();
  }
}

type Paths = Record<'overlay' | 'underlay', () => Promise<number>>;

/** Back-to-back overlay/underlay pairs in alternating order; `each` hears every pair. */
async function pairs(paths: Paths, rounds: number, each?: (round: number, overlay: number, underlay: number) => void): Promise<{ overlay: number[]; underlay: number[] }> {
  const out = { overlay: [] as number[], underlay: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const path of r % 2 === 0 ? (['underlay', 'overlay'] as const) : (['overlay', 'underlay'] as const)) out[path].push(await paths[path]());
    each?.(r, out.overlay[r]!, out.underlay[r]!);
  }
  return out;
}

/**
 * The overlay over an underlay that segments VXLAN only without outer checksums: netplane's devices, then devices
 * made by hand with the kernel's default (udpcsum) and the same name, MAC and MTU (the agent programs its entries on
 * them); those are deleted afterwards, so that the agent makes its own again, and the offload is turned back on.
 */
async function withoutTunnelCsumOffload(t: OverlayTopology, paths: Paths, rounds: number, say: (line: string) => void): Promise<NonNullable<ThroughputResult['tunnelCsumOff']>> {
  const { lab } = t;
  const offload = async (on: boolean) => {
    for (const node of t.nodes) await lab.exec(node.ns, 'ethtool', ['-K', 'eth0', 'tx-udp_tnl-csum-segmentation', on ? 'on' : 'off']);
  };
  const pingable = () => waitFor('pod-to-pod ping over the overlay', async () => (await t.ping(t.nodes[0]!.pods[0]!.ns, t.nodes[1]!.pods[0]!.ip, 300, 50)).received > 0, 10_000, 100);
  await offload(false);
  try {
    const ours = await pairs(paths, rounds);
    say(`  tx-udp_tnl-csum-segmentation off: overlay ${ours.overlay.map((x) => x.toFixed(2)).join(', ')} Gbit/s, underlay ${ours.underlay.map((x) => x.toFixed(2)).join(', ')}`);
    for (const node of t.nodes) {
      const mac = (await t.sh(node.ns, 'cat', ['/sys/class/net/netplane.1/address'])).trim();
      const mtu = (await t.sh(node.ns, 'cat', ['/sys/class/net/netplane.1/mtu'])).trim();
      // One shell, so that the agent has no time to make its device again in between.
      await lab.exec(node.ns, 'sh', ['-c', `ip link del netplane.1 && ip link add netplane.1 address ${mac} mtu ${mtu} type vxlan id 1 local ${node.ip} dev eth0 dstport 8472 nolearning udpcsum && ip link set netplane.1 up`]);
    }
    await pingable();
    const theirs = await pairs(paths, rounds);
    say(`  the same with checksummed devices: overlay ${theirs.overlay.map((x) => x.toFixed(2)).join(', ')} Gbit/s, underlay ${theirs.underlay.map((x) => x.toFixed(2)).join(', ')}`);
    return { overlay: ours.overlay, underlay: ours.underlay, checksummed: theirs.overlay, checksummedUnderlay: theirs.underlay };
  } finally {
    await offload(true);
    for (const node of t.nodes) await lab.exec(node.ns, 'ip', ['link', 'del', 'netplane.1']).catch(() => undefined);
    await waitFor("the agents' own devices", async () => {
      for (const node of t.nodes) if (!/ noudpcsum /.test(await t.sh(node.ns, 'ip', ['-d', 'link', 'show', 'netplane.1']).catch(() => ''))) return false;
      return true;
    }, 10_000, 100);
    await pingable();
  }
}

// The network the proxy's kernel tests run in: a node namespace with a bridge for its pods, pods running the
// echo server, and a client namespace outside the node. Everything is removed by `lab.destroy()`.
//
//   client (192.168.50.2, fd00:50::2) ──veth── node (192.168.50.1, fd00:50::1)
//                                               └─ br0 10.244.1.1/24 fd00:244:1::1/64
//                                                    ├─ pod1 10.244.1.11 fd00:244:1::11
//                                                    ├─ pod2 10.244.1.12 ...
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../lab/netns.ts';

const echo = fileURLToPath(new URL('../helpers/echo.ts', import.meta.url));
const probeScript = fileURLToPath(new URL('../helpers/probe.ts', import.meta.url));

/** One pod: its namespace and addresses. */
export interface Pod {
  name: string;
  ns: string;
  ip4: string;
  ip6: string;
}

/** The built network. */
export interface ProxyTopology {
  lab: NetnsLab;
  node: string;
  client: string;
  nodeIP4: string;
  nodeIP6: string;
  clientIP4: string;
  pods: Pod[];
  /** Runs the probe client in a namespace; returns one result per attempt. */
  probe(ns: string, proto: 'tcp' | 'udp', host: string, port: number, count?: number, extra?: string[]): Promise<ProbeResult[]>;
}

/** One probe attempt: who answered and as whom the client was seen, or the error and the time it took. */
export type ProbeResult = { ok: true; name: string; seenAs: string; ms: number } | { ok: false; error: string; ms: number };

/** Builds the network with `podCount` pods, each running the echo server on `ports`; `labId` names its namespaces (random by default). */
export async function buildTopology(podCount: number, ports: number[], labId?: string): Promise<ProxyTopology> {
  const lab = NetnsLab.create(labId === undefined ? {} : { id: labId });
  try {
    const node = await lab.ns('node');
    const client = await lab.ns('client');
    await lab.exec(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    await lab.veth(
      { ns: client, ifname: 'eth0', addrs: ['192.168.50.2/24', 'fd00:50::2/64'] },
      { ns: node, ifname: 'eth0', addrs: ['192.168.50.1/24', 'fd00:50::1/64'] },
    );
    await lab.exec(client, 'ip', ['route', 'add', 'default', 'via', '192.168.50.1']);
    await lab.exec(client, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd00:50::1']);
    const br = { ns: node, ifname: 'br0', addrs: ['10.244.1.1/24', 'fd00:244:1::1/64'] };
    await lab.bridge(br);
    // Ports forward at once (no STP delay) and multicast is flooded (IPv6 neighbour discovery before any MLD
    // report), so the first packets are not lost.
    await lab.exec(node, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'mcast_snooping', '0']);
    const pods: Pod[] = [];
    const servers: ChildProcess[] = [];
    for (let i = 1; i <= podCount; i++) {
      const pod: Pod = { name: `pod${i}`, ns: await lab.ns(`pod${i}`), ip4: `10.244.1.${10 + i}`, ip6: `fd00:244:1::${10 + i}` };
      await lab.attach(br, { ns: pod.ns, ifname: 'eth0', addrs: [`${pod.ip4}/24`, `${pod.ip6}/64`] }, `vpod${i}`);
      await lab.exec(pod.ns, 'ip', ['route', 'add', 'default', 'via', '10.244.1.1']);
      await lab.exec(pod.ns, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd00:244:1::1']);
      servers.push(lab.spawn(pod.ns, process.execPath, [echo, pod.name, ...ports.map(String)]));
      pods.push(pod);
    }
    // A node has a default route (here into an empty namespace, where unhandled packets vanish); without one,
    // packets to a Service without endpoints would not reach the filter FORWARD and OUTPUT hooks, and the node
    // could not send to a load-balancer IP. (A route back to the client would do too, but the ICMP redirects the
    // node then sends use up the per-peer ICMP rate limit that rejecting UDP needs.)
    await lab.veth({ ns: node, ifname: 'uplink' }, { ns: await lab.ns('uplink'), ifname: 'eth0' });
    await lab.exec(node, 'ip', ['route', 'add', 'default', 'dev', 'uplink']);
    await lab.exec(node, 'ip', ['-6', 'route', 'add', 'default', 'dev', 'uplink']);
    // A pod reaching itself through a Service has its packet DNATed back where it came from; with br_netfilter
    // the bridge then sends the frame out the port it arrived on, which needs hairpin mode (kubelet and the
    // bridge CNI plugin set it).
    for (const pod of pods) await lab.exec(node, 'ip', ['link', 'set', 'dev', `v${pod.name}`, 'type', 'bridge_slave', 'hairpin', 'on']);
    await Promise.all(servers.map((s) => new Promise<void>((resolve, reject) => {
      s.stdout!.once('data', () => resolve());
      s.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    })));
    return {
      lab,
      node,
      client,
      nodeIP4: '192.168.50.1',
      nodeIP6: 'fd00:50::1',
      clientIP4: '192.168.50.2',
      pods,
      async probe(ns, proto, host, port, count = 1, extra = []) {
        const { stdout } = await lab.exec(ns, process.execPath, [probeScript, proto, host, String(port), String(count), '2000', ...extra]);
        return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeResult);
      },
    };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}

/**
 * The topology for one describe block: built before its tests (`setup` then runs in it; the namespaces are removed if
 * either fails) and removed after them. Returns a getter for the tests.
 */
export function topologyForSuite(podCount: number, ports: number[], setup: (t: ProxyTopology) => Promise<void> = async () => {}): () => ProxyTopology {
  let topo: ProxyTopology | undefined;
  beforeAll(async () => {
    topo = await buildTopology(podCount, ports);
    try {
      await setup(topo);
    } catch (e) {
      await topo.lab.destroy();
      throw e;
    }
  }, 30_000);
  afterAll(async () => {
    await topo?.lab.destroy();
  });
  return () => topo!;
}

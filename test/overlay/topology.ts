// The network the overlay's kernel tests (and bench/overlay) run in: node namespaces joined by a bridge (the
// underlay), each with a bridge for its pods, pods running the echo server, one `netplane overlay` per node, and a
// host outside the cluster on the underlay. Everything is removed by `destroy()`, also when building fails.
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24 ── cni0 10.244.1.1/24 ─┬─ pod11 10.244.1.11
//                  │                                                    └─ pod12 10.244.1.12
//                  ├─ node2 eth0 192.168.60.2/24 ── cni0 10.244.2.1/24 ── ...
//                  ├─ node3 ...
//                  └─ outside eth0 192.168.60.100/24 (echo server; no route to the pod networks)
import type { ChildProcess } from 'node:child_process';
import { onLogLines } from '../../lab/log-lines.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../lab/netns.ts';
import { waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const echo = fileURLToPath(new URL('../helpers/echo.ts', import.meta.url));
const probeScript = fileURLToPath(new URL('../helpers/probe.ts', import.meta.url));
const pingerScript = fileURLToPath(new URL('./pinger.ts', import.meta.url));

/** The port every echo server listens on. */
export const echoPort = 8080;

/** One pod: its name, namespace and addresses. */
export interface Pod {
  name: string;
  ns: string;
  ip: string;
  /** Its IPv6 address in a dual-stack network. */
  ip6?: string;
}

/** One node: its namespace, underlay address, pod network and pods. */
export interface TestNode {
  name: string;
  ns: string;
  ip: string;
  /** Its IPv6 underlay address on a dual-stack underlay, fd00:60::i. */
  ip6?: string;
  podCIDR: string;
  /** Its IPv6 pod network in a dual-stack network. */
  podCIDR6?: string;
  pods: Pod[];
}

/** A running agent and the JSON log lines it printed. */
export interface Agent {
  proc: ChildProcess;
  logs: Array<Record<string, unknown>>;
}

/** One probe attempt (see test/helpers/probe.ts). */
export type ProbeResult = { ok: true; name: string; seenAs: string; ms: number } | { ok: false; error: string; ms: number };

/** The built network. */
export interface OverlayTopology {
  lab: NetnsLab;
  underlay: string;
  outside: { ns: string; ip: string };
  nodes: TestNode[];
  /** The manifest directory every agent reads. */
  dir: string;
  agents: Map<string, Agent>;
  /** Writes the Node manifests (default: every node as built). */
  writeNodes(nodes?: ReadonlyArray<{ name: string; ip: string; ip6?: string; podCIDR: string; podCIDR6?: string; annotations?: Record<string, string> }>): Promise<void>;
  /** Starts `netplane overlay` on a node and waits for its first sync (or for a log line `until` accepts). */
  startAgent(node: TestNode, extra?: string[], until?: (line: Record<string, unknown>) => boolean): Promise<Agent>;
  /** SIGKILLs (or SIGTERMs) a node's agent and waits for it to exit. */
  stopAgent(node: TestNode, signal?: NodeJS.Signals): Promise<void>;
  /** Runs the probe client in a namespace. */
  probe(ns: string, proto: 'tcp' | 'udp', host: string, port?: number, count?: number, extra?: string[]): Promise<ProbeResult[]>;
  /** Runs the UDP pinger in a namespace for `ms`; resolves with its summary. */
  ping(ns: string, host: string, ms: number, intervalMs?: number): Promise<{ sent: number; received: number; lost: number; maxGapMs: number }>;
  /** Runs a command in a namespace and returns its stdout. */
  sh(ns: string, command: string, args: string[]): Promise<string>;
  destroy(): Promise<void>;
}

/**
 * Builds `nodeCount` nodes with `podsPerNode` pods each; `dualStack` adds IPv6 pod networks fd00:244:i::/64;
 * `underlay: 6` gives the nodes (and the outside host) IPv6 underlay addresses only, fd00:60::i/64, and `'dual'` both
 * (TestNode.ip the IPv4 one, ip6 the IPv6 one; the Nodes list both as InternalIPs); `labId` names the namespaces
 * (NetnsLab's id; random by default).
 */
export async function buildOverlayTopology(nodeCount = 3, podsPerNode = 2, dualStack = false, underlay: 4 | 6 | 'dual' = 4, labId?: string): Promise<OverlayTopology> {
  const underlayAddr = (i: number) => (underlay === 6 ? `fd00:60::${i}` : `192.168.60.${i}`);
  const dualUnderlay = underlay === 'dual';
  const underlayCidrs = (i: number) => [`${underlayAddr(i)}/${underlay === 6 ? 64 : 24}`, ...(dualUnderlay ? [`fd00:60::${i}/64`] : [])];
  const lab = NetnsLab.create(labId !== undefined ? { id: labId } : {});
  const dir = await mkdtemp(join(tmpdir(), 'netplane-overlay-'));
  const agents = new Map<string, Agent>();
  try {
    const underlay = await lab.ns('underlay');
    const br = { ns: underlay, ifname: 'br0' };
    await lab.bridge(br);
    await lab.exec(underlay, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    const servers: ChildProcess[] = [];
    const nodes: TestNode[] = [];
    for (let i = 1; i <= nodeCount; i++) {
      const ns = await lab.ns(`node${i}`);
      const node: TestNode = { name: `node${i}`, ns, ip: underlayAddr(i), ...(dualUnderlay ? { ip6: `fd00:60::${i}` } : {}), podCIDR: `10.244.${i}.0/24`, ...(dualStack ? { podCIDR6: `fd00:244:${i}::/64` } : {}), pods: [] };
      await lab.attach(br, { ns, ifname: 'eth0', addrs: underlayCidrs(i) }, `n${i}`);
      await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      const cni = { ns, ifname: 'cni0', addrs: [`10.244.${i}.1/24`, ...(dualStack ? [`fd00:244:${i}::1/64`] : [])] };
      await lab.bridge(cni);
      // Ports forward at once and multicast is flooded (neighbour discovery before any MLD report).
      await lab.exec(ns, 'ip', ['link', 'set', 'cni0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'mcast_snooping', '0']);
      for (let j = 1; j <= podsPerNode; j++) {
        const pod: Pod = { name: `pod${i}${j}`, ns: await lab.ns(`pod${i}${j}`), ip: `10.244.${i}.${10 + j}`, ...(dualStack ? { ip6: `fd00:244:${i}::${10 + j}` } : {}) };
        await lab.attach(cni, { ns: pod.ns, ifname: 'eth0', addrs: [`${pod.ip}/24`, ...(pod.ip6 ? [`${pod.ip6}/64`] : [])] }, `v${pod.name}`);
        // The pod MTU leaves room for the VXLAN header, as Flannel's CNI configuration does.
        await lab.exec(pod.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1450']);
        await lab.exec(pod.ns, 'ip', ['route', 'add', 'default', 'via', `10.244.${i}.1`]);
        if (dualStack) await lab.exec(pod.ns, 'ip', ['-6', 'route', 'add', 'default', 'via', `fd00:244:${i}::1`]);
        servers.push(lab.spawn(pod.ns, process.execPath, [echo, pod.name, String(echoPort)]));
        node.pods.push(pod);
      }
      nodes.push(node);
    }
    const outside = { ns: await lab.ns('outside'), ip: underlayAddr(100) };
    await lab.attach(br, { ns: outside.ns, ifname: 'eth0', addrs: underlayCidrs(100) }, 'nout');
    servers.push(lab.spawn(outside.ns, process.execPath, [echo, 'outside', String(echoPort)]));
    await Promise.all(servers.map((s) => new Promise<void>((resolve, reject) => {
      s.stdout!.once('data', () => resolve());
      s.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    })));

    const t: OverlayTopology = {
      lab,
      underlay,
      outside,
      nodes,
      dir,
      agents,
      async writeNodes(list = nodes) {
        const docs = list.map((n) => ({
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: n.name, ...(n.annotations ? { annotations: n.annotations } : {}) },
          spec: n.podCIDR6 ? { podCIDRs: [n.podCIDR, n.podCIDR6] } : { podCIDR: n.podCIDR },
          status: { addresses: [{ type: 'InternalIP', address: n.ip }, ...(n.ip6 ? [{ type: 'InternalIP', address: n.ip6 }] : [])] },
        }));
        // Written in place: Node's recursive watcher loses a file replaced by rename (the source would only see it at
        // its 2 s rescan); a half-written file is rejected and read again after the source's debounce.
        await writeFile(join(dir, 'nodes.yaml'), docs.map((d) => JSON.stringify(d)).join('\n---\n'));
      },
      async startAgent(node, extra = [], until = (l) => l.msg === 'overlay synced') {
        const proc = lab.spawn(node.ns, process.execPath, [
          bin, 'overlay', '--manifests', dir, '--node-name', node.name, '--cluster-cidr', dualStack ? '10.244.0.0/16,fd00:244::/32' : '10.244.0.0/16', '--admin', '127.0.0.1:10247', ...extra,
        ]);
        const agent: Agent = { proc, logs: [] };
        onLogLines(proc.stdout!, (r) => agent.logs.push(r));
        proc.stderr!.on('data', (d) => agent.logs.push({ msg: String(d), stderr: true }));
        agents.set(node.name, agent);
        await waitFor(`${node.name}'s first sync`, () => agent.logs.some(until) || proc.exitCode !== null, 15_000);
        if (proc.exitCode !== null) throw new Error(`the agent on ${node.name} exited with ${proc.exitCode}: ${JSON.stringify(agent.logs.slice(-5))}`);
        return agent;
      },
      async stopAgent(node, signal = 'SIGKILL') {
        const a = agents.get(node.name);
        if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) return;
        const exited = new Promise((r) => a.proc.once('exit', r));
        // `ip netns exec` execs the command, so the signal reaches the agent itself.
        a.proc.kill(signal);
        await exited;
      },
      async probe(ns, proto, host, port = echoPort, count = 1, extra = []) {
        const { stdout } = await lab.exec(ns, process.execPath, [probeScript, proto, host, String(port), String(count), '1000', ...extra]);
        return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeResult);
      },
      async ping(ns, host, ms, intervalMs = 20) {
        const { stdout } = await lab.exec(ns, process.execPath, [pingerScript, host, String(echoPort), String(ms), String(intervalMs)]);
        return JSON.parse(stdout.trim()) as { sent: number; received: number; lost: number; maxGapMs: number };
      },
      async sh(ns, command, args) {
        return (await lab.exec(ns, command, args)).stdout;
      },
      async destroy() {
        await lab.destroy();
        await rm(dir, { recursive: true, force: true });
      },
    };
    return t;
  } catch (e) {
    await lab.destroy();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

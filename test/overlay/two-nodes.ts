// The two-node network the overlay's single-flag kernel tests start from (topology.ts, one pod per node): node1
// prepared by the test, the Nodes written, node2's agent running with the resync an hour away, so that whatever
// node1's agent does later is not a resync's doing. What it built is destroyed when one of its steps fails.
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24 (fd00:60::1/64) ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 192.168.60.2/24 (fd00:60::2/64) ── cni0 ── pod21 10.244.2.11
import { randomBytes } from 'node:crypto';
import { buildOverlayTopology, type OverlayTopology, type TestNode } from './topology.ts';

/** The built network and its two nodes. */
export interface TwoNodes {
  t: OverlayTopology;
  node1: TestNode;
  node2: TestNode;
}

/** How the two nodes are set up. */
export interface TwoNodesOptions {
  /** The underlay's family (default IPv4). */
  underlay?: 4 | 6;
  /** Runs before the Nodes are written: node1's extra interfaces, addresses, sysctls. */
  prepare?: (n: TwoNodes) => Promise<void>;
  /** The Nodes to write (default: both as built). */
  nodes?: (n: TwoNodes) => Parameters<OverlayTopology['writeNodes']>[0];
}

/**
 * Builds the two nodes in namespaces whose lab id starts with `labPrefix` (up to 8 letters or digits; the rest is
 * random) and starts node2's agent. Rejects, having removed every namespace, when a step fails.
 */
export async function twoNodes(labPrefix: string, o: TwoNodesOptions = {}): Promise<TwoNodes> {
  const t = await buildOverlayTopology(2, 1, false, o.underlay ?? 4, labPrefix + randomBytes(6).toString('hex').slice(0, 12 - labPrefix.length));
  try {
    const [node1, node2] = t.nodes as [TestNode, TestNode];
    const n = { t, node1, node2 };
    await o.prepare?.(n);
    await t.writeNodes(o.nodes?.(n));
    await t.startAgent(node2, ['--resync-period', '1h']);
    return n;
  } catch (e) {
    await t.destroy();
    throw e;
  }
}

/**
 * node1 also has mgmt0 10.99.0.1/24, one end of a veth pair that reaches nothing; its Node names 10.99.0.1 as
 * InternalIP and Flannel's public-ip-overwrite 192.168.60.1 for the other nodes, so that node2 sends to node1's eth0
 * whatever node1 sends from (the set-up of the --iface-can-reach tests).
 */
export function twoNodesWithMgmt(labPrefix: string): Promise<TwoNodes> {
  return twoNodes(labPrefix, {
    async prepare({ t, node1 }) {
      await t.lab.exec(node1.ns, 'ip', ['link', 'add', 'mgmt0', 'type', 'veth', 'peer', 'name', 'mgmt0p']);
      await t.lab.exec(node1.ns, 'ip', ['addr', 'add', '10.99.0.1/24', 'dev', 'mgmt0']);
      await t.lab.exec(node1.ns, 'ip', ['link', 'set', 'mgmt0', 'up']);
    },
    nodes: ({ node1, node2 }) => [
      { name: 'node1', ip: '10.99.0.1', podCIDR: node1.podCIDR, annotations: { 'flannel.alpha.coreos.com/public-ip-overwrite': '192.168.60.1' } },
      { name: 'node2', ip: node2.ip, podCIDR: node2.podCIDR },
    ],
  });
}

/** A VXLAN device as `ip -j -d link show` gives it: its MAC, its underlay interface's name and its source address. */
export interface VxlanDevice {
  address: string;
  link?: string;
  local?: string;
  local6?: string;
}

/** The VXLAN device `name` (default netplane.1) in namespace `ns`; rejects when there is none. */
export async function vxlanDevice(t: OverlayTopology, ns: string, name = 'netplane.1'): Promise<VxlanDevice> {
  const [dev] = JSON.parse(await t.sh(ns, 'ip', ['-j', '-d', 'link', 'show', name])) as Array<{ address: string; linkinfo: { info_data: Omit<VxlanDevice, 'address'> } }>;
  const { link, local, local6 } = dev!.linkinfo.info_data;
  return { address: dev!.address, ...(link !== undefined ? { link } : {}), ...(local !== undefined ? { local } : {}), ...(local6 !== undefined ? { local6 } : {}) };
}

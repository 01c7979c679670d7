// Nodes and hosts for the overlay's unit tests.
import { parseKind, type Node } from '../../cluster/model/index.ts';
import type { LinkState } from '../../overlay/kernel/types.ts';
import type { HostView, OverlayOptions } from '../../overlay/plan/types.ts';

/** What a test Node may carry besides its name. */
export interface NodeSpec {
  podCIDRs?: string[];
  ip?: string;
  externalIP?: string;
  annotations?: Record<string, string>;
  /** metadata.creationTimestamp (RFC 3339): the older Node keeps a contested value. */
  created?: string;
}

/** A Node as the store holds it, from raw JSON the way users write it. */
export function rawNode(name: string, s: NodeSpec = {}): Record<string, unknown> {
  const addresses = [
    ...(s.ip ? [{ type: 'InternalIP', address: s.ip }] : []),
    ...(s.externalIP ? [{ type: 'ExternalIP', address: s.externalIP }] : []),
  ];
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, ...(s.annotations ? { annotations: s.annotations } : {}), ...(s.created ? { creationTimestamp: s.created } : {}) },
    spec: s.podCIDRs ? { podCIDRs: s.podCIDRs } : {},
    status: { addresses },
  };
}

/** A validated Node. */
export function node(name: string, s: NodeSpec = {}): Node {
  return parseKind('Node', rawNode(name, s));
}

/** Node `i` of a test cluster: podCIDR 10.244.i.0/24, address 192.168.60.i. */
export function clusterNode(i: number, extra: NodeSpec = {}): Node {
  return node(`node${i}`, { podCIDRs: [`10.244.${i}.0/24`], ip: `192.168.60.${i}`, ...extra });
}

/** A host with loopback and eth0 (192.168.60.1/24, MTU 1500). */
export const host1: HostView = {
  links: [
    { index: 1, name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true },
    { index: 2, name: 'eth0', kind: 'veth', mac: '02:00:00:00:00:02', mtu: 1500, up: true },
  ] satisfies LinkState[],
  addresses: [
    { index: 1, cidr: '127.0.0.1/8' },
    { index: 2, cidr: '192.168.60.1/24' },
  ],
};

/** The options of the agent on node1 with the defaults. */
export const options1: OverlayOptions = { nodeName: 'node1', device: 'netplane.1', vni: 1, port: 8472 };

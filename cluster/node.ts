// Which node this process runs on, and what the cluster says about it.
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { zoneLabel, type Node } from './model/index.ts';
import type { Store } from './store.ts';

/** The node name: the flag if given, else the host name in lower case (as the kubelet registers it). */
export function defaultNodeName(): string {
  return hostname().toLowerCase();
}

/**
 * A `--node-name` value as the kubelet registers the node: trimmed and in lower case (kube-proxy's
 * `nodeutil.GetHostname`). Throws when nothing is left.
 */
export function parseNodeName(raw: string): string {
  const name = raw.trim().toLowerCase();
  if (name === '') throw new Error('must not be empty');
  return name;
}

/** This node's object in the store, if the view has it. */
export function findNode(store: Store, nodeName: string): Node | undefined {
  return store.get('Node', nodeName);
}

/** This node's zone from its `topology.kubernetes.io/zone` label, if the view has the node and the label. */
export function nodeZone(store: Store, nodeName: string): string | undefined {
  return findNode(store, nodeName)?.metadata.labels[zoneLabel];
}

/**
 * A node's primary addresses as its Node object gives them, one per family: the first InternalIP of the family,
 * else the first ExternalIP (what kube-proxy takes for `--nodeport-addresses primary`).
 */
export function primaryAddresses(node: Node | undefined): { 4?: string; 6?: string } {
  const out: { 4?: string; 6?: string } = {};
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of node?.status.addresses ?? []) {
      if (a.type !== type) continue;
      if (isIPv4(a.address)) out[4] ??= a.address;
      else if (isIPv6(a.address)) out[6] ??= a.address;
    }
  }
  return out;
}

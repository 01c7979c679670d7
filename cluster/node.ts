// Which node this process runs on, and what the cluster says about it.
import { hostname } from 'node:os';
import { zoneLabel, type Node } from './model/index.ts';
import type { Store } from './store.ts';

/** The node name: the flag if given, else the host name in lower case (as the kubelet registers it). */
export function defaultNodeName(): string {
  return hostname().toLowerCase();
}

/** This node's object in the store, if the view has it. */
export function findNode(store: Store, nodeName: string): Node | undefined {
  return store.get('Node', nodeName);
}

/** This node's zone from its `topology.kubernetes.io/zone` label, if the view has the node and the label. */
export function nodeZone(store: Store, nodeName: string): string | undefined {
  return findNode(store, nodeName)?.metadata.labels[zoneLabel];
}

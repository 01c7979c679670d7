// kube-proxy's --detect-local-mode: which traffic comes from this node's pods ("local" traffic). The choice becomes
// data in the plan (ProxyPlan.localTraffic), which the kernel backends render as matches on the source address or
// on the interface a packet came in on. Everything here is pure.
import { isIP } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import type { Family, LocalTraffic, ProxyPlan } from './types.ts';

/** The values of --detect-local-mode, spelled as kube-proxy spells them. */
export const detectLocalModes = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'] as const;
/** A --detect-local-mode value. */
export type DetectLocalMode = (typeof detectLocalModes)[number];

/** The local-traffic choice the planner is given (PlanConfig.detectLocal); absent means ClusterCIDR. */
export type DetectLocal =
  /** Sources in --cluster-cidr (the planner's clusterCIDRs). */
  | { mode: 'ClusterCIDR' }
  /** Sources in this node's spec.podCIDRs, as resolveDetectLocal found them. */
  | { mode: 'NodeCIDR'; podCIDRs: readonly string[] }
  /** Packets that came in on this bridge. */
  | { mode: 'BridgeInterface'; bridge: string }
  /** Packets that came in on an interface whose name starts with this. */
  | { mode: 'InterfaceNamePrefix'; prefix: string };

/** The flags as given: the mode and the interface arguments, checked together by detectLocalProblem. */
export interface DetectLocalFlags {
  mode: DetectLocalMode;
  bridge?: string | undefined;
  prefix?: string | undefined;
}

// Linux takes up to 15 bytes (IFNAMSIZ - 1). The name goes quoted into nft rules (`iifname "cni0"`, `"cali*"`) and bare into
// iptables arguments (`-i cni0`, `cali+`), so only characters both read as part of a name are allowed: no quotes,
// spaces, wildcards ('*', '+') or negation ('!').
const interfacePattern = /^[A-Za-z][A-Za-z0-9_.-]*$/;

/**
 * Parses --pod-bridge-interface (up to 15 characters) or, with `prefix`, --pod-interface-name-prefix (up to 14: the
 * wildcard the rules add, `cali*` / `cali+`, must fit the 15 as well). Throws with what is allowed.
 */
export function parseInterfaceName(raw: string, prefix = false): string {
  const name = raw.trim();
  const most = prefix ? 14 : 15;
  if (!interfacePattern.test(name) || name.length > most) {
    throw new Error(`must be ${prefix ? 'the start of an interface name' : 'an interface name'} of 1 to ${most} characters: a letter, then letters, digits, "_", "." or "-", e.g. ${prefix ? 'cali' : 'cni0'}`);
  }
  return name;
}

/**
 * The start-up warning for ClusterCIDR without --cluster-cidr, or undefined. kube-proxy logs that it cannot detect
 * local traffic then and uses a detector that matches nothing; the plan does the same with no CIDRs (localTrafficFor).
 */
export function clusterCIDRWarning(mode: DetectLocalMode, clusterCIDRs: readonly string[]): string | undefined {
  if (mode !== 'ClusterCIDR' || clusterCIDRs.length > 0) return undefined;
  return (
    '--detect-local-mode ClusterCIDR without --cluster-cidr: traffic from pods cannot be told from other traffic, so none is treated as local: ' +
    "connections from outside the cluster to cluster IPs are not masqueraded, and pods reaching a Local-policy load-balancer or external IP get only this node's endpoints; " +
    'give --cluster-cidr, or another --detect-local-mode'
  );
}

/** Why the flags do not go together, as one sentence, or undefined when they do. */
export function detectLocalProblem(f: DetectLocalFlags): string | undefined {
  if (f.mode === 'BridgeInterface' && f.bridge === undefined) {
    return "--detect-local-mode BridgeInterface needs --pod-bridge-interface NAME, the bridge this node's pods are attached to (e.g. cni0)";
  }
  if (f.mode === 'InterfaceNamePrefix' && f.prefix === undefined) {
    return "--detect-local-mode InterfaceNamePrefix needs --pod-interface-name-prefix PREFIX, the start of the names of this node's pod interfaces (e.g. veth)";
  }
  if (f.bridge !== undefined && f.mode !== 'BridgeInterface') return `--pod-bridge-interface is used only with --detect-local-mode BridgeInterface, not ${f.mode}`;
  if (f.prefix !== undefined && f.mode !== 'InterfaceNamePrefix') return `--pod-interface-name-prefix is used only with --detect-local-mode InterfaceNamePrefix, not ${f.mode}`;
  return undefined;
}

const familyOf = (cidr: string): Family => (isIP(cidr.split('/')[0]!) === 6 ? 6 : 4);
const byFamily = (cidrs: readonly string[]): Record<Family, string[]> => ({ 4: cidrs.filter((c) => familyOf(c) === 4), 6: cidrs.filter((c) => familyOf(c) === 6) });

/**
 * The plan's local traffic for a choice: by source CIDRs per family (--cluster-cidr, or the Node's podCIDRs), or by
 * incoming interface, the same in both families (as kube-proxy, whose interface detectors serve both).
 */
export function localTrafficFor(detect: DetectLocal | undefined, clusterCIDRs: readonly string[]): LocalTraffic {
  switch (detect?.mode) {
    case undefined:
    case 'ClusterCIDR':
      return { by: 'cidr', cidrs: byFamily(clusterCIDRs) };
    case 'NodeCIDR':
      return { by: 'cidr', cidrs: byFamily(detect.podCIDRs) };
    case 'BridgeInterface':
      return { by: 'interface', name: detect.bridge, prefix: false };
    case 'InterfaceNamePrefix':
      return { by: 'interface', name: detect.prefix, prefix: true };
  }
}

/** A plan's local traffic: as the planner set it, else (a plan made by hand) by its cluster CIDRs. */
export function localTrafficOf(plan: Pick<ProxyPlan, 'clusterCIDRs' | 'localTraffic'>): LocalTraffic {
  return plan.localTraffic ?? { by: 'cidr', cidrs: plan.clusterCIDRs };
}

/**
 * How long NodeCIDR waits for the Node's spec.podCIDRs before the first plan: kube-proxy's timeoutForNodePodCIDR,
 * after which it stops with an error (and is restarted by its DaemonSet).
 */
export const podCIDRWaitMs = 5 * 60_000;

/**
 * What the planner gets now, with a sentence worth logging; or, instead, what programming waits for and how long
 * before giving up.
 */
export type DetectLocalResolution = { detect: DetectLocal; warning?: string; notice?: string } | { waitFor: string; giveUpAfterMs: number };

/**
 * The choice for the flags, given this node's Node as the view has it and the last plan programmed. NodeCIDR takes
 * the Node's spec.podCIDRs and follows them when they change (kube-proxy restarts itself then; here the next sync
 * re-plans, with a notice). Without them (the Node is not in the view, or has none) it keeps the pod CIDRs of the
 * last plan, with a warning, so that working rules are never dropped; before any plan it waits for them, as
 * kube-proxy waits for the Node's podCIDR before it starts, and gives up after podCIDRWaitMs as it does. The other
 * modes never wait. Pure.
 */
export function resolveDetectLocal(f: DetectLocalFlags, nodeName: string, node: Node | undefined, last: ProxyPlan | undefined): DetectLocalResolution {
  switch (f.mode) {
    case 'ClusterCIDR':
      return { detect: { mode: 'ClusterCIDR' } };
    case 'BridgeInterface':
      return { detect: { mode: 'BridgeInterface', bridge: f.bridge ?? '' } };
    case 'InterfaceNamePrefix':
      return { detect: { mode: 'InterfaceNamePrefix', prefix: f.prefix ?? '' } };
    case 'NodeCIDR':
      break;
  }
  const what = `--detect-local-mode NodeCIDR: the Node "${nodeName}"`;
  const lastTraffic = last && localTrafficOf(last);
  const kept = lastTraffic?.by === 'cidr' ? [...lastTraffic.cidrs[4], ...lastTraffic.cidrs[6]] : [];
  const now = node?.spec.podCIDRs ?? [];
  if (now.length === 0) {
    if (kept.length === 0) {
      const state = node ? 'it has none yet' : 'it is not in the cluster view yet (--node-name)';
      return { waitFor: `waiting for Node "${nodeName}"'s spec.podCIDRs (--detect-local-mode NodeCIDR): ${state}; no rule is programmed until it has them`, giveUpAfterMs: podCIDRWaitMs };
    }
    const why = node ? 'has no spec.podCIDRs' : '(--node-name) is not in the cluster view';
    return { detect: { mode: 'NodeCIDR', podCIDRs: kept }, warning: `${what} ${why} any more; traffic from ${kept.join(', ')} stays local until it has pod CIDRs again` };
  }
  const changed = kept.length > 0 && !sameSet(kept, now);
  return { detect: { mode: 'NodeCIDR', podCIDRs: [...now] }, ...(changed ? { notice: `${what} has new spec.podCIDRs ${now.join(', ')} (were ${kept.join(', ')}); traffic from them is local from this sync on` } : {}) };
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

// What an earlier run of the agent programmed for each node, read back from the kernel for the first plan of this
// run: a Node that became unusable while the agent was down (its address annotation broken, its addresses or
// podCIDR gone) keeps the entries it had, as it would have kept them had the agent been running. Pure.
import { canonicalIP } from '../../cluster/model/names.ts';
import type { Node } from '../../cluster/model/index.ts';
import { podCIDRs } from './node.ts';
import type { DeviceView, Remote } from './types.ts';

/**
 * The remotes the kernel's entries on the device describe for the Nodes of the view (not `self`), found from a
 * Node's podCIDR (its route → the VTEP's neighbour entry → the FDB entry of that MAC) or, failing that, from one of
 * its addresses (the FDB entry to it → the neighbour entry of that MAC → the routes through that VTEP). Only a
 * complete, unambiguous chain of netplane's own entries counts (a MAC with two FDB destinations, or a podCIDR or
 * underlay address that another Node names, gives nothing), so what is recovered is only ever what this node was forwarding to.
 */
export function remotesFromKernel(nodes: readonly Node[], self: string, view: DeviceView): Remote[] {
  const fdbByMac = new Map<string, string[]>();
  const fdbByDst = new Map<string, string[]>();
  for (const [key, { mac, dst }] of view.fdb) {
    if (key.split(' ').length !== 2) continue; // an entry with a port, VNI or interface of its own is not netplane's
    push(fdbByMac, mac, dst);
    push(fdbByDst, dst, mac);
  }
  const named = new Map<string, string[]>();
  for (const n of nodes) {
    for (const c of Object.values(podCIDRs(n))) push(named, c, n.metadata.name);
    for (const a of n.status?.addresses ?? []) push(named, canonicalIP(a.address), n.metadata.name);
  }

  const remotes: Remote[] = [];
  for (const node of nodes) {
    const name = node.metadata.name;
    if (name === self) continue;
    const found = byPodCIDR(node, view, fdbByMac) ?? byAddress(node, view, fdbByDst);
    if (!found) continue;
    const cidrs = [found.podCIDR4, found.podCIDR6].filter((c): c is string => c !== undefined);
    const another = (key: string) => (named.get(key) ?? []).some((other) => other !== name);
    if (cidrs.length === 0 || cidrs.some(another) || another(found.underlayIP)) continue;
    remotes.push({ node: name, ...found });
  }
  return remotes;
}

type Found = Omit<Remote, 'node'>;

/** The chain from the Node's own podCIDR(s): every route found must lead to one VTEP MAC and one underlay address. */
function byPodCIDR(node: Node, view: DeviceView, fdbByMac: Map<string, string[]>): Found | undefined {
  const cidrs = podCIDRs(node);
  let out: Found | undefined;
  for (const [family, cidr] of [[4, cidrs.v4], [6, cidrs.v6]] as const) {
    if (cidr === undefined) continue;
    const route = view.routes.get(cidr);
    if (!route?.onlink) continue;
    const neighbour = view.neighbours.get(route.gateway);
    if (!neighbour?.permanent) continue;
    const dsts = fdbByMac.get(neighbour.mac) ?? [];
    if (dsts.length !== 1) continue;
    if (out && (out.vtepMAC !== neighbour.mac || out.underlayIP !== dsts[0])) return undefined;
    out ??= { underlayIP: dsts[0]!, vtepMAC: neighbour.mac };
    if (family === 4) Object.assign(out, { vtep4: route.gateway, podCIDR4: cidr });
    else Object.assign(out, { vtep6: route.gateway, podCIDR6: cidr });
  }
  return out;
}

/** The chain from one of the Node's addresses (status.addresses): its FDB entry's MAC, that MAC's VTEPs, their routes. */
function byAddress(node: Node, view: DeviceView, fdbByDst: Map<string, string[]>): Found | undefined {
  const candidates = new Set<Found>();
  for (const a of node.status?.addresses ?? []) {
    const ip = canonicalIP(a.address);
    const macs = fdbByDst.get(ip) ?? [];
    if (macs.length !== 1) continue;
    const mac = macs[0]!;
    const found: Found = { underlayIP: ip, vtepMAC: mac };
    for (const [vtep, n] of view.neighbours) {
      if (n.mac !== mac || !n.permanent) continue;
      for (const [dst, r] of view.routes) {
        if (r.gateway !== vtep || !r.onlink || r.metric !== undefined) continue;
        const v6 = dst.includes(':');
        if ((v6 ? found.podCIDR6 : found.podCIDR4) !== undefined) return undefined; // two pod networks of one family
        if (v6) Object.assign(found, { vtep6: vtep, podCIDR6: dst });
        else Object.assign(found, { vtep4: vtep, podCIDR4: dst });
      }
    }
    if (found.podCIDR4 !== undefined || found.podCIDR6 !== undefined) candidates.add(found);
  }
  return candidates.size === 1 ? [...candidates][0] : undefined;
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

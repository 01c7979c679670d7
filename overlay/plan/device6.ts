// The second VXLAN device, over IPv6, as Flannel's VXLAN backend builds `flannel-v6.<VNI>` when IPv6 is enabled on a
// dual-stack underlay (pkg/backend/vxlan/vxlan.go): the same VNI and port, the same underlay interface with its
// IPv6 address as the source, the IPv6 pod network's address as a /128, and for every node that announces such a
// device a neighbour, FDB and route entry for its IPv6 pod network. Flannel nodes send IPv6 pod traffic only over
// theirs, to the `public-ipv6` and `backend-v6-data` MAC a node announces. Pure.
import { isIPv6 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { canonicalIP } from '../../proxy/nftables/model.ts';
import {
  derivedMac,
  flannelAnnotations,
  flannelBackendData,
  podCIDRs,
  underlayAddress,
  unicastMac,
  unusableUnderlay,
  vtepAddress,
  vtepMacAnnotation,
  vtepV6MacAnnotation,
} from './node.ts';
import type { DeviceSpec, HostView, OverlayOptions, OverlayPlan, Problem, Remote } from './types.ts';

/** VXLAN over IPv6 adds 70 bytes: outer IPv6 40, UDP 8, VXLAN 8, inner Ethernet 14. */
const overhead6 = 70;

const linkLocal = (ip: string) => /^fe[89ab]/i.test(ip);

/**
 * The IPv6 device this node should have (--ipv6-device auto), or undefined: when this node has an IPv6 podCIDR,
 * its underlay (the first device's) is IPv4, and the underlay interface has a global IPv6 address (Flannel's
 * IfaceV6Addr: the node's IPv6 InternalIP or ExternalIP when that interface holds it, else its first global one).
 * MTU: the underlay's less 70, or --mtu less 20 (the same path, 20 bytes more of outer header). MAC:
 * `netplane.io/vtep-v6-mac`, else (a node Flannel announced) Flannel's `backend-v6-data`, else derived from the IPv6
 * address; so it stays the same across restarts.
 */
export function planDevice6(self: Node, device: DeviceSpec, o: OverlayOptions, host: HostView, problems: Problem[]): DeviceSpec | undefined {
  const want = o.ipv6Device;
  const cidr6 = podCIDRs(self).v6;
  if (!want?.auto || cidr6 === undefined || isIPv6(device.local)) return undefined;
  const name = self.metadata.name;
  // A tentative or DAD-failed address is no source: the kernel neither sends from it nor takes packets to it.
  const on = host.addresses.filter((a) => a.index === device.underlayIndex && a.dad === undefined).map((a) => canonicalIP(a.cidr.split('/')[0]!)).filter((a) => isIPv6(a) && !linkLocal(a) && unusableUnderlay(a) === undefined);
  const listed = ['InternalIP', 'ExternalIP'].flatMap((type) => self.status.addresses.filter((a) => a.type === type && isIPv6(a.address)).map((a) => canonicalIP(a.address)));
  const local = listed.find((a) => on.includes(a)) ?? on[0];
  if (local === undefined) {
    problems.push({ node: name, reason: `has an IPv6 podCIDR but no global IPv6 address on its underlay interface ${device.underlay}: no ${want.name} (--ipv6-device auto), its IPv6 pods stay on ${device.name}` });
    return undefined;
  }
  const link = host.links.find((l) => l.index === device.underlayIndex);
  const max = (link?.mtu ?? device.mtu + 50) - overhead6;
  // --mtu less the 20 bytes more of outer header, cut to what the underlay carries as the first device's is.
  const mtu = o.mtu !== undefined ? Math.min(o.mtu - (overhead6 - 50), max) : max;
  if (mtu < 1280) {
    problems.push({ node: name, reason: `cannot have ${want.name}: its MTU would be ${mtu}, under IPv6's minimum 1280 (the underlay ${device.underlay} carries too little); its IPv6 pods stay on ${device.name}` });
    return undefined;
  }
  return {
    name: want.name,
    vni: device.vni,
    port: device.port,
    local,
    underlayIndex: device.underlayIndex,
    underlay: device.underlay,
    mtu,
    // From manifests the others derive this MAC from the IPv6 address they read for this node, not from its source.
    mac: ownMac6(self, o.publishes ? local : (underlayAddress(self, 'peer', 6).ip ?? local), problems),
    addresses: [`${vtepAddress(cidr6)}/128`],
  };
}

/** The IPv6 device's MAC: annotated, else Flannel's backend-v6-data (a node Flannel announced), else derived from `reachedAt`. */
function ownMac6(self: Node, reachedAt: string, problems: Problem[]): string {
  const annotated = self.metadata.annotations[vtepV6MacAnnotation];
  if (annotated !== undefined) {
    const mac = unicastMac(annotated);
    if (mac !== undefined) return mac;
    problems.push({ node: self.metadata.name, reason: `annotation ${vtepV6MacAnnotation} ${JSON.stringify(annotated.slice(0, 60))} is not a unicast MAC; using one derived from ${reachedAt}` });
  } else if (self.metadata.annotations[vtepMacAnnotation] === undefined) {
    // A node Flannel announced keeps its IPv6 device's MAC, so the Flannel nodes' entries for it stay right.
    const data = flannelBackendData(self, flannelAnnotations.backendV6Data);
    if (data && 'mac' in data) return data.mac;
  }
  return derivedMac(reachedAt);
}

/** The IPv6 VTEP addresses and MACs of the nodes on the IPv6 device so far, this node's included. */
export interface Taken6 {
  ips: Map<string, string>;
  macs: Map<string, string>;
}

/**
 * The IPv6 VTEP of a remote with an IPv6 podCIDR, when its IPv6 pods go over the IPv6 device; else undefined, and
 * they go over the first device as before. In kubernetes mode (`publishes`) only a node that announces an IPv6
 * device counts: a netplane node by `netplane.io/vtep-v6-mac`, a Flannel node (no `netplane.io/vtep-mac`) by
 * `backend-v6-data`; a netplane node without that device would drop what arrives over IPv6. From manifests every
 * node with an IPv6 address counts (its MAC annotated or derived), so the flag must be the same on every node.
 * The address: an overwrite, `netplane.io/public-ipv6`, Flannel's `public-ipv6`, else an IPv6 InternalIP or ExternalIP.
 */
export function remoteVxlan6(node: Node, publishes: boolean, vni: number, taken: Taken6, problems: Problem[]): Remote['vxlan6'] {
  const name = node.metadata.name;
  const ann = node.metadata.annotations;
  let mac: string | undefined;
  let announced = '';
  const annotated = ann[vtepV6MacAnnotation];
  if (annotated !== undefined) {
    mac = unicastMac(annotated);
    announced = vtepV6MacAnnotation;
    if (mac === undefined) problems.push({ node: name, reason: `annotation ${vtepV6MacAnnotation} ${JSON.stringify(annotated.slice(0, 60))} is not a unicast MAC; ${publishes ? 'its IPv6 pods go over the first device' : 'using one derived from its IPv6 address'}` });
  } else if (ann[vtepMacAnnotation] === undefined) {
    const data = flannelBackendData(node, flannelAnnotations.backendV6Data);
    if (data && 'bad' in data) problems.push({ node: name, reason: `${data.bad}; ${publishes ? 'its IPv6 pods go over the first device' : 'using a MAC derived from its IPv6 address'}` });
    else if (data) {
      if (data.vni !== undefined && data.vni !== vni) {
        problems.push({ node: name, reason: `its Flannel backend-v6-data names VNI ${data.vni}, not this overlay's ${vni} (--vni): its IPv6 pods go over the first device` });
        return undefined;
      }
      mac = data.mac;
      announced = flannelAnnotations.backendV6Data;
    }
  }
  if (mac === undefined && publishes) return undefined;
  const ip = underlayAddress(node, 'peer', 6).ip;
  if (ip === undefined) {
    if (announced) problems.push({ node: name, reason: `announces an IPv6 VXLAN device (${announced}) but no IPv6 address to reach it at; its IPv6 pods go over the first device` });
    return undefined;
  }
  const unusable = unusableUnderlay(ip);
  if (unusable) {
    problems.push({ node: name, reason: `its IPv6 underlay address ${ip} ${unusable}; its IPv6 pods go over the first device` });
    return undefined;
  }
  mac ??= derivedMac(ip);
  if (taken.ips.has(ip)) {
    problems.push({ node: name, reason: `its IPv6 underlay address ${ip} is also node ${taken.ips.get(ip)}'s; its IPv6 pods go over the first device` });
    return undefined;
  }
  if (taken.macs.has(mac)) {
    problems.push({ node: name, reason: `its IPv6 VTEP MAC ${mac} is also node ${taken.macs.get(mac)}'s; its IPv6 pods go over the first device` });
    return undefined;
  }
  taken.ips.set(ip, name);
  taken.macs.set(mac, name);
  return { underlayIP: ip, vtepMAC: mac };
}

/** A plan cut in two: the first device's, and the IPv6 device's when there is one. */
export interface DevicePlans {
  main: OverlayPlan;
  v6?: OverlayPlan;
}

const split = new WeakMap<OverlayPlan, DevicePlans>();

/**
 * The plan of each device: the first one's without the IPv6 pod networks that go over the IPv6 device, and the IPv6
 * device's with only those (each remote reached at its IPv6 address and IPv6 device's MAC). Memoised per plan.
 */
export function devicePlans(plan: OverlayPlan): DevicePlans {
  let out = split.get(plan);
  if (out) return out;
  if (!plan.device6) out = { main: plan };
  else {
    const main: OverlayPlan = { ...plan, remotes: plan.remotes.map((r) => (r.vxlan6 ? withoutV6(r) : r)) };
    const remotes = plan.remotes.flatMap((r): Remote[] => (r.vxlan6 && r.vtep6 && r.podCIDR6 ? [{ node: r.node, underlayIP: r.vxlan6.underlayIP, vtepMAC: r.vxlan6.vtepMAC, vtep6: r.vtep6, podCIDR6: r.podCIDR6 }] : []));
    out = { main, v6: { device: plan.device6, remotes, problems: [], podCIDRs: [], ownPodCIDRs: [], nodes: plan.nodes } };
  }
  split.set(plan, out);
  return out;
}

function withoutV6(r: Remote): Remote {
  const { vtep6: _v, podCIDR6: _c, direct6: _d, vxlan6: _x, ...rest } = r;
  return rest;
}

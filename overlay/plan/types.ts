// The overlay's desired state (what the planner computes from the Nodes) and its view of the kernel (what the
// differ compares it with). Addresses are canonical text, MACs lower-case, CIDRs with host bits cleared.
import type { LinkState } from '../kernel/types.ts';

/** What the planner is told besides the Nodes. */
export interface OverlayOptions {
  /** This node's name. */
  nodeName: string;
  /** The VXLAN device's name. */
  device: string;
  vni: number;
  /** UDP destination port. */
  port: number;
  /** The device's MTU; default the underlay interface's MTU less the VXLAN overhead. */
  mtu?: number;
  /**
   * --iface, as Flannel's: interface names or IP addresses, tried in order; the first that is here with a usable
   * address is the underlay. Default (with no --iface-regex either) the interface holding the node's address.
   */
  ifaces?: readonly string[];
  /** When no `ifaces` fits: regexes tried in order, each against the interfaces' addresses, then their names (Flannel's --iface-regex). */
  ifaceRegex?: readonly RegExp[];
  /**
   * When neither `ifaces` nor `ifaceRegex` fits: the interface, and source address, of the kernel's route to this
   * address (Flannel's --iface-can-reach, `ip route get ADDR`); the host view carries the route (HostView.reach).
   */
  ifaceCanReach?: string;
  /**
   * --cluster-cidr: a remote podCIDR of a family listed here must lie inside one of them, or the node is left out.
   */
  clusterCIDRs?: readonly string[];
  /**
   * True in kubernetes mode, where this agent publishes its own `netplane.io/public-ip`: that annotation is then
   * an output, and this node's underlay address comes from --iface or status.addresses.
   */
  publishes?: boolean;
  /**
   * --public-ip (4) and --public-ipv6 (6), Flannel's: the address of that family other nodes reach this one at,
   * announced in place of the VXLAN source (Flannel's public-ip-overwrite annotation still wins, as in Flannel).
   * Without --iface, --iface-regex or --iface-can-reach, the one of the underlay's family chooses the underlay when an
   * interface here holds it.
   */
  publicIP?: { 4?: string; 6?: string };
  /**
   * --direct-routing, Flannel's VXLAN DirectRouting: a remote whose address of a pod family lies in a network of
   * this node's underlay interface gets a plain route to its podCIDR of that family via that address, instead of
   * VXLAN.
   */
  directRouting?: boolean;
  /**
   * The second VXLAN device, over IPv6, as Flannel's `flannel-v6.<VNI>`: `name` is read (and removed when not
   * planned); with `auto`, it is planned when this node has an IPv6 podCIDR and its IPv4 underlay interface a global
   * IPv6 address, and carries the IPv6 pods of the nodes that announce such a device (--ipv6-device).
   */
  ipv6Device?: { name: string; auto: boolean };
}

/** The host's interfaces and addresses, read from the kernel, for finding the underlay. */
export interface HostView {
  links: readonly LinkState[];
  /** `dad` marks an IPv6 address still under, or failed by, duplicate address detection: never a VXLAN source. */
  addresses: ReadonlyArray<{ index: number; cidr: string; dad?: 'tentative' | 'dadfailed' }>;
  /** With --iface-can-reach: the kernel's route to that address, its interface and source (`index` absent: no route). */
  reach?: { ip: string; index?: number; src?: string };
}

/** The VXLAN device as it should be. */
export interface DeviceSpec {
  name: string;
  vni: number;
  port: number;
  /** This node's underlay IP (the VXLAN source address). */
  local: string;
  underlayIndex: number;
  /** The underlay interface's name, for logs. */
  underlay: string;
  mtu: number;
  mac: string;
  /** The VTEP addresses on the device, one per pod network family: IPv4 as /32, IPv6 as /128. */
  addresses: string[];
}

/** Another node, as this node programs it. */
export interface Remote {
  node: string;
  underlayIP: string;
  vtepMAC: string;
  vtep4?: string;
  podCIDR4?: string;
  vtep6?: string;
  podCIDR6?: string;
  /** With --direct-routing: the remote's IPv4 address on this node's underlay network, the gateway of a direct route to podCIDR4 (no VXLAN for it). */
  direct4?: string;
  /** With --direct-routing: the remote's IPv6 address on this node's underlay network, the gateway of a direct route to podCIDR6. */
  direct6?: string;
  /** With a second (IPv6) device: podCIDR6 is reached over it, through this VTEP (the remote's IPv6 address and its IPv6 device's MAC). */
  vxlan6?: { underlayIP: string; vtepMAC: string };
}

/** Why a node is left out (or only partly used): one sentence naming the node, the value and the rule. */
export interface Problem {
  node: string;
  reason: string;
}

/**
 * What this node announces on its Node in kubernetes mode: its VTEP MAC, the address other nodes send its VXLAN
 * packets to (`ip`: Flannel's public-ip-overwrite of the underlay's family when set, else the VXLAN source
 * address), and the address of each family for Flannel's annotations (`ip4`, `ip6`: the underlay's family and
 * every pod family that has one).
 */
export interface SelfVtep {
  mac: string;
  ip: string;
  ip4?: string;
  ip6?: string;
  /** Sentences about what was not used (a bad overwrite), for the log. */
  notes?: string[];
  /** The IPv6 device's VTEP: its MAC and the IPv6 address it is reached at (public-ipv6-overwrite, else its source address). */
  v6?: { mac: string; ip: string };
  /** Sentences that matter only to Flannel nodes (a pod family without an address), for the log with --flannel-annotations. */
  flannelNotes?: string[];
}

/** The desired overlay of this node. */
export interface OverlayPlan {
  /** Undefined while this node cannot have a device (no podCIDR yet, no underlay address...): nothing is changed. */
  device?: DeviceSpec;
  /** The second VXLAN device, over IPv6 (--ipv6-device auto), when this node can have one; only with `device`. */
  device6?: DeviceSpec;
  /** What this node announces, with its device. */
  self?: SelfVtep;
  remotes: Remote[];
  problems: Problem[];
  /**
   * The podCIDRs of this node and of the remotes (canonical, sorted; nodes left out do not count): the cluster's pod
   * networks when --cluster-cidr is not given.
   */
  podCIDRs: string[];
  /** This node's own podCIDRs (canonical, one per family), with `device`: traffic to them is never masqueraded. */
  ownPodCIDRs: string[];
  /** Nodes in the view, usable or not, this node included. */
  nodes: number;
}

/** The device and the entries on it, as the kernel holds them (read at a full sync, then kept up to date). */
export interface DeviceView {
  link?: LinkState;
  /** Addresses on the device (`ip/len`), IPv6 link-local ones left out. */
  addresses: Set<string>;
  /** Neighbour IP → MAC and whether the entry is permanent. */
  neighbours: Map<string, { mac: string; permanent: boolean }>;
  /** FDB entries by `mac dst`. */
  fdb: Map<string, { mac: string; dst: string }>;
  /**
   * Routes through the device that have a gateway, by destination; one of another metric than the default (which
   * netplane's have) by `dst metric N`, with its metric.
   */
  routes: Map<string, { gateway: string; onlink: boolean; metric?: number }>;
  /**
   * netplane's direct routes (--direct-routing), by destination: main-table routes of its own route protocol, on
   * any device. They are not on the VXLAN device, so they outlive it.
   */
  direct: Map<string, { gateway: string; index: number }>;
}

/** An empty view: no device, no direct routes. */
export function emptyView(): DeviceView {
  return { addresses: new Set(), neighbours: new Map(), fdb: new Map(), routes: new Map(), direct: new Map() };
}

/** One change to the kernel; every entry op but a direct route's is on the overlay's device. */
export type OverlayOp =
  | { kind: 'link'; op: 'delete' }
  | { kind: 'link'; op: 'create'; spec: DeviceSpec }
  | { kind: 'link'; op: 'set'; change: { mtu?: number; mac?: string; up?: boolean } }
  | { kind: 'address'; op: 'add' | 'delete'; cidr: string }
  | { kind: 'neighbour'; op: 'replace' | 'delete'; ip: string; mac: string }
  | { kind: 'fdb'; op: 'replace' | 'delete'; mac: string; dst: string }
  | { kind: 'route'; op: 'add' | 'delete'; dst: string; gateway: string; onlink: boolean; metric?: number }
  /** A direct route (netplane's route protocol) through interface `index` (`dev` its name, for logs). */
  | { kind: 'direct'; op: 'add' | 'delete'; dst: string; gateway: string; index: number; dev: string };

/**
 * The difference to apply, in phases run one after the other. Operations inside a phase are independent and
 * may be sent together: link changes; address additions and route deletions (VXLAN and direct); address deletions
 * (after the additions, so the device is never left without an IPv4 address in between); neighbour and FDB changes;
 * route additions (last, so a route never leads to a VTEP whose neighbour and FDB entries are missing, and a
 * node switched between VXLAN and a direct route has its old route gone before the new one is added).
 */
export interface OverlayChanges {
  phases: OverlayOp[][];
}

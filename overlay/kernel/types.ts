// The contract between the overlay's planner/agent (overlay/plan/, overlay/agent.ts) and the kernel: what the
// agent reads and writes over rtnetlink. overlay/kernel/netlink.ts implements it with the `netlink` package;
// overlay/kernel/fake.ts implements it in memory (with dump()) for unit tests. Addresses are text (IPv4 dotted,
// IPv6 canonical), MACs lower-case `aa:bb:cc:dd:ee:ff`, CIDRs `a.b.c.d/len`.

/** A network interface as the kernel reports it. */
export interface LinkState {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'vxlan', 'veth', 'bridge'...; undefined for a plain device. */
  kind?: string;
  mac: string;
  mtu: number;
  up: boolean;
  /** The VXLAN attributes, when kind is 'vxlan'. */
  vxlan?: VxlanAttrs;
  /** IFLA_IFALIAS, when set. */
  alias?: string;
}

/** What makes a VXLAN device (IFLA_VXLAN_*). */
export interface VxlanAttrs {
  vni: number;
  /** UDP destination port. */
  port: number;
  /** Local (source) underlay IP. */
  local: string;
  /** Underlay interface index (IFLA_VXLAN_LINK). */
  underlayIndex: number;
  /** Off for netplane: entries are programmed, never learnt. */
  learning: boolean;
}

/** The VXLAN device to create. */
export interface VxlanSpec extends VxlanAttrs {
  name: string;
  mtu: number;
  mac: string;
}

/** An interface address. */
export interface AddressEntry {
  index: number;
  /** `ip/prefixLength`. */
  cidr: string;
  /**
   * Set only for an IPv6 address that cannot be used yet or at all (IFA_F_TENTATIVE, IFA_F_DADFAILED): `tentative`
   * while duplicate address detection runs, `dadfailed` when another host on the link has it. Read, never written.
   */
  dad?: 'tentative' | 'dadfailed';
}

/** A neighbour (ARP/NDP) entry on an interface. */
export interface NeighbourEntry {
  index: number;
  ip: string;
  mac: string;
  permanent: boolean;
}

/** A bridge forwarding entry of the VXLAN device (AF_BRIDGE, NTF_SELF): a MAC reached at a remote underlay IP. */
export interface FdbEntry {
  index: number;
  mac: string;
  /** NDA_DST: the remote VTEP's underlay IP. */
  dst: string;
  permanent: boolean;
  /**
   * A remote port, VNI or interface of the entry's own (NDA_PORT, NDA_VNI, NDA_IFINDEX, which the kernel gives only
   * when they differ from the device's), as `port 9999 vni 77`; netplane's entries have none.
   */
  extras?: string;
}

/** A route in the main table. */
export interface RouteEntry {
  /** `network/prefixLength`. */
  dst: string;
  gateway: string;
  index: number;
  onlink: boolean;
  /**
   * rtm_protocol. Absent means static (4), the protocol of the VXLAN device's routes: routes() and
   * routesByProtocol() give it only for another one, addRoute() uses it. deleteRoute() deletes only a route of the
   * protocol given, and of any protocol when it is absent.
   */
  protocol?: number;
  /**
   * RTA_PRIORITY (the metric): routes() gives it only when it is not the default (0 for IPv4, 1024 for IPv6);
   * deleteRoute() deletes only a route of that metric when given.
   */
  metric?: number;
}

/**
 * The route protocol (rtm_protocol) of netplane's direct routes (--direct-routing): not one the kernel or iproute2
 * gives a meaning to, so a route of it on the underlay is netplane's (`ip route show proto 110`).
 */
export const directRouteProtocol = 110;

/**
 * The kernel operations the overlay needs, in the network namespace of the calling process. Every method rejects
 * with a KernelError (stable `code`, the errno name in `errno`) on failure; deletes of absent entries resolve.
 */
export interface OverlayKernel {
  /** The interface of that name, or undefined. */
  link(name: string): Promise<LinkState | undefined>;
  /** Every interface. */
  links(): Promise<LinkState[]>;
  /** Creates the VXLAN device (down); rejects if the name exists. */
  createVxlan(spec: VxlanSpec): Promise<LinkState>;
  /** Changes MTU, MAC or the up flag of an interface. */
  setLink(index: number, change: { mtu?: number; mac?: string; up?: boolean }): Promise<void>;
  deleteLink(index: number): Promise<void>;
  /** Addresses on every interface (or one). */
  addresses(index?: number): Promise<AddressEntry[]>;
  addAddress(entry: AddressEntry): Promise<void>;
  deleteAddress(entry: AddressEntry): Promise<void>;
  /** Neighbour entries of an interface (IPv4 and IPv6). */
  neighbours(index: number): Promise<NeighbourEntry[]>;
  /** Adds or replaces (NLM_F_CREATE|NLM_F_REPLACE) a permanent neighbour entry. */
  replaceNeighbour(entry: NeighbourEntry): Promise<void>;
  deleteNeighbour(entry: NeighbourEntry): Promise<void>;
  /** FDB entries of the VXLAN device. */
  fdb(index: number): Promise<FdbEntry[]>;
  /** Adds or replaces a permanent FDB entry (the kernel keys it by MAC). */
  replaceFdb(entry: FdbEntry): Promise<void>;
  deleteFdb(entry: FdbEntry): Promise<void>;
  /** Routes of the main table through an interface. */
  routes(index: number): Promise<RouteEntry[]>;
  /**
   * The route the kernel would send a packet to `ip` by (`ip route get`, RTM_GETROUTE): its output interface and
   * the source address it would choose; undefined when there is none (ENETUNREACH, EHOSTUNREACH).
   */
  routeTo(ip: string): Promise<{ index: number; src?: string } | undefined>;
  /** Unicast routes of the main table with that protocol and a gateway, through any interface, IPv4 and IPv6. */
  routesByProtocol(protocol: number): Promise<RouteEntry[]>;
  /**
   * Adds a route (main table, its protocol or static, scope universe, RTNH_F_ONLINK when onlink); EEXIST when one to
   * that destination is there already, on any device: a route is never taken over.
   */
  addRoute(entry: RouteEntry): Promise<void>;
  /** Deletes the route to `dst` only if it has that gateway and device (and protocol, when given). */
  deleteRoute(entry: RouteEntry): Promise<void>;
  close(): void;
}

// OverlayKernel over rtnetlink with the `netlink` package: links (VXLAN link info encoded in vxlan.ts),
// addresses, neighbours, the VXLAN FDB (AF_BRIDGE neighbours) and main-table routes. Never runs a command.
import { AttrStream, rt } from 'netlink';
import { formatIp, formatMac, type Cidr } from './addr.ts';
import { ABSENT_ERRNOS, isKernelError, KernelError } from './errors.ts';
import { NLM_F, RtSocket } from './socket.ts';
import { requireCidr as cidr, requireIp as ip, requireMac } from './validate.ts';
import type { AddressEntry, FdbEntry, LinkState, NeighbourEntry, OverlayKernel, RouteEntry, VxlanSpec } from './types.ts';
import { decodeLinkInfo, encodeVxlanLinkInfo, hostU32, IFLA_INFO, nlattr, readU32 } from './vxlan.ts';

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
const RT_TABLE_MAIN = 254;
const RTPROT_KERNEL = 2;
const RTPROT_STATIC = 4;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;
// rtm_flags carries the nexthop flags of a single-path route in its low byte; the package knows only RTM_F_*.
const RTNH_F_ONLINK = 4;
const NUD_NOARP = 0x40;

/** OverlayKernel in the network namespace of this process; every failure is a KernelError. */
export class NetlinkKernel implements OverlayKernel {
  #writes: RtSocket;
  // Dumps get their own socket: a dump fills the receive buffer up to its limit, where it would crowd out ACKs.
  #dumps: RtSocket;

  private constructor(writes: RtSocket, dumps: RtSocket) {
    this.#writes = writes;
    this.#dumps = dumps;
  }

  /** Opens the rtnetlink sockets; throws KernelError when that is refused. */
  static open(): NetlinkKernel {
    const writes = new RtSocket();
    try {
      return new NetlinkKernel(writes, new RtSocket());
    } catch (e) {
      writes.close();
      throw e;
    }
  }

  /** The interface of that name (RTM_GETLINK by IFLA_IFNAME), or undefined. */
  async link(name: string): Promise<LinkState | undefined> {
    const op = `link ${name}`;
    // IFNAMSIZ: no interface has a longer name, and the kernel would answer ERANGE rather than ENODEV.
    if (Buffer.byteLength(name) > 15) return undefined;
    try {
      const reply = await this.#writes.request(rt.MessageType.GETLINK, format(rt.formatLinkMessage, { kind: 'link', data: {}, attrs: { ifname: name } }), { op });
      return reply.filter((m) => m.kind === 'link').map(linkState)[0];
    } catch (e) {
      if (isKernelError(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  /** Every interface, by index. */
  async links(): Promise<LinkState[]> {
    const reply = await this.#dumps.dump(rt.MessageType.GETLINK, format(rt.formatLinkMessage, { kind: 'link', data: {}, attrs: {} }), { op: 'links' });
    return reply.filter((m) => m.kind === 'link').map(linkState).sort((a, b) => a.index - b.index);
  }

  /** Creates the VXLAN device, down (NLM_F_CREATE|NLM_F_EXCL), and reads it back. */
  async createVxlan(spec: VxlanSpec): Promise<LinkState> {
    const op = `createVxlan ${spec.name}`;
    let linkinfo: Buffer;
    try {
      linkinfo = encodeVxlanLinkInfo(spec);
    } catch (e) {
      throw new KernelError(op, 'EINVAL', { cause: e, detail: (e as Error).message });
    }
    const attrs = { ifname: spec.name, mtu: spec.mtu, address: mac(op, spec.mac), linkinfo };
    await this.#writes.request(rt.MessageType.NEWLINK, format(rt.formatLinkMessage, { kind: 'link', data: {}, attrs }), { op, flags: NLM_F.CREATE | NLM_F.EXCL });
    const created = await this.link(spec.name);
    if (!created) throw new KernelError(op, 'ENODEV', { detail: 'created, then gone before it could be read back' });
    return created;
  }

  /**
   * Creates a device of a kind that needs no attributes of its own (dummy, bridge), down (NLM_F_CREATE|NLM_F_EXCL:
   * EEXIST when the name is taken; EOPNOTSUPP when the kernel has no such kind), gives it `alias` (IFLA_IFALIAS),
   * and reads it back.
   */
  async createLink(name: string, kind: 'dummy' | 'bridge', alias?: string): Promise<LinkState> {
    const op = `createLink ${name} ${kind}`;
    const linkinfo = nlattr(IFLA_INFO.KIND, Buffer.from(`${kind}\0`));
    await this.#writes.request(rt.MessageType.NEWLINK, format(rt.formatLinkMessage, { kind: 'link', data: {}, attrs: { ifname: name, linkinfo } }), { op, flags: NLM_F.CREATE | NLM_F.EXCL });
    const created = await this.link(name);
    if (!created) throw new KernelError(op, 'ENODEV', { detail: 'created, then gone before it could be read back' });
    if (alias === undefined) return created;
    await this.#writes.request(rt.MessageType.SETLINK, format(rt.formatLinkMessage, { kind: 'link', data: { index: created.index }, attrs: { ifalias: alias } }), { op: `${op} alias` });
    return { ...created, alias };
  }

  /** Changes MTU, MAC and/or the up flag in one RTM_SETLINK. */
  async setLink(index: number, change: { mtu?: number; mac?: string; up?: boolean }): Promise<void> {
    const op = `setLink ${index}`;
    const data: rt.Link = { index };
    if (change.up !== undefined) Object.assign(data, { flags: change.up ? { up: true } : {}, change: { up: true } });
    const attrs: { mtu?: number; address?: Buffer } = {};
    if (change.mtu !== undefined) attrs.mtu = change.mtu;
    if (change.mac !== undefined) attrs.address = mac(op, change.mac);
    await this.#writes.request(rt.MessageType.SETLINK, format(rt.formatLinkMessage, { kind: 'link', data, attrs }), { op });
  }

  /** Deletes an interface; an absent one is fine. */
  async deleteLink(index: number): Promise<void> {
    const op = `deleteLink ${index}`;
    await this.#delete(this.#writes.request(rt.MessageType.DELLINK, format(rt.formatLinkMessage, { kind: 'link', data: { index }, attrs: {} }), { op }));
  }

  /** IPv4 and IPv6 addresses on every interface (or one), including the kernel's IPv6 link-local ones. */
  async addresses(index?: number): Promise<AddressEntry[]> {
    const reply = await this.#dumps.dump(rt.MessageType.GETADDR, format(rt.formatAddressMessage, { kind: 'address', data: {}, attrs: {} }), { op: 'addresses' });
    const out: AddressEntry[] = [];
    for (const m of reply) {
      if (m.kind !== 'address' || (index !== undefined && m.data.index !== index)) continue;
      const ip = m.attrs.local ?? m.attrs.address;
      if (!ip || (ip.length !== 4 && ip.length !== 16)) continue;
      // IFA_FLAGS, when there, supersedes the header's 8-bit ifa_flags.
      const flags = m.attrs.flags ?? m.data.flags ?? {};
      const dad = flags.dadfailed ? 'dadfailed' : flags.tentative ? 'tentative' : undefined;
      out.push({ index: m.data.index ?? 0, cidr: `${formatIp(ip)}/${m.data.prefixlen ?? 0}`, ...(dad ? { dad } : {}) });
    }
    return out;
  }

  /** Adds an address (NLM_F_CREATE|NLM_F_EXCL: EEXIST when there); IPv6 ones skip duplicate address detection. */
  async addAddress(entry: AddressEntry): Promise<void> {
    const op = `addAddress ${entry.index} ${entry.cidr}`;
    await this.#writes.request(rt.MessageType.NEWADDR, addressMessage(op, entry), { op, flags: NLM_F.CREATE | NLM_F.EXCL });
  }

  /** Deletes an address (IP and prefix length must match); an absent one is fine. */
  async deleteAddress(entry: AddressEntry): Promise<void> {
    const op = `deleteAddress ${entry.index} ${entry.cidr}`;
    await this.#delete(this.#writes.request(rt.MessageType.DELADDR, addressMessage(op, entry), { op }));
  }

  /** ARP and NDP entries of an interface that have a MAC, leaving out the kernel's NOARP (multicast) ones. */
  async neighbours(index: number): Promise<NeighbourEntry[]> {
    // NDA_IFINDEX narrows the dump to the device.
    const request = format(rt.formatNeighborMessage, { kind: 'neighbor', data: {}, attrs: { ifindex: hostU32(index) } });
    const reply = await this.#dumps.dump(rt.MessageType.GETNEIGH, request, { op: `neighbours ${index}` });
    const out: NeighbourEntry[] = [];
    for (const m of reply) {
      if (m.kind !== 'neighbor' || m.data.ifindex !== index || (m.data.family !== AF_INET && m.data.family !== AF_INET6)) continue;
      const state = m.data.state ? rt.formatNeighborState(m.data.state) : 0;
      const { dst, lladdr } = m.attrs;
      if (state & NUD_NOARP || !dst || !lladdr || lladdr.length !== 6) continue;
      out.push({ index, ip: formatIp(dst), mac: formatMac(lladdr), permanent: m.data.state?.permanent === true });
    }
    return out;
  }

  /** Adds or replaces a permanent neighbour entry (NLM_F_CREATE|NLM_F_REPLACE). */
  async replaceNeighbour(entry: NeighbourEntry): Promise<void> {
    const op = `replaceNeighbour ${entry.index} ${entry.ip}`;
    const dst = ip(op, entry.ip);
    const data: rt.Neighbor = { family: family(dst), ifindex: entry.index, state: { permanent: true } };
    const request = format(rt.formatNeighborMessage, { kind: 'neighbor', data, attrs: { dst, lladdr: mac(op, entry.mac) } });
    await this.#writes.request(rt.MessageType.NEWNEIGH, request, { op, flags: NLM_F.CREATE | NLM_F.REPLACE });
  }

  /** Deletes the neighbour entry of (index, ip); an absent one is fine. */
  async deleteNeighbour(entry: NeighbourEntry): Promise<void> {
    const op = `deleteNeighbour ${entry.index} ${entry.ip}`;
    const dst = ip(op, entry.ip);
    const request = format(rt.formatNeighborMessage, { kind: 'neighbor', data: { family: family(dst), ifindex: entry.index }, attrs: { dst } });
    await this.#delete(this.#writes.request(rt.MessageType.DELNEIGH, request, { op }));
  }

  /** The FDB entries of a VXLAN device that have a remote (NDA_DST); the device's own multicast entries are left out. */
  async fdb(index: number): Promise<FdbEntry[]> {
    // As `bridge fdb show dev X` does: an ifinfomsg header with the device index makes the kernel dump only that
    // port (rtnl_fdb_dump's legacy request parsing); the first byte, the family, is AF_BRIDGE either way.
    const request = format(rt.formatLinkMessage, { kind: 'link', data: { family: AF_BRIDGE, index }, attrs: {} });
    const reply = await this.#dumps.dump(rt.MessageType.GETNEIGH, request, { op: `fdb ${index}` });
    const out: FdbEntry[] = [];
    for (const m of reply) {
      if (m.kind !== 'neighbor' || m.data.family !== AF_BRIDGE || m.data.ifindex !== index) continue;
      const { dst, lladdr } = m.attrs;
      if (!dst || !lladdr || lladdr.length !== 6 || (dst.length !== 4 && dst.length !== 16)) continue;
      const entry: FdbEntry = { index, mac: formatMac(lladdr), dst: formatIp(dst), permanent: m.data.state?.permanent === true };
      const extras = fdbExtras(m.attrs);
      if (extras !== '') entry.extras = extras;
      out.push(entry);
    }
    return out;
  }

  /** Adds or replaces the permanent FDB entry of the MAC (AF_BRIDGE, NTF_SELF, NLM_F_CREATE|NLM_F_REPLACE). */
  async replaceFdb(entry: FdbEntry): Promise<void> {
    const op = `replaceFdb ${entry.index} ${entry.mac}`;
    const request = fdbMessage(op, entry, { permanent: true });
    await this.#writes.request(rt.MessageType.NEWNEIGH, request, { op, flags: NLM_F.CREATE | NLM_F.REPLACE });
  }

  /** Deletes the FDB entry of the MAC if its remote is `dst`; an absent one (or another dst) is fine. */
  async deleteFdb(entry: FdbEntry): Promise<void> {
    const op = `deleteFdb ${entry.index} ${entry.mac}`;
    await this.#delete(this.#writes.request(rt.MessageType.DELNEIGH, fdbMessage(op, entry, {}), { op }));
  }

  /**
   * Unicast routes of the main table whose output device is `index`, IPv4 and IPv6, except the kernel's own
   * (prefix routes of addresses, proto kernel); a route without a gateway has gateway ''.
   */
  async routes(index: number): Promise<RouteEntry[]> {
    const request = format(rt.formatRouteMessage, { kind: 'route', data: { table: RT_TABLE_MAIN }, attrs: {} });
    const reply = await this.#dumps.dump(rt.MessageType.GETROUTE, request, { op: `routes ${index}` });
    const out: RouteEntry[] = [];
    for (const m of reply) {
      if (m.kind !== 'route' || m.attrs.oif !== index || (m.attrs.table ?? m.data.table) !== RT_TABLE_MAIN) continue;
      if (protocolNumber(m.data.protocol) === RTPROT_KERNEL || typeNumber(m.data.type) !== RTN_UNICAST) continue;
      out.push(routeEntry(m, index));
    }
    return out;
  }

  /** The output interface and source address of the kernel's route to `to` (RTM_GETROUTE with RTA_DST); undefined when unreachable. */
  async routeTo(to: string): Promise<{ index: number; src?: string } | undefined> {
    const op = `routeTo ${to}`;
    const dst = ip(op, to);
    const request = format(rt.formatRouteMessage, { kind: 'route', data: { family: family(dst), dstLen: dst.length * 8 }, attrs: { dst } });
    try {
      const reply = await this.#writes.request(rt.MessageType.GETROUTE, request, { op });
      const m = reply.find((r) => r.kind === 'route');
      if (m?.kind !== 'route' || m.attrs.oif === undefined) return undefined;
      return { index: m.attrs.oif, ...(m.attrs.prefsrc ? { src: formatIp(m.attrs.prefsrc) } : {}) };
    } catch (e) {
      // No route (ENETUNREACH), an unreachable or prohibit route (EHOSTUNREACH, EACCES), a blackhole route (EINVAL,
      // as `ip route get` shows it; the request itself is always well formed): nothing reaches it.
      if (isKernelError(e, 'ENETUNREACH') || isKernelError(e, 'EHOSTUNREACH') || isKernelError(e, 'EACCES') || isKernelError(e, 'EINVAL')) return undefined;
      throw e;
    }
  }

  /** Unicast routes of the main table of that protocol with a single gateway, through any interface. */
  async routesByProtocol(protocol: number): Promise<RouteEntry[]> {
    const request = format(rt.formatRouteMessage, { kind: 'route', data: { table: RT_TABLE_MAIN }, attrs: {} });
    const reply = await this.#dumps.dump(rt.MessageType.GETROUTE, request, { op: `routesByProtocol ${protocol}` });
    const out: RouteEntry[] = [];
    for (const m of reply) {
      if (m.kind !== 'route' || (m.attrs.table ?? m.data.table) !== RT_TABLE_MAIN || protocolNumber(m.data.protocol) !== protocol) continue;
      // A multipath route (no RTA_OIF) is not one netplane makes.
      if (typeNumber(m.data.type) !== RTN_UNICAST || m.attrs.oif === undefined || !m.attrs.gateway) continue;
      out.push(routeEntry(m, m.attrs.oif));
    }
    return out;
  }

  /**
   * Adds the route (main table, its protocol else static, scope universe, RTNH_F_ONLINK when onlink) with NLM_F_CREATE|NLM_F_EXCL:
   * EEXIST when the table holds a route of that destination (and, IPv6, metric) already, whatever its device or
   * protocol. Never NLM_F_REPLACE: that would take over a route netplane did not make, such as a connected one.
   */
  async addRoute(entry: RouteEntry): Promise<void> {
    const op = `addRoute ${entry.dst}`;
    const { dst, gateway } = routeAddrs(op, entry);
    const data: rt.Route = {
      family: family(dst.ip), dstLen: dst.prefixLength, table: RT_TABLE_MAIN, protocol: entry.protocol ?? RTPROT_STATIC, scope: RT_SCOPE_UNIVERSE, type: RTN_UNICAST,
      flags: { __unknown: entry.onlink ? RTNH_F_ONLINK : 0 },
    };
    const request = format(rt.formatRouteMessage, { kind: 'route', data, attrs: { dst: dst.ip, gateway, oif: entry.index } });
    await this.#writes.request(rt.MessageType.NEWROUTE, request, { op, flags: NLM_F.CREATE | NLM_F.EXCL });
  }

  /**
   * Deletes the route to `dst` through that gateway and device, of the entry's protocol or, without one, of any;
   * an absent one is fine. The kernel matches the device, gateway and a non-zero protocol too (fib_table_delete,
   * ip6_route_del), so a route of the same destination on another device, or another protocol, stays.
   */
  async deleteRoute(entry: RouteEntry): Promise<void> {
    const op = `deleteRoute ${entry.dst}`;
    const { dst, gateway } = routeAddrs(op, entry);
    // Scope NOWHERE and protocol 0 match any route of that destination, gateway and device (fib_table_delete).
    const data: rt.Route = { family: family(dst.ip), dstLen: dst.prefixLength, table: RT_TABLE_MAIN, scope: RT_SCOPE_NOWHERE, type: RTN_UNICAST };
    if (entry.protocol !== undefined) data.protocol = entry.protocol;
    const request = format(rt.formatRouteMessage, { kind: 'route', data, attrs: { dst: dst.ip, gateway, oif: entry.index, ...(entry.metric !== undefined ? { priority: entry.metric } : {}) } });
    await this.#delete(this.#writes.request(rt.MessageType.DELROUTE, request, { op }));
  }

  /** Closes the sockets. */
  close(): void {
    this.#writes.close();
    this.#dumps.close();
  }

  async #delete(request: Promise<unknown>): Promise<void> {
    try {
      await request;
    } catch (e) {
      if (!(isKernelError(e) && ABSENT_ERRNOS.has(e.errno))) throw e;
    }
  }
}

function format<M>(fn: (message: M, out: AttrStream) => void, message: M): Uint8Array[] {
  const out = new AttrStream();
  fn(message, out);
  return out.bufs;
}

function linkState(m: rt.Message): LinkState {
  if (m.kind !== 'link') throw new TypeError(`expected a link message, got ${m.kind}`);
  const info = decodeLinkInfo(m.attrs.linkinfo);
  const state: LinkState = {
    index: m.data.index ?? 0, name: m.attrs.ifname ?? '', mac: m.attrs.address ? formatMac(m.attrs.address) : '', mtu: m.attrs.mtu ?? 0, up: m.data.flags?.up === true,
  };
  if (info.kind !== undefined) state.kind = info.kind;
  if (info.vxlan) state.vxlan = info.vxlan;
  if (m.attrs.ifalias) state.alias = m.attrs.ifalias;
  return state;
}

/** A route message as a RouteEntry through `index`; the protocol only when it is not static. */
export function routeEntry(m: rt.Message, index: number): RouteEntry {
  if (m.kind !== 'route') throw new TypeError(`expected a route message, got ${m.kind}`);
  const family = m.data.family === AF_INET6 ? 16 : 4;
  const dst = m.attrs.dst ?? Buffer.alloc(family);
  const flags = m.data.flags ? rt.formatRouteFlags(m.data.flags) : 0;
  const protocol = protocolNumber(m.data.protocol) ?? 0;
  const entry: RouteEntry = { dst: `${formatIp(dst)}/${m.data.dstLen ?? 0}`, gateway: m.attrs.gateway ? formatIp(m.attrs.gateway) : '', index, onlink: (flags & RTNH_F_ONLINK) !== 0 };
  if (protocol !== RTPROT_STATIC) entry.protocol = protocol;
  const metric = m.attrs.priority ?? 0;
  if (metric !== (family === 16 ? 1024 : 0)) entry.metric = metric;
  return entry;
}

function addressMessage(op: string, entry: AddressEntry): Uint8Array[] {
  const c = cidr(op, entry.cidr);
  const data: rt.Address = { family: family(c.ip), prefixlen: c.prefixLength, index: entry.index };
  // Duplicate address detection means nothing on a VXLAN device whose neighbours are programmed.
  if (c.ip.length === 16) data.flags = { nodad: true };
  return format(rt.formatAddressMessage, { kind: 'address', data, attrs: { local: c.ip, address: c.ip } });
}

function fdbMessage(op: string, entry: FdbEntry, state: rt.NeighborState): Uint8Array[] {
  const dst = ip(op, entry.dst);
  const data: rt.Neighbor = { family: AF_BRIDGE, ifindex: entry.index, state, flags: { self: true } };
  return format(rt.formatNeighborMessage, { kind: 'neighbor', data, attrs: { lladdr: mac(op, entry.mac), dst } });
}

function routeAddrs(op: string, entry: RouteEntry): { dst: Cidr; gateway: Buffer } {
  const dst = cidr(op, entry.dst);
  const gateway = ip(op, entry.gateway);
  if (gateway.length !== dst.ip.length) throw new KernelError(op, 'EINVAL', { detail: `gateway ${entry.gateway} is not of the family of ${entry.dst}` });
  return { dst, gateway };
}

function family(ip: Buffer): number {
  return ip.length === 4 ? AF_INET : AF_INET6;
}

/**
 * What an FDB entry carries beyond MAC and dst: NDA_PORT (big-endian u16), NDA_VNI and NDA_IFINDEX (u32), present
 * only when they differ from the device's own; '' when none.
 */
export function fdbExtras(attrs: rt.NeighborAttrs): string {
  const parts: string[] = [];
  if (attrs.port && attrs.port.length >= 2) parts.push(`port ${attrs.port.readUInt16BE(0)}`);
  if (attrs.vni && attrs.vni.length >= 4) parts.push(`vni ${readU32(attrs.vni)}`);
  if (attrs.ifindex && attrs.ifindex.length >= 4) parts.push(`via if${readU32(attrs.ifindex)}`);
  return parts.join(' ');
}

export function protocolNumber(p: rt.Route['protocol']): number | undefined {
  return typeof p === 'string' ? rt.RouteProtocol[p] : p;
}

export function typeNumber(t: rt.Route['type']): number | undefined {
  return typeof t === 'string' ? rt.RouteType[t] : t;
}

/** A MAC argument checked as the kernel would. */
const mac = requireMac;

// An in-memory OverlayKernel for unit tests of the agent. It keys entries the way the kernel does and answers with
// the errno the kernel gives (each rule below was checked against Linux 6.x), so that code which works against the
// fake works against the host: the checks are in test/overlay/kernel/.
import { canonicalIp, contains, formatIp, formatMac, hasHostBits, parseCidr, parseIp, parseMac, type Cidr } from './addr.ts';
import { KernelError } from './errors.ts';
import { requireCidr as cidr, requireIp as ip, requireMac } from './validate.ts';
import type { AddressEntry, FdbEntry, LinkState, NeighbourEntry, OverlayKernel, RouteEntry, VxlanSpec } from './types.ts';

/** The name of an OverlayKernel method that can be made to fail (see FakeKernel.failNext). */
export type KernelMethod = Exclude<keyof OverlayKernel, 'close'>;

/** A device that exists before the test starts: an underlay NIC, `lo`... */
export interface FakeDevice {
  name: string;
  /** 'veth', 'bridge'...; undefined for a plain device. */
  kind?: string;
  mac?: string;
  mtu?: number;
  up?: boolean;
  /** `ip/prefixLength` each. */
  addresses?: string[];
}

/** An OverlayKernel in memory, with `dump()` for comparing state as text and `failNext()` for retries. */
export class FakeKernel implements OverlayKernel {
  /** Every call, in order, by method name. */
  readonly calls: KernelMethod[] = [];
  #links = new Map<number, LinkState>();
  #nextIndex = 1;
  // Keys follow the kernel: IPv4 addresses by (index, ip, length), IPv6 ones by (index, ip); neighbours by
  // (index, ip); VXLAN FDB entries by (index, MAC), one remote each when replaced; main-table routes by destination.
  #addresses = new Map<string, AddressEntry>();
  #neighbours = new Map<string, NeighbourEntry>();
  #fdb = new Map<string, FdbEntry>();
  #routes = new Map<string, RouteEntry>();
  #failures = new Map<KernelMethod, string[]>();

  /** A host with these devices (none by default: not even `lo`). */
  constructor(devices: readonly FakeDevice[] = []) {
    for (const d of devices) this.addDevice(d);
  }

  /** Adds a device as if it had been there before; throws KernelError on a taken name or bad text. */
  addDevice(device: FakeDevice): LinkState {
    const op = `addDevice ${device.name}`;
    if (this.#byName(device.name)) throw new KernelError(op, 'EEXIST');
    const index = this.#nextIndex++;
    const fallback = formatMac([0x02, 0, 0, 0, (index >> 8) & 0xff, index & 0xff]);
    const link: LinkState = { index, name: device.name, mac: mac(op, device.mac ?? fallback), mtu: device.mtu ?? 1500, up: false };
    if (device.kind !== undefined) link.kind = device.kind;
    this.#links.set(link.index, link);
    if (device.up) this.#setUp(link, true);
    for (const a of device.addresses ?? []) this.#addAddress(op, { index: link.index, cidr: a });
    return structuredClone(link);
  }

  /** Makes the next `times` calls of `method` reject with KernelError `errno` before changing anything. */
  failNext(method: KernelMethod, errno = 'EIO', times = 1): void {
    const queue = this.#failures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(errno);
    this.#failures.set(method, queue);
  }

  /** The whole state as sorted lines (`link`, `addr`, `neigh`, `fdb`, `route`), devices by name. */
  dump(): string {
    const name = (index: number): string => this.#links.get(index)?.name ?? `if${index}`;
    const lines: string[] = [];
    for (const l of this.#links.values()) {
      const v = l.vxlan;
      const vx = v ? ` vni ${v.vni} port ${v.port} local ${v.local} dev ${name(v.underlayIndex)} ${v.learning ? 'learning' : 'nolearning'}` : '';
      lines.push(`link ${l.name}${l.kind ? ` ${l.kind}` : ''}${vx} mtu ${l.mtu} ${l.up ? 'up' : 'down'} mac ${l.mac}`);
    }
    for (const a of this.#addresses.values()) lines.push(`addr ${name(a.index)} ${a.cidr}`);
    for (const n of this.#neighbours.values()) lines.push(`neigh ${name(n.index)} ${n.ip} lladdr ${n.mac} permanent`);
    for (const f of this.#fdb.values()) lines.push(`fdb ${name(f.index)} ${f.mac} dst ${f.dst} self permanent`);
    for (const r of this.#routes.values()) lines.push(`route ${r.dst} via ${r.gateway} dev ${name(r.index)}${r.onlink ? ' onlink' : ''}${r.protocol !== undefined ? ` proto ${r.protocol}` : ''}`);
    return lines.sort().join('\n');
  }

  /** The interface of that name, or undefined. */
  async link(name: string): Promise<LinkState | undefined> {
    this.#enter('link', `link ${name}`);
    const l = this.#byName(name);
    return l && structuredClone(l);
  }

  /** Every interface, by index. */
  async links(): Promise<LinkState[]> {
    this.#enter('links', 'links');
    return [...this.#links.values()].sort((a, b) => a.index - b.index).map((l) => structuredClone(l));
  }

  /**
   * Creates the VXLAN device (down), its MTU lowered to what the underlay carries. EEXIST for a taken name or a
   * VNI+port+family in use, ENODEV, ERANGE (VNI, name length), EINVAL, EADDRNOTAVAIL (not a unicast MAC).
   */
  async createVxlan(spec: VxlanSpec): Promise<LinkState> {
    const op = `createVxlan ${spec.name}`;
    this.#enter('createVxlan', op);
    // IFLA_IFNAME's policy allows 15 bytes (ERANGE past that); dev_valid_name refuses '/', ':', spaces, '.', '..'.
    if (Buffer.byteLength(spec.name) > 15) throw new KernelError(op, 'ERANGE', { detail: `interface name "${spec.name}" is longer than 15 bytes` });
    if (!/^[^/:\s]+$/.test(spec.name) || spec.name === '.' || spec.name === '..') throw new KernelError(op, 'EINVAL', { detail: `bad interface name "${spec.name}"` });
    const local = ip(op, spec.local);
    const address = unicastMac(op, spec.mac);
    if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni >= 1 << 24) throw new KernelError(op, 'ERANGE', { detail: `VNI ${spec.vni} is not within 0..16777215` });
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new KernelError(op, 'EINVAL', { detail: `port ${spec.port}` });
    if (this.#byName(spec.name)) throw new KernelError(op, 'EEXIST');
    const lower = this.#links.get(spec.underlayIndex);
    if (!lower) throw new KernelError(op, 'ENODEV', { detail: `no underlay interface ${spec.underlayIndex}` });
    // At creation the kernel lowers an MTU the underlay cannot carry to the most it can; setLink refuses one.
    const mtu = Math.min(spec.mtu, vxlanMaxMtu(lower, local.length));
    if (!Number.isInteger(spec.mtu) || spec.mtu < 68) throw new KernelError(op, 'EINVAL', { detail: `MTU ${spec.mtu} is below 68` });
    const family = local.length;
    for (const other of this.#links.values()) {
      const v = other.vxlan;
      if (v && v.vni === spec.vni && v.port === spec.port && parseIp(v.local)?.length === family) {
        throw new KernelError(op, 'EEXIST', { detail: `VNI ${spec.vni} is in use by ${other.name}` });
      }
    }
    const link: LinkState = {
      index: this.#nextIndex++, name: spec.name, kind: 'vxlan', mac: address, mtu, up: false,
      vxlan: { vni: spec.vni, port: spec.port, local: formatIp(local), underlayIndex: spec.underlayIndex, learning: spec.learning },
    };
    this.#links.set(link.index, link);
    return structuredClone(link);
  }

  /** Changes MTU, MAC or the up flag; ENODEV, EINVAL (MTU out of range, index ≤ 0), EADDRNOTAVAIL (not a unicast MAC). */
  async setLink(index: number, change: { mtu?: number; mac?: string; up?: boolean }): Promise<void> {
    const op = `setLink ${index}`;
    this.#enter('setLink', op);
    if (!Number.isInteger(index) || index <= 0) throw new KernelError(op, 'EINVAL', { detail: `interface index ${index}` });
    const link = this.#mustLink(op, index);
    const address = change.mac === undefined ? undefined : unicastMac(op, change.mac);
    if (change.mtu !== undefined) {
      const lower = link.vxlan && this.#links.get(link.vxlan.underlayIndex);
      if (link.vxlan && lower) this.#checkVxlanMtu(op, change.mtu, lower, parseIp(link.vxlan.local)?.length ?? 4);
      else if (change.mtu < 68 || change.mtu > (link.name === 'lo' ? 65536 : 65535)) throw new KernelError(op, 'EINVAL', { detail: `MTU ${change.mtu}` });
      link.mtu = change.mtu;
    }
    if (address !== undefined && address !== link.mac) {
      link.mac = address;
      // NETDEV_CHANGEADDR: the kernel flushes the device's neighbours, permanent ones too.
      for (const [k, n] of this.#neighbours) if (n.index === index) this.#neighbours.delete(k);
    }
    if (change.up !== undefined) this.#setUp(link, change.up);
  }

  /** Deletes an interface with everything on it (VXLAN devices over it too, as the kernel does); absent is fine, index ≤ 0 is EINVAL. */
  async deleteLink(index: number): Promise<void> {
    this.#enter('deleteLink', `deleteLink ${index}`);
    // rtnl_dellink: no positive index and no name is EINVAL, not "absent".
    if (!Number.isInteger(index) || index <= 0) throw new KernelError(`deleteLink ${index}`, 'EINVAL', { detail: `interface index ${index}` });
    this.#removeLink(index);
  }

  /** Addresses on every interface (or one), in the order they were added. */
  async addresses(index?: number): Promise<AddressEntry[]> {
    this.#enter('addresses', `addresses ${index ?? ''}`.trim());
    return [...this.#addresses.values()].filter((a) => index === undefined || a.index === index).map((a) => ({ ...a }));
  }

  /** Adds an address; EEXIST when there (IPv6: the same IP with any length), ENODEV, EINVAL. */
  async addAddress(entry: AddressEntry): Promise<void> {
    const op = `addAddress ${entry.index} ${entry.cidr}`;
    this.#enter('addAddress', op);
    this.#addAddress(op, entry);
  }

  /**
   * Deletes an address (IP and length must match); absent is fine. When the device's last IPv4 address goes, so do
   * its IPv4 routes and ARP entries, permanent ones too (the kernel's fib_disable_ip).
   */
  async deleteAddress(entry: AddressEntry): Promise<void> {
    const op = `deleteAddress ${entry.index} ${entry.cidr}`;
    this.#enter('deleteAddress', op);
    const c = cidr(op, entry.cidr);
    const key = addressKey(entry.index, c);
    const found = this.#addresses.get(key);
    if (!found || parseCidr(found.cidr)?.prefixLength !== c.prefixLength) return;
    this.#addresses.delete(key);
    const v4 = (text: string) => parseIp(text.split('/')[0]!)?.length === 4;
    if (c.ip.length !== 4 || [...this.#addresses.values()].some((a) => a.index === entry.index && v4(a.cidr))) return;
    for (const [k, r] of this.#routes) if (r.index === entry.index && v4(r.dst)) this.#routes.delete(k);
    for (const [k, n] of this.#neighbours) if (n.index === entry.index && v4(n.ip)) this.#neighbours.delete(k);
  }

  /** Neighbour entries of an interface. */
  async neighbours(index: number): Promise<NeighbourEntry[]> {
    this.#enter('neighbours', `neighbours ${index}`);
    return [...this.#neighbours.values()].filter((n) => n.index === index).map((n) => ({ ...n }));
  }

  /** Adds or replaces a permanent entry keyed by (index, ip) (also on a down device); ENODEV, EINVAL. */
  async replaceNeighbour(entry: NeighbourEntry): Promise<void> {
    const op = `replaceNeighbour ${entry.index} ${entry.ip}`;
    this.#enter('replaceNeighbour', op);
    const address = formatIp(ip(op, entry.ip));
    const lladdr = mac(op, entry.mac);
    this.#mustLink(op, entry.index);
    this.#neighbours.set(`${entry.index} ${address}`, { index: entry.index, ip: address, mac: lladdr, permanent: true });
  }

  /** Deletes the entry of (index, ip) whatever its MAC; absent is fine. */
  async deleteNeighbour(entry: NeighbourEntry): Promise<void> {
    const op = `deleteNeighbour ${entry.index} ${entry.ip}`;
    this.#enter('deleteNeighbour', op);
    this.#neighbours.delete(`${entry.index} ${formatIp(ip(op, entry.ip))}`);
  }

  /** FDB entries (with a remote) of the VXLAN device. */
  async fdb(index: number): Promise<FdbEntry[]> {
    this.#enter('fdb', `fdb ${index}`);
    return [...this.#fdb.values()].filter((f) => f.index === index).map((f) => ({ ...f }));
  }

  /** Adds or replaces the permanent entry of (index, MAC); ENODEV, EAFNOSUPPORT (dst of another family), EINVAL. */
  async replaceFdb(entry: FdbEntry): Promise<void> {
    const op = `replaceFdb ${entry.index} ${entry.mac}`;
    this.#enter('replaceFdb', op);
    const lladdr = mac(op, entry.mac);
    const dst = ip(op, entry.dst);
    const link = this.#mustLink(op, entry.index);
    // On another device the kernel only adds the MAC to its unicast filter, and ignores dst: fdb() lists none.
    if (!link.vxlan) return;
    if (parseIp(link.vxlan.local)?.length !== dst.length) throw new KernelError(op, 'EAFNOSUPPORT', { detail: `dst ${entry.dst} is not of the family of local ${link.vxlan.local}` });
    this.#fdb.set(`${entry.index} ${lladdr}`, { index: entry.index, mac: lladdr, dst: formatIp(dst), permanent: true });
  }

  /** Deletes the entry of (index, MAC) if its remote is `dst`; absent (or another dst) is fine. */
  async deleteFdb(entry: FdbEntry): Promise<void> {
    const op = `deleteFdb ${entry.index} ${entry.mac}`;
    this.#enter('deleteFdb', op);
    const key = `${entry.index} ${mac(op, entry.mac)}`;
    if (this.#fdb.get(key)?.dst === formatIp(ip(op, entry.dst))) this.#fdb.delete(key);
  }

  /** Routes of the main table through an interface. */
  async routes(index: number): Promise<RouteEntry[]> {
    this.#enter('routes', `routes ${index}`);
    return [...this.#routes.values()].filter((r) => r.index === index).map((r) => ({ ...r }));
  }

  /**
   * The longest match among the networks of the addresses on up interfaces and the routes, as the kernel's lookup
   * finds it; the source is the interface's first address of that family (none tentative). Undefined when none.
   */
  async routeTo(to: string): Promise<{ index: number; src?: string } | undefined> {
    this.#enter('routeTo', `routeTo ${to}`);
    const dst = ip(`routeTo ${to}`, to);
    const up = (index: number) => this.#links.get(index)?.up === true;
    const nets = [...[...this.#addresses.values()].filter((a) => up(a.index)), ...[...this.#routes.values()].map((r) => ({ index: r.index, cidr: r.dst }))];
    let best: { index: number; len: number } | undefined;
    for (const n of nets) {
      const c = parseCidr(n.cidr);
      if (c && c.ip.length === dst.length && contains(c, dst) && (!best || c.prefixLength > best.len)) best = { index: n.index, len: c.prefixLength };
    }
    if (!best) return undefined;
    const index = best.index;
    const src = [...this.#addresses.values()].find((a) => a.index === index && a.dad === undefined && parseCidr(a.cidr)?.ip.length === dst.length);
    return { index, ...(src ? { src: src.cidr.split('/')[0]! } : {}) };
  }

  /** Routes of the main table of that protocol (static: 4), through any interface. */
  async routesByProtocol(protocol: number): Promise<RouteEntry[]> {
    this.#enter('routesByProtocol', `routesByProtocol ${protocol}`);
    return [...this.#routes.values()].filter((r) => (r.protocol ?? staticProtocol) === protocol).map((r) => ({ ...r }));
  }

  /**
   * Adds the route to `dst`. EEXIST when a route to `dst` is there (on any device; for IPv4 also the kernel's prefix
   * route of an address on an up device), ENETDOWN when the device is down, EINVAL for host bits in an IPv4 `dst`,
   * ENETUNREACH (IPv6: EHOSTUNREACH) without onlink for a gateway outside the device's prefixes, ENODEV, EINVAL for a protocol outside
   * 0..255. The route keeps its protocol (static when none is given).
   */
  async addRoute(entry: RouteEntry): Promise<void> {
    const op = `addRoute ${entry.dst}`;
    this.#enter('addRoute', op);
    const dst = cidr(op, entry.dst);
    const gateway = ip(op, entry.gateway);
    if (dst.ip.length === 4 && hasHostBits(dst)) throw new KernelError(op, 'EINVAL', { detail: 'invalid prefix for given prefix length' });
    if (gateway.length !== dst.ip.length) throw new KernelError(op, 'EINVAL', { detail: `gateway ${entry.gateway} is of another family` });
    // rtm_protocol is one byte: the netlink package refuses to encode anything else.
    if (entry.protocol !== undefined && !(Number.isInteger(entry.protocol) && entry.protocol >= 0 && entry.protocol <= 255)) throw new KernelError(op, 'EINVAL', { detail: `protocol ${entry.protocol}` });
    const link = this.#mustLink(op, entry.index);
    if (!link.up) throw new KernelError(op, 'ENETDOWN', { detail: `${link.name} is not up` });
    const linkLocal = gateway.length === 16 && gateway.readUInt16BE(0) >> 6 === 0xfe80 >> 6;
    // The kernel looks the gateway up through that device only ("Nexthop has invalid gateway": ENETUNREACH for
    // IPv4, EHOSTUNREACH for IPv6).
    if (!entry.onlink && !linkLocal && !this.#onLink(entry.index, gateway)) {
      throw new KernelError(op, gateway.length === 4 ? 'ENETUNREACH' : 'EHOSTUNREACH', { detail: `gateway ${entry.gateway} is not on ${link.name}` });
    }
    const key = `${formatIp(dst.ip)}/${dst.prefixLength}`;
    if (this.#routes.has(key) || this.#isPrefixRoute(dst)) throw new KernelError(op, 'EEXIST', { detail: `a route to ${key} exists` });
    const protocol = entry.protocol ?? staticProtocol;
    this.#routes.set(key, { dst: key, gateway: formatIp(gateway), index: entry.index, onlink: entry.onlink, ...(protocol !== staticProtocol ? { protocol } : {}) });
  }

  /** Deletes the route to `dst` if its gateway and device match, and its protocol when one is given; absent is fine. */
  async deleteRoute(entry: RouteEntry): Promise<void> {
    const op = `deleteRoute ${entry.dst}`;
    this.#enter('deleteRoute', op);
    const dst = cidr(op, entry.dst);
    const key = `${formatIp(dst.ip)}/${dst.prefixLength}`;
    const found = this.#routes.get(key);
    // Protocol 0 matches any route (fib_table_delete, ip6_route_del).
    const protocolMatches = !entry.protocol || (found?.protocol ?? staticProtocol) === entry.protocol;
    if (found && found.index === entry.index && found.gateway === canonicalIp(entry.gateway) && protocolMatches) this.#routes.delete(key);
  }

  /** Nothing to release. */
  close(): void {}

  #enter(method: KernelMethod, op: string): void {
    this.calls.push(method);
    const errno = this.#failures.get(method)?.shift();
    if (errno !== undefined) throw new KernelError(op, errno, { detail: 'injected by FakeKernel.failNext' });
  }

  #byName(name: string): LinkState | undefined {
    for (const l of this.#links.values()) if (l.name === name) return l;
    return undefined;
  }

  #mustLink(op: string, index: number): LinkState {
    const l = this.#links.get(index);
    if (!l) throw new KernelError(op, 'ENODEV', { detail: `no interface ${index}` });
    return l;
  }

  #checkVxlanMtu(op: string, mtu: number, lower: LinkState, family: number): void {
    const max = vxlanMaxMtu(lower, family);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > max) throw new KernelError(op, 'EINVAL', { detail: `MTU ${mtu} is not within 68..${max} (underlay ${lower.name} has ${lower.mtu})` });
  }

  #addAddress(op: string, entry: AddressEntry): void {
    const c = cidr(op, entry.cidr);
    this.#mustLink(op, entry.index);
    const key = addressKey(entry.index, c);
    if (this.#addresses.has(key)) throw new KernelError(op, 'EEXIST');
    this.#addresses.set(key, { index: entry.index, cidr: `${formatIp(c.ip)}/${c.prefixLength}` });
  }

  // An IPv4 address (shorter than /32) on an up device gives the main table its prefix route, proto kernel, metric
  // 0: the key an added route of that prefix clashes with. IPv6 prefix routes have metric 256, ours 1024: no clash.
  #isPrefixRoute(dst: Cidr): boolean {
    if (dst.ip.length !== 4) return false;
    for (const a of this.#addresses.values()) {
      const c = parseCidr(a.cidr);
      if (!c || c.ip.length !== 4 || c.prefixLength !== dst.prefixLength || c.prefixLength === 32 || !this.#links.get(a.index)?.up) continue;
      if (contains(dst, c.ip)) return true;
    }
    return false;
  }

  #onLink(index: number, gateway: Buffer): boolean {
    for (const a of this.#addresses.values()) {
      const c = a.index === index ? parseCidr(a.cidr) : undefined;
      if (c && contains(c, gateway)) return true;
    }
    return false;
  }

  // Up: IPv6 gives the device an EUI-64 link-local address. Down: the kernel flushes the device's neighbours
  // (permanent ones too), its IPv4 routes and, with net.ipv6.conf.*.keep_addr_on_down=0, its IPv6 addresses;
  // permanent VXLAN FDB entries stay.
  #setUp(link: LinkState, up: boolean): void {
    if (link.up === up) return;
    link.up = up;
    if (up) {
      if (link.name === 'lo') return;
      const m = parseMac(link.mac) ?? Buffer.alloc(6);
      const ll = Buffer.alloc(16);
      ll.writeUInt16BE(0xfe80, 0);
      m.copy(ll, 8, 0, 3);
      ll.writeUInt16BE(0xfffe, 11);
      m.copy(ll, 13, 3, 6);
      ll.writeUInt8(ll.readUInt8(8) ^ 0x02, 8); // EUI-64: the universal/local bit flipped
      this.#addresses.set(addressKey(link.index, { ip: ll, prefixLength: 64 }), { index: link.index, cidr: `${formatIp(ll)}/64` });
      return;
    }
    for (const [k, a] of this.#addresses) if (a.index === link.index && a.cidr.includes(':')) this.#addresses.delete(k);
    for (const [k, n] of this.#neighbours) if (n.index === link.index) this.#neighbours.delete(k);
    for (const [k, r] of this.#routes) if (r.index === link.index) this.#routes.delete(k);
  }

  #removeLink(index: number): void {
    if (!this.#links.delete(index)) return;
    for (const table of [this.#addresses, this.#neighbours, this.#fdb, this.#routes] as Map<string, { index: number }>[]) {
      for (const [k, e] of table) if (e.index === index) table.delete(k);
    }
    for (const l of [...this.#links.values()]) if (l.vxlan?.underlayIndex === index) this.#removeLink(l.index);
  }
}

/** RTPROT_STATIC, the protocol of a route added without one. */
const staticProtocol = 4;

// VXLAN adds 50 bytes over IPv4 (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14) and 70 over IPv6.
function vxlanMaxMtu(lower: LinkState, family: number): number {
  return Math.max(68, lower.mtu - (family === 16 ? 70 : 50));
}

function addressKey(index: number, c: Cidr): string {
  return c.ip.length === 4 ? `${index} ${formatIp(c.ip)}/${c.prefixLength}` : `${index} ${formatIp(c.ip)}`;
}




// The kernel refuses a multicast or all-zeros device address with EADDRNOTAVAIL.
function unicastMac(op: string, text: string): string {
  const m = mac(op, text);
  if ((parseInt(m.slice(0, 2), 16) & 1) === 1 || m === '00:00:00:00:00:00') throw new KernelError(op, 'EADDRNOTAVAIL', { detail: `${m} is not a unicast MAC` });
  return m;
}

/** A MAC argument checked as the kernel would. */
const mac = (op: string, text: string): string => formatMac(requireMac(op, text));

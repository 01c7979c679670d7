// The overlay differ: a plan against a view of the kernel → the operations that make the kernel match, and the
// bookkeeping that keeps the view current as operations succeed. Pure.
import { isIPv4 } from 'node:net';
import type { LinkState } from '../kernel/types.ts';
import { emptyView, type DeviceSpec, type DeviceView, type OverlayChanges, type OverlayOp, type OverlayPlan } from './types.ts';

/** The entries a plan wants on the device. */
export interface DesiredEntries {
  /** VTEP IP → VTEP MAC. */
  neighbours: Map<string, string>;
  /** VTEP MAC → underlay IP. */
  fdb: Map<string, string>;
  /** podCIDR → VTEP IP (onlink). */
  routes: Map<string, string>;
  /** podCIDR → the remote's address, for the direct routes through the underlay interface (--direct-routing). */
  direct: Map<string, string>;
}

/**
 * The neighbour, FDB and route entries of every remote in a plan; a pod family routed directly has a direct route
 * instead of a neighbour entry and a route, and a remote with no family left over VXLAN has no FDB entry.
 */
export function desiredEntries(plan: OverlayPlan): DesiredEntries {
  const out: DesiredEntries = { neighbours: new Map(), fdb: new Map(), routes: new Map(), direct: new Map() };
  for (const r of plan.remotes) {
    let vxlan = false;
    for (const [vtep, cidr, direct] of [[r.vtep4, r.podCIDR4, r.direct4], [r.vtep6, r.podCIDR6, r.direct6]] as const) {
      if (!vtep || !cidr) continue;
      if (direct) {
        out.direct.set(cidr, direct);
        continue;
      }
      vxlan = true;
      out.neighbours.set(vtep, r.vtepMAC);
      out.routes.set(cidr, vtep);
    }
    if (vxlan) out.fdb.set(r.vtepMAC, r.underlayIP);
  }
  return out;
}

/** True when an existing link is the VXLAN device the spec describes (else it must be made again). */
export function linkMatches(link: LinkState, d: DeviceSpec): boolean {
  const x = link.vxlan;
  return link.kind === 'vxlan' && !!x && x.vni === d.vni && x.port === d.port && x.local === d.local && x.underlayIndex === d.underlayIndex && !x.learning;
}

/**
 * How an existing VXLAN device differs from the spec in what only making it again changes (VNI, port, source
 * address, underlay interface, learning), as `what is → what should be` phrases; empty when it matches or is no
 * VXLAN device.
 */
export function vxlanMismatch(link: LinkState, d: DeviceSpec): string[] {
  const x = link.vxlan;
  if (link.kind !== 'vxlan' || !x) return [];
  return [
    ...(x.vni !== d.vni ? [`VNI ${x.vni} → ${d.vni}`] : []),
    ...(x.port !== d.port ? [`port ${x.port} → ${d.port}`] : []),
    ...(x.local !== d.local ? [`local ${x.local} → ${d.local}`] : []),
    ...(x.underlayIndex !== d.underlayIndex ? [`underlay if${x.underlayIndex} → ${d.underlay}`] : []),
    ...(x.learning ? ['learning → nolearning'] : []),
  ];
}

/**
 * What to change so that the kernel holds the plan. Without a device in the plan nothing changes (the last good
 * state stays). A device with other VXLAN attributes is deleted and made again, with every entry.
 */
export function diffOverlay(plan: OverlayPlan, view: DeviceView, keepStale = false): OverlayChanges {
  return { phases: diffSteps(plan, view, keepStale).filter((p) => p.length > 0) };
}

/** The phases of the OverlayChanges as diffOverlay orders them (none left out when empty), for one device. */
export type DiffSteps = [links: OverlayOp[], before: OverlayOp[], unaddress: OverlayOp[], entries: OverlayOp[], after: OverlayOp[]];

/**
 * diffOverlay's phases, always five (some empty), so that two devices' phases can be run side by side: a pod
 * network moving from one device to the other has its old route deleted (phase 2) before the new one is added (5).
 * With `keepStale` (the view of the cluster lacks what it could never read), entries the plan has no use for at all
 * stay — routes and direct routes to a destination no remote has, neighbour entries of an address no remote has,
 * FDB entries of a MAC no remote has: they may be a node the view cannot show — while those the plan wants
 * otherwise are still changed.
 */
export function diffSteps(plan: OverlayPlan, view: DeviceView, keepStale = false): DiffSteps {
  const d = plan.device;
  if (!d) return [[], [], [], [], []];
  const links: OverlayOp[] = [];
  const before: OverlayOp[] = [];
  const unaddress: OverlayOp[] = [];
  const entries: OverlayOp[] = [];
  const after: OverlayOp[] = [];
  let cur = view;
  if (!view.link || !linkMatches(view.link, d)) {
    if (view.link) links.push({ kind: 'link', op: 'delete' });
    links.push({ kind: 'link', op: 'create', spec: d }, { kind: 'link', op: 'set', change: { up: true } });
    // Direct routes are on the underlay: the device's going does not take them.
    cur = { ...emptyView(), direct: view.direct };
  } else {
    const change: { mtu?: number; mac?: string; up?: boolean } = {};
    if (view.link.mtu !== d.mtu) change.mtu = d.mtu;
    if (view.link.mac !== d.mac) change.mac = d.mac;
    if (!view.link.up) change.up = true;
    if (Object.keys(change).length > 0) links.push({ kind: 'link', op: 'set', change });
    // A new device MAC makes the kernel flush the device's neighbours, permanent ones too: they are added again.
    if (change.mac !== undefined) cur = { ...view, neighbours: new Map() };
  }
  // New addresses go on before old ones come off: when the last IPv4 address leaves a device, the kernel
  // (fib_disable_ip) removes every IPv4 route through it and every ARP entry on it, permanent ones too.
  for (const a of d.addresses) if (!cur.addresses.has(a)) before.push({ kind: 'address', op: 'add', cidr: a });
  for (const a of cur.addresses) if (!d.addresses.includes(a)) unaddress.push({ kind: 'address', op: 'delete', cidr: a });

  const want = desiredEntries(plan);
  // A route is only ever added (never replaced: a replace could take over a route of another device), so one of
  // ours that differs is deleted first. Deletes name the device and gateway: they touch only the device's routes.
  for (const [key, r] of cur.routes) {
    if (r.metric !== undefined) {
      // Another metric (added by hand, or by another tool): never the route the plan wants, so it goes.
      const dst = key.split(' ')[0]!;
      if (!keepStale || want.routes.has(dst) || want.direct.has(dst)) before.push({ kind: 'route', op: 'delete', dst, gateway: r.gateway, onlink: r.onlink, metric: r.metric });
      continue;
    }
    const dst = key;
    const gateway = want.routes.get(dst);
    if (gateway === undefined && keepStale && !want.direct.has(dst)) continue;
    if (gateway === undefined || gateway !== r.gateway || !r.onlink) before.push({ kind: 'route', op: 'delete', dst, gateway: r.gateway, onlink: r.onlink });
  }
  // A direct route is ours by its protocol; one through another interface (the underlay changed) or to another
  // gateway is deleted, then added again, as the routes above.
  for (const [dst, r] of cur.direct) {
    if (keepStale && !want.direct.has(dst) && !want.routes.has(dst)) continue;
    if (want.direct.get(dst) !== r.gateway || r.index !== d.underlayIndex) before.push({ kind: 'direct', op: 'delete', dst, gateway: r.gateway, index: r.index, dev: devName(d, r.index) });
  }
  for (const [ip, n] of cur.neighbours) {
    // Entries the kernel made itself (incomplete or failed resolutions) are not netplane's to remove.
    if (n.permanent && !want.neighbours.has(ip) && !keepStale) entries.push({ kind: 'neighbour', op: 'delete', ip, mac: n.mac });
  }
  // A moved node's old entry (same MAC, old address) or a node's old MAC: deleted before the new one is added.
  for (const f of cur.fdb.values()) if (want.fdb.get(f.mac) !== f.dst && !(keepStale && !want.fdb.has(f.mac))) entries.push({ kind: 'fdb', op: 'delete', mac: f.mac, dst: f.dst });
  for (const [ip, mac] of want.neighbours) {
    const n = cur.neighbours.get(ip);
    if (!n || n.mac !== mac || !n.permanent) entries.push({ kind: 'neighbour', op: 'replace', ip, mac });
  }
  for (const [mac, dst] of want.fdb) if (!cur.fdb.has(`${mac} ${dst}`)) entries.push({ kind: 'fdb', op: 'replace', mac, dst });
  for (const [dst, gateway] of want.routes) {
    const r = cur.routes.get(dst);
    if (!r || r.gateway !== gateway || !r.onlink) after.push({ kind: 'route', op: 'add', dst, gateway, onlink: true });
  }
  for (const [dst, gateway] of want.direct) {
    const r = cur.direct.get(dst);
    if (!r || r.gateway !== gateway || r.index !== d.underlayIndex) after.push({ kind: 'direct', op: 'add', dst, gateway, index: d.underlayIndex, dev: d.underlay });
  }
  return [links, before, unaddress, entries, after];
}

/** The name of interface `index` for logs: the underlay's, else `if<index>`. */
function devName(d: DeviceSpec, index: number): string {
  return index === d.underlayIndex ? d.underlay : `if${index}`;
}

/** Updates a view after an operation succeeded; `created` is the link a create returned. */
export function recordOp(view: DeviceView, op: OverlayOp, created?: LinkState): void {
  switch (op.kind) {
    case 'link':
      // The device's entries go with it; the direct routes, on the underlay, stay.
      if (op.op === 'delete') Object.assign(view, emptyView(), { link: undefined, direct: view.direct });
      else if (op.op === 'create') Object.assign(view, emptyView(), { link: created, direct: view.direct });
      else if (view.link) {
        view.link = { ...view.link, ...op.change };
        if (op.change.mac !== undefined) view.neighbours.clear();
      }
      return;
    case 'address':
      if (op.op === 'add') view.addresses.add(op.cidr);
      else {
        view.addresses.delete(op.cidr);
        // The last IPv4 address gone: the kernel flushed the device's IPv4 routes and ARP entries (fib_disable_ip).
        if (isIPv4(op.cidr.split('/')[0]!) && ![...view.addresses].some((a) => isIPv4(a.split('/')[0]!))) {
          for (const dst of view.routes.keys()) if (isIPv4(dst.split('/')[0]!)) view.routes.delete(dst);
          for (const ip of view.neighbours.keys()) if (isIPv4(ip)) view.neighbours.delete(ip);
        }
      }
      return;
    case 'neighbour':
      if (op.op === 'replace') view.neighbours.set(op.ip, { mac: op.mac, permanent: true });
      else view.neighbours.delete(op.ip);
      return;
    case 'fdb':
      if (op.op === 'replace') {
        // The kernel keys FDB entries by MAC: a replace takes the place of that MAC's entry.
        for (const [k, f] of view.fdb) if (f.mac === op.mac) view.fdb.delete(k);
        view.fdb.set(`${op.mac} ${op.dst}`, { mac: op.mac, dst: op.dst });
      } else view.fdb.delete(`${op.mac} ${op.dst}`);
      return;
    case 'route':
      if (op.op === 'add') view.routes.set(op.dst, { gateway: op.gateway, onlink: op.onlink });
      else view.routes.delete(op.metric !== undefined ? `${op.dst} metric ${op.metric}` : op.dst);
      return;
    case 'direct':
      if (op.op === 'add') view.direct.set(op.dst, { gateway: op.gateway, index: op.index });
      else view.direct.delete(op.dst);
  }
}

/** The remote node an entry operation programs, for logs; undefined for deletes of entries no node wants. */
export function entryOwner(plan: OverlayPlan, op: OverlayOp): string | undefined {
  const r = plan.remotes.find((x) => {
    switch (op.kind) {
      case 'neighbour':
        return x.vtep4 === op.ip || x.vtep6 === op.ip;
      case 'fdb':
        return x.vtepMAC === op.mac;
      case 'route':
      case 'direct':
        return x.podCIDR4 === op.dst || x.podCIDR6 === op.dst;
      default:
        return false;
    }
  });
  return r?.node;
}

/**
 * How many of the plan's nodes the view shows programmed: this node when its device is up with every VTEP
 * address, and then each remote whose entries are all there: per pod family its direct route, or its neighbour
 * entry and route with the FDB entry. 0 without a device.
 */
export function programmedNodes(plan: OverlayPlan, view: DeviceView): number {
  const p = programmedSet(plan, view);
  return p ? p.size + 1 : 0;
}

/**
 * The remotes of the plan whose entries the view shows programmed (as programmedNodes counts them), or undefined
 * when the device is not up with every VTEP address.
 */
export function programmedSet(plan: OverlayPlan, view: DeviceView): Set<string> | undefined {
  const d = plan.device;
  if (!d || !view.link?.up || !linkMatches(view.link, d) || !d.addresses.every((a) => view.addresses.has(a))) return undefined;
  const has = (r: OverlayPlan['remotes'][number], vtep: string | undefined, cidr: string | undefined, direct: string | undefined) => {
    if (vtep === undefined || cidr === undefined) return true;
    if (direct !== undefined) return view.direct.get(cidr)?.gateway === direct && view.direct.get(cidr)?.index === d.underlayIndex;
    const n = view.neighbours.get(vtep);
    return n?.mac === r.vtepMAC && n.permanent && view.routes.get(cidr)?.gateway === vtep && view.fdb.has(`${r.vtepMAC} ${r.underlayIP}`);
  };
  const out = new Set<string>();
  for (const r of plan.remotes) if (has(r, r.vtep4, r.podCIDR4, r.direct4) && has(r, r.vtep6, r.podCIDR6, r.direct6)) out.add(r.node);
  return out;
}

/** Counts of the entries in a view, for metrics: those on the device, and the direct routes. */
export function viewCounts(view: DeviceView): { address: number; neighbour: number; fdb: number; route: number; direct: number } {
  return { address: view.addresses.size, neighbour: [...view.neighbours.values()].filter((n) => n.permanent).length, fdb: view.fdb.size, route: view.routes.size, direct: view.direct.size };
}

/** One operation as a line of text, for logs and test dumps. */
export function opText(op: OverlayOp): string {
  switch (op.kind) {
    case 'link':
      if (op.op === 'delete') return 'link delete';
      if (op.op === 'create') {
        const s = op.spec;
        return `link create ${s.name} vni ${s.vni} port ${s.port} local ${s.local} dev ${s.underlay} mtu ${s.mtu} mac ${s.mac} nolearning`;
      }
      return `link set${Object.entries(op.change).map(([k, v]) => ` ${k} ${String(v)}`).join('')}`;
    case 'address':
      return `address ${op.op} ${op.cidr}`;
    case 'neighbour':
      return `neighbour ${op.op} ${op.ip} lladdr ${op.mac}`;
    case 'fdb':
      return `fdb ${op.op} ${op.mac} dst ${op.dst}`;
    case 'route':
      return `route ${op.op} ${op.dst} via ${op.gateway}${op.onlink ? ' onlink' : ''}${op.metric !== undefined ? ` metric ${op.metric}` : ''}`;
    case 'direct':
      return `direct route ${op.op} ${op.dst} via ${op.gateway} dev ${op.dev}`;
  }
}

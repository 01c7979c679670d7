// Which of this host's announced changes the overlay agent acts on, gathered into one sync per burst. An address
// change can change the plan (a node becomes direct, or stops being so): the host is read again and re-planned. A
// change of an interface the overlay uses can drop what is programmed: taking the underlay down deletes the routes
// through it (the direct routes among them) and bringing it up puts none back; taking the VXLAN device down deletes
// its routes and neighbour entries; deleting the underlay deletes the VXLAN device over it. None of these is
// announced as a route or neighbour change the agent follows, so each is answered with a full sync (the kernel read
// again and repaired); so is an address removed from such an interface (its last one takes the routes with it), and
// an interface renamed to or from a name --iface or --iface-regex asks for. So does a neighbour, FDB entry or route
// of the overlay's changed by someone else (entryMatters). With --iface-can-reach, a route whose destination holds
// that address coming or going (the default route moved to another interface, a more specific route added) can
// change which interface reaches it: the host is read again and the underlay chosen again (reachMatters), and a new
// underlay moves the VXLAN device as after an address change. So does, only then, a route of another table or type
// whose destination holds it (a blackhole route, a policy-routing table's route) and any routing rule of its family
// coming or going, which the entry watch passes on only with the flag. Everything else — other interfaces (each pod's veth
// among them), the agent's own work on the VXLAN device — starts nothing.
import type { Logger } from '../runtime/logger.ts';
import type { EntryChange, EntryWatchOptions } from './kernel/entry-watch.ts';
import type { AddressChange, HostWatch, LinkChange } from './kernel/watch.ts';
import { contains, parseCidr, parseIp } from './kernel/addr.ts';
import { directRouteProtocol } from './kernel/types.ts';
import type { DesiredEntries } from './plan/diff.ts';

// A rule's family (struct fib_rule_hdr), as the entry watch passes it on.
const AF_INET = 2;
const AF_INET6 = 10;

/** What the overlay uses of this host now, as the agent knows it. */
export interface HostUse {
  /** The VXLAN device's name (--device). */
  device: string;
  /** The VXLAN device's index, when it exists; undefined before it is made. */
  deviceIndex: number | undefined;
  /** Whether the agent believes the device is up (it sets it up and never down). */
  deviceUp: boolean;
  /** The other interfaces the overlay's entries go through: the underlay, the interfaces of the direct routes. */
  links: ReadonlySet<number>;
  /** Whether --iface or --iface-regex asks for an interface of this name (absent: neither names one). */
  named?: (name: string) => boolean;
  /** The entries the current plan wants (absent: no plan with a device yet). */
  want?: DesiredEntries;
  /** The planned underlay interface, which the direct routes go through. */
  underlayIndex?: number;
  /** The second, IPv6, VXLAN device (--ipv6-device): judged as the first, against the entries its plan wants. */
  device6?: { name: string; index: number | undefined; up: boolean; want?: DesiredEntries };
  /** The --iface-can-reach address (absent: the flag is not given), whose route can choose the underlay. */
  reach?: string;
}

/** Whether interface `index` is one of the overlay's VXLAN devices. */
function isDevice(index: number | undefined, use: HostUse): boolean {
  return index !== undefined && (index === use.deviceIndex || index === use.device6?.index);
}

/** Options of HostChanges. */
export interface HostChangesOptions {
  /** Announces this host's address changes (kernel/watch.ts watchAddresses). */
  watchAddresses?: (onChange: (change: AddressChange) => void) => HostWatch;
  /** Announces this host's interface changes (kernel/watch.ts watchLinks). */
  watchLinks?: (onChange: (change: LinkChange) => void) => HostWatch;
  /** Announces this host's neighbour, FDB and route changes (kernel/entry-watch.ts watchEntries), with `lookups` also other routes and rules. */
  watchEntries?: (onChange: (change: EntryChange) => void, options?: EntryWatchOptions) => HostWatch;
  /** How long changes are gathered before one sync. */
  debounceMs: number;
  /** What the overlay uses now; asked at each change. */
  use: () => HostUse;
  /** Called once per burst; `full` when the kernel may have dropped programmed entries (read everything again). */
  onChange: (full: boolean) => void;
  log: Logger;
}

/**
 * Whether an address change can alter the plan or drop what is programmed: not one added to the VXLAN device
 * (netplane's own work; one removed from it is put back), nor an IPv6 link-local one (every new interface, each pod's
 * veth among them, gets one). Lost announcements can. Pure.
 */
export function addressMatters(c: AddressChange, use: HostUse): boolean {
  if (isDevice(c.index, use)) return !c.added && !/^fe[89ab][0-9a-f]:/i.test(c.cidr ?? '');
  if (c.cidr !== undefined && /^fe[89ab][0-9a-f]:/i.test(c.cidr)) return false;
  return true;
}

/**
 * Whether an address change can have dropped programmed entries: an address removed from an interface the overlay's
 * entries go through (the kernel deletes the routes through an interface whose last address of a family goes, and
 * announces no route change the agent follows), or lost announcements. Pure.
 */
export function addressDropsEntries(c: AddressChange, use: HostUse): boolean {
  return c.index === undefined || (!c.added && (use.links.has(c.index) || isDevice(c.index, use)));
}

/**
 * Whether an interface change can have dropped what is programmed, or changes the plan: any change of an interface
 * the overlay's entries go through (the watch passes on only changes of up, carrier, operational state, name or
 * MTU); of the VXLAN device only its deletion, its being taken down or an MTU change (the agent's own creation and setting up are
 * skipped); an interface renamed to or from a name --iface or --iface-regex asks for; lost announcements. Pure.
 */
export function linkMatters(c: LinkChange, use: HostUse): boolean {
  if (c.index === undefined || !c.now) return true;
  const d6 = use.device6;
  const which = c.index === use.deviceIndex || c.now.name === use.device ? { index: use.deviceIndex, up: use.deviceUp } : d6 && (c.index === d6.index || c.now.name === d6.name) ? d6 : undefined;
  if (which) {
    if (c.deleted) return true;
    // Its MTU changed (by hand, or by the agent following the underlay's: one read more, which finds nothing to do).
    if (c.before && c.before.mtu !== c.now.mtu) return true;
    // Down now, and up before as far as anyone saw: the watch, else the agent (a device made before the watch saw it).
    return !c.now.up && (c.before ? c.before.up : c.index === which.index && which.up);
  }
  // Renamed to or from a name the underlay is chosen by: the underlay may be another interface now.
  if (use.named && c.before && c.before.name !== c.now.name && (use.named(c.now.name) || use.named(c.before.name))) return true;
  return use.links.has(c.index);
}

/**
 * Whether an announced neighbour, FDB or route change leaves the kernel other than the plan wants: one of the VXLAN
 * device's entries or a direct route gone or changed, or an entry the plan does not want put on the device (the
 * full sync that follows puts back, or removes, what differs). The agent's own work moves the kernel towards the
 * plan, so its announcements do not matter (nor do the kernel's own neighbour resolutions on the device, which are
 * not permanent). Compared with the plan, not with the view, so that an announcement read before the agent has
 * recorded its own operation cannot count. Lost announcements matter. Pure.
 */
export function entryMatters(c: EntryChange, use: HostUse): boolean {
  if (c.kind === 'lost') return true;
  // Never one of the overlay's entries: only the reach check looks at these.
  if (c.kind === 'other-route' || c.kind === 'rule') return false;
  if (use.want === undefined) return false;
  if (c.kind === 'route') return routeMatters(c, use, use.want);
  // Neighbour and FDB entries belong to one device: judged against what that device's plan wants.
  const d6 = use.device6;
  const want = c.index === use.deviceIndex ? use.want : d6 && c.index === d6.index ? d6.want : undefined;
  if (want === undefined) return false;
  switch (c.kind) {
    case 'neighbour': {
      const mac = want.neighbours.get(c.ip);
      if (c.deleted) return mac !== undefined;
      return c.permanent ? mac !== c.mac : mac !== undefined;
    }
    case 'fdb': {
      const dst = want.fdb.get(c.mac);
      // Not a MAC the plan wants: one added is to be removed.
      if (dst === undefined) return !c.deleted;
      const ours = c.dst === dst && c.extras === '';
      // A wanted MAC's entry deleted: ours, or one that had taken its place (another port, VNI or interface). The
      // agent's own deletes are of a moved node's old address, without extras.
      return c.deleted ? ours || c.extras !== '' : !ours;
    }
  }
}

/**
 * A route change, judged by its destination as Flannel's route check does: for one the plan routes, any route
 * that is not exactly the plan's (its device, gateway, default metric and, for a direct route, protocol) coming, and the plan's
 * route or one that took its place (another device, protocol, a multipath route) going; for any other
 * destination, a route that looks like netplane's (through the device with a gateway, or of its protocol) coming.
 */
function routeMatters(c: Extract<EntryChange, { kind: 'route' }>, use: HostUse, want: DesiredEntries): boolean {
  // A pod network routed over the IPv6 device is judged by that device's index.
  const d6 = use.device6;
  const on6 = d6?.want?.routes.get(c.dst);
  const vxlan = on6 ?? want.routes.get(c.dst);
  const index = on6 !== undefined ? d6!.index : use.deviceIndex;
  if (vxlan !== undefined) {
    // A route of another metric beside the plan's is not the plan's either: the sync deletes it.
    const ours = c.index === index && c.gateway === vxlan && c.metric === undefined;
    // The agent deletes a route of the device only when its gateway is no longer the plan's.
    return c.deleted ? ours || c.index !== index : !ours;
  }
  const direct = want.direct.get(c.dst);
  if (direct !== undefined) {
    const ours = c.protocol === directRouteProtocol && c.gateway === direct && c.index === use.underlayIndex;
    return c.deleted ? ours || c.protocol !== directRouteProtocol : !ours;
  }
  if (c.deleted) return false;
  return c.protocol === directRouteProtocol || (isDevice(c.index, use) && c.gateway !== '');
}

/**
 * Whether a route or rule change can change the kernel's route to the --iface-can-reach address, and so the
 * underlay: a route whose destination holds the address (the default route among them) added, replaced or deleted,
 * whatever its interface, table or type (a blackhole, unreachable or prohibit route makes the address unreachable, a
 * throw route or another table's route can send the lookup elsewhere); and any routing rule of the address's family
 * added or deleted, since which table answers for the address depends on all of them. Rules are not matched against
 * the address (a rule's selectors are source, mark, interface, uid...): rules change rarely, and one host read more
 * costs little. Nothing without the flag. A route to elsewhere cannot change the lookup's answer; what takes routes
 * away without announcing each (an interface going down, its address removed) is followed by the interface and
 * address watches. Pure.
 */
export function reachMatters(c: EntryChange, use: HostUse): boolean {
  if (use.reach === undefined) return false;
  const ip = parseIp(use.reach);
  if (ip === undefined) return false;
  if (c.kind === 'rule') return c.family === 0 || c.family === (ip.length === 16 ? AF_INET6 : AF_INET);
  if (c.kind !== 'route' && c.kind !== 'other-route') return false;
  const dst = parseCidr(c.dst);
  return dst !== undefined && contains(dst, ip);
}

/** Follows this host's address and interface changes for the agent: one `onChange` per burst that matters. */
export class HostChanges {
  #o: HostChangesOptions;
  #watches: HostWatch[] = [];
  /** The debounce: set from the first change that matters until its sync is asked for. */
  #timer: NodeJS.Timeout | undefined;
  #full = false;
  #closed = false;

  constructor(options: HostChangesOptions) {
    this.#o = options;
  }

  /** Opens the watches; one the kernel refuses is logged, and its changes are seen at the next resync. */
  start(): void {
    const o = this.#o;
    if (o.watchAddresses) {
      this.#open('address', () => o.watchAddresses!((c) => {
        const use = o.use();
        if (this.#closed || !addressMatters(c, use)) return;
        this.#changed(addressDropsEntries(c, use), () => o.log.debug({ index: c.index, cidr: c.cidr, added: c.added }, "this host's addresses changed; planning again"));
      }));
    }
    if (o.watchLinks) {
      this.#open('interface', () => o.watchLinks!((c) => {
        if (this.#closed || !linkMatters(c, o.use())) return;
        this.#changed(true, () =>
          o.log.debug({ index: c.index, name: c.now?.name, deleted: c.deleted, up: c.now?.up, lowerUp: c.now?.lowerUp, operstate: c.now?.operstate }, 'an interface the overlay uses changed; reading the kernel again'),
        );
      }));
    }
    if (o.watchEntries) {
      // Routes of other tables and types and the rules matter only to --iface-can-reach: without it, not joined.
      const lookups = o.use().reach !== undefined;
      this.#open('neighbour and route', () => o.watchEntries!((c) => {
        if (this.#closed) return;
        const use = o.use();
        if (entryMatters(c, use)) this.#changed(true, () => o.log.debug({ change: c }, "one of the overlay's entries changed by someone else; reading the kernel again"));
        // A re-plan, as after an address change: the host (and the route) read again, the device moved if need be.
        else if (reachMatters(c, use)) this.#changed(false, () => o.log.debug({ change: c, reach: use.reach }, 'a route or rule that can change the route to the --iface-can-reach address changed; choosing the underlay again'));
      }, { lookups }));
    }
  }

  /** Closes the watches; a change already gathered starts nothing. */
  close(): void {
    this.#closed = true;
    for (const w of this.#watches.splice(0)) w.close();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #open(what: string, open: () => HostWatch): void {
    try {
      this.#watches.push(open());
    } catch (e) {
      this.#o.log.warn({ err: (e as Error).message }, `cannot follow this host's ${what} changes; they are seen at the next resync`);
    }
  }

  #changed(full: boolean, logFirst: () => void): void {
    this.#full ||= full;
    if (this.#timer) return;
    logFirst();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const wasFull = this.#full;
      this.#full = false;
      this.#o.onChange(wasFull);
    }, this.#o.debounceMs);
  }
}

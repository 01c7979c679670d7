// The overlay's own entries as the kernel announces their changes: neighbour and FDB entries (RTNLGRP_NEIGH: an
// RTM_NEWNEIGH or RTM_DELNEIGH for every ARP, NDP and bridge forwarding entry added, changed or removed on any
// interface) and main-table routes (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE). Someone deleting or replacing one of
// the VXLAN device's entries or a direct route by hand is seen at once instead of at the next resync; which changes
// matter is decided by the agent (host-changes.ts entryMatters). With `lookups` (--iface-can-reach) it also passes on
// what else can change the kernel's route to an address, for the reach check alone (host-changes.ts reachMatters):
// routes of other tables and types (blackhole, unreachable, prohibit, throw, a policy-routing table's) and routing
// rules (RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE, joined only then). Only says what changed.
import { rt } from 'netlink';
import { formatIp, formatMac } from './addr.ts';
import { fdbExtras, routeEntry, typeNumber } from './netlink.ts';
import { messages, rtMessages, watch, type HostWatch } from './watch.ts';

// Multicast groups (include/uapi/linux/rtnetlink.h) and message types.
const RTNLGRP_NEIGH = 3;
const RTNLGRP_IPV4_ROUTE = 7;
const RTNLGRP_IPV6_ROUTE = 11;
const RTNLGRP_IPV4_RULE = 8;
const RTNLGRP_IPV6_RULE = 19;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const RTM_NEWRULE = 32;
const RTM_DELRULE = 33;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
const RT_TABLE_MAIN = 254;
const RTN_UNICAST = 1;
// What routeEntry leaves out of a route of this protocol.
const RTPROT_STATIC = 4;
const RTM_F_CLONED = 0x200;

/** One announced change of a neighbour, FDB entry or main-table unicast route; `lost` when announcements were dropped. */
export type EntryChange =
  | { kind: 'neighbour'; index: number; ip: string; mac: string; permanent: boolean; deleted: boolean }
  | { kind: 'fdb'; index: number; mac: string; dst: string; extras: string; deleted: boolean }
  /** `index` -1: a multipath route (RTA_MULTIPATH, no single output interface or gateway). */
  | { kind: 'route'; index: number; dst: string; gateway: string; protocol: number; deleted: boolean; metric?: number }
  /** With `lookups`: a route of another table or another type than unicast (never one of the overlay's entries). */
  | { kind: 'other-route'; dst: string; table: number; type: number; deleted: boolean }
  /** With `lookups`: a routing rule added or deleted; `family` AF_INET or AF_INET6 (0 when the message is too short to say). */
  | { kind: 'rule'; family: number; deleted: boolean }
  | { kind: 'lost' };

/** Options of watchEntries. */
export interface EntryWatchOptions {
  /**
   * Also pass on routes of other tables and types and routing rule changes (joining the rule groups): what can
   * change the kernel's route to an address without a main-table unicast route changing. Off, none of it is joined
   * or parsed.
   */
  lookups?: boolean;
}

/**
 * Calls `onChange` for every neighbour, FDB entry and main-table unicast route (multipath ones included) that is
 * added, changed or removed in this network namespace, and with `lookups` for every other route and every rule;
 * `{ kind: 'lost' }` after the kernel dropped announcements (the socket is then opened again). The socket does not
 * keep the process alive. Throws KernelError when the kernel refuses the socket.
 */
export function watchEntries(onChange: (change: EntryChange) => void, options: EntryWatchOptions = {}): HostWatch {
  const lookups = options.lookups === true;
  const groups = [RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, ...(lookups ? [RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE] : [])];
  return watch('watch entries', groups, {
    message: (buf) => {
      for (const c of parseEntryChanges(buf, lookups)) onChange(c);
    },
    lost: () => onChange({ kind: 'lost' }),
  });
}

/**
 * The neighbour, FDB and main-table unicast route changes in one datagram of those groups, and with `lookups` the
 * other routes and the rules; anything else is skipped. Pure.
 */
export function parseEntryChanges(buf: Buffer, lookups = false): EntryChange[] {
  const out: EntryChange[] = [];
  for (const { m, removed } of rtMessages(buf, RTM_NEWNEIGH, RTM_DELNEIGH)) {
    if (m.kind !== 'neighbor' || !m.data.ifindex) continue;
    const { dst, lladdr } = m.attrs;
    if (!dst || (dst.length !== 4 && dst.length !== 16)) continue;
    const mac = lladdr && lladdr.length === 6 ? formatMac(lladdr) : '';
    // An FDB entry is known by its MAC; a neighbour by its IP (a deleted one comes without its MAC, its state failed).
    if (m.data.family === AF_BRIDGE) {
      if (mac !== '') out.push({ kind: 'fdb', index: m.data.ifindex, mac, dst: formatIp(dst), extras: fdbExtras(m.attrs), deleted: removed });
    } else if (m.data.family === AF_INET || m.data.family === AF_INET6) {
      out.push({ kind: 'neighbour', index: m.data.ifindex, ip: formatIp(dst), mac, permanent: m.data.state?.permanent === true, deleted: removed });
    }
  }
  for (const { m, removed } of rtMessages(buf, RTM_NEWROUTE, RTM_DELROUTE)) {
    if (m.kind !== 'route') continue;
    // A cached route (an IPv6 path MTU exception, say) is the kernel's, not an entry anyone programs.
    if (m.data.flags && (rt.formatRouteFlags(m.data.flags) & RTM_F_CLONED) !== 0) continue;
    const table = m.attrs.table ?? m.data.table ?? 0;
    const type = typeNumber(m.data.type) ?? 0;
    if (table !== RT_TABLE_MAIN || type !== RTN_UNICAST) {
      if (lookups) out.push({ kind: 'other-route', dst: routeEntry(m, 0).dst, table, type, deleted: removed });
      continue;
    }
    const index = m.attrs.oif ?? (m.attrs.multipath ? -1 : undefined);
    if (index === undefined) continue;
    const r = routeEntry(m, index);
    out.push({ kind: 'route', index, dst: r.dst, gateway: r.gateway, protocol: r.protocol ?? RTPROT_STATIC, deleted: removed, ...(r.metric !== undefined ? { metric: r.metric } : {}) });
  }
  if (!lookups) return out;
  // A rule is not parsed: that one changed is all the reach check needs, and its family is the first byte of its
  // struct fib_rule_hdr (include/uapi/linux/fib_rules.h).
  for (const { type, data } of messages(buf)) {
    if (type === RTM_NEWRULE || type === RTM_DELRULE) out.push({ kind: 'rule', family: data[0] ?? 0, deleted: type === RTM_DELRULE });
  }
  return out;
}

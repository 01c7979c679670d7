// This host's address and interface changes as the kernel announces them: rtnetlink sockets in the multicast groups
// of IPv4 and IPv6 interface addresses (an RTM_NEWADDR or RTM_DELADDR for every address added or removed on any
// interface of the namespace) and of links (an RTM_NEWLINK for every change of an interface, an RTM_DELLINK when one
// goes). Only says what changed; the agent reads the host again itself.
import { endianness } from 'node:os';
import { Protocol, RawNetlinkSocket, rt } from 'netlink';
import { formatIp } from './addr.ts';
import { errnoOf, KernelError } from './errors.ts';

// RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR (include/uapi/linux/rtnetlink.h): group numbers, as
// NETLINK_ADD_MEMBERSHIP takes them (the bind-time masks RTMGRP_LINK 0x1, RTMGRP_IPV4_IFADDR 0x10 and
// RTMGRP_IPV6_IFADDR 0x100 are 1 << (group - 1)).
const RTNLGRP_LINK = 1;
const RTNLGRP_IPV4_IFADDR = 5;
const RTNLGRP_IPV6_IFADDR = 9;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
// nlmsg_flags (include/uapi/linux/netlink.h): a request; a dump of every object (NLM_F_ROOT | NLM_F_MATCH); a part
// of a multipart reply (every message of a dump).
const NLM_F_REQUEST = 0x1;
const NLM_F_MULTI = 0x2;
const NLM_F_DUMP = 0x300;
// The sequence number of the link watch's own dump: its replies tell the tracker how each interface is now, so the
// first announcement of an interface after the watch starts is compared with that, not taken as a change.
const SEED_SEQ = 0x6e70;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
// A bridge also sends RTM_NEWLINK and RTM_DELLINK of family AF_BRIDGE to RTNLGRP_LINK for its ports (a port
// leaving the bridge is an AF_BRIDGE RTM_DELLINK): only AF_UNSPEC ones are about the interface itself.
const AF_UNSPEC = 0;
const HEADER = 16;
const LE = endianness() === 'LE';
// Announcements come in bursts (an interface going down drops all its addresses at once); past the receive buffer
// the kernel drops them and reports ENOBUFS, which is answered as "anything may have changed".
const RECV_BUFFER = 1 << 20;

/** One announced change: the interface and the address, or `undefined` fields when announcements were lost. */
export interface AddressChange {
  /** The interface index; undefined when announcements were lost (ENOBUFS): anything may have changed. */
  index: number | undefined;
  /** `ip/prefixLength`, or undefined as for `index`. */
  cidr: string | undefined;
  /** Added (RTM_NEWADDR, also sent when an address's flags change) or removed. */
  added: boolean;
}

/** What is followed of an interface: a change of any of these is announced, any other (statistics, say) is not. */
export interface LinkSeen {
  name: string;
  /** IFF_UP. Taken down, the kernel deletes the routes through the interface and its neighbour entries. */
  up: boolean;
  /** IFF_LOWER_UP: the carrier. */
  lowerUp: boolean;
  /** IFLA_OPERSTATE (RFC 2863: 2 down, 5 dormant, 6 up, 0 unknown...). */
  operstate: number;
  mtu: number;
}

/** One announced change of an interface, or, with `index` undefined, announcements lost: anything may have changed. */
export interface LinkChange {
  index: number | undefined;
  /** Deleted (or moved to another network namespace). */
  deleted: boolean;
  /** The interface as announced (for a deleted one, as it was); undefined when announcements were lost. */
  now: LinkSeen | undefined;
  /** As last announced before, since the watch started; undefined for the first announcement of the interface. */
  before: LinkSeen | undefined;
}

/** Stops a watch. */
export interface HostWatch {
  close(): void;
}

/**
 * Calls `onChange` for every address added to or removed from an interface of this network namespace, IPv4 and
 * IPv6, and once with undefined fields after the kernel dropped announcements (the socket is then opened again).
 * The socket does not keep the process alive. Throws KernelError when the kernel refuses the socket.
 */
export function watchAddresses(onChange: (change: AddressChange) => void): HostWatch {
  return watch('watch addresses', [RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR], {
    message: (buf) => {
      for (const change of parseAddressChanges(buf)) onChange(change);
    },
    lost: () => onChange({ index: undefined, cidr: undefined, added: false }),
  });
}

/**
 * Calls `onChange` when an interface of this network namespace appears, goes, or changes its name, IFF_UP,
 * IFF_LOWER_UP, operational state or MTU; an RTM_NEWLINK that changes none of them (statistics, a bridge port's
 * state, a promiscuity count) is not passed on. Once with `index` undefined after the kernel dropped announcements
 * (the socket is then opened again, and every interface counts as not seen before). The socket does not keep the
 * process alive. Throws KernelError when the kernel refuses the socket.
 */
export function watchLinks(onChange: (change: LinkChange) => void): HostWatch {
  const tracker = new LinkTracker();
  return watch('watch links', [RTNLGRP_LINK], {
    // Asked on every socket the watch opens: after lost announcements the tracker starts again from the kernel's state.
    request: linkDumpRequest(),
    message: (buf) => {
      for (const m of parseLinkMessages(buf)) {
        if (m.seed) {
          tracker.seed(m);
          continue;
        }
        const change = tracker.update(m);
        if (change) onChange(change);
      }
    },
    lost: () => {
      tracker.forget();
      onChange({ index: undefined, deleted: false, now: undefined, before: undefined });
    },
  });
}

/** One RTM_NEWLINK or RTM_DELLINK of an interface (AF_UNSPEC). */
export interface LinkMessage {
  index: number;
  deleted: boolean;
  seen: LinkSeen;
  /** A reply to the watch's own dump: how the interface is, not a change. */
  seed?: boolean;
}

/**
 * What was last announced of each interface, to pass on only what changed. Holds one entry per interface of the
 * namespace: a deleted one is forgotten.
 */
export class LinkTracker {
  #seen = new Map<number, LinkSeen>();

  /** The change `m` makes, or undefined when it changes nothing that is followed. */
  update(m: LinkMessage): LinkChange | undefined {
    const before = this.#seen.get(m.index);
    if (m.deleted) {
      this.#seen.delete(m.index);
      return { index: m.index, deleted: true, now: m.seen, before };
    }
    if (before && sameLink(before, m.seen)) return undefined;
    this.#seen.set(m.index, m.seen);
    return { index: m.index, deleted: false, now: m.seen, before };
  }

  /** Records how an interface is without passing on a change (a reply to the watch's dump). */
  seed(m: LinkMessage): void {
    if (!m.deleted) this.#seen.set(m.index, m.seen);
  }

  /** Forgets everything: after lost announcements, what was seen may be out of date. */
  forget(): void {
    this.#seen.clear();
  }

  /** How many interfaces are remembered. */
  get size(): number {
    return this.#seen.size;
  }
}

function sameLink(a: LinkSeen, b: LinkSeen): boolean {
  return a.name === b.name && a.up === b.up && a.lowerUp === b.lowerUp && a.operstate === b.operstate && a.mtu === b.mtu;
}

/** An rtnetlink socket in `groups`; `lost` after ENOBUFS or a poll error, on a new socket. */
export function watch(what: string, groups: readonly number[], on: { request?: Buffer; message: (buf: Buffer) => void; lost: () => void }): HostWatch {
  let closed = false;
  let raw = open();
  function open(): RawNetlinkSocket {
    let s: RawNetlinkSocket;
    try {
      s = new RawNetlinkSocket(Protocol.ROUTE);
      for (const g of groups) s.addMembership(g);
    } catch (e) {
      throw new KernelError(what, errnoOf(e), { cause: e });
    }
    try {
      s.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // The default buffer holds a few hundred announcements.
    }
    s.unref();
    s.on('message', on.message);
    // Its replies come as messages like the announcements; one that cannot be sent leaves the watch as it was.
    if (on.request) s.send(on.request, { port: 0 }, () => {});
    s.on('error', () => {
      // ENOBUFS (announcements dropped) leaves the socket open, a poll error closes it: start again on a new one
      // either way, and say that anything may have changed.
      if (closed || raw !== s) return;
      try {
        s.close();
      } catch {
        // already closed by the native side
      }
      try {
        raw = open();
      } catch {
        // Left closed: the periodic resync still repairs what changes.
      }
      on.lost();
    });
    return s;
  }
  return {
    close() {
      if (closed) return;
      closed = true;
      try {
        raw.close();
      } catch {
        // already closed
      }
    },
  };
}

/** The netlink messages of one datagram: type, flags, sequence number and payload. */
export function* messages(buf: Buffer): Generator<{ type: number; flags: number; seq: number; data: Buffer }> {
  for (let off = 0; off + HEADER <= buf.length; ) {
    const length = LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    if (length < HEADER || off + length > buf.length) return;
    const type = LE ? buf.readUInt16LE(off + 4) : buf.readUInt16BE(off + 4);
    const flags = LE ? buf.readUInt16LE(off + 6) : buf.readUInt16BE(off + 6);
    const seq = LE ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
    yield { type, flags, seq, data: buf.subarray(off + HEADER, off + length) };
    off += (length + 3) & ~3;
  }
}

/**
 * The messages of one datagram whose type is `added` or `removed`, parsed (those that do not parse are skipped);
 * `seed` for the replies to the link watch's dump.
 */
export function* rtMessages(buf: Buffer, added: number, removed: number): Generator<{ m: rt.Message; removed: boolean; seed: boolean }> {
  for (const { type, flags, seq, data } of messages(buf)) {
    if (type !== added && type !== removed) continue;
    let m: rt.Message;
    try {
      m = rt.parseMessage(type, data);
    } catch {
      continue;
    }
    yield { m, removed: type === removed, seed: seq === SEED_SEQ && (flags & NLM_F_MULTI) !== 0 };
  }
}

/** RTM_GETLINK with NLM_F_DUMP for every interface (AF_UNSPEC), sequence number SEED_SEQ. */
export function linkDumpRequest(): Buffer {
  const b = Buffer.alloc(HEADER + 16);
  const u32 = (v: number, o: number) => (LE ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const u16 = (v: number, o: number) => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  u32(b.length, 0);
  u16(RTM_GETLINK, 4);
  u16(NLM_F_REQUEST | NLM_F_DUMP, 6);
  u32(SEED_SEQ, 8);
  // struct ifinfomsg after the header: all zero, ifi_family AF_UNSPEC.
  return b;
}

/** The address changes in one datagram of the multicast groups; other messages are skipped. Pure. */
export function parseAddressChanges(buf: Buffer): AddressChange[] {
  const out: AddressChange[] = [];
  for (const { m, removed } of rtMessages(buf, RTM_NEWADDR, RTM_DELADDR)) {
    if (m.kind !== 'address') continue;
    // IFA_LOCAL is the address of a point-to-point interface's own end; IFA_ADDRESS otherwise (as `ip` reads them).
    const ip = m.attrs.local ?? m.attrs.address;
    if (!ip || (ip.length !== 4 && ip.length !== 16)) continue;
    out.push({ index: m.data.index ?? 0, cidr: `${formatIp(ip)}/${m.data.prefixlen ?? 0}`, added: !removed });
  }
  return out;
}

/** The interface announcements in one datagram of RTNLGRP_LINK; other messages, and AF_BRIDGE port ones, are skipped. Pure. */
export function parseLinkMessages(buf: Buffer): LinkMessage[] {
  const out: LinkMessage[] = [];
  for (const { m, removed, seed } of rtMessages(buf, RTM_NEWLINK, RTM_DELLINK)) {
    if (m.kind !== 'link' || (m.data.family ?? AF_UNSPEC) !== AF_UNSPEC || !m.data.index) continue;
    const flags = m.data.flags ?? {};
    out.push({
      index: m.data.index,
      deleted: removed,
      seen: { name: m.attrs.ifname ?? '', up: flags.up === true, lowerUp: flags.lowerUp === true, operstate: m.attrs.operstate ?? 0, mtu: m.attrs.mtu ?? 0 },
      ...(seed ? { seed: true } : {}),
    });
  }
  return out;
}


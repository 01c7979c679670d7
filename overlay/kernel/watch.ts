// This host's address changes as the kernel announces them: an rtnetlink socket in the multicast groups of IPv4 and
// IPv6 interface addresses, which gets an RTM_NEWADDR or RTM_DELADDR for every address added or removed on any
// interface of the namespace. Only says what changed; the agent reads the host again itself.
import { endianness } from 'node:os';
import { Protocol, RawNetlinkSocket, rt } from 'netlink';
import { formatIp } from './addr.ts';
import { KernelError } from './errors.ts';

// RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR (include/uapi/linux/rtnetlink.h): group numbers, as
// NETLINK_ADD_MEMBERSHIP takes them (the bind-time masks RTMGRP_IPV4_IFADDR 0x10 and RTMGRP_IPV6_IFADDR 0x100 are
// 1 << (group - 1)).
const RTNLGRP_IPV4_IFADDR = 5;
const RTNLGRP_IPV6_IFADDR = 9;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
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

/** Stops a watch. */
export interface AddressWatch {
  close(): void;
}

/**
 * Calls `onChange` for every address added to or removed from an interface of this network namespace, IPv4 and
 * IPv6, and once with undefined fields after the kernel dropped announcements (the socket is then opened again).
 * The socket does not keep the process alive. Throws KernelError when the kernel refuses the socket.
 */
export function watchAddresses(onChange: (change: AddressChange) => void): AddressWatch {
  let closed = false;
  let raw = open();
  function open(): RawNetlinkSocket {
    let s: RawNetlinkSocket;
    try {
      s = new RawNetlinkSocket(Protocol.ROUTE);
      s.addMembership(RTNLGRP_IPV4_IFADDR);
      s.addMembership(RTNLGRP_IPV6_IFADDR);
    } catch (e) {
      throw new KernelError('watch addresses', errnoOf(e), { cause: e });
    }
    try {
      s.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // The default buffer holds a few hundred announcements.
    }
    s.unref();
    s.on('message', (buf) => {
      for (const change of parseAddressChanges(buf)) onChange(change);
    });
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
      onChange({ index: undefined, cidr: undefined, added: false });
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

/** The address changes in one datagram of the multicast groups; other messages are skipped. Pure. */
export function parseAddressChanges(buf: Buffer): AddressChange[] {
  const out: AddressChange[] = [];
  for (let off = 0; off + HEADER <= buf.length; ) {
    const length = LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    if (length < HEADER || off + length > buf.length) break;
    const type = LE ? buf.readUInt16LE(off + 4) : buf.readUInt16BE(off + 4);
    const data = buf.subarray(off + HEADER, off + length);
    off += (length + 3) & ~3;
    if (type !== RTM_NEWADDR && type !== RTM_DELADDR) continue;
    let m: rt.Message;
    try {
      m = rt.parseMessage(type, data);
    } catch {
      continue;
    }
    if (m.kind !== 'address') continue;
    // IFA_LOCAL is the address of a point-to-point interface's own end; IFA_ADDRESS otherwise (as `ip` reads them).
    const ip = m.attrs.local ?? m.attrs.address;
    if (!ip || (ip.length !== 4 && ip.length !== 16)) continue;
    out.push({ index: m.data.index ?? 0, cidr: `${formatIp(ip)}/${m.data.prefixlen ?? 0}`, added: type === RTM_NEWADDR });
  }
  return out;
}

function errnoOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EIO';
}

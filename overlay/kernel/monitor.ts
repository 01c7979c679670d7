// Kernel change notifications for the overlay: an rtnetlink socket in the multicast groups of links, addresses,
// neighbours (the FDB included) and routes, reduced to the events that can undo netplane's work — an interface
// deleted or set down, an address, neighbour, FDB entry or route removed — each with the interface it concerns.
// The agent repairs its device at once on those instead of at the next periodic resync. Flannel only notices a
// deleted device when it restarts.
import { endianness } from 'node:os';
import { Protocol, RawNetlinkSocket } from 'netlink';
import { KernelError } from './errors.ts';
import { errnoOf } from './socket.ts';

/** Something that may have undone netplane's work on interface `index`; `overflow`: events were lost (index 0). */
export interface KernelEvent {
  what: 'link-deleted' | 'link-down' | 'address-deleted' | 'neighbour-deleted' | 'route-deleted' | 'overflow';
  index: number;
}

/** rtnetlink message types (include/uapi/linux/rtnetlink.h). */
const RTM = { NEWLINK: 16, DELLINK: 17, DELADDR: 21, DELROUTE: 25, DELNEIGH: 29 } as const;
/** Multicast groups: links, neighbours (and FDB), IPv4 and IPv6 addresses and routes. */
const GROUPS = { LINK: 1, NEIGH: 3, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV6_IFADDR: 9, IPV6_ROUTE: 11 } as const;
const HEADER = 16;
const IFF_UP = 0x1;
const RTA_OIF = 4;
const LE = endianness() === 'LE';

const u16 = (b: Buffer, at: number) => (LE ? b.readUInt16LE(at) : b.readUInt16BE(at));
const u32 = (b: Buffer, at: number) => (LE ? b.readUInt32LE(at) : b.readUInt32BE(at));

/** The events in one datagram of rtnetlink notifications; other messages are skipped. Pure. */
export function parseKernelEvents(buf: Buffer): KernelEvent[] {
  const out: KernelEvent[] = [];
  for (let off = 0; off + HEADER <= buf.length; ) {
    const length = u32(buf, off);
    if (length < HEADER || off + length > buf.length) break;
    const type = u16(buf, off + 4);
    const body = buf.subarray(off + HEADER, off + length);
    off += (length + 3) & ~3;
    // ifinfomsg, ifaddrmsg and ndmsg all carry the interface index at byte 4 of the body.
    if ((type === RTM.NEWLINK || type === RTM.DELLINK) && body.length >= 12) {
      const index = u32(body, 4);
      if (type === RTM.DELLINK) out.push({ what: 'link-deleted', index });
      else if ((u32(body, 8) & IFF_UP) === 0) out.push({ what: 'link-down', index });
    } else if (type === RTM.DELADDR && body.length >= 8) {
      out.push({ what: 'address-deleted', index: u32(body, 4) });
    } else if (type === RTM.DELNEIGH && body.length >= 8) {
      out.push({ what: 'neighbour-deleted', index: u32(body, 4) });
    } else if (type === RTM.DELROUTE && body.length >= 12) {
      // rtmsg is 12 bytes, then attributes; the route's interface is RTA_OIF.
      for (let a = 12; a + 4 <= body.length; ) {
        const len = u16(body, a);
        if (len < 4 || a + len > body.length) break;
        if (u16(body, a + 2) === RTA_OIF && len >= 8) out.push({ what: 'route-deleted', index: u32(body, a + 4) });
        a += (len + 3) & ~3;
      }
    }
  }
  return out;
}

/**
 * Calls `onEvent` for every such event in this network namespace until the returned function is called. When the
 * socket overflows (events were lost) or fails, `overflow` is reported and, after a failure, a new socket opened.
 * Throws KernelError when the kernel refuses the socket.
 */
export function watchKernel(onEvent: (e: KernelEvent) => void): () => void {
  let stopped = false;
  let raw: RawNetlinkSocket | undefined;
  const open = () => {
    let s: RawNetlinkSocket;
    try {
      s = new RawNetlinkSocket(Protocol.ROUTE);
      for (const g of Object.values(GROUPS)) s.addMembership(g);
    } catch (e) {
      throw new KernelError('open rtnetlink monitor socket', errnoOf(e), { cause: e });
    }
    s.unref();
    s.on('message', (buf: Buffer) => {
      for (const e of parseKernelEvents(buf)) onEvent(e);
    });
    s.on('error', () => {
      try {
        s.close();
      } catch {
        // already closed
      }
      if (stopped) return;
      onEvent({ what: 'overflow', index: 0 });
      try {
        raw = open();
      } catch {
        // The periodic resync still repairs.
        raw = undefined;
      }
    });
    return s;
  };
  raw = open();
  return () => {
    stopped = true;
    raw?.close();
    raw = undefined;
  };
}

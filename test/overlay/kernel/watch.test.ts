// The pure parts of the rtnetlink watches (overlay/kernel/watch.ts): parsing RTNLGRP_LINK datagrams, and the tracker
// that passes on only interface changes that matter (a chatty RTM_NEWLINK that changes nothing followed is dropped).
// The watch itself runs against the kernel in test/overlay/link-bounce.test.ts.
import { endianness } from 'node:os';
import { AttrStream, rt } from 'netlink';
import { describe, expect, it } from 'vitest';
import { parseEntryChanges } from '../../../overlay/kernel/entry-watch.ts';
import { linkDumpRequest, LinkTracker, parseAddressChanges, parseLinkMessages, type LinkMessage, type LinkSeen } from '../../../overlay/kernel/watch.ts';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const AF_BRIDGE = 7;

/** One netlink message: header (length, type, flags, seq, pid in host order) and payload, padded to 4 bytes. */
function message(type: number, payload: Buffer, flags = 0, seq = 0): Buffer {
  const header = Buffer.alloc(16);
  const le = endianness() === 'LE';
  if (le) header.writeUInt32LE(16 + payload.length, 0);
  else header.writeUInt32BE(16 + payload.length, 0);
  if (le) header.writeUInt16LE(type, 4);
  else header.writeUInt16BE(type, 4);
  if (le) header.writeUInt16LE(flags, 6);
  else header.writeUInt16BE(flags, 6);
  if (le) header.writeUInt32LE(seq, 8);
  else header.writeUInt32BE(seq, 8);
  return Buffer.concat([header, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)]);
}

/** An RTM_NEWLINK or RTM_DELLINK as the kernel sends it. */
function link(type: number, index: number, name: string, flags: rt.DeviceFlags, operstate: number, mtu = 1500, family = 0, header: { flags?: number; seq?: number } = {}): Buffer {
  const out = new AttrStream();
  rt.formatLinkMessage({ kind: 'link', data: { family, index, flags }, attrs: { ifname: name, mtu, operstate } }, out);
  return message(type, Buffer.concat(out.bufs), header.flags, header.seq);
}

const up = { up: true, lowerUp: true, running: true } as const;

describe('parseLinkMessages', () => {
  it('reads each interface message of a datagram; skips AF_BRIDGE port messages and other types', () => {
    const buf = Buffer.concat([
      link(RTM_NEWLINK, 2, 'eth0', up, 6),
      // A port leaving a bridge: an AF_BRIDGE RTM_DELLINK, which is no deletion of the interface.
      link(RTM_DELLINK, 2, 'eth0', up, 6, 1500, AF_BRIDGE),
      link(RTM_NEWLINK, 3, 'veth1', { up: true }, 2, 1450),
      link(RTM_DELLINK, 4, 'netplane.1', {}, 2, 1450),
    ]);
    expect(parseLinkMessages(buf)).toEqual([
      { index: 2, deleted: false, seen: { name: 'eth0', up: true, lowerUp: true, operstate: 6, mtu: 1500 } },
      { index: 3, deleted: false, seen: { name: 'veth1', up: true, lowerUp: false, operstate: 2, mtu: 1450 } },
      { index: 4, deleted: true, seen: { name: 'netplane.1', up: false, lowerUp: false, operstate: 2, mtu: 1450 } },
    ]);
    // The address parser skips them, as the link parser skips address messages.
    expect(parseAddressChanges(buf)).toEqual([]);
  });

  it("marks the replies to the watch's own dump (NLM_F_MULTI with its sequence number) as seeds, not announcements", () => {
    const request = linkDumpRequest();
    const seq = endianness() === 'LE' ? request.readUInt32LE(8) : request.readUInt32BE(8);
    const NLM_F_MULTI = 2;
    const got = parseLinkMessages(Buffer.concat([
      link(RTM_NEWLINK, 2, 'eth0', up, 6, 1500, 0, { flags: NLM_F_MULTI, seq }),
      // Another request's reply, and an announcement carrying a requester's sequence number: not seeds.
      link(RTM_NEWLINK, 3, 'eth1', up, 6, 1500, 0, { flags: NLM_F_MULTI, seq: seq + 1 }),
      link(RTM_NEWLINK, 4, 'eth2', up, 6, 1500, 0, { seq }),
    ]));
    expect(got.map((m) => [m.index, m.seed === true])).toEqual([[2, true], [3, false], [4, false]]);
    // The request: RTM_GETLINK (18), NLM_F_REQUEST | NLM_F_DUMP, followed by an all-zero ifinfomsg.
    expect(request.length).toBe(32);
    expect(endianness() === 'LE' ? [request.readUInt16LE(4), request.readUInt16LE(6)] : [request.readUInt16BE(4), request.readUInt16BE(6)]).toEqual([18, 0x301]);
    expect(request.subarray(16).equals(Buffer.alloc(16))).toBe(true);
  });

  it('stops at a truncated message', () => {
    const whole = link(RTM_NEWLINK, 2, 'eth0', up, 6);
    expect(parseLinkMessages(Buffer.concat([whole, whole.subarray(0, 20)]))).toHaveLength(1);
  });
});

describe('LinkTracker', () => {
  const seen = (s: Partial<LinkSeen> = {}): LinkSeen => ({ name: 'eth0', up: true, lowerUp: true, operstate: 6, mtu: 1500, ...s });
  const msg = (index: number, s: Partial<LinkSeen> = {}, deleted = false): LinkMessage => ({ index, deleted, seen: seen(s) });

  // Rows run in order on one tracker: what each message passes on (as `before → now`, or "-" for nothing).
  const rows: Array<[what: string, m: LinkMessage, passed: string]> = [
    ['eth0 first seen', msg(2), 'new → up'],
    ['the same again (statistics, a promiscuity count)', msg(2), '-'],
    ['and again', msg(2), '-'],
    ['carrier lost', msg(2, { lowerUp: false, operstate: 2 }), 'up → up nocarrier'],
    ['taken down', msg(2, { up: false, lowerUp: false, operstate: 2 }), 'up nocarrier → down'],
    ['up again', msg(2), 'down → up'],
    ['MTU changed', msg(2, { mtu: 9000 }), 'up → up'],
    ['renamed', msg(2, { name: 'ens5', mtu: 9000 }), 'up → up'],
    ['another interface, first seen', msg(7, { name: 'vethabc' }), 'new → up'],
    ['that one deleted', msg(7, { name: 'vethabc' }, true), 'up → deleted'],
    ['its index used again by a new interface', msg(7, { name: 'vethdef' }), 'new → up'],
  ];
  it('passes on only what changes up, carrier, operational state, name or MTU, and forgets deleted interfaces', () => {
    const tracker = new LinkTracker();
    const text = (s: LinkSeen | undefined) => (s ? `${s.up ? 'up' : 'down'}${s.up && !s.lowerUp ? ' nocarrier' : ''}` : 'new');
    const got = rows.map(([what, m]) => {
      const c = tracker.update(m);
      return [what, c ? `${text(c.before)} → ${c.deleted ? 'deleted' : text(c.now)}` : '-'];
    });
    expect(got).toEqual(rows.map(([what, , passed]) => [what, passed]));
    expect(tracker.size).toBe(2);
  });

  it('seed() records an interface without passing it on: its first announcement counts only if it differs', () => {
    const tracker = new LinkTracker();
    tracker.seed(msg(2));
    tracker.seed(msg(3, { name: 'eth1' }));
    expect(tracker.update(msg(2))).toBeUndefined();
    expect(tracker.update(msg(3, { name: 'eth1', up: false }))).toMatchObject({ index: 3, before: seen({ name: 'eth1' }) });
    expect(tracker.size).toBe(2);
  });

  it('after forget() (announcements lost) every interface counts as not seen before', () => {
    const tracker = new LinkTracker();
    tracker.update(msg(2));
    tracker.forget();
    expect(tracker.update(msg(2))).toEqual({ index: 2, deleted: false, now: seen(), before: undefined });
  });
});

describe('parseEntryChanges', () => {
  const RTM_NEWROUTE = 24;
  const RTM_DELROUTE = 25;
  const RTM_NEWNEIGH = 28;
  const RTM_DELNEIGH = 29;
  const neigh = (type: number, family: number, index: number, dst: number[], lladdr: number[] | undefined, state: rt.NeighborState, extra: rt.NeighborAttrs = {}) => {
    const out = new AttrStream();
    rt.formatNeighborMessage({ kind: 'neighbor', data: { family, ifindex: index, state }, attrs: { dst: Buffer.from(dst), ...(lladdr ? { lladdr: Buffer.from(lladdr) } : {}), ...extra } }, out);
    return message(type, Buffer.concat(out.bufs));
  };
  const route = (type: number, o: { dst: number[]; len: number; gateway?: number[]; oif?: number; table?: number; protocol?: number; routeType?: number; multipath?: boolean; cloned?: boolean }) => {
    const out = new AttrStream();
    const data: rt.Route = { family: o.dst.length === 16 ? 10 : 2, dstLen: o.len, table: o.table ?? 254, protocol: o.protocol ?? 4, type: o.routeType ?? 1, ...(o.cloned ? { flags: { cloned: true } } : {}) };
    const attrs: rt.RouteAttrs = {
      dst: Buffer.from(o.dst), ...(o.gateway ? { gateway: Buffer.from(o.gateway) } : {}), ...(o.oif !== undefined ? { oif: o.oif } : {}), ...(o.multipath ? { multipath: Buffer.alloc(16) } : {}),
    };
    rt.formatRouteMessage({ kind: 'route', data, attrs }, out);
    return message(type, Buffer.concat(out.bufs));
  };
  const mac = [0x0e, 0x6d, 0x01, 0x02, 0x03, 0x04];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (endianness() === 'LE') b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return b;
  };

  it('reads neighbour, FDB and main-table unicast route changes; a deleted neighbour may come without its MAC', () => {
    const got = parseEntryChanges(Buffer.concat([
      neigh(RTM_NEWNEIGH, 2, 9, [10, 244, 2, 0], mac, { permanent: true }),
      neigh(RTM_DELNEIGH, 2, 9, [10, 244, 2, 0], undefined, { failed: true }),
      neigh(RTM_NEWNEIGH, 7, 9, [192, 168, 60, 2], mac, { permanent: true }),
      // With a port (big-endian) and a VNI (host order) of its own, as the kernel gives them only when not the device's.
      neigh(RTM_NEWNEIGH, 7, 9, [192, 168, 60, 2], mac, { permanent: true }, { port: Buffer.from([0x27, 0x0f]), vni: u32(77) }),
      // An FDB entry without a MAC is not one: skipped.
      neigh(RTM_DELNEIGH, 7, 9, [192, 168, 60, 2], undefined, {}),
      route(RTM_NEWROUTE, { dst: [10, 244, 2, 0], len: 24, gateway: [10, 244, 2, 0], oif: 9 }),
      route(RTM_DELROUTE, { dst: [10, 244, 3, 0], len: 24, gateway: [192, 168, 60, 3], oif: 2, protocol: 110 }),
      // Another table, a local route, a route without an output interface (multipath): skipped.
      route(RTM_NEWROUTE, { dst: [10, 244, 4, 0], len: 24, gateway: [10, 244, 4, 0], oif: 9, table: 100 }),
      route(RTM_NEWROUTE, { dst: [10, 244, 1, 0], len: 32, oif: 9, table: 255, routeType: 2 }),
      route(RTM_NEWROUTE, { dst: [10, 244, 5, 0], len: 24 }),
      // A multipath route: no single interface; a cached route (a path MTU exception): the kernel's.
      route(RTM_NEWROUTE, { dst: [10, 244, 6, 0], len: 24, multipath: true }),
      route(RTM_NEWROUTE, { dst: [10, 244, 2, 7], len: 32, gateway: [10, 244, 2, 0], oif: 9, cloned: true }),
    ]));
    expect(got).toEqual([
      { kind: 'neighbour', index: 9, ip: '10.244.2.0', mac: '0e:6d:01:02:03:04', permanent: true, deleted: false },
      { kind: 'neighbour', index: 9, ip: '10.244.2.0', mac: '', permanent: false, deleted: true },
      { kind: 'fdb', index: 9, mac: '0e:6d:01:02:03:04', dst: '192.168.60.2', extras: '', deleted: false },
      { kind: 'fdb', index: 9, mac: '0e:6d:01:02:03:04', dst: '192.168.60.2', extras: 'port 9999 vni 77', deleted: false },
      { kind: 'route', index: 9, dst: '10.244.2.0/24', gateway: '10.244.2.0', protocol: 4, deleted: false },
      { kind: 'route', index: 2, dst: '10.244.3.0/24', gateway: '192.168.60.3', protocol: 110, deleted: true },
      { kind: 'route', index: -1, dst: '10.244.6.0/24', gateway: '', protocol: 4, deleted: false },
    ]);
  });

  it('with lookups, also reads routes of other tables and types and the rules (only their family); never a cached route', () => {
    const RTM_NEWRULE = 32;
    const RTM_DELRULE = 33;
    // struct fib_rule_hdr (family, dst_len, src_len, tos, table, res1, res2, action; flags) and one attribute, unread.
    const ruleMsg = (type: number, family: number) => message(type, Buffer.concat([Buffer.from([family, 0, 0, 0, 100, 0, 0, 1]), u32(0), Buffer.from([8, 0, 6, 0]), u32(1000)]));
    const buf = Buffer.concat([
      route(RTM_NEWROUTE, { dst: [10, 244, 2, 0], len: 24, gateway: [10, 244, 2, 0], oif: 9 }),
      route(RTM_NEWROUTE, { dst: [10, 9, 0, 0], len: 16, routeType: 6 }),
      route(RTM_DELROUTE, { dst: [10, 9, 0, 0], len: 16, gateway: [192, 168, 60, 254], oif: 2, table: 100 }),
      route(RTM_NEWROUTE, { dst: [0xfd, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], len: 64, routeType: 7 }),
      route(RTM_NEWROUTE, { dst: [10, 244, 2, 7], len: 32, gateway: [10, 244, 2, 0], oif: 9, table: 100, cloned: true }),
      ruleMsg(RTM_NEWRULE, 2),
      ruleMsg(RTM_DELRULE, 10),
      message(RTM_NEWRULE, Buffer.alloc(0)),
    ]);
    expect(parseEntryChanges(buf, true)).toEqual([
      { kind: 'route', index: 9, dst: '10.244.2.0/24', gateway: '10.244.2.0', protocol: 4, deleted: false },
      { kind: 'other-route', dst: '10.9.0.0/16', table: 254, type: 6, deleted: false },
      { kind: 'other-route', dst: '10.9.0.0/16', table: 100, type: 1, deleted: true },
      { kind: 'other-route', dst: 'fd00:70::/64', table: 254, type: 7, deleted: false },
      { kind: 'rule', family: 2, deleted: false },
      { kind: 'rule', family: 10, deleted: true },
      { kind: 'rule', family: 0, deleted: false },
    ]);
    // Without lookups the same datagram gives the main-table unicast route alone.
    expect(parseEntryChanges(buf)).toEqual([{ kind: 'route', index: 9, dst: '10.244.2.0/24', gateway: '10.244.2.0', protocol: 4, deleted: false }]);
  });
});

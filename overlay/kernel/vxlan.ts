// IFLA_LINKINFO for VXLAN devices, encoded and decoded by hand: the `netlink` package (0.3.0) types
// IFLA_LINKINFO as an opaque Buffer. Attribute numbers are those of include/uapi/linux/if_link.h. Pure.
import { endianness } from 'node:os';
import { formatIp, parseIp } from './addr.ts';
import type { VxlanAttrs } from './types.ts';

/** IFLA_INFO_* (nested in IFLA_LINKINFO). */
export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;

/** The IFLA_VXLAN_* attributes netplane reads and writes (nested in IFLA_INFO_DATA). */
export const IFLA_VXLAN = { ID: 1, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, LOCAL6: 17, UDP_CSUM: 18 } as const;

/** NLA_F_NESTED: set on attributes that carry attributes. */
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
// Netlink lengths, types and integers are in host byte order; only IFLA_VXLAN_PORT is big-endian.
const LE = endianness() === 'LE';

/** What IFLA_LINKINFO says about a device: its kind and, for VXLAN, its attributes. */
export interface LinkInfo {
  kind?: string;
  vxlan?: VxlanAttrs;
}

/** One netlink attribute (header, payload, padding to 4 bytes). */
export function nlattr(type: number, payload: Uint8Array): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  if (LE) {
    out.writeUInt16LE(len, 0);
    out.writeUInt16LE(type, 2);
  } else {
    out.writeUInt16BE(len, 0);
    out.writeUInt16BE(type, 2);
  }
  out.set(payload, 4);
  return out;
}

/** The attributes of a buffer, by type (flags masked off); later duplicates win. Stops at a truncated one. */
export function nlattrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
    const type = (LE ? buf.readUInt16LE(off + 2) : buf.readUInt16BE(off + 2)) & NLA_TYPE_MASK;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * The IFLA_LINKINFO payload that creates a VXLAN device; throws RangeError on a bad local IP, a VNI that is not a
 * u32 (the kernel itself answers ERANGE from 2^24 on) or a port outside 1..65535 (0 would be the kernel default).
 * Over IPv4 the outer UDP checksum is sent as zero (IFLA_VXLAN_UDP_CSUM 0), as RFC 7348 §5 says it SHOULD be; the
 * kernel's default computes it, and then an underlay NIC that segments VXLAN but not with outer checksums
 * (ethtool: tx-udp_tnl-segmentation on, tx-udp_tnl-csum-segmentation off) has every large packet segmented in
 * software instead. IPv4 receivers accept a zero UDP checksum whatever their own setting; IPv6 ones drop it unless
 * configured to take it, so an IPv6 underlay keeps the checksum.
 */
export function encodeVxlanLinkInfo(attrs: VxlanAttrs): Buffer {
  const local = parseIp(attrs.local);
  if (!local) throw new RangeError(`local "${attrs.local}" is not an IP address`);
  if (!Number.isInteger(attrs.vni) || attrs.vni < 0 || attrs.vni > 0xffffffff) throw new RangeError(`VNI ${attrs.vni} is not a u32`);
  if (!Number.isInteger(attrs.port) || attrs.port < 1 || attrs.port > 65535) throw new RangeError(`port ${attrs.port} is not within 1..65535`);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(attrs.port);
  const data = Buffer.concat([
    nlattr(IFLA_VXLAN.ID, hostU32(attrs.vni)),
    nlattr(IFLA_VXLAN.LINK, hostU32(attrs.underlayIndex)),
    nlattr(local.length === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, local),
    nlattr(IFLA_VXLAN.LEARNING, Uint8Array.of(attrs.learning ? 1 : 0)),
    nlattr(IFLA_VXLAN.PORT, port),
    ...(local.length === 4 ? [nlattr(IFLA_VXLAN.UDP_CSUM, Uint8Array.of(0))] : []),
  ]);
  return Buffer.concat([nlattr(IFLA_INFO.KIND, Buffer.from('vxlan\0')), nlattr(IFLA_INFO.DATA | NLA_F_NESTED, data)]);
}

/**
 * The kind of a device and, for VXLAN, its attributes from an IFLA_LINKINFO payload. The kernel leaves out
 * IFLA_VXLAN_LOCAL when no local address is set (read as '0.0.0.0') and IFLA_VXLAN_LINK without a device (0).
 */
export function decodeLinkInfo(linkinfo: Buffer | undefined): LinkInfo {
  if (!linkinfo) return {};
  const info = nlattrs(linkinfo);
  const kindBytes = info.get(IFLA_INFO.KIND);
  if (!kindBytes) return {};
  const end = kindBytes.indexOf(0);
  const kind = kindBytes.subarray(0, end < 0 ? kindBytes.length : end).toString('latin1');
  const data = info.get(IFLA_INFO.DATA);
  if (kind !== 'vxlan' || !data) return { kind };
  const a = nlattrs(data);
  const id = a.get(IFLA_VXLAN.ID);
  const link = a.get(IFLA_VXLAN.LINK);
  const local = a.get(IFLA_VXLAN.LOCAL6) ?? a.get(IFLA_VXLAN.LOCAL);
  const port = a.get(IFLA_VXLAN.PORT);
  const learning = a.get(IFLA_VXLAN.LEARNING);
  return {
    kind,
    vxlan: {
      vni: id ? readU32(id) : 0,
      port: port && port.length >= 2 ? port.readUInt16BE(0) : 0,
      local: local && (local.length === 4 || local.length === 16) ? formatIp(local) : '0.0.0.0',
      underlayIndex: link ? readU32(link) : 0,
      learning: learning !== undefined && learning.length > 0 && learning.readUInt8(0) !== 0,
    },
  };
}

/** A u32 in host byte order, as netlink integer attributes are. */
export function hostU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
}

/** A u32 attribute in host byte order (0 when short). */
export function readU32(b: Buffer): number {
  if (b.length < 4) return 0;
  return LE ? b.readUInt32LE(0) : b.readUInt32BE(0);
}

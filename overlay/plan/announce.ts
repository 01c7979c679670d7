// What this node announces on its own Node in kubernetes mode (its VTEP MAC and addresses), as Flannel's
// AcquireLease does: the address the others send VXLAN packets to is Flannel's public-ip-overwrite (or
// public-ipv6-overwrite) when set by hand — a node behind NAT —, else --public-ip (--public-ipv6), and otherwise its
// VXLAN source address; Flannel's
// dual-stack reader also needs an address of every pod family. Pure.
import { isIPv4, isIPv6 } from 'node:net';
import type { Node } from '../../cluster/model/index.ts';
import { canonicalIP } from '../../proxy/nftables/model.ts';
import { overwriteAnnotations, podCIDRs, unusableUnderlay } from './node.ts';
import type { DeviceSpec, HostView, SelfVtep } from './types.ts';

const isFamily = (ip: string, family: 4 | 6) => (family === 4 ? isIPv4(ip) : isIPv6(ip));
const linkLocal = (ip: string) => isIPv6(ip) && /^fe[89ab]/i.test(ip);

/** This node's announcement, given the device planned for it. */
export function planAnnouncement(self: Node, device: DeviceSpec, host: HostView, device6?: DeviceSpec, publicIP: { 4?: string; 6?: string } = {}): SelfVtep {
  const notes: string[] = [];
  const flannelNotes: string[] = [];
  const family = isIPv6(device.local) ? 6 : 4;
  const other = family === 4 ? 6 : 4;
  // As Flannel's: the overwrite annotation, else --public-ip (--public-ipv6), else the VXLAN source address.
  const mine = publicIP[family] ?? device.local;
  const byFamily: { 4?: string; 6?: string } = { [family]: overwrite(self, family, mine, notes) ?? mine };
  const pods = podCIDRs(self);
  if (other === 6 ? pods.v6 : pods.v4) {
    // With the IPv6 device, its source address is what others reach it at (Flannel's ExtV6Addr).
    const source = publicIP[other] ?? (other === 6 ? device6?.local : undefined);
    const addr = overwrite(self, other, source, notes) ?? source ?? ownAddress(self, other, device, host);
    if (addr !== undefined) byFamily[other] = addr;
    else {
      flannelNotes.push(
        `has an IPv${other} podCIDR but no IPv${other} underlay address (an InternalIP or ExternalIP on this host, or a global address on ${device.underlay}, or ${overwriteAnnotations[other]}): ` +
          `Flannel nodes with IPv${other} enabled do not accept it`,
      );
    }
  }
  return {
    mac: device.mac,
    ip: byFamily[family]!,
    ...(byFamily[4] !== undefined ? { ip4: byFamily[4] } : {}),
    ...(byFamily[6] !== undefined ? { ip6: byFamily[6] } : {}),
    ...(device6 && byFamily[6] !== undefined ? { v6: { mac: device6.mac, ip: byFamily[6] } } : {}),
    ...(notes.length > 0 ? { notes } : {}),
    ...(flannelNotes.length > 0 ? { flannelNotes } : {}),
  };
}

/** The node's overwrite annotation of a family when it holds a usable address of that family; a note when it does not. */
function overwrite(self: Node, family: 4 | 6, fallback: string | undefined, notes: string[]): string | undefined {
  const key = overwriteAnnotations[family];
  const value = self.metadata.annotations[key]?.trim();
  if (value === undefined || value === '') return undefined;
  const instead = fallback !== undefined ? `publishing ${fallback}` : 'not used';
  if (!isFamily(value, family)) {
    notes.push(`annotation ${key} ${JSON.stringify(value.slice(0, 60))} is not an IPv${family} address; ${instead}`);
    return undefined;
  }
  const unusable = unusableUnderlay(value);
  if (unusable) {
    notes.push(`annotation ${key} ${value} ${unusable}: other nodes could not reach it; ${instead}`);
    return undefined;
  }
  return canonicalIP(value);
}

/**
 * This node's own address of a family: its first InternalIP (else ExternalIP) of that family held by an interface
 * here, else the first address of that family on the underlay interface (global, for IPv6).
 */
function ownAddress(self: Node, family: 4 | 6, device: DeviceSpec, host: HostView): string | undefined {
  // A tentative or DAD-failed address cannot be reached at (another host may answer for it).
  const here = new Set(host.addresses.filter((a) => a.dad === undefined).map((a) => canonicalIP(a.cidr.split('/')[0]!)));
  for (const type of ['InternalIP', 'ExternalIP']) {
    const found = self.status.addresses.find((a) => a.type === type && isFamily(a.address, family) && here.has(canonicalIP(a.address)));
    if (found) return canonicalIP(found.address);
  }
  const on = host.addresses.filter((a) => a.index === device.underlayIndex && a.dad === undefined).map((a) => a.cidr.split('/')[0]!);
  const found = on.find((a) => isFamily(a, family) && !linkLocal(a));
  return found === undefined ? undefined : canonicalIP(found);
}

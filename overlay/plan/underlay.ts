// Which interface carries the VXLAN packets when --iface, --iface-regex or --iface-can-reach says, chosen as Flannel
// chooses: each --iface in order (an IP address, or a name), then each --iface-regex in order, matched against the
// interfaces' addresses first and their names second, then the interface of the route to --iface-can-reach. Pure.
import { isIPv4, isIPv6 } from 'node:net';
import { canonicalIp } from '../kernel/addr.ts';
import type { HostView } from './types.ts';

/** The chosen underlay: the interface's index and this node's underlay address on it. */
export interface Underlay {
  index: number;
  addr: string;
}

/** An IPv6 link-local address reaches only its own link; it is never an underlay address. */
const linkLocal = (ip: string) => isIPv6(ip) && /^fe[89ab]/i.test(ip);

/**
 * Why an address of this host cannot be the VXLAN source, or undefined: an IPv6 address still tentative (the kernel
 * neither sends from nor accepts packets to it until duplicate address detection ends; its end is announced and
 * re-plans) or one that failed it (another host on the link has it).
 */
export function sourceProblem(a: HostView['addresses'][number]): string | undefined {
  if (a.dad === 'tentative') return 'is still tentative (IPv6 duplicate address detection has not finished)';
  if (a.dad === 'dadfailed') return 'failed IPv6 duplicate address detection (another host on the link has it)';
  return undefined;
}

/** The addresses of an interface that can be an underlay address, IPv4 ones first, then global IPv6 ones; none tentative or failed. */
export function usableAddresses(host: HostView, index: number): string[] {
  const on = host.addresses.filter((a) => a.index === index && sourceProblem(a) === undefined).map((a) => a.cidr.split('/')[0]!);
  return [...on.filter((a) => isIPv4(a)), ...on.filter((a) => isIPv6(a) && !linkLocal(a))];
}

const usable = usableAddresses;

/** One --iface value: the interface holding that address (with it), or the interface of that name (with its first usable address). */
function byIface(host: HostView, iface: string): Underlay | string {
  const ip = canonicalIp(iface);
  if (ip !== undefined) {
    const held = host.addresses.find((a) => a.cidr.split('/')[0] === ip);
    if (!held) return `--iface ${iface}: no interface here has that address`;
    if (linkLocal(ip)) return `--iface ${iface}: a link-local address does not reach other links`;
    const problem = sourceProblem(held);
    if (problem) return `--iface ${iface}: the address ${problem}`;
    return { index: held.index, addr: ip };
  }
  const link = host.links.find((l) => l.name === iface);
  if (!link) return `--iface ${iface}: there is no such interface here`;
  const addr = usable(host, link.index)[0];
  return addr !== undefined ? { index: link.index, addr } : `--iface ${iface}: the interface has no IPv4 or global IPv6 address${skipped(host, link.index)}`;
}

/** The addresses of an interface left out for duplicate address detection, as a clause for a problem sentence. */
function skipped(host: HostView, index: number): string {
  const left = host.addresses.filter((a) => a.index === index && sourceProblem(a) !== undefined).map((a) => `${a.cidr.split('/')[0]} ${a.dad === 'tentative' ? 'still tentative' : 'failed duplicate address detection'}`);
  return left.length > 0 ? ` that can be used (${left.join(', ')})` : '';
}

/** One --iface-regex: the first address (of any interface but loopback) it matches, else the first interface name with a usable address. */
function byRegex(host: HostView, re: RegExp): Underlay | undefined {
  const links = host.links.filter((l) => l.name !== 'lo');
  for (const link of links) {
    const addr = usable(host, link.index).find((a) => re.test(a));
    if (addr !== undefined) return { index: link.index, addr };
  }
  for (const link of links) {
    const addr = re.test(link.name) ? usable(host, link.index)[0] : undefined;
    if (addr !== undefined) return { index: link.index, addr };
  }
  return undefined;
}

/**
 * --iface-can-reach: the interface of the kernel's route to the address, and the source the kernel picks for it
 * (else that interface's first usable address of the address's family), as Flannel's `ip route get`.
 */
function byRoute(host: HostView): Underlay | string {
  const r = host.reach;
  if (r === undefined) return '--iface-can-reach: the route was not read';
  if (r.index === undefined) return `--iface-can-reach ${r.ip}: this host has no route to it`;
  const link = host.links.find((l) => l.index === r.index);
  if (!link) return `--iface-can-reach ${r.ip}: the route's interface ${r.index} is gone`;
  if (link.name === 'lo') return `--iface-can-reach ${r.ip}: it is reached through the loopback interface (an address of this host)`;
  const held = r.src !== undefined ? host.addresses.find((a) => a.index === r.index && a.cidr.split('/')[0] === r.src && sourceProblem(a) === undefined) : undefined;
  const addr = held ? r.src : usable(host, r.index).find((a) => isIPv6(a) === isIPv6(r.ip));
  return addr !== undefined ? { index: r.index, addr } : `--iface-can-reach ${r.ip}: its interface ${link.name} has no usable IPv${isIPv6(r.ip) ? 6 : 4} address`;
}

/**
 * The underlay that --iface values (tried first, in order), --iface-regex patterns (then, in order) and
 * --iface-can-reach (last) choose, or one sentence saying why none fits.
 */
export function pickUnderlay(host: HostView, ifaces: readonly string[], regexes: readonly RegExp[], canReach?: string): Underlay | { problem: string } {
  const reasons: string[] = [];
  for (const iface of ifaces) {
    const found = byIface(host, iface);
    if (typeof found !== 'string') return found;
    reasons.push(found);
  }
  for (const re of regexes) {
    const found = byRegex(host, re);
    if (found) return found;
  }
  if (regexes.length > 0) reasons.push(`--iface-regex ${regexes.map((r) => r.source).join(', ')}: no interface here matches, by address or by name, with an IPv4 or global IPv6 address`);
  if (canReach !== undefined) {
    const found = byRoute(host);
    if (typeof found !== 'string') return found;
    reasons.push(found);
  }
  return { problem: reasons.join('; ') };
}

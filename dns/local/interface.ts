// The dummy interface that holds a node-local DNS server's addresses (NodeLocal DNSCache's `nodelocaldns`): made
// when missing, its addresses added when missing, brought up, and checked again later; removed at exit unless kept.
// On a kernel built without dummy devices (CONFIG_DUMMY), a bridge without ports holds them instead: its addresses
// are local ones as well. Either is marked with an alias, so that only a dummy device (node-cache's) or one netplane
// made is ever taken or removed. Over rtnetlink (overlay/kernel/netlink.ts), never a command.
import { isIPv6 } from 'node:net';
import type { LinkState } from '../../overlay/kernel/types.ts';
import type { NetlinkKernel } from '../../overlay/kernel/netlink.ts';
import { isKernelError } from '../../overlay/kernel/errors.ts';

/** What the interface needs of the kernel: NetlinkKernel's link, address and device calls. */
export type LocalKernel = Pick<NetlinkKernel, 'link' | 'createLink' | 'addresses' | 'addAddress' | 'setLink' | 'deleteLink'>;

/** The alias of an interface netplane made to hold node-local addresses. */
export const localAlias = 'netplane dns: node-local addresses';

/** Whether a device is one to hold the addresses: a dummy one (netplane's or node-cache's) or one netplane made. */
const ours = (link: LinkState) => link.kind === 'dummy' || link.alias === localAlias;

/** What one check changed: the device made (of which kind), addresses added, the device brought up. */
export interface Ensured {
  created: boolean;
  kind: string | undefined;
  added: string[];
  broughtUp: boolean;
}

/** A device of that name that is not a dummy one: never taken over. */
export class ForeignInterfaceError extends Error {
  override readonly name = 'ForeignInterfaceError';
}

/**
 * Makes `name` a dummy device, up, holding each of `ips` (as /32 or /128); what is already so is left as it is, and
 * addresses of its own beside them too. Throws ForeignInterfaceError for a device of that name of another kind, and
 * the kernel's KernelError for anything refused.
 */
export async function ensureLocalInterface(kernel: LocalKernel, name: string, ips: readonly string[]): Promise<Ensured> {
  let link: LinkState | undefined = await kernel.link(name);
  const created = link === undefined;
  link ??= await kernel.createLink(name, 'dummy', localAlias).catch((e: unknown) => {
    // EOPNOTSUPP, which Node names by its other name: no such kind of device in this kernel.
    if (isKernelError(e, 'ENOTSUP') || isKernelError(e, 'EOPNOTSUPP')) return kernel.createLink(name, 'bridge', localAlias);
    throw e;
  });
  if (!ours(link)) throw new ForeignInterfaceError(`the interface ${name} is there and is ${link.kind === undefined ? 'a device' : `a ${link.kind} device`}, not a dummy one nor one netplane made: netplane does not take it over (name another)`);
  const has = new Set((await kernel.addresses(link.index)).map((a) => a.cidr));
  const added: string[] = [];
  for (const ip of ips) {
    const cidr = `${ip}/${isIPv6(ip) ? 128 : 32}`;
    if (has.has(cidr)) continue;
    await kernel.addAddress({ index: link.index, cidr });
    added.push(cidr);
  }
  const broughtUp = !link.up;
  if (broughtUp) await kernel.setLink(link.index, { up: true });
  return { created, kind: link.kind, added, broughtUp };
}

/** Deletes the device `name` (its addresses go with it) when it is one to hold them; else it is left alone. Returns whether it was deleted. */
export async function removeLocalInterface(kernel: LocalKernel, name: string): Promise<boolean> {
  const link = await kernel.link(name);
  if (link === undefined || !ours(link)) return false;
  await kernel.deleteLink(link.index);
  return true;
}

// Checks of the text addresses the OverlayKernel methods take, failing as the kernel would: EINVAL.
import { parseCidr, parseIp, parseMac, type Cidr } from './addr.ts';
import { KernelError } from './errors.ts';

/** The bytes of an IPv4 or IPv6 address; KernelError EINVAL for anything else. */
export function requireIp(op: string, text: string): Buffer {
  const b = parseIp(text);
  if (!b) throw new KernelError(op, 'EINVAL', { detail: `"${text}" is not an IP address` });
  return b;
}

/** An `ip/prefixLength`; KernelError EINVAL for anything else. */
export function requireCidr(op: string, text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new KernelError(op, 'EINVAL', { detail: `"${text}" is not ip/prefixLength` });
  return c;
}

/** The bytes of a MAC written aa:bb:cc:dd:ee:ff; KernelError EINVAL for anything else. */
export function requireMac(op: string, text: string): Buffer {
  const b = parseMac(text);
  if (!b) throw new KernelError(op, 'EINVAL', { detail: `"${text}" is not a MAC (aa:bb:cc:dd:ee:ff)` });
  return b;
}

// The host's nameservers from resolv.conf, the forwarder's upstreams when --upstream is not given (CoreDNS's
// `forward . /etc/resolv.conf`). Only `nameserver` lines count; every one is kept, in order, stub addresses such as
// 127.0.0.53 included (in a pod that is the node's resolver, which is what the user configured).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { HostPort } from '../../runtime/flags.ts';

/** resolv.conf could not be read or names no nameserver. */
export class ResolvConfError extends Error {
  override readonly name = 'ResolvConfError';
  readonly code = 'NETPLANE_DNS_RESOLV_CONF';
}

/**
 * The nameservers of resolv.conf text, port 53. Comments start with '#' or ';' (also after a value); a value that is
 * not an IP address is skipped, as the resolver does; an IPv6 zone ("fe80::1%eth0") is kept.
 */
export function parseResolvConf(text: string): HostPort[] {
  const out: HostPort[] = [];
  for (const raw of text.split('\n')) {
    const [keyword, value] = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (keyword !== 'nameserver' || !value || isIP(value) === 0) continue;
    out.push({ host: value, port: 53, text: isIP(value) === 6 ? `[${value}]:53` : `${value}:53` });
  }
  return out;
}

/** The nameservers of the resolv.conf at `path`. Throws ResolvConfError when it cannot be read or names none. */
export function readResolvConf(path = '/etc/resolv.conf'): HostPort[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ResolvConfError(`cannot read ${path} for upstream nameservers (${(e as Error).message}); give --upstream ADDR:PORT instead`, { cause: e });
  }
  const servers = parseResolvConf(text);
  if (servers.length === 0) throw new ResolvConfError(`${path} has no "nameserver ADDRESS" line; give --upstream ADDR:PORT instead`);
  return servers;
}

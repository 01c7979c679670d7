// The host's resolv.conf: its nameservers, the forwarder's upstreams when --upstream is not given (CoreDNS's
// `forward . /etc/resolv.conf`), and its search domains, walked by --autopath after the cluster's (CoreDNS's kubernetes
// plugin reads them from /etc/resolv.conf too). Every `nameserver` is kept, in order, stub addresses such as
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
  for (const [keyword, value] of directives(text)) {
    if (keyword !== 'nameserver' || !value || isIP(value) === 0) continue;
    out.push({ host: value, port: 53, text: isIP(value) === 6 ? `[${value}]:53` : `${value}:53` });
  }
  return out;
}

/**
 * The search domains of resolv.conf text, as the kubelet reads the node's file to append them to a ClusterFirst Pod's
 * search list: the last `search` line wins (a `domain` line does not count), "." is dropped and a trailing dot
 * trimmed. Letter case and order are kept; duplicates too (the walk skips those: zone/autopath.ts).
 */
export function parseSearchDomains(text: string): string[] {
  let out: string[] = [];
  for (const [keyword, ...values] of directives(text)) {
    if (keyword !== 'search') continue;
    out = values.filter((v) => v !== '' && v !== '.').map((v) => v.replace(/\.$/, ''));
  }
  return out;
}

/** Each line of resolv.conf text as its words, comments ('#' or ';', also after a value) left out. */
function directives(text: string): string[][] {
  // [^]: a comment runs to the end of the line, a CR of CRLF included.
  return text.split('\n').map((line) => line.replace(/[#;][^]*$/, '').trim().split(/\s+/));
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

/** The search domains of the resolv.conf at `path` (none when it has no `search` line). Throws ResolvConfError when it cannot be read. */
export function readSearchDomains(path = '/etc/resolv.conf'): string[] {
  try {
    return parseSearchDomains(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ResolvConfError(`cannot read ${path} for its search domains (${(e as Error).message})`, { cause: e });
  }
}

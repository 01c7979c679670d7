// Upstream addresses as users write them: plain DNS `ADDR:PORT` (UDP, TCP for truncated answers), plain DNS over TCP
// only `tcp://ADDR[:PORT]` (port 53 by default; CoreDNS forward's `force_tcp`, written as AdGuard's dnsproxy writes
// it), or DNS over TLS `tls://ADDR[:PORT][#NAME]` (RFC 7858; port 853 by default; CoreDNS's `tls://` prefix). NAME is the name the
// upstream's certificate must match, written after `#` as systemd-resolved (`DNS=1.1.1.1#cloudflare-dns.com`) and
// Unbound (`forward-addr: 1.1.1.1@853#cloudflare-dns.com`) write it.
import { isIP } from 'node:net';
import { parseDestination, type HostPort } from '../../runtime/flags.ts';

/** An upstream to forward to; `tls` is set for DNS over TLS, `tcp` for plain DNS over TCP only. */
export interface UpstreamAddress extends HostPort {
  readonly tcp?: true;
  readonly tls?: {
    /** The name the certificate must match (and the SNI sent); undefined: the upstream's IP address. */
    readonly servername: string | undefined;
  };
}

/** The DNS-over-TLS port (RFC 7858 §3.1). */
export const dotPort = 853;

const tlsForm = 'tls://ADDR[:PORT][#NAME]';
const tcpForm = 'tcp://ADDR[:PORT]';

/**
 * Parses `ADDR:PORT`, `tcp://ADDR[:PORT]` or `tls://ADDR[:PORT][#NAME]` (ADDR an IP address, IPv6 in brackets when
 * a port follows). Throws an Error whose message says what is allowed, for the flag parser to put after the flag and
 * value.
 */
export function parseUpstream(raw: string): UpstreamAddress {
  const tcp = raw.startsWith('tcp://');
  if (!raw.startsWith('tls://') && !tcp) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) throw new Error(`must be ADDR:PORT (plain DNS), ${tcpForm} (plain DNS over TCP only) or ${tlsForm} (DNS over TLS); no other scheme is served`);
    if (raw.includes('#')) throw new Error(`#NAME is for DNS over TLS only: write ${tlsForm}, or ADDR:PORT without a name for plain DNS`);
    return parseDestination(raw);
  }
  const rest = raw.slice('tls://'.length); // as long as tcp://
  const hash = rest.indexOf('#');
  if (tcp && hash >= 0) throw new Error(`#NAME is for DNS over TLS only: write ${tlsForm}, or ${tcpForm} without a name for plain DNS over TCP`);
  const form = tcp ? tcpForm : tlsForm;
  const defaultPort = tcp ? 53 : dotPort;
  const hostPort = hash < 0 ? rest : rest.slice(0, hash);
  const servername = hash < 0 ? undefined : parseServername(rest.slice(hash + 1));
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d*))?$/.exec(hostPort);
  // A bare IPv6 address has colons of its own: it takes the default port.
  const bareV6 = isIP(hostPort) === 6;
  const host = bareV6 ? hostPort : (m?.[1] ?? m?.[2] ?? '');
  const family = isIP(host);
  if (family === 0 || (m?.[1] !== undefined && family !== 6) || (!m && !bareV6)) {
    throw new Error(`ADDR must be an IP address (IPv6 in brackets when a port follows; a host name would need resolving first) in ${form}, e.g. ${tcp ? 'tcp://10.96.0.10' : 'tls://1.1.1.1#cloudflare-dns.com'}`);
  }
  const portText = bareV6 ? undefined : m?.[3];
  const port = portText === undefined ? defaultPort : Number(portText);
  if (portText !== undefined && (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)) {
    throw new Error(`PORT must be from 1 to 65535 in ${form} (${defaultPort} when left out)`);
  }
  return tcp ? { host, port, text: raw, tcp: true } : { host, port, text: raw, tls: { servername } };
}

/**
 * Parses the name a TLS upstream's certificate must match: a host name of letters, digits and hyphens (a trailing
 * dot is dropped), lower-cased. Throws for an IP address: without a name the address is what gets checked.
 */
export function parseServername(raw: string): string {
  const name = raw.toLowerCase().replace(/\.$/, '');
  if (isIP(name) !== 0) throw new Error('NAME must be a host name, not an IP address (without a name the certificate is checked against the upstream address)');
  const label = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
  if (name.length > 253 || !new RegExp(`^${label}(\\.${label})*$`).test(name)) {
    throw new Error('NAME must be a host name such as cloudflare-dns.com: the name the upstream certificate must match');
  }
  return name;
}

/** The address as logs show it: `tls://1.1.1.1:853` for DNS over TLS, `tcp://10.96.0.10:53` for TCP only, else `1.1.1.1:53`. */
export function describeUpstream(u: UpstreamAddress): string {
  const hp = isIP(u.host) === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
  return u.tls ? `tls://${hp}` : u.tcp ? `tcp://${hp}` : hp;
}

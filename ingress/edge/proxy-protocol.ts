// The PROXY protocol header that a load balancer (HAProxy `send-proxy`, AWS NLB, Hetzner, DigitalOcean ...) puts
// before the first byte of a TCP connection to say whom it relays: version 1 (one text line) and version 2
// (binary), as HAProxy's proxy-protocol.txt defines them. A pure parser over the bytes received so far: it answers
// `incomplete` while they are a valid beginning of a header, `invalid` as soon as they cannot be one (so a
// connection without a header is dropped at its first byte), and the header with its length once it is whole.
// Nothing past the header is read, so the caller hands those bytes on untouched.
import { isIP } from 'node:net';

/** An address and port from a header. */
export interface ProxyEndpoint {
  /** IPv4 dotted, or IPv6 in lower case (RFC 5952 form for version 2). */
  address: string;
  port: number;
}

/** A whole, valid header. */
export interface ProxyHeader {
  version: 1 | 2;
  /** Bytes the header takes at the start of the connection. */
  length: number;
  /**
   * The relayed client and the address it connected to. Undefined when the header asks the receiver to use the
   * connection's own addresses: a version 2 LOCAL command (the balancer's health check), version 1 UNKNOWN, and a
   * version 2 PROXY for a family or transport other than TCP over IPv4/IPv6 (the spec's fallback to UNSPEC).
   */
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
}

/** What the bytes received so far are. */
export type ProxyParse = { status: 'incomplete' } | { status: 'invalid'; reason: string } | { status: 'complete'; header: ProxyHeader };

/** The longest version 1 line, CRLF included: `PROXY UNKNOWN` with two full IPv6 addresses and ports (the spec's 107). */
export const v1MaxLength = 107;
/** The largest version 2 address-and-TLV block accepted (the 16-bit length field could say 65,535). */
export const v2MaxBlockLength = 4096;

const v2Signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const v1Prefix = Buffer.from('PROXY ', 'latin1');

const incomplete: ProxyParse = { status: 'incomplete' };
const invalid = (reason: string): ProxyParse => ({ status: 'invalid', reason });

/** Parses the header at the start of `data`, the bytes received so far; never reads past the header. */
export function parseProxyHeader(data: Uint8Array): ProxyParse {
  if (data.length === 0) return incomplete;
  if (data[0] === 0x0d) return parseV2(data);
  if (data[0] === 0x50) return parseV1(data);
  return invalid('the connection does not start with a PROXY protocol header');
}

function parseV1(data: Uint8Array): ProxyParse {
  const prefix = Math.min(data.length, v1Prefix.length);
  for (let i = 0; i < prefix; i++) if (data[i] !== v1Prefix[i]) return invalid('the connection does not start with a PROXY protocol header');
  // The line is printable US-ASCII up to CRLF; a lone CR or LF is not an end of line (the spec forbids tolerating it).
  const scan = Math.min(data.length, v1MaxLength);
  for (let i = v1Prefix.length; i < scan; i++) {
    const c = data[i]!;
    if (c === 0x0d) {
      if (i + 1 >= data.length) return incomplete;
      if (data[i + 1] !== 0x0a) return invalid('the version 1 line has a CR without LF');
      return v1Line(Buffer.from(data.buffer, data.byteOffset, i).toString('latin1'), i + 2);
    }
    if (c < 0x20 || c > 0x7e) return invalid('the version 1 line has a byte that is not printable US-ASCII before its CRLF');
  }
  return data.length >= v1MaxLength ? invalid(`the version 1 line has no CRLF within ${v1MaxLength} bytes`) : incomplete;
}

const v4Part = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const v4Shape = new RegExp(`^${v4Part}(?:\\.${v4Part}){3}$`);
const portShape = /^(?:0|[1-9][0-9]{0,4})$/;

function v1Line(line: string, length: number): ProxyParse {
  const fields = line.split(' ');
  // "For UNKNOWN, the rest of the line before the CRLF may be omitted by the sender, and the receiver must ignore
  // anything presented before the CRLF."
  if (fields[1] === 'UNKNOWN') return { status: 'complete', header: { version: 1, length } };
  if (fields.length !== 6) return invalid('the version 1 line is not "PROXY TCP4|TCP6 SOURCE DESTINATION SPORT DPORT"');
  const [, family, src = '', dst = '', sport = '', dport = ''] = fields;
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`the version 1 protocol ${JSON.stringify(family)} is not TCP4, TCP6 or UNKNOWN`);
  const ok = family === 'TCP4' ? (a: string) => v4Shape.test(a) : v6Text;
  if (!ok(src) || !ok(dst)) return invalid(`the version 1 addresses are not both ${family === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  if (!portOk(sport) || !portOk(dport)) return invalid('the version 1 ports are not both numbers from 0 to 65535 without leading zeros');
  const text = (a: string) => (family === 'TCP6' ? a.toLowerCase() : a);
  return { status: 'complete', header: { version: 1, length, source: { address: text(src), port: Number(sport) }, destination: { address: text(dst), port: Number(dport) } } };
}

const portOk = (p: string) => portShape.test(p) && Number(p) <= 65535;

/** An IPv6 address as text (a dotted IPv4 tail too: senders print mapped addresses so); never a zone index. */
const v6Text = (a: string): boolean => isIP(a) === 6 && !a.includes('%');

function parseV2(data: Uint8Array): ProxyParse {
  const prefix = Math.min(data.length, v2Signature.length);
  for (let i = 0; i < prefix; i++) if (data[i] !== v2Signature[i]) return invalid('the connection does not start with a PROXY protocol header');
  if (data.length < 16) return data.length > 12 && data[12]! >> 4 !== 2 ? invalid(`the version 2 header has version ${data[12]! >> 4}, not 2`) : incomplete;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`the version 2 header has version ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`the version 2 header has command ${command}, neither LOCAL (0) nor PROXY (1)`);
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  if (family > 3 || transport > 2) return invalid(`the version 2 header has address family ${family} and transport ${transport}, outside the spec's 0-3 and 0-2`);
  const block = (data[14]! << 8) | data[15]!;
  if (block > v2MaxBlockLength) return invalid(`the version 2 header says ${block} bytes of addresses and TLVs follow, more than the ${v2MaxBlockLength} accepted`);
  const length = 16 + block;
  if (data.length < length) return incomplete;
  // LOCAL: "the receiver must use the real connection endpoints and discard the protocol block including the family".
  if (command === 0) return { status: 'complete', header: { version: 2, length } };
  // AF_INET, AF_INET6, AF_UNIX: fixed address sizes, then TLVs; AF_UNSPEC: the block is not to be read.
  const addressBytes = [0, 12, 36, 216][family]!;
  if (block < addressBytes) return invalid(`the version 2 header's ${block}-byte block is too short for its ${['', 'IPv4', 'IPv6', 'UNIX'][family]} addresses (${addressBytes} bytes)`);
  if (family !== 0) {
    const tlvError = checkTlvs(data, 16 + addressBytes, length);
    if (tlvError) return invalid(tlvError);
  }
  if ((family !== 1 && family !== 2) || transport !== 1) return { status: 'complete', header: { version: 2, length } };
  const size = family === 1 ? 4 : 16;
  const text = family === 1 ? v4FromBytes : v6FromBytes;
  const ports = 16 + 2 * size;
  return {
    status: 'complete',
    header: {
      version: 2,
      length,
      source: { address: text(data.subarray(16, 16 + size)), port: (data[ports]! << 8) | data[ports + 1]! },
      destination: { address: text(data.subarray(16 + size, ports)), port: (data[ports + 2]! << 8) | data[ports + 3]! },
    },
  };
}

/** Walks the TLVs between `from` and `end` (each: type, 16-bit length, value); a message when one overruns the header. */
function checkTlvs(data: Uint8Array, from: number, end: number): string | undefined {
  let at = from;
  while (at < end) {
    if (end - at < 3) return `the version 2 header ends inside a TLV's type and length (${end - at} bytes left)`;
    const length = (data[at + 1]! << 8) | data[at + 2]!;
    if (at + 3 + length > end) return `the version 2 header has a TLV of type 0x${data[at]!.toString(16).padStart(2, '0')} whose ${length} bytes run past the header`;
    at += 3 + length;
  }
  return undefined;
}

const v4FromBytes = (b: Uint8Array): string => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

/** An IPv6 address in RFC 5952 form: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
export function v6FromBytes(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  return best === -1 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLength))}`;
}

/**
 * The version 1 header a relay sends before the client's bytes, as nginx's `proxy_protocol on` does: `PROXY TCP4`
 * (or `TCP6`) with the client's and the destination's address and port. The spec wants both addresses of one family;
 * when they are not (and when one is not an address at all), `PROXY UNKNOWN`, which tells the receiver to use the
 * connection's own addresses. IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) are written
 * as IPv4.
 */
export function proxyHeaderV1(source: ProxyEndpoint, destination: ProxyEndpoint): Buffer {
  const src = plainAddress(source.address);
  const dst = plainAddress(destination.address);
  const family = isIP(src);
  if (family === 0 || family !== isIP(dst)) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY TCP${family} ${src} ${dst} ${source.port} ${destination.port}\r\n`, 'latin1');
}

/** An address without an IPv4-mapped prefix or zone index, lower case. */
function plainAddress(a: string): string {
  const s = a.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  return mapped ? mapped[1]! : s;
}

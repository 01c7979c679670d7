// The server name (SNI, RFC 6066) a TLS client asks for, read from its ClientHello (RFC 8446 §4.1.2; the same
// layout in TLS 1.0-1.2) before any TLS is spoken, so a connection can be passed through whole. A pure parser over
// the bytes received so far: `incomplete` while they are a valid beginning of a ClientHello within the size cap,
// `invalid` as soon as they cannot be one (the caller then hands the connection to the TLS server, which answers
// such bytes itself), and the name once the whole ClientHello is in. Nothing is consumed: the caller replays the
// bytes as they came.

/** What the bytes received so far are. */
export type HelloParse = { status: 'incomplete' } | { status: 'invalid'; reason: string } | { status: 'complete'; serverName?: string };

/** The largest ClientHello message read (its body; one record's worth): a longer one is not looked into. */
export const maxHelloLength = 16_384;

const incomplete: HelloParse = { status: 'incomplete' };
const invalid = (reason: string): HelloParse => ({ status: 'invalid', reason });

const handshakeRecord = 0x16;
const clientHello = 0x01;
const serverNameExtension = 0x0000;
const hostName = 0x00;

/** Reads the server name from the ClientHello at the start of `data`, which may span several TLS records. */
export function parseClientHello(data: Uint8Array): HelloParse {
  // The handshake bytes, unwrapped from as many records as have arrived.
  const parts: Uint8Array[] = [];
  let have = 0;
  let wanted = -1;
  for (let at = 0; at < data.length; ) {
    if (data[at] !== handshakeRecord) return invalid(at === 0 ? 'the connection does not start with a TLS handshake record' : 'a record other than handshake came inside the ClientHello');
    if (data.length - at < 5) return incomplete;
    if (data[at + 1] !== 0x03) return invalid(`the record has version ${data[at + 1]}.${data[at + 2]}, not 3.x`);
    const length = (data[at + 3]! << 8) | data[at + 4]!;
    if (length === 0 || length > 16_384) return invalid(`a handshake record of ${length} bytes`);
    const end = Math.min(data.length, at + 5 + length);
    parts.push(data.subarray(at + 5, end));
    have += end - at - 5;
    if (wanted < 0 && have >= 4) {
      const head = Buffer.concat(parts);
      if (head[0] !== clientHello) return invalid(`the first handshake message is of type ${head[0]}, not ClientHello`);
      wanted = head.readUIntBE(1, 3);
      if (wanted > maxHelloLength) return invalid(`the ClientHello says ${wanted} bytes, more than the ${maxHelloLength} looked into`);
    }
    if (wanted >= 0 && have >= 4 + wanted) return helloBody(Buffer.concat(parts).subarray(4, 4 + wanted));
    at = end;
  }
  return incomplete;
}

/** A reader over the ClientHello body that reports running past its end as `undefined`. */
class Cursor {
  readonly #b: Uint8Array;
  at = 0;
  constructor(b: Uint8Array) {
    this.#b = b;
  }
  get left(): number {
    return this.#b.length - this.at;
  }
  u8(): number | undefined {
    return this.left >= 1 ? this.#b[this.at++] : undefined;
  }
  u16(): number | undefined {
    if (this.left < 2) return undefined;
    const v = (this.#b[this.at]! << 8) | this.#b[this.at + 1]!;
    this.at += 2;
    return v;
  }
  bytes(n: number): Uint8Array | undefined {
    if (this.left < n) return undefined;
    const v = this.#b.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
}

function helloBody(body: Uint8Array): HelloParse {
  const c = new Cursor(body);
  // legacy_version, random, legacy_session_id <0..32>, cipher_suites <2..2^16-2>, legacy_compression_methods <1..2^8-1>
  if (c.bytes(2 + 32) === undefined) return invalid('the ClientHello ends inside its version and random');
  const session = c.u8();
  if (session === undefined || session > 32 || c.bytes(session) === undefined) return invalid('the ClientHello has a bad session id');
  const suites = c.u16();
  if (suites === undefined || suites < 2 || suites % 2 !== 0 || c.bytes(suites) === undefined) return invalid('the ClientHello has a bad cipher suite list');
  const compression = c.u8();
  if (compression === undefined || compression < 1 || c.bytes(compression) === undefined) return invalid('the ClientHello has a bad compression method list');
  // Before TLS 1.2 a ClientHello may end here, without extensions.
  if (c.left === 0) return { status: 'complete' };
  const extensionsLength = c.u16();
  if (extensionsLength === undefined || extensionsLength !== c.left) return invalid('the ClientHello extensions do not fill the rest of the message');
  let serverName: string | undefined;
  const seen = new Set<number>();
  while (c.left > 0) {
    const type = c.u16();
    const length = c.u16();
    const data = length === undefined ? undefined : c.bytes(length);
    if (type === undefined || data === undefined) return invalid('a ClientHello extension runs past the message');
    // RFC 8446 §4.2: no extension type twice (OpenSSL refuses it): one name for us and another for the TLS stack
    // must not be possible.
    if (seen.has(type)) return invalid(`the ClientHello has extension ${type} twice`);
    seen.add(type);
    if (type !== serverNameExtension) continue;
    const name = serverNameOf(data);
    if (typeof name === 'object') return invalid(name.reason);
    serverName = name;
  }
  return serverName === undefined ? { status: 'complete' } : { status: 'complete', serverName };
}

/** The host_name of a server_name extension, lower-case; undefined when it names none; a reason when malformed. */
function serverNameOf(data: Uint8Array): string | undefined | { reason: string } {
  const c = new Cursor(data);
  const listLength = c.u16();
  if (listLength === undefined || listLength !== c.left || listLength === 0) return { reason: 'the server_name extension has a bad list length' };
  let name: string | undefined;
  while (c.left > 0) {
    const type = c.u8();
    const length = c.u16();
    const value = length === undefined ? undefined : c.bytes(length);
    if (type === undefined || value === undefined) return { reason: 'a server name runs past its extension' };
    if (type !== hostName) continue;
    // RFC 6066 §3: one name per type; a host name is ASCII, with no trailing dot.
    if (name !== undefined) return { reason: 'the server_name extension has two host names' };
    const text = Buffer.from(value).toString('latin1');
    if (!/^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$/.test(text) || text.includes('..')) return { reason: `the server name ${JSON.stringify(text)} is not a DNS name` };
    name = text.toLowerCase();
  }
  return name;
}

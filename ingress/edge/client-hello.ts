// The server name (SNI, RFC 6066) a TLS client asks for, read from its ClientHello (RFC 8446 §4.1.2; the same
// layout in TLS 1.0-1.2) before any TLS is spoken, so a connection can be passed through whole. A pure parser over
// the bytes received so far: `incomplete` while they are a valid beginning of a ClientHello within the size cap,
// `invalid` as soon as they cannot be one (the caller then hands the connection to the TLS server, which answers
// such bytes itself), and the name once the whole ClientHello is in. Nothing is consumed: the caller replays the
// bytes as they came. ClientHelloReader reads them as they arrive, each byte once, so a ClientHello sent in many
// tiny records costs no more than one sent whole.

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
  return new ClientHelloReader().push(data);
}

/**
 * Reads a ClientHello as its bytes arrive, each byte looked at once (the handshake bytes are copied once into a
 * buffer of the length the ClientHello declares, at most maxHelloLength): after each push, the same answer
 * parseClientHello gives for all the bytes pushed so far. Once the answer is not `incomplete`, it stays.
 */
export class ClientHelloReader {
  #result: HelloParse = incomplete;
  #records = 0;
  /** The header of the record being read, while it is not whole. */
  readonly #header = new Uint8Array(5);
  #headerHave = 0;
  /** Payload bytes of the current record still to come. */
  #recordLeft = 0;
  /** The handshake message's type and length, while they are not whole. */
  readonly #head = new Uint8Array(4);
  #headHave = 0;
  #body: Uint8Array | undefined;
  #bodyHave = 0;

  /** Takes the next bytes of the connection; what all the bytes so far are. */
  push(chunk: Uint8Array): HelloParse {
    let at = 0;
    while (this.#result.status === 'incomplete' && at < chunk.length) {
      at = this.#recordLeft === 0 ? this.#recordHeader(chunk, at) : this.#payload(chunk, at);
    }
    return this.#result;
  }

  #recordHeader(chunk: Uint8Array, at: number): number {
    if (this.#headerHave === 0 && chunk[at] !== handshakeRecord) {
      this.#result = invalid(this.#records === 0 ? 'the connection does not start with a TLS handshake record' : 'a record other than handshake came inside the ClientHello');
      return at;
    }
    const n = Math.min(5 - this.#headerHave, chunk.length - at);
    this.#header.set(chunk.subarray(at, at + n), this.#headerHave);
    this.#headerHave += n;
    if (this.#headerHave < 5) return at + n;
    this.#headerHave = 0;
    this.#records++;
    const h = this.#header;
    const length = (h[3]! << 8) | h[4]!;
    if (h[1] !== 0x03) this.#result = invalid(`the record has version ${h[1]}.${h[2]}, not 3.x`);
    else if (length === 0 || length > 16_384) this.#result = invalid(`a handshake record of ${length} bytes`);
    else this.#recordLeft = length;
    return at + n;
  }

  #payload(chunk: Uint8Array, at: number): number {
    const end = at + Math.min(this.#recordLeft, chunk.length - at);
    this.#recordLeft -= end - at;
    let from = at;
    if (this.#body === undefined) {
      const n = Math.min(4 - this.#headHave, end - from);
      this.#head.set(chunk.subarray(from, from + n), this.#headHave);
      this.#headHave += n;
      from += n;
      if (this.#headHave < 4) return end;
      if (this.#head[0] !== clientHello) {
        this.#result = invalid(`the first handshake message is of type ${this.#head[0]}, not ClientHello`);
        return end;
      }
      const wanted = (this.#head[1]! << 16) | (this.#head[2]! << 8) | this.#head[3]!;
      if (wanted > maxHelloLength) {
        this.#result = invalid(`the ClientHello says ${wanted} bytes, more than the ${maxHelloLength} looked into`);
        return end;
      }
      this.#body = new Uint8Array(wanted);
    }
    const n = Math.min(this.#body.length - this.#bodyHave, end - from);
    this.#body.set(chunk.subarray(from, from + n), this.#bodyHave);
    this.#bodyHave += n;
    // Bytes after the ClientHello (a change_cipher_spec, early data) are not looked at.
    if (this.#bodyHave === this.#body.length) this.#result = helloBody(this.#body);
    return end;
  }
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

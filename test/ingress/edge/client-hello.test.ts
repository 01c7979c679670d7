// The ClientHello parser as tables: real ClientHellos that Node's TLS client (OpenSSL) sends, cut short at every
// length and re-split into several records, and made-up ones for each way a ClientHello can be malformed. Then the
// incremental reader: the same answers chunk by chunk, and linear work for a ClientHello in thousands of records.
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientHelloReader, maxHelloLength, parseClientHello, type HelloParse } from '../../../ingress/edge/client-hello.ts';

/** The first bytes a real TLS client sends to a server, for `servername` (none: no SNI). */
async function capture(server: Server, servername: string | undefined, alpn?: string[]): Promise<Buffer> {
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
  const port = (server.address() as AddressInfo).port;
  const c = connect({ host: '127.0.0.1', port, ...(servername === undefined ? {} : { servername }), ...(alpn ? { ALPNProtocols: alpn } : {}) });
  c.on('error', () => {});
  const bytes = await got;
  c.destroy();
  return bytes;
}

/** The handshake message inside a single-record hello, cut into records of at most `size` bytes. */
function resplit(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) {
    const part = message.subarray(i, i + size);
    out.push(Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 255]), part);
  }
  return Buffer.concat(out);
}

const u16 = (n: number) => [n >> 8, n & 255];
const ext = (type: number, data: number[]) => [...u16(type), ...u16(data.length), ...data];
const sni = (...names: Array<[number, string]>) => {
  const list = names.flatMap(([type, name]) => [type, ...u16(name.length), ...Buffer.from(name, 'latin1')]);
  return ext(0, [...u16(list.length), ...list]);
};
/** A made-up ClientHello record: `extensions` as bytes (undefined: none at all), or `body` instead of the usual one. */
function hello(o: { extensions?: number[]; extensionsLength?: number; body?: number[]; type?: number; version?: number; session?: number }): Buffer {
  const ext = o.extensions === undefined ? [] : [...u16(o.extensionsLength ?? o.extensions.length), ...o.extensions];
  const body = o.body ?? [3, 3, ...new Array(32).fill(7), o.session ?? 0, ...new Array(Math.min(o.session ?? 0, 40)).fill(1), 0, 2, 0x13, 0x01, 1, 0, ...ext];
  const message = [o.type ?? 1, 0, ...u16(body.length), ...body];
  return Buffer.from([0x16, 0x03, o.version ?? 0x01, ...u16(message.length), ...message]);
}

describe('parseClientHello', () => {
  const server = createServer();
  const real: Record<string, Buffer> = {};
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    real.named = await capture(server, 'Pass.Example.TEST', ['h2', 'http/1.1']);
    real.unnamed = await capture(server, undefined);
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('reads the name a real client asks for, lower-case', () => {
    expect(parseClientHello(real.named!)).toEqual({ status: 'complete', serverName: 'pass.example.test' });
  });
  it('a real client without SNI: whole, no name', () => {
    expect(parseClientHello(real.unnamed!)).toEqual({ status: 'complete' });
  });
  it('every cut of a real ClientHello needs more bytes', () => {
    const bytes = real.named!;
    for (let n = 0; n < bytes.length; n++) expect(parseClientHello(bytes.subarray(0, n)), `${n} of ${bytes.length} bytes`).toEqual({ status: 'incomplete' });
  });
  it.each([1, 7, 100, 512])('a real ClientHello re-split into records of %i bytes', (size) => {
    const split = resplit(real.named!, size);
    expect(parseClientHello(split)).toEqual({ status: 'complete', serverName: 'pass.example.test' });
    // Cut inside a later record: more is needed.
    expect(parseClientHello(split.subarray(0, split.length - 1))).toEqual({ status: 'incomplete' });
  });
  it('bytes after the ClientHello (a change_cipher_spec, early data) are not looked at', () => {
    expect(parseClientHello(Buffer.concat([real.named!, Buffer.from([0x14, 0x03, 0x03, 0, 1, 1, 0x17, 0x03, 0x03])]))).toEqual({ status: 'complete', serverName: 'pass.example.test' });
  });

  const cases: Array<[string, Buffer, HelloParse | RegExp]> = [
    ['a made-up hello with one name', hello({ extensions: sni([0, 'a.test']) }), { status: 'complete', serverName: 'a.test' }],
    ['the name among other extensions', hello({ extensions: [...ext(0x10, [0, 3, 2, 0x68, 0x32]), ...sni([0, 'b.test']), ...ext(0x2b, [2, 3, 4])] }), { status: 'complete', serverName: 'b.test' }],
    ['no extensions at all (before TLS 1.2)', hello({}), { status: 'complete' }],
    ['empty extension list', hello({ extensions: [] }), { status: 'complete' }],
    ['a server name of another type only', hello({ extensions: sni([1, 'x']) }), { status: 'complete' }],
    ['a 32-byte session id', hello({ extensions: sni([0, 'c.test']), session: 32 }), { status: 'complete', serverName: 'c.test' }],
    ['record version 3.3', hello({ extensions: sni([0, 'd.test']), version: 3 }), { status: 'complete', serverName: 'd.test' }],
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /does not start with a TLS handshake/],
    ['a PROXY header (not read first)', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), /does not start with a TLS handshake/],
    ['an SSLv2-style hello', Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]), /does not start with a TLS handshake/],
    ['an application data record', Buffer.from([0x17, 0x03, 0x03, 0, 5]), /does not start with a TLS handshake/],
    ['record version 2.0', Buffer.from([0x16, 0x02, 0x00, 0, 5]), /version 2\.0/],
    ['an empty record', Buffer.from([0x16, 0x03, 0x01, 0, 0]), /record of 0 bytes/],
    ['a record over 2^14 bytes', Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01]), /record of 16385 bytes/],
    ['a ServerHello', hello({ type: 2, extensions: [] }), /type 2, not ClientHello/],
    ['an oversized ClientHello, refused from its header', Buffer.from([0x16, 0x03, 0x01, 0, 4, 1, ...[0, 0x40, 0x01]]), new RegExp(`16385 bytes, more than the ${maxHelloLength}`)],
    ['a non-handshake record inside a split hello', Buffer.concat([resplit(hello({ extensions: sni([0, 'e.test']) }), 10).subarray(0, 15), Buffer.from([0x17, 0x03, 0x03, 0, 1, 0])]), /record other than handshake/],
    ['a session id over 32 bytes', hello({ extensions: [], session: 33 }), /bad session id/],
    ['an odd cipher suite list', hello({ body: [3, 3, ...new Array(32).fill(0), 0, 0, 3, 1, 2, 3, 1, 0] }), /bad cipher suite list/],
    ['no compression methods', hello({ body: [3, 3, ...new Array(32).fill(0), 0, 0, 2, 0x13, 1, 0] }), /bad compression/],
    ['a body cut inside the random', hello({ body: [3, 3, 1, 2] }), /inside its version and random/],
    ['extension length longer than the rest', hello({ extensions: sni([0, 'f.test']), extensionsLength: 200 }), /do not fill the rest/],
    ['an extension running past the message', hello({ extensions: [0, 0x10, 0, 9, 1] }), /runs past the message/],
    ['the server_name extension twice', hello({ extensions: [...sni([0, 'g.test']), ...sni([0, 'h.test'])] }), /extension 0 twice/],
    ['two host names in one extension', hello({ extensions: sni([0, 'g.test'], [0, 'h.test']) }), /two host names/],
    ['an empty name list', hello({ extensions: ext(0, [0, 0]) }), /bad list length/],
    ['a name running past its extension', hello({ extensions: ext(0, [0, 4, 0, 0, 9, 0x61]) }), /runs past its extension/],
    ['a name with a trailing dot', hello({ extensions: sni([0, 'a.test.']) }), /is not a DNS name/],
    ['a name with a space', hello({ extensions: sni([0, 'a test']) }), /is not a DNS name/],
    ['a name with a NUL', hello({ extensions: sni([0, 'a.test\0.evil']) }), /is not a DNS name/],
    ['a name with empty labels', hello({ extensions: sni([0, 'a..test']) }), /is not a DNS name/],
    ['an empty name', hello({ extensions: sni([0, '']) }), /is not a DNS name/],
    ['a name over 253 bytes', hello({ extensions: sni([0, `${'a'.repeat(250)}.test`]) }), /is not a DNS name/],
  ];
  for (const [name, bytes, want] of cases) {
    it(name, () => {
      const r = parseClientHello(bytes);
      if (want instanceof RegExp) expect(r.status === 'invalid' ? r.reason : r).toMatch(want);
      else expect(r).toEqual(want);
    });
  }
});

describe('ClientHelloReader', () => {
  const server = createServer();
  let named: Buffer;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    named = await capture(server, 'pass.example.test', ['h2']);
  });
  afterAll(() => new Promise((r) => server.close(r)));

  /** The answers a reader gives for `bytes` pushed in pieces of `size`, one per piece. */
  const pushed = (bytes: Buffer, size: number): HelloParse[] => {
    const reader = new ClientHelloReader();
    const out: HelloParse[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(reader.push(bytes.subarray(i, i + size)));
    return out;
  };

  // [what, bytes, piece size]
  const cases: Array<[string, () => Buffer, number]> = [
    ['a real ClientHello, byte by byte', () => named, 1],
    ['a real ClientHello in pieces of 3', () => named, 3],
    ['a real ClientHello re-split into 7-byte records, byte by byte', () => resplit(named, 7), 1],
    ['re-split into 100-byte records, pieces of 13', () => resplit(named, 100), 13],
    ['an oversized ClientHello', () => Buffer.from([0x16, 0x03, 0x01, 0, 4, 1, 0, 0x40, 0x01]), 1],
    ['a non-handshake record after the first', () => Buffer.concat([resplit(named, 10).subarray(0, 15), Buffer.from([0x17, 0x03, 0x03, 0, 1, 0])]), 2],
    ['a ServerHello', () => hello({ type: 2, extensions: [] }), 1],
    ['an empty record', () => Buffer.from([0x16, 0x03, 0x01, 0, 0, 0x16]), 1],
    ['a ClientHello of 0 bytes', () => Buffer.from([0x16, 0x03, 0x01, 0, 4, 1, 0, 0, 0]), 1],
  ];
  for (const [name, bytes, size] of cases) {
    it(`${name}: after each piece, what parseClientHello says of all the bytes so far`, () => {
      const b = bytes();
      const want = [];
      for (let i = size; i < b.length + size; i += size) want.push(parseClientHello(b.subarray(0, Math.min(i, b.length))));
      expect(pushed(b, size)).toEqual(want);
    });
  }

  it('keeps its answer once it has one (later bytes are not looked at)', () => {
    const reader = new ClientHelloReader();
    expect(reader.push(named)).toEqual({ status: 'complete', serverName: 'pass.example.test' });
    expect(reader.push(Buffer.from('garbage'))).toEqual({ status: 'complete', serverName: 'pass.example.test' });
  });

  it('a ClientHello of the largest size in one-byte records, pushed one record at a time, is read in linear time', () => {
    // 16,384 bytes declared, each in its own 6-byte record: about 98 KB. Re-reading everything on each push, as
    // before, walked some 800 million bytes (seconds); read once it is a few milliseconds.
    const body = [...hello({ extensions: sni([0, 'big.test']) }).subarray(9)];
    const padding = ext(0x15, new Array(maxHelloLength - body.length - 4).fill(0));
    const bodyLength = body.length + padding.length;
    const extensionsAt = 2 + 32 + 1 + 4 + 2;
    body.splice(extensionsAt, 2, ...u16(body.length - extensionsAt - 2 + padding.length));
    const message = [1, 0, ...u16(bodyLength), ...body, ...padding];
    expect(message.length).toBe(4 + maxHelloLength);
    const reader = new ClientHelloReader();
    const started = performance.now();
    let last: HelloParse = { status: 'incomplete' };
    for (const byte of message) last = reader.push(Buffer.from([0x16, 0x03, 0x01, 0, 1, byte]));
    const ms = performance.now() - started;
    expect(last).toEqual({ status: 'complete', serverName: 'big.test' });
    expect(ms).toBeLessThan(500);
  });
});

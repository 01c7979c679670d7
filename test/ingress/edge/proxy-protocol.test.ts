// The PROXY protocol parser as tables of byte sequences: whole headers of both versions, beginnings that need more
// bytes (truncated), and everything the spec says must abort the connection (malformed, oversized, not a header);
// and the version 1 header a relay writes, which the parser reads back.
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, proxyHeaderV1, v1MaxLength, v2MaxBlockLength, v6FromBytes, type ProxyHeader } from '../../../ingress/edge/proxy-protocol.ts';

const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const text = (s: string) => Buffer.from(s, 'latin1');

/** A version 2 header: version/command byte, family/transport byte, then the block (its length is filled in). */
function v2(versionCommand: number, familyTransport: number, block: number[] = [], declared = block.length): Buffer {
  return Buffer.from([...signature, versionCommand, familyTransport, declared >> 8, declared & 0xff, ...block]);
}
const ipv4Block = [192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb]; // 192.0.2.1:56324 -> 198.51.100.7:443
const ipv6Block = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x30, 0x39, 0x00, 0x50];
const tlv = (type: number, value: number[]) => [type, value.length >> 8, value.length & 0xff, ...value];
const with_ = (b: Buffer, extra: string) => Buffer.concat([b, text(extra)]);

const v4 = { source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.7', port: 443 } };
const v6 = { source: { address: '2001:db8::1', port: 12345 }, destination: { address: '2001:db8::2', port: 80 } };
const worstUnknown = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;

describe('parseProxyHeader: whole headers', () => {
  const cases: Array<[string, Buffer, ProxyHeader]> = [
    ['v1 TCP4', text('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n'), { version: 1, length: 45, ...v4 }],
    ['v1 TCP4, the request after it is not read', text('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n\r\n'), { version: 1, length: 45, ...v4 }],
    ['v1 TCP4 at its longest (56 bytes)', text('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'), { version: 1, length: 56, source: { address: '255.255.255.255', port: 65535 }, destination: { address: '255.255.255.255', port: 65535 } }],
    ['v1 TCP4 port 0', text('PROXY TCP4 0.0.0.0 10.0.0.1 0 80\r\n'), { version: 1, length: 34, source: { address: '0.0.0.0', port: 0 }, destination: { address: '10.0.0.1', port: 80 } }],
    ['v1 TCP6, upper case lowered', text('PROXY TCP6 2001:DB8::1 2001:db8::2 12345 80\r\n'), { version: 1, length: 45, ...v6 }],
    ['v1 TCP6 with a dotted IPv4 tail (as inet_ntop prints mapped addresses)', text('PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n'), { version: 1, length: 37, source: { address: '::ffff:192.0.2.1', port: 1 }, destination: { address: '::1', port: 2 } }],
    ['v1 UNKNOWN, short form: the socket is the client', text('PROXY UNKNOWN\r\n'), { version: 1, length: 15 }],
    ['v1 UNKNOWN, worst case of 107 bytes, the rest ignored', text(worstUnknown), { version: 1, length: 107 }],
    ['v2 PROXY TCP over IPv4', v2(0x21, 0x11, ipv4Block), { version: 2, length: 28, ...v4 }],
    ['v2 PROXY TCP over IPv6, RFC 5952 text', v2(0x21, 0x21, ipv6Block), { version: 2, length: 52, ...v6 }],
    ['v2 PROXY with TLVs (ALPN, authority, CRC, empty NOOP) skipped', v2(0x21, 0x11, [...ipv4Block, ...tlv(0x01, [0x68, 0x32]), ...tlv(0x02, [...text('a.test')]), ...tlv(0x03, [1, 2, 3, 4]), ...tlv(0x04, [])]), { version: 2, length: 28 + 5 + 9 + 7 + 3, ...v4 }],
    ['v2 PROXY with an AWS-style custom TLV (0xEA)', v2(0x21, 0x11, [...ipv4Block, ...tlv(0xea, [0x01, ...text('vpce-0123456789abcdef')])]), { version: 2, length: 28 + 3 + 22, ...v4 }],
    ['v2 LOCAL (a health check): the socket is the client', v2(0x20, 0x00), { version: 2, length: 16 }],
    ['v2 LOCAL with an address block: discarded, family ignored', v2(0x20, 0x11, ipv4Block), { version: 2, length: 28 }],
    ['v2 LOCAL with an unreadable block: discarded unread', v2(0x20, 0x00, [1, 2]), { version: 2, length: 18 }],
    ['v2 PROXY UNSPEC: the socket is the client', v2(0x21, 0x00), { version: 2, length: 16 }],
    ['v2 PROXY UDP over IPv4: not TCP, the socket is the client', v2(0x21, 0x12, ipv4Block), { version: 2, length: 28 }],
    ['v2 PROXY AF_UNIX stream: the socket is the client', v2(0x21, 0x31, new Array(216).fill(0)), { version: 2, length: 232 }],
    ['v2 PROXY with the largest block accepted', v2(0x21, 0x11, [...ipv4Block, ...tlv(0x04, new Array(v2MaxBlockLength - 12 - 3).fill(0))]), { version: 2, length: 16 + v2MaxBlockLength, ...v4 }],
    ['v2 followed by a TLS record', Buffer.concat([v2(0x21, 0x11, ipv4Block), Buffer.from([0x16, 0x03, 0x01])]), { version: 2, length: 28, ...v4 }],
  ];
  for (const [name, bytes, header] of cases) it(name, () => expect(parseProxyHeader(bytes)).toEqual({ status: 'complete', header }));
});

describe('parseProxyHeader: beginnings that need more bytes', () => {
  const whole = v2(0x21, 0x11, ipv4Block);
  const cases: Array<[string, Buffer]> = [
    ['nothing yet', Buffer.alloc(0)],
    ['"P"', text('P')],
    ['"PROXY" without its space', text('PROXY')],
    ['v1 without CRLF', text('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443')],
    ['v1 ending in CR', text('PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r')],
    ['v1 UNKNOWN, 106 bytes without CRLF', text(worstUnknown.slice(0, 106))],
    ['v2 first byte', whole.subarray(0, 1)],
    ['v2 signature only', whole.subarray(0, 12)],
    ['v2 15 of its 16 fixed bytes', whole.subarray(0, 15)],
    ['v2 fixed part, no addresses yet', whole.subarray(0, 16)],
    ['v2 one address byte short', whole.subarray(0, 27)],
    ['v2 TLVs truncated by the stream', v2(0x21, 0x11, [...ipv4Block, ...tlv(0x02, [1, 2, 3])]).subarray(0, 30)],
  ];
  for (const [name, bytes] of cases) it(name, () => expect(parseProxyHeader(bytes)).toEqual({ status: 'incomplete' }));
});

describe('parseProxyHeader: what aborts the connection', () => {
  const good = 'PROXY TCP4 192.0.2.1 198.51.100.7 56324 443';
  const cases: Array<[string, Buffer, RegExp]> = [
    ['plain HTTP', text('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), /does not start with a PROXY/],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), /does not start with a PROXY/],
    ['HTTP/2 preface', text('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), /does not start with a PROXY/],
    ['"PROXZ"', text('PROXZ TCP4'), /does not start with a PROXY/],
    ['lower-case "proxy"', text(`${good.toLowerCase()}\r\n`), /does not start with a PROXY/],
    ['a wrong second byte, at once', text('PX'), /does not start with a PROXY/],
    ['v1 ending in LF alone', text(`${good}\n`), /not printable/],
    ['v1 CR followed by something else', text(`${good}\rX`), /CR without LF/],
    ['v1 two spaces', text('PROXY  TCP4 192.0.2.1 198.51.100.7 56324 443\r\n'), /is not "PROXY TCP4/],
    ['v1 tab for space', text('PROXY TCP4\t192.0.2.1 198.51.100.7 56324 443\r\n'), /not printable/],
    ['v1 NUL byte', text('PROXY TCP4 192.0.2.1\0 198.51.100.7 56324 443\r\n'), /not printable/],
    ['v1 protocol TCP5', text('PROXY TCP5 192.0.2.1 198.51.100.7 56324 443\r\n'), /protocol "TCP5"/],
    ['v1 UDP4', text('PROXY UDP4 192.0.2.1 198.51.100.7 56324 443\r\n'), /protocol "UDP4"/],
    ['v1 a field missing', text('PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n'), /is not "PROXY TCP4/],
    ['v1 a field too many', text(`${good} 1\r\n`), /is not "PROXY TCP4/],
    ['v1 trailing space', text(`${good} \r\n`), /is not "PROXY TCP4/],
    ['v1 empty line after PROXY', text('PROXY \r\n'), /is not "PROXY TCP4/],
    ['v1 TCP4 with an IPv6 source', text('PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n'), /not both IPv4/],
    ['v1 TCP6 with IPv4 addresses', text('PROXY TCP6 192.0.2.1 198.51.100.7 1 2\r\n'), /not both IPv6/],
    ['v1 IPv4 with a leading zero', text('PROXY TCP4 192.0.2.01 198.51.100.7 1 2\r\n'), /not both IPv4/],
    ['v1 IPv4 octet 256', text('PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n'), /not both IPv4/],
    ['v1 IPv4 with three parts', text('PROXY TCP4 192.0.2 198.51.100.7 1 2\r\n'), /not both IPv4/],
    ['v1 IPv6 with a zone', text('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), /not both IPv6/],
    ['v1 IPv6 with two "::"', text('PROXY TCP6 2001::db8::1 ::1 1 2\r\n'), /not both IPv6/],
    ['v1 port 65536', text('PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n'), /ports/],
    ['v1 port with a leading zero', text('PROXY TCP4 192.0.2.1 198.51.100.7 080 443\r\n'), /ports/],
    ['v1 negative port', text('PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n'), /ports/],
    ['v1 port with a sign', text('PROXY TCP4 192.0.2.1 198.51.100.7 +1 443\r\n'), /ports/],
    ['v1 oversized: 107 bytes without CRLF', text(`PROXY UNKNOWN ${'x'.repeat(v1MaxLength)}`), /no CRLF within 107/],
    ['v1 oversized: CRLF at bytes 108-109', text(`${worstUnknown.slice(0, 105)}ff\r\n`), /no CRLF within 107/],
    ['v2 signature broken at byte 5', Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01]), /does not start with a PROXY/],
    ['v2 version 1 in the version nibble, at byte 13', Buffer.from([...signature, 0x11]), /version 1, not 2/],
    ['v2 version 3', v2(0x31, 0x11, ipv4Block), /version 3, not 2/],
    ['v2 command 2', v2(0x22, 0x11, ipv4Block), /command 2/],
    ['v2 command 15', v2(0x2f, 0x11, ipv4Block), /command 15/],
    ['v2 address family 4', v2(0x21, 0x41, ipv4Block), /family 4/],
    ['v2 transport 3', v2(0x21, 0x13, ipv4Block), /transport 3/],
    ['v2 oversized block, refused before it arrives', v2(0x21, 0x11, [], v2MaxBlockLength + 1), /4097 bytes .* more than the 4096/],
    ['v2 the largest length field', v2(0x21, 0x11, [], 0xffff), /65535 bytes/],
    ['v2 IPv4 block too short for its addresses', v2(0x21, 0x11, ipv4Block.slice(0, 8)), /8-byte block is too short for its IPv4/],
    ['v2 IPv6 family with an IPv4-sized block', v2(0x21, 0x21, ipv4Block), /12-byte block is too short for its IPv6/],
    ['v2 AF_UNIX with a short block', v2(0x21, 0x31, ipv6Block), /too short for its UNIX/],
    ['v2 TLV running past the header', v2(0x21, 0x11, [...ipv4Block, 0x02, 0x00, 0x0a, 0x61, 0x62]), /type 0x02 whose 10 bytes run past/],
    ['v2 two stray bytes after the addresses', v2(0x21, 0x11, [...ipv4Block, 0x04, 0x00]), /ends inside a TLV/],
    ['v2 a valid TLV then a TLV overrun', v2(0x21, 0x11, [...ipv4Block, ...tlv(0x04, []), 0xe0, 0xff, 0xff]), /type 0xe0 whose 65535 bytes/],
  ];
  for (const [name, bytes, reason] of cases) {
    it(name, () => {
      const r = parseProxyHeader(bytes);
      expect(r.status).toBe('invalid');
      expect(r.status === 'invalid' && r.reason).toMatch(reason);
    });
  }
});

describe('v6FromBytes (RFC 5952)', () => {
  const hex = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex');
  const cases: Array<[string, string]> = [
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'],
    ['2001:0000:0000:0001:0000:0000:0000:0001', '2001:0:0:1::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['fe80:0000:0000:0000:0000:0000:0000:0000', 'fe80::'],
    ['0000:0000:0000:0000:0000:ffff:c000:0201', '::ffff:c000:201'],
    ['2001:0DB8:AAAA:BBBB:CCCC:DDDD:EEEE:FFFF', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'],
  ];
  for (const [bytes, want] of cases) it(want, () => expect(v6FromBytes(hex(bytes))).toBe(want));
});

describe('proxyHeaderV1: the header sent to an endpoint', () => {
  const at = (address: string, port: number) => ({ address, port });
  const cases: Array<[string, ReturnType<typeof at>, ReturnType<typeof at>, string]> = [
    ['IPv4', at('192.0.2.1', 56324), at('198.51.100.7', 443), 'PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n'],
    ['IPv6', at('2001:db8::1', 12345), at('2001:db8::2', 80), 'PROXY TCP6 2001:db8::1 2001:db8::2 12345 80\r\n'],
    ['IPv4-mapped addresses of a dual-stack socket, as IPv4', at('::ffff:192.0.2.1', 1), at('::FFFF:198.51.100.7', 2), 'PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n'],
    ['mixed families: UNKNOWN', at('192.0.2.1', 1), at('2001:db8::2', 2), 'PROXY UNKNOWN\r\n'],
    ['not an address: UNKNOWN', at('', 0), at('198.51.100.7', 2), 'PROXY UNKNOWN\r\n'],
  ];
  for (const [name, source, destination, want] of cases) {
    it(name, () => {
      const header = proxyHeaderV1(source, destination);
      expect(header.toString('latin1')).toBe(want);
      // What the parser reads of it: the same addresses, or none for UNKNOWN.
      const parsed = parseProxyHeader(header);
      expect(parsed.status).toBe('complete');
      if (parsed.status === 'complete' && !want.includes('UNKNOWN')) expect(parsed.header.source?.port).toBe(source.port);
    });
  }
});

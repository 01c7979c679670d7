// The hand-encoded IFLA_LINKINFO of a VXLAN device against bytes written out from if_link.h (little-endian host),
// and decoding what the kernel sends back, including the attributes netplane does not set.
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';
import { decodeLinkInfo, encodeVxlanLinkInfo, nlattr, nlattrs } from '../../../overlay/kernel/vxlan.ts';

const attrs = { vni: 1, port: 8472, local: '10.0.0.1', underlayIndex: 2, learning: false };
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const KIND = '0a000100 76786c61 6e000000'; // len 10, IFLA_INFO_KIND, "vxlan\0", 2 bytes of padding
const DATA_V4 = [
  '34000280', //          len 52, IFLA_INFO_DATA | NLA_F_NESTED
  '08000100 01000000', // IFLA_VXLAN_ID 1
  '08000300 02000000', // IFLA_VXLAN_LINK 2
  '08000400 0a000001', // IFLA_VXLAN_LOCAL 10.0.0.1
  '05000700 00000000', // IFLA_VXLAN_LEARNING 0 (u8, padded)
  '06000f00 21180000', // IFLA_VXLAN_PORT 8472, big-endian
  '05001200 00000000', // IFLA_VXLAN_UDP_CSUM 0: the outer UDP checksum sent as zero (u8, padded)
].join('');

describe.runIf(endianness() === 'LE')('VXLAN IFLA_LINKINFO', () => {
  it('encodes kind "vxlan" and the IFLA_VXLAN_* attributes to the known bytes', () => {
    expect(encodeVxlanLinkInfo(attrs).toString('hex')).toBe(hex(KIND + DATA_V4).toString('hex'));
  });

  it('encodes an IPv6 local as IFLA_VXLAN_LOCAL6 and learning on as 1', () => {
    const buf = encodeVxlanLinkInfo({ ...attrs, local: 'fd00::1', learning: true });
    const data = nlattrs(nlattrs(buf).get(2)!);
    expect(data.get(17)!.toString('hex')).toBe('fd000000000000000000000000000001');
    expect(data.has(4)).toBe(false);
    expect(data.get(7)!.toString('hex')).toBe('01');
    // IPv6 receivers drop a zero UDP checksum unless told to take it: the kernel's default (checksummed) stays.
    expect(data.has(18)).toBe(false);
  });

  it.each([
    ['IPv4', attrs],
    ['IPv6', { ...attrs, local: 'fd00::1' }],
    ['learning', { ...attrs, learning: true, vni: 16777215, port: 4789 }],
  ])('decodes what it encodes (%s)', (_, a) => {
    expect(decodeLinkInfo(encodeVxlanLinkInfo(a))).toEqual({ kind: 'vxlan', vxlan: a });
  });

  it('decodes a kernel reply with more attributes, a local left out, and other kinds', () => {
    const ttl = nlattr(5, Uint8Array.of(0));
    const ageing = nlattr(8, hex('2c010000'));
    const data = Buffer.concat([hex('08000100 2a000000'), ttl, ageing, hex('05000700 01000000 06000f00 12b50000')]);
    const reply = Buffer.concat([hex(KIND), nlattr(2, data)]);
    expect(decodeLinkInfo(reply)).toEqual({ kind: 'vxlan', vxlan: { vni: 42, port: 4789, local: '0.0.0.0', underlayIndex: 0, learning: true } });
    expect(decodeLinkInfo(hex('08000100 69666200'))).toEqual({ kind: 'ifb' });
    expect(decodeLinkInfo(undefined)).toEqual({});
  });

  it.each([
    ['a bad local', { ...attrs, local: '10.0.0' }],
    ['a VNI of 2^32', { ...attrs, vni: 2 ** 32 }],
    ['port 0', { ...attrs, port: 0 }],
  ])('refuses %s', (_, a) => {
    expect(() => encodeVxlanLinkInfo(a)).toThrow(RangeError);
  });
});

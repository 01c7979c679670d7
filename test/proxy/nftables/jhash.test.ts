// The kernel's jhash as nft computes it over its registers, against values the kernel itself recorded (nft 1.0.6,
// Linux 6.18: `update @s { jhash <fields> mod 4294967295 seed S }` in an output chain, for a TCP SYN from ::1 to
// ::1 port 12345 and the reset back to the client's port). The kernel test checks the same in a live table.
import { describe, expect, it } from 'vitest';
import { addressKeyBytes, jhash, nftJhash, nodePortKeyBytes } from '../../../proxy/nftables/jhash.ts';

describe('jhash', () => {
  it('matches what the kernel computed for a NodePort key (8 bytes), a Service key (36) and a client and Service key (52)', () => {
    expect(nftJhash(nodePortKeyBytes('tcp', 12345), 0x6e71)).toBe(1199553827);
    expect(nftJhash(addressKeyBytes('::1', 'tcp', 12345), 0x6e71)).toBe(2822338711);
    const client = new Uint8Array([...addressKeyBytes('::1', 'tcp', 0).subarray(0, 16), ...addressKeyBytes('::1', 'tcp', 12345)]);
    expect(nftJhash(client, 0x6e70)).toBe(2911423651);
  });

  it('pads each field to 4 bytes in network order: protocol number, then port', () => {
    expect([...nodePortKeyBytes('UDP', 53)]).toEqual([17, 0, 0, 0, 0, 53, 0, 0]);
    expect([...nodePortKeyBytes('sctp', 0x1f90)]).toEqual([132, 0, 0, 0, 0x1f, 0x90, 0, 0]);
    expect([...addressKeyBytes('fd00:96::10', 'tcp', 80).subarray(0, 16)]).toEqual([0xfd, 0, 0, 0x96, ...Array(11).fill(0), 0x10]);
    expect(() => nodePortKeyBytes('icmp', 1)).toThrow(/unknown protocol/);
  });

  it('hashes lengths that are and are not multiples of 12, and the empty key, as lookup3 does', () => {
    // lookup3's published self-test: hashlittle("", 0) = 0xdeadbeef, hashlittle("Four score and seven years ago", 0).
    expect(jhash(new Uint8Array(0), 0)).toBe(0xdeadbeef);
    expect(jhash(new TextEncoder().encode('Four score and seven years ago'), 0)).toBe(0x17770551);
    expect(jhash(new TextEncoder().encode('Four score and seven years ago'), 1)).toBe(0xcd628161);
  });
});

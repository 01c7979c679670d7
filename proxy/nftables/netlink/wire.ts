// The nfnetlink wire format netplane writes and reads for nftables set elements: message types, attribute
// numbers (include/uapi/linux/netfilter/nfnetlink.h, nf_tables.h) and a writer of messages and attributes.
import { endianness } from 'node:os';
import type { Family } from '../model.ts';

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_GETSETELEM = 13;
export const NFT_MSG_DELSETELEM = 14;
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
export const NFTA_LIST_ELEM = 1;
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_DATA = 2;
export const NFTA_SET_ELEM_FLAGS = 3;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
export const NFTA_VERDICT_CODE = 1;
export const NFTA_VERDICT_CHAIN = 2;
const NLA_F_NESTED = 0x8000;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = 0x300;
/** NFPROTO_IPV4, NFPROTO_IPV6. */
const nfproto: Record<Family, number> = { 4: 2, 6: 10 };
export const LE = endianness() === 'LE';
/** nlmsghdr and nfgenmsg. */
export const HEADER = 16 + 4;

/** A growing buffer of netlink messages and attributes, in host byte order where netlink wants it. */
export class Writer {
  #buf = Buffer.alloc(1 << 16);
  #len = 0;
  #seq: number;

  constructor(firstSeq: number) {
    this.#seq = firstSeq;
  }

  get length(): number {
    return this.#len;
  }

  /** The bytes from `start` to the end, which are then dropped from the writer. */
  take(start: number): Buffer {
    const out = Buffer.from(this.#buf.subarray(start, this.#len));
    this.#len = start;
    return out;
  }

  truncate(at: number): void {
    this.#len = at;
  }

  /** A batch begin or end message; returns its sequence number. */
  control(type: number): number {
    const at = this.message(type, NLM_F_REQUEST, 0);
    // res_id (big-endian): the subsystem the batch is for.
    this.#buf.writeUInt16BE(NFNL_SUBSYS_NFTABLES, at + 18);
    return this.endMessage(at);
  }

  /** Starts a message (header and nfgenmsg); returns its offset. */
  message(type: number, flags: number, family: Family | 0): number {
    const at = this.#reserve(HEADER);
    this.#u16(type, at + 4);
    this.#u16(flags, at + 6);
    this.#u32(this.#seq++, at + 8);
    this.#u32(0, at + 12);
    this.#buf[at + 16] = family === 0 ? 0 : nfproto[family];
    this.#buf[at + 17] = 0; // NFNETLINK_V0
    this.#buf.writeUInt16BE(0, at + 18);
    return at;
  }

  /** Ends the message at `at` (its length); returns its sequence number. */
  endMessage(at: number): number {
    this.#u32(this.#len - at, at);
    return this.#read32(at + 8);
  }

  nest(type: number): number {
    const at = this.#reserve(4);
    this.#u16(type | NLA_F_NESTED, at + 2);
    return at;
  }

  end(at: number): void {
    this.#u16(this.#len - at, at);
  }

  bytes(type: number, value: Uint8Array): void {
    const at = this.#reserve((4 + value.length + 3) & ~3);
    this.#u16(4 + value.length, at);
    this.#u16(type, at + 2);
    this.#buf.set(value, at + 4);
    this.#buf.fill(0, at + 4 + value.length, this.#len);
  }

  /** The buffer written to; valid until the next reservation (take its offset first, then the buffer). */
  get buffer(): Buffer {
    return this.#buf;
  }

  /** An attribute of `length` zero bytes; returns where they start in `buffer`, for the caller to fill. */
  field(type: number, length: number): number {
    const at = this.#reserve((4 + length + 3) & ~3);
    this.#u16(4 + length, at);
    this.#u16(type, at + 2);
    // By hand: Buffer.fill costs more than the few bytes it would clear.
    for (let i = at + 4; i < this.#len; i++) this.#buf[i] = 0;
    return at + 4;
  }

  string(type: number, value: string): void {
    this.bytes(type, Buffer.from(value + '\0', 'latin1'));
  }

  #reserve(n: number): number {
    if (this.#len + n > this.#buf.length) {
      const bigger = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
      this.#buf.copy(bigger, 0, 0, this.#len);
      this.#buf = bigger;
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  #u16(v: number, at: number): void {
    this.#buf[at + (LE ? 0 : 1)] = v & 255;
    this.#buf[at + (LE ? 1 : 0)] = v >> 8;
  }

  #u32(v: number, at: number): void {
    if (LE) this.#buf.writeUInt32LE(v, at);
    else this.#buf.writeUInt32BE(v, at);
  }

  #read32(at: number): number {
    return LE ? this.#buf.readUInt32LE(at) : this.#buf.readUInt32BE(at);
  }
}

// nfnetlink batches of set-element additions and deletions (NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM between
// NFNL_MSG_BATCH_BEGIN and _END), as `nft -f` sends `add element` and `delete element`. Pure. A batch is one
// kernel transaction and must reach the kernel in one sendmsg, which the socket's send buffer bounds; a message's
// element list is one netlink attribute, which 16 bits of length bound.
import { endianness } from 'node:os';
import type { Family } from '../model.ts';
import { verdict, type ElementCodec } from './elements.ts';

/** Message types and attributes (include/uapi/linux/netfilter/nfnetlink.h, nf_tables.h). */
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
const NLA_F_NESTED = 0x8000;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
/** NFPROTO_IPV4, NFPROTO_IPV6. */
const nfproto: Record<Family, number> = { 4: 2, 6: 10 };
const LE = endianness() === 'LE';
const HEADER = 16 + 4; // nlmsghdr + nfgenmsg
/** An element list stays under the 65,535 bytes an attribute's length can say. */
const MAX_LIST = 60_000;

/** One element operation on one set: keys (and values, for additions to a map) as the renderer writes them. */
export interface ElementBatchOp {
  verb: 'add' | 'delete';
  family: Family;
  set: string;
  keys: readonly string[];
  /** Parallel to keys; undefined for a set, or for deletions. */
  values: readonly string[] | undefined;
}

/** The messages of one batch, and the sequence numbers of those the kernel acknowledges. */
export interface Batch {
  bytes: Buffer;
  /** Sequence numbers of the element messages (each asks for an ACK); the begin message's comes first. */
  seqs: number[];
  /** Parallel to seqs: the index in `ops` of the operation each message carries (part of). */
  ops: number[];
  begin: number;
}

/**
 * The batches carrying `ops` in order, each at most `maxBytes`. `codec` gives each set's encoding. `seq` numbers the
 * messages from `firstSeq`. Throws ElementTextError (elements.ts) for element text the codec cannot read.
 */
export function encodeBatches(ops: readonly ElementBatchOp[], codec: (family: Family, set: string) => ElementCodec, maxBytes: number, firstSeq = 1): Batch[] {
  const w = new Writer(firstSeq);
  const batches: Batch[] = [];
  const room = maxBytes - 2 * HEADER;
  let open: { begin: number; start: number; seqs: number[]; ops: number[] } | undefined;
  const close = () => {
    if (!open) return;
    w.control(NFNL_MSG_BATCH_END);
    batches.push({ bytes: w.take(open.start), seqs: open.seqs, ops: open.ops, begin: open.begin });
    open = undefined;
  };
  for (const [index, op] of ops.entries()) {
    const c = codec(op.family, op.set);
    const type = (NFNL_SUBSYS_NFTABLES << 8) | (op.verb === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
    const flags = NLM_F_REQUEST | NLM_F_ACK | (op.verb === 'add' ? NLM_F_CREATE : 0);
    for (let i = 0; i < op.keys.length; ) {
      // One message: as many elements as fit in the list attribute and in what is left of the batch.
      if (open && w.length - open.start + HEADER + 4096 > room) close();
      if (!open) {
        const start = w.length;
        open = { begin: w.control(NFNL_MSG_BATCH_BEGIN), start, seqs: [], ops: [] };
      }
      const budget = Math.min(MAX_LIST, room - (w.length - open.start) - HEADER - 64);
      const msg = w.message(type, flags, op.family);
      w.string(NFTA_SET_ELEM_LIST_TABLE, 'netplane');
      w.string(NFTA_SET_ELEM_LIST_SET, op.set);
      const list = w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
      const listStart = w.length;
      for (; i < op.keys.length; i++) {
        const mark = w.length;
        const elem = w.nest(NFTA_LIST_ELEM);
        const key = w.nest(NFTA_SET_ELEM_KEY);
        const at = w.field(NFTA_DATA_VALUE, c.keyLength);
        c.key(op.keys[i]!, w.buffer, at);
        w.end(key);
        if (op.verb === 'add' && c.data && op.values) writeData(w, c.data, op.values[i]!);
        w.end(elem);
        if (w.length - listStart > budget) {
          if (mark === listStart) throw new RangeError(`an element of ${op.set} does not fit in a netlink message`);
          w.truncate(mark);
          break;
        }
      }
      w.end(list);
      open.seqs.push(w.endMessage(msg));
      open.ops.push(index);
    }
  }
  close();
  return batches;
}

function writeData(w: Writer, kind: NonNullable<ElementCodec['data']>, text: string): void {
  const data = w.nest(NFTA_SET_ELEM_DATA);
  if (kind.kind === 'bytes') {
    const at = w.field(NFTA_DATA_VALUE, kind.length);
    kind.write(text, w.buffer, at);
  }
  else {
    const v = verdict(text);
    const nest = w.nest(NFTA_DATA_VERDICT);
    const at = w.field(NFTA_VERDICT_CODE, 4);
    w.buffer.writeInt32BE(v.code, at);
    if (v.chain !== undefined) w.string(NFTA_VERDICT_CHAIN, v.chain);
    w.end(nest);
  }
  w.end(data);
}

/** A growing buffer of netlink messages and attributes, in host byte order where netlink wants it. */
class Writer {
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

const NFT_MSG_GETSETELEM = 13;
const NLM_F_DUMP = 0x300;
const NFTA_SET_ELEM_FLAGS = 3;

/** A set element as the kernel lists it: its key's bytes, and its value's bytes or verdict. */
export interface RawElement {
  key: Buffer;
  data?: Buffer;
  verdict?: { code: number; chain?: string };
  /** NFTA_SET_ELEM_FLAGS (an interval's end, say); 0 when absent. */
  flags: number;
}

/** The request to list the elements of one of netplane's sets (NFT_MSG_GETSETELEM, a dump). */
export function encodeElementDump(family: Family, set: string, seq: number): Buffer {
  const w = new Writer(seq);
  const msg = w.message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, family);
  w.string(NFTA_SET_ELEM_LIST_TABLE, 'netplane');
  w.string(NFTA_SET_ELEM_LIST_SET, set);
  w.endMessage(msg);
  return w.take(0);
}

/** The elements of one NFT_MSG_NEWSETELEM message of a dump (its payload after the netlink header); their bytes are views of it. */
export function parseElementList(payload: Buffer): RawElement[] {
  const out: RawElement[] = [];
  for (const [type, list] of attrs(payload, 4)) {
    if (type !== NFTA_SET_ELEM_LIST_ELEMENTS) continue;
    for (const [t, elem] of attrs(list, 0)) {
      if (t !== NFTA_LIST_ELEM) continue;
      const e: RawElement = { key: Buffer.alloc(0), flags: 0 };
      for (const [a, v] of attrs(elem, 0)) {
        if (a === NFTA_SET_ELEM_KEY) e.key = value(v);
        else if (a === NFTA_SET_ELEM_FLAGS && v.length >= 4) e.flags = v.readUInt32BE(0);
        else if (a === NFTA_SET_ELEM_DATA) {
          for (const [d, dv] of attrs(v, 0)) {
            if (d === NFTA_DATA_VALUE) e.data = dv;
            else if (d === NFTA_DATA_VERDICT) {
              const verdict: { code: number; chain?: string } = { code: 0 };
              for (const [c, cv] of attrs(dv, 0)) {
                if (c === NFTA_VERDICT_CODE && cv.length >= 4) verdict.code = cv.readInt32BE(0);
                else if (c === NFTA_VERDICT_CHAIN) verdict.chain = cv.toString('latin1').replace(/\0+$/, '');
              }
              e.verdict = verdict;
            }
          }
        }
      }
      out.push(e);
    }
  }
  return out;
}

/** The bytes inside an NFTA_DATA_VALUE of a nest (a view of the message). */
function value(nest: Buffer): Buffer {
  for (const [t, v] of attrs(nest, 0)) if (t === NFTA_DATA_VALUE) return v;
  return Buffer.alloc(0);
}

/** The attributes of `buf` from `start`: [type without flags, payload]. */
function attrs(buf: Buffer, start: number): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  for (let off = start; off + 4 <= buf.length; ) {
    const len = LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
    const type = (LE ? buf.readUInt16LE(off + 2) : buf.readUInt16BE(off + 2)) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    out.push([type, buf.subarray(off + 4, off + len)]);
    off += (len + 3) & ~3;
  }
  return out;
}

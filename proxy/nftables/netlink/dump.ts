// Listing a set's elements (NFT_MSG_GETSETELEM as a dump) and reading the messages the kernel answers with.
import type { Family } from '../model.ts';
import {
  LE, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETSETELEM, NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_FLAGS,
  NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE, NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE, NLM_F_DUMP,
  NLM_F_REQUEST, Writer,
} from './wire.ts';

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

// nfnetlink batches of set-element additions and deletions (NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM between
// NFNL_MSG_BATCH_BEGIN and _END), as `nft -f` sends `add element` and `delete element`. Pure. A batch is one
// kernel transaction and must reach the kernel in one sendmsg, which the socket's send buffer bounds; a message's
// element list is one netlink attribute, which 16 bits of length bound.
import type { Family } from '../model.ts';
import { verdict, type ElementCodec } from './elements.ts';
import {
  HEADER, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM, NFTA_DATA_VALUE, NFTA_DATA_VERDICT,
  NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE,
  NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, Writer,
} from './wire.ts';

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

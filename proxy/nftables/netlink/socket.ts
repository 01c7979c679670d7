// Sends nfnetlink batches (batch.ts) on a NETLINK_NETFILTER socket of the `netlink` package, one at a time, and
// waits for the kernel's answer to each; and lists a set's elements (a dump). The kernel handles a batch inside the
// sendmsg that carries it, as one transaction, and then answers every message of it: an ACK each, or the errno of a
// message it refused (the whole batch is then undone); an error about the batch as a whole (its commit) comes
// first, under the number of its begin message.
import { endianness } from 'node:os';
import { Protocol, RawNetlinkSocket } from 'netlink';
import { errnoName, errnoOf } from '../../../overlay/kernel/errors.ts';
import { messages } from '../../../overlay/kernel/watch.ts';
import type { Batch } from './batch.ts';
import { encodeElementDump, parseElementList, type RawElement } from './dump.ts';
import type { Family } from '../model.ts';

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_DUMP_INTR = 0x10;
const NEWSETELEM = (10 << 8) | 12;
const DUMP_ATTEMPTS = 3;
const LE = endianness() === 'LE';
/** What is asked of SO_SNDBUF: the kernel caps it at twice net.core.wmem_max (416 KiB by default). */
const SEND_BUFFER = 4 << 20;
const ANSWER_TIMEOUT_MS = 10_000;

/** The kernel refused a batch of set elements (or the socket failed); `errno` is its name, e.g. 'ENOENT'. */
export class NftNetlinkError extends Error {
  override readonly name = 'NftNetlinkError';
  readonly code = 'NETPLANE_NFT_NETLINK';
  readonly errno: string;
  constructor(what: string, errno: string, options?: { cause?: unknown }) {
    super(`${what}: ${errno}`, options);
    this.errno = errno;
  }
}

/**
 * Where set elements are written and read: the kernel of this process's network namespace, or one reached through
 * another process (lab/nft-elements.ts).
 */
export interface ElementChannel {
  /** The largest batch one send can carry. */
  readonly maxBatchBytes: number;
  /** Sends the batches in order, each after the previous one was applied; rejects at the first refused. */
  apply(batches: readonly Batch[], describe: (seq: number) => string): Promise<void>;
  /** The elements of one of netplane's sets; rejects with NftNetlinkError (ENOENT: no such set). */
  readElements(family: Family, set: string): Promise<RawElement[]>;
  close(): void;
}

interface Waiting {
  left: Set<number>;
  begin: number;
  error: NftNetlinkError | undefined;
  describe: (seq: number) => string;
  /** For a dump: its number, the elements so far, and whether the kernel said the set changed meanwhile. */
  dump?: { seq: number; elements: RawElement[]; interrupted: boolean };
  done: (err?: NftNetlinkError) => void;
}

/** A NETLINK_NETFILTER socket in this process's network namespace. Throws NftNetlinkError when none can be opened. */
export class NetfilterSocket implements ElementChannel {
  readonly maxBatchBytes: number;
  #raw: RawNetlinkSocket;
  #waiting: Waiting | undefined;

  constructor() {
    try {
      // Reads into a 64 KiB buffer rather than peeking at each message's size: the kernel sizes the messages of a
      // dump by the largest read it has seen (up to 32 KiB), and a set's dump starts its walk over from the first
      // element for each message, so that messages of 4 KiB made listing 100,000 elements take 2 s.
      this.#raw = new RawNetlinkSocket(Protocol.NETFILTER, { messagePeeking: false, msgBufferSize: 64 * 1024, recvBufferSize: 1 << 20, sendBufferSize: SEND_BUFFER });
    } catch (e) {
      throw new NftNetlinkError('open a netfilter netlink socket', errnoOf(e), { cause: e });
    }
    // netlink_sendmsg refuses a message longer than the send buffer less 32 bytes.
    this.maxBatchBytes = this.#raw.getSendBufferSize() - 1024;
    this.#raw.unref();
    this.#raw.on('message', (buf) => this.#receive(buf));
    this.#raw.on('error', (e) => this.#waiting?.done(new NftNetlinkError('netfilter netlink socket', errnoOf(e), { cause: e })));
  }

  async apply(batches: readonly Batch[], describe: (seq: number) => string): Promise<void> {
    for (const batch of batches) await this.#one(batch, describe);
  }

  async readElements(family: Family, set: string): Promise<RawElement[]> {
    for (let attempt = 1; ; attempt++) {
      const dump = { seq: 1, elements: [] as RawElement[], interrupted: false };
      await this.#wait({ left: new Set(), begin: -1, error: undefined, describe: () => `list the elements of ${set}`, dump }, encodeElementDump(family, set, dump.seq));
      if (!dump.interrupted || attempt >= DUMP_ATTEMPTS) return dump.elements;
    }
  }

  close(): void {
    this.#waiting?.done(new NftNetlinkError('netfilter netlink socket', 'EBADF'));
    this.#raw.close();
  }

  #one(batch: Batch, describe: (seq: number) => string): Promise<void> {
    return this.#wait({ left: new Set(batch.seqs), begin: batch.begin, error: undefined, describe }, batch.bytes);
  }

  /** Sends `bytes` and waits for every answer `w` expects (all its ACKs, or its dump's end). */
  #wait(w: Omit<Waiting, 'done'>, bytes: Buffer): Promise<void> {
    const what = w.dump ? w.describe(w.dump.seq) : w.describe([...w.left][0] ?? w.begin);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => waiting.done(new NftNetlinkError(`${what} (no answer from the kernel)`, 'ETIMEDOUT')), ANSWER_TIMEOUT_MS);
      const waiting: Waiting = {
        ...w,
        done: (err) => {
          if (this.#waiting !== waiting) return;
          this.#waiting = undefined;
          clearTimeout(timer);
          this.#raw.unref();
          if (err) reject(err);
          else resolve();
        },
      };
      this.#waiting = waiting;
      this.#raw.ref();
      this.#raw.send(bytes, {}, (e) => e && waiting.done(new NftNetlinkError(`send ${what}`, errnoOf(e), { cause: e })));
    });
  }

  #receive(buf: Buffer): void {
    const w = this.#waiting;
    if (!w) return;
    for (const { type, flags, seq, data } of messages(buf)) {
      const dump = w.dump;
      if (dump && seq === dump.seq) {
        if (flags & NLM_F_DUMP_INTR) dump.interrupted = true;
        if (type === NEWSETELEM) dump.elements.push(...parseElementList(data));
        else if (type === NLMSG_DONE) return w.done();
        else if (type === NLMSG_ERROR && data.length >= 4) {
          const errno = LE ? data.readInt32LE(0) : data.readInt32BE(0);
          return w.done(new NftNetlinkError(w.describe(seq), errnoName(errno || 5)));
        }
      } else if (type === NLMSG_ERROR && data.length >= 4) {
        const errno = LE ? data.readInt32LE(0) : data.readInt32BE(0);
        if (errno !== 0) w.error ??= new NftNetlinkError(seq === w.begin ? 'commit the set elements' : w.describe(seq), errnoName(errno));
        w.left.delete(seq);
      }
    }
    if (!w.dump && w.left.size === 0) w.done(w.error);
  }
}


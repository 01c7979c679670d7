// The rtnetlink transport under NetlinkKernel, on the `netlink` package's raw socket: replies are matched by
// sequence number here, errors come back as errno names, and the writes asked for in one tick go to the kernel
// in one sendmsg. The package's NetlinkSocket.request is not used: it sends one message per system call, wraps
// the errno in message text, and groups multipart replies by arrival, not by sequence number.
import { endianness } from 'node:os';
import { Protocol, RawNetlinkSocket, rt } from 'netlink';
import { errnoName, errnoOf, KernelError } from './errors.ts';

/** nlmsghdr flags (include/uapi/linux/netlink.h). */
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, DUMP: 0x300 } as const;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
// Set on the parts of a dump during which the table changed: the dump may have missed or doubled entries.
const NLM_F_DUMP_INTR = 0x10;
const DUMP_ATTEMPTS = 3;
const HEADER = 16;
const LE = endianness() === 'LE';
// The kernel handles every message of a sendmsg before it returns, queueing one ACK each (~840 bytes of skb
// truesize, measured) on our socket; past SO_RCVBUF (208 KiB by default) it drops them and reports ENOBUFS.
// Bounding what is unanswered bounds that queue; more in flight does not make programming faster.
const MAX_IN_FLIGHT = 64;
const RECV_BUFFER = 1 << 20;
const MAX_BATCH_BYTES = 32 * 1024;

/** Options of one request: the operation named in errors, and NLM_F_* flags beyond REQUEST|ACK. */
export interface RequestOptions {
  op: string;
  flags?: number;
}

interface Reply {
  parts: rt.Message[];
  interrupted: boolean;
}

interface Pending extends Reply {
  op: string;
  resolve: (reply: Reply) => void;
  reject: (err: KernelError) => void;
}

/**
 * An rtnetlink socket in the caller's network namespace. Requests are batched and pipelined (up to 64 unanswered);
 * dumps run one at a time (the kernel allows one per socket). After a socket error the pending requests fail and
 * the next one opens a new socket. Every failure is a KernelError.
 */
export class RtSocket {
  #raw: RawNetlinkSocket | undefined;
  #seq = 0;
  #pending = new Map<number, Pending>();
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #flushing = false;
  #window: (() => void)[] = [];
  #inFlight = 0;
  #dumping: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Opens the socket; throws KernelError when the kernel refuses a netlink socket. */
  constructor() {
    this.#raw = this.#open();
  }

  /** Sends one request and resolves with its reply messages (none for a bare ACK). */
  async request(type: number, payload: Uint8Array[], options: RequestOptions): Promise<rt.Message[]> {
    if (this.#inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.#window.push(resolve));
    this.#inFlight++;
    try {
      return (await this.#send(type, payload, options)).parts;
    } finally {
      this.#inFlight--;
      this.#window.shift()?.();
    }
  }

  /**
   * Sends a dump request (NLM_F_DUMP) after any dump already running and resolves with every part. A dump the
   * kernel marks interrupted (the table changed meanwhile) is asked for again, up to 3 times in all.
   */
  dump(type: number, payload: Uint8Array[], options: RequestOptions): Promise<rt.Message[]> {
    const once = () => this.#send(type, payload, { ...options, flags: (options.flags ?? 0) | NLM_F.DUMP });
    const run = this.#dumping.then(async () => {
      let reply = await once();
      for (let attempt = 1; reply.interrupted && attempt < DUMP_ATTEMPTS; attempt++) reply = await once();
      return reply.parts;
    });
    this.#dumping = run.catch(() => undefined);
    return run;
  }

  /** Closes the socket; pending requests reject with EBADF. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#raw?.close();
    this.#raw = undefined;
    this.#failAll('EBADF');
  }

  #open(): RawNetlinkSocket {
    let raw: RawNetlinkSocket;
    try {
      raw = new RawNetlinkSocket(Protocol.ROUTE);
    } catch (e) {
      throw new KernelError('open rtnetlink socket', errnoOf(e), { cause: e });
    }
    // Capped at net.core.rmem_max, which the kernel doubles: 416 KiB by default, room for the ACKs in flight.
    try {
      raw.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // The default receive buffer still holds MAX_IN_FLIGHT ACKs.
    }
    raw.unref();
    raw.on('message', (buf) => this.#receive(buf));
    // ENOBUFS (replies were dropped) or a poll error: no pending request can count on its answer, and the socket
    // may be closed under us. Fail what is pending (callers retry) and start again on a new socket.
    raw.on('error', (e) => {
      if (this.#raw !== raw) return;
      this.#raw = undefined;
      try {
        raw.close();
      } catch {
        // already closed by the native side
      }
      this.#failAll(errnoOf(e), e);
    });
    return raw;
  }

  #send(type: number, payload: Uint8Array[], options: RequestOptions): Promise<Reply> {
    if (this.#closed) return Promise.reject(new KernelError(options.op, 'EBADF', { detail: 'the netlink socket is closed' }));
    let raw: RawNetlinkSocket;
    try {
      raw = this.#raw ??= this.#open();
    } catch (e) {
      return Promise.reject(e);
    }
    const seq = (this.#seq = (this.#seq % 0xffffffff) + 1);
    let length = HEADER;
    for (const p of payload) length += p.length;
    const message = Buffer.allocUnsafe((length + 3) & ~3).fill(0, length);
    writeU32(message, length, 0);
    writeU16(message, type, 4);
    writeU16(message, NLM_F.REQUEST | NLM_F.ACK | (options.flags ?? 0), 6);
    writeU32(message, seq, 8);
    writeU32(message, 0, 12); // nlmsg_pid: the kernel answers the sending socket whatever this says
    let off = HEADER;
    for (const p of payload) {
      message.set(p, off);
      off += p.length;
    }
    const reply = new Promise<Reply>((resolve, reject) => this.#pending.set(seq, { op: options.op, parts: [], interrupted: false, resolve, reject }));
    if (this.#pending.size === 1) raw.ref();
    if (this.#batchBytes + message.length > MAX_BATCH_BYTES) this.#flush();
    this.#batch.push(message);
    this.#batchBytes += message.length;
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
    return reply;
  }

  #flush(): void {
    this.#flushing = false;
    if (this.#batch.length === 0 || this.#closed) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const fail = (e: unknown) => {
      for (const m of batch) {
        const seq = readU32(m, 8);
        this.#settle(seq, new KernelError(this.#pending.get(seq)?.op ?? 'sendmsg', errnoOf(e), { cause: e }));
      }
    };
    // A socket error since these were queued failed them already; a new socket would not know their numbers.
    if (!this.#raw) return fail(new Error('the netlink socket failed'));
    this.#raw.send(batch.length === 1 ? batch[0]! : Buffer.concat(batch), {}, (e) => e && fail(e));
  }

  #receive(buf: Buffer): void {
    for (let off = 0; off + HEADER <= buf.length; ) {
      const length = readU32(buf, off);
      if (length < HEADER || off + length > buf.length) break;
      const type = readU16(buf, off + 4);
      const flags = readU16(buf, off + 6);
      const seq = readU32(buf, off + 8);
      const data = buf.subarray(off + HEADER, off + length);
      off += (length + 3) & ~3;
      const p = this.#pending.get(seq);
      if (!p) continue;
      if (flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (type === NLMSG_ERROR || type === NLMSG_DONE) {
        // Both carry an int: the errno (negative) or 0 for an ACK / a dump that ended well.
        const errno = data.length >= 4 ? (LE ? data.readInt32LE(0) : data.readInt32BE(0)) : 0;
        this.#settle(seq, errno === 0 ? undefined : new KernelError(p.op, errnoName(errno)));
      } else {
        try {
          p.parts.push(rt.parseMessage(type, data));
        } catch (e) {
          this.#settle(seq, new KernelError(p.op, 'EPROTO', { cause: e, detail: 'unparsable reply' }));
          continue;
        }
        if (!(flags & NLM_F.MULTI)) this.#settle(seq);
      }
    }
  }

  #settle(seq: number, err?: KernelError): void {
    const p = this.#pending.get(seq);
    if (!p) return;
    this.#pending.delete(seq);
    if (this.#pending.size === 0) this.#raw?.unref();
    if (err) p.reject(err);
    else p.resolve(p);
  }

  #failAll(errno: string, cause?: unknown): void {
    this.#batch = [];
    this.#batchBytes = 0;
    for (const [seq, p] of this.#pending) this.#settle(seq, new KernelError(p.op, errno, { cause }));
  }
}

function writeU32(b: Buffer, v: number, off: number): void {
  if (LE) b.writeUInt32LE(v, off);
  else b.writeUInt32BE(v, off);
}

function writeU16(b: Buffer, v: number, off: number): void {
  if (LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}

function readU32(b: Buffer, off: number): number {
  return LE ? b.readUInt32LE(off) : b.readUInt32BE(off);
}

function readU16(b: Buffer, off: number): number {
  return LE ? b.readUInt16LE(off) : b.readUInt16BE(off);
}


// TCP relaying on libuv handles, under the userspace proxy's listeners (tcp.ts).
//
// A net.Socket per side costs a Duplex stream (two stream states, events, buffers) for every connection; with
// `Connection: close` traffic that set-up and tear-down is most of the proxy's own CPU. Here the listening handle's
// accepted connections and the upstream dials stay native TCP handles (Node 24's tcp_wrap and stream_wrap
// bindings, the ones lib/net.js itself drives; runtime/tcp-handles.ts loads them): reads arrive through `onread`, writes go out with writeBuffer or
// writev, backpressure stops reading the other side, end of stream becomes a shutdown, a reset a reset. Measured on
// this machine with wrk `Connection: close` through the proxy to nginx: 110 instead of 133 µs of CPU per connection.
// The bindings are checked when loaded; anything unexpected (or NETPLANE_PROXY_TCP_DIRECT=0) makes tcp.ts keep
// to net.Socket.
import { isIPv6 } from 'node:net';
import { constants } from 'node:os';
import type { Target } from '../plan/types.ts';
import { maxDialAttempts, type DialDeadlines, type PendingDial } from './deadlines.ts';
import type { LiveEntry } from '../../runtime/live-list.ts';
import { tcpBindings, type HandleReq, type TcpBindings, type TcpHandle as NativeTcpHandle } from '../../runtime/tcp-handles.ts';

/** A native TCP handle (runtime/tcp-handles.ts) with the side of the relay it belongs to. */
export interface TcpHandle extends NativeTcpHandle {
  side?: Side;
}

interface Req extends HandleReq {
  side?: Side;
  buffer?: Uint8Array | Uint8Array[];
}

/** The bindings, or null when they are not as expected or NETPLANE_PROXY_TCP_DIRECT=0 (then tcp.ts relays with net.Socket). */
export const native: TcpBindings | null = process.env.NETPLANE_PROXY_TCP_DIRECT === '0' ? null : tcpBindings;

/** libuv's end-of-stream code (the same on every platform), and a reset as libuv reports it on this one. */
const UV_EOF = -4095;
const UV_ECONNRESET = -constants.errno.ECONNRESET;
// A read this long filled libuv's buffer: more is likely waiting. Such reads are gathered until this loop
// iteration's check phase and leave in one writev (bulk transfers: fewer, larger sends).
const fullRead = 64 * 1024;
// What a client may send before its endpoint answers, before it is no longer read (as net.Socket's high-water mark).
const earlyLimit = 1 << 20;
// A side whose reads have filled libuv's buffer this many times is carrying bulk data: from then on it reads into a
// buffer of its own, of ownSize bytes, reused for every read (the handle's useUserBuffer), and each read is written
// on at once. Otherwise every read is a fresh 64 KiB allocation: at 10 Gbit/s that is 20,000 a second, which V8 counts
// as external memory and answers with full collections, and each write is at most what one read brought. Measured
// with iperf3 through the proxy on loopback (one thread, alternating runs): 13.3 Gbit/s at 610 ms of CPU per GB
// without, 16.4–17.5 Gbit/s at 300–336 ms with 256 KiB, 18.4–19.0 Gbit/s at 238–254 ms with 1 MiB. The buffers of
// one thread are capped at ownBudget bytes (64 sides); past it, sides keep the allocating path.
const ownAfter = 4;
const ownSize = 1024 * 1024;
/** Bytes of own read buffers one thread's relays may hold at once (see ownSize). */
export const ownBudget = 64 * 1024 * 1024;
let ownBytes = 0;

/** Bytes of the relays' own read buffers (see ownSize) held by open connections of this thread. */
export function relayBufferBytes(): number {
  return ownBytes;
}

/** A relay's place among its listener's connections. */
export type OpenRelay = LiveEntry<{ destroy(): void }>;

/** What a relay needs from its listener. */
export interface RelayHost {
  /** The endpoint for a client (its IP, '' when affinity is off); `failed`: the one that just failed. */
  pick(ip: string, failed?: Target): Target | undefined;
  readonly needsClientIP: boolean;
  readonly deadlines: DialDeadlines;
  /** A dial failed with libuv status `status` (negative errno): the listener reports what is this host's own trouble. */
  dialFailed(status: number, target: Target): void;
  /** The relay now counts as a connection of the listener, until `closed` is given what this returned. */
  opened(r: Relay): OpenRelay;
  closed(r: OpenRelay): void;
}

/** One direction's end: a handle, whether it sent its FIN, and the writes to it still in flight. */
interface Side {
  handle: TcpHandle;
  relay: Relay;
  /** The other side; undefined on the client's side while the endpoint is dialled. */
  peer: Side | undefined;
  eof: boolean;
  pending: number;
  paused: boolean;
  shutWhenDrained: boolean;
  shut: boolean;
  closed: boolean;
  /** Full reads from the peer gathered for one writev to this side. */
  batch: Uint8Array[];
  /** How many reads filled libuv's buffer (up to ownAfter). */
  fullReads: number;
  /** This side's own read buffer, once it carries bulk data (see ownSize). */
  own: Buffer | undefined;
}

const flushQueue: Side[] = [];
let flushScheduled = false;

/** A client connection accepted on a listening handle, relayed to an endpoint. */
export class Relay {
  readonly #host: RelayHost;
  readonly #client: Side;
  #ip = '';
  #upstream: TcpHandle | undefined;
  /** The endpoint's side, once connected. */
  #server: Side | undefined;
  /** What the client sent while the endpoint was dialled, and its size. */
  #early: Uint8Array[] = [];
  #earlyBytes = 0;
  /** Nothing more to do: the connection is being (or has been) closed. */
  #done = false;
  /** Set while the relay counts as one of its listener's connections. */
  #opened: OpenRelay | null = null;

  constructor(host: RelayHost, client: TcpHandle) {
    this.#host = host;
    this.#client = side(this, client);
  }

  /**
   * Picks an endpoint and dials it; without one the client is reset at once, as the kernel modes reject. The
   * client is read while the endpoint is dialled: its request is then usually in hand when the connect completes,
   * which saves an event-loop round per connection.
   */
  start(): void {
    const client = this.#client.handle;
    if (this.#host.needsClientIP) {
      const out: { address?: string } = {};
      this.#ip = client.getpeername(out) === 0 ? (out.address ?? '') : '';
    }
    const target = this.#host.pick(this.#ip);
    if (!target) {
      this.#client.closed = true;
      resetHandle(client);
      this.#finish();
      return;
    }
    this.#opened = this.#host.opened(this);
    client.setNoDelay(true);
    client.readStart();
    this.#dial(target, 0);
  }

  /** Cuts the connection (both sides closed). */
  destroy(): void {
    if (this.#done) return;
    closeSide(this.#client);
    if (this.#server) closeSide(this.#server);
    else if (this.#upstream) closeHandle(this.#upstream);
    this.#finish();
  }

  /**
   * Dials `target`, the `attempt`-th try (from 0); a failure or time-out tries another endpoint (the same when it is
   * the only one) with a longer time-out, up to maxDialAttempts, then resets the client.
   */
  #dial(target: Target, attempt: number): void {
    const n = native!;
    const upstream = new n.TCP(n.SOCKET);
    this.#upstream = upstream;
    const req = new n.TCPConnectWrap();
    const failed = (status?: number) => {
      closeHandle(upstream);
      if (status !== undefined) this.#host.dialFailed(status, target);
      if (this.#done) return;
      const other = attempt + 1 < maxDialAttempts ? (this.#host.pick(this.#ip, target) ?? this.#host.pick(this.#ip)) : undefined;
      if (other) this.#dial(other, attempt + 1);
      else {
        this.#client.closed = true;
        resetHandle(this.#client.handle);
        this.#finish();
      }
    };
    let pending: PendingDial | undefined;
    req.oncomplete = (status: number) => {
      // False: the dial timed out and was handled; its handle is closed.
      if (pending === undefined || !this.#host.deadlines.settle(pending)) return;
      if (status < 0) return failed(status);
      this.#connected(upstream);
    };
    const err = isIPv6(target.ip) ? upstream.connect6(req, target.ip, target.port) : upstream.connect(req, target.ip, target.port);
    if (err) return void setImmediate(() => failed(err));
    pending = this.#host.deadlines.start(failed, attempt);
  }

  #connected(upstream: TcpHandle): void {
    if (this.#done) {
      closeHandle(upstream);
      return;
    }
    upstream.setNoDelay(true);
    const client = this.#client;
    const server = side(this, upstream);
    client.peer = server;
    server.peer = client;
    this.#server = server;
    if (this.#early.length > 0) {
      const early = this.#early;
      this.#early = [];
      this.#earlyBytes = 0;
      write(server, early.length === 1 ? early[0]! : early);
    }
    if (client.eof) this.eof(client);
    else if (client.paused && server.pending === 0) {
      client.paused = false;
      client.handle.readStart();
    }
    if (!server.closed) server.handle.readStart();
  }

  /** Data read from `from`: on to its peer; reading pauses while a write waits for the kernel. */
  forward(from: Side, data: Uint8Array): void {
    const to = from.peer;
    if (!to) {
      // Still dialling: hold it, up to the bound of one write queue.
      this.#early.push(data);
      this.#earlyBytes += data.length;
      if (this.#earlyBytes >= earlyLimit) {
        from.paused = true;
        from.handle.readStop();
      }
      return;
    }
    if (to.closed) return;
    if (data.length >= fullRead || to.batch.length > 0) {
      to.batch.push(data);
      if (data.length >= fullRead) {
        if (to.batch.length === 1) queueFlush(to);
        return;
      }
      flush(to);
      return;
    }
    write(to, data);
  }

  /**
   * Data read into `from`'s own buffer, which its next read overwrites: written at once, after what is gathered
   * before it. A write the kernel does not take whole waits in libuv on that memory, and stops reading `from` (write)
   * until it is done, so the buffer is not read into meanwhile.
   */
  forwardOwn(from: Side, data: Uint8Array): void {
    const to = from.peer!;
    if (to.closed) return;
    if (to.batch.length > 0) flush(to);
    write(to, data);
  }

  /** `from` sent its FIN: pass it on once what was read from it is written; both done, close both. */
  eof(from: Side): void {
    from.eof = true;
    from.handle.readStop();
    const to = from.peer;
    // While dialling, the FIN is passed on when the endpoint answers.
    if (!to) return;
    if (to.batch.length > 0) flush(to);
    if (to.pending > 0) to.shutWhenDrained = true;
    else this.shutdown(to);
  }

  /** Ends the writing half of `to`, or closes both sides when both have ended and nothing is in flight. */
  shutdown(to: Side): void {
    if (to.closed) return;
    // Only connected sides are written to or shut: both sides exist.
    const from = to.peer!;
    if (to.eof && from.eof && to.pending === 0 && from.pending === 0) {
      // Both directions are done: closing sends the FINs, without shutdown() calls.
      closeSide(to);
      closeSide(from);
      this.#finish();
      return;
    }
    if (to.shut) return;
    to.shut = true;
    const req = new native!.ShutdownWrap();
    req.handle = to.handle;
    req.oncomplete = () => {};
    if (to.handle.shutdown(req) !== 0) this.failed(to, 0);
  }

  /** `side` failed (read or write error, `code` as libuv gives it): a reset is passed on as a reset, else a close. */
  failed(side: Side, code: number): void {
    if (this.#done) return;
    if (!side.peer) {
      // The client failed while the endpoint was dialled: the dial is abandoned.
      closeSide(side);
      if (this.#upstream) closeHandle(this.#upstream);
      this.#finish();
      return;
    }
    if (code === UV_ECONNRESET && !side.peer.closed) {
      side.peer.closed = true;
      releaseOwn(side.peer);
      resetHandle(side.peer.handle);
    } else closeSide(side.peer);
    closeSide(side);
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#early = [];
    if (this.#opened !== null) this.#host.closed(this.#opened);
    this.#opened = null;
  }
}

function side(relay: Relay, handle: TcpHandle): Side {
  const s: Side = { handle, relay, peer: undefined, eof: false, pending: 0, paused: false, shutWhenDrained: false, shut: false, closed: false, batch: [], fullReads: 0, own: undefined };
  handle.side = s;
  handle.onread = onRead;
  return s;
}

function onRead(this: TcpHandle, buffer: ArrayBuffer | undefined): void {
  const s = this.side!;
  const n = native!;
  const nread = n.state[n.readBytes]!;
  if (nread > 0) {
    // With a buffer of its own, Node hands no ArrayBuffer: the bytes are at the start of that buffer.
    if (buffer === undefined) return s.relay.forwardOwn(s, s.own!.subarray(0, nread));
    if (nread === fullRead && s.peer !== undefined && ++s.fullReads === ownAfter) ownBuffer(s);
    return s.relay.forward(s, new Uint8Array(buffer, n.state[n.offset]!, nread));
  }
  if (nread === 0) return;
  if (nread === UV_EOF) s.relay.eof(s);
  else s.relay.failed(s, nread);
}

/** Gives `s` a read buffer of its own (see ownSize), within this thread's budget; its next reads land there. */
function ownBuffer(s: Side): void {
  if (ownBytes + ownSize > ownBudget || typeof s.handle.useUserBuffer !== 'function') return;
  s.own = Buffer.allocUnsafeSlow(ownSize);
  ownBytes += ownSize;
  s.handle.useUserBuffer(s.own);
}

/** `s` reads no more: its own buffer leaves the budget (a write still waiting on it keeps it alive until done). */
function releaseOwn(s: Side): void {
  if (s.own === undefined) return;
  ownBytes -= s.own.length;
  s.own = undefined;
}

function write(to: Side, data: Uint8Array | Uint8Array[]): void {
  const n = native!;
  const req = new n.WriteWrap();
  req.handle = to.handle;
  req.side = to;
  req.oncomplete = afterWrite;
  const err = Array.isArray(data) ? to.handle.writev(req, data, true) : to.handle.writeBuffer(req, data);
  if (err !== 0) return to.relay.failed(to, err);
  if (n.state[n.lastWriteAsync] === 0) return;
  // Queued in libuv: keep the data alive and stop reading the other side until it is written.
  req.buffer = data;
  to.pending++;
  const from = to.peer!;
  if (!from.paused && !from.eof && !from.closed) {
    from.paused = true;
    from.handle.readStop();
  }
}

function afterWrite(this: Req, status: number): void {
  const to = this.side!;
  to.pending--;
  if (to.closed) return;
  if (status < 0) return to.relay.failed(to, status);
  if (to.pending > 0) return;
  if (to.shutWhenDrained) {
    to.shutWhenDrained = false;
    to.relay.shutdown(to);
    return;
  }
  const from = to.peer!;
  if (from.paused && !from.eof && !from.closed) {
    from.paused = false;
    from.handle.readStart();
  }
}

function flush(to: Side): void {
  const chunks = to.batch;
  if (chunks.length === 0 || to.closed) return;
  to.batch = [];
  write(to, chunks.length === 1 ? chunks[0]! : chunks);
}

function queueFlush(to: Side): void {
  flushQueue.push(to);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    for (const s of flushQueue.splice(0)) flush(s);
  });
}

function closeSide(s: Side): void {
  if (s.closed) return;
  s.closed = true;
  s.batch = [];
  releaseOwn(s);
  closeHandle(s.handle);
}

function closeHandle(h: TcpHandle): void {
  try {
    h.close();
  } catch {
    // already closing
  }
}

function resetHandle(h: TcpHandle): void {
  try {
    if (h.reset() !== 0) h.close();
  } catch {
    closeHandle(h);
  }
}

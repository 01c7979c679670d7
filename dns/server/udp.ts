// DNS over UDP: one dgram socket per listen address, each message served as it arrives.
//
// At ~100k queries/s the JavaScript layer of dgram (a 'message' event per datagram; per send: argument checks, an
// address lookup deferred to the next tick, closures, a request object) costs about as much as our whole query path.
// So after binding, the socket's native handle is used directly when it has the shape Node 24's dgram gives it
// (`onmessage` called per datagram; `send(req, buffers, count, port, address, hasCallback)`), checked by sending one
// datagram to ourselves through it; anything unexpected falls back to the public API. NETPLANE_DNS_UDP_DIRECT=0
// turns the direct path off.
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import type { Client, Output } from './output.ts';

/** Called for every datagram. */
export type OnDatagram = (msg: Buffer, out: UdpEndpoint, client: Client) => void;

/** The native UDP handle's methods that dgram itself calls (lib/dgram.js, Node 24). */
interface NativeHandle {
  onmessage: (nread: number, handle: unknown, buf: Buffer, rinfo: Client) => void;
  send: (req: object, list: Buffer[], count: number, port: number, address: string, hasCallback: boolean) => number;
}
type SendWrapClass = new () => { list?: Buffer[]; address?: string; port?: number };

/**
 * dgram resolves the address of every send through `lookup`; the default defers even an IP literal to the next
 * tick. Clients' addresses are always literals: answer at once, and resolve only names (a listen host).
 */
function literalLookup(address: string, family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) cb(null, address, f);
  else lookup(address, { family: family === 'udp6' || family === 6 ? 6 : 4 }, (err, a, fam) => cb(err, a, fam));
}

/** A bound UDP socket as an output of the query path. */
export class UdpEndpoint implements Output {
  readonly transport = 'udp';
  readonly proto = 0;
  readonly prefix = 0;
  readonly socket: Socket;
  #closed = false;
  #handle: NativeHandle | null = null;
  #SendWrap: SendWrapClass | null = null;
  /** The request object and buffer list handed to the native send, reused until a send is queued (see send()). */
  #req: InstanceType<SendWrapClass> | null = null;
  #list: Buffer[] = [];
  /**
   * Scratch memory for responses on the direct path, with a view per response length: a datagram sent at once
   * (the usual case) was copied by the kernel, so the next response may overwrite it.
   */
  #scratch: Buffer | null = null;
  #views: Array<Buffer | undefined> = [];
  readonly #onError: (e: Error) => void;

  private constructor(socket: Socket, onError: (e: Error) => void) {
    this.socket = socket;
    this.#onError = onError;
  }

  /**
   * Binds host:port (port 0: any free one); `reuseAddr` lets a wildcard socket and the sockets pinned to single
   * addresses share the port. Rejects with the bind error (EADDRINUSE, EACCES, ...).
   */
  static async bind(o: { host: string; port: number; reusePort: boolean; reuseAddr?: boolean; recvBufferSize: number }, onMessage: OnDatagram, onError: (e: Error) => void): Promise<UdpEndpoint> {
    const type = isIP(o.host) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket({ type, lookup: literalLookup as never, reusePort: o.reusePort, reuseAddr: o.reuseAddr ?? false });
    const ep = new UdpEndpoint(socket, onError);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // A burst of queries waits in the kernel instead of being dropped (the kernel caps this at net.core.rmem_max).
    try {
      if (socket.getRecvBufferSize() < o.recvBufferSize) socket.setRecvBufferSize(o.recvBufferSize);
    } catch {
      // Not allowed here: the default buffer still works.
    }
    // Send failures (ENOBUFS, EPERM from a firewall, ...) come as 'error' events: logged, never fatal.
    socket.on('error', onError);
    const direct = process.env.NETPLANE_DNS_UDP_DIRECT !== '0' && (await ep.#goDirect(onMessage));
    if (!direct) socket.on('message', (msg: Buffer, rinfo: Client) => onMessage(msg, ep, rinfo));
    return ep;
  }

  /** Switches to the native handle when it has the expected shape and passes a round trip; false to stay on dgram's API. */
  async #goDirect(onMessage: OnDatagram): Promise<boolean> {
    const state = Object.getOwnPropertySymbols(this.socket).find((s) => s.description === 'state symbol');
    const handle = (state && (this.socket as unknown as Record<symbol, { handle?: NativeHandle }>)[state]?.handle) as NativeHandle | undefined;
    if (!handle || typeof handle.send !== 'function' || typeof handle.onmessage !== 'function') return false;
    // Learn the request class dgram passes to the native send, from one real send to ourselves.
    const nativeSend = handle.send;
    const dgramOnMessage = handle.onmessage;
    let SendWrap: SendWrapClass | null = null;
    handle.send = function (this: NativeHandle, req, ...rest) {
      SendWrap = req.constructor as SendWrapClass;
      return nativeSend.call(this, req, ...rest);
    };
    const { address, port } = this.address();
    const self = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
    const probe = Buffer.from('netplane-probe');
    const received = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1000);
      handle.onmessage = (nread, _h, buf) => {
        if (nread >= 0 && buf.equals(probe)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
    });
    try {
      this.socket.send(probe, port, self);
    } catch {
      handle.onmessage = dgramOnMessage;
      return false;
    } finally {
      handle.send = nativeSend;
    }
    if (!(await received) || SendWrap === null) {
      handle.onmessage = dgramOnMessage;
      return false;
    }
    this.#SendWrap = SendWrap;
    this.#newRequest();
    this.#handle = handle;
    handle.onmessage = (nread, _h, buf, rinfo) => {
      if (nread < 0) this.#onError(Object.assign(new Error(`recvmsg failed (${nread})`), { errno: nread, syscall: 'recvmsg' }));
      else onMessage(buf, this, rinfo);
    };
    return true;
  }

  get alive(): boolean {
    return !this.#closed;
  }

  /** Whether datagrams go through the native handle directly (else through dgram's public API). */
  get direct(): boolean {
    return this.#handle !== null;
  }

  /** The bound address and port. */
  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  alloc(size: number): Buffer {
    const scratch = this.#scratch;
    if (scratch === null || size > 4096) return Buffer.allocUnsafe(size);
    return (this.#views[size] ??= scratch.subarray(0, size));
  }

  send(buf: Buffer | null, to: Client): void {
    if (buf === null || this.#closed) return;
    const handle = this.#handle;
    if (handle === null) {
      try {
        this.socket.send(buf, to.port, to.address);
      } catch {
        // A source port of 0 or an unusable address: the datagram cannot be answered.
      }
      return;
    }
    this.#list[0] = buf;
    const err = handle.send(this.#req!, this.#list, 1, to.port, to.address, false);
    // >= 1: sent at once (length + 1); the native side kept nothing. 0: queued (socket buffer full): the native side
    // now owns the request object, whose `list` keeps the buffer alive until it is sent; take fresh ones.
    // < 0: a libuv error code.
    if (err === 0) this.#newRequest();
    else if (err < 0) this.#onError(Object.assign(new Error(`sendmsg to ${to.address}:${to.port} failed (${err})`), { errno: err, syscall: 'send' }));
  }

  /** Fresh request, list and scratch memory: the native side owns the old ones until its queued send completes. */
  #newRequest(): void {
    this.#req = new this.#SendWrap!();
    this.#list = [];
    this.#req.list = this.#list;
    this.#scratch = Buffer.alloc(4096);
    this.#views = new Array<Buffer | undefined>(4097).fill(undefined);
  }

  /** Closes the socket; later responses are dropped. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

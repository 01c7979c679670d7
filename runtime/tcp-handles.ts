// Node's native TCP handles (the tcp_wrap and stream_wrap bindings that lib/net.js itself drives), for the hot paths
// that cannot afford a net.Socket per connection: the userspace proxy's relays and the ingress's HTTP/1.1 upstream
// connections. Reads arrive through `onread` (the byte count and offset in `state`), writes go out with writeBuffer
// or writev on a WriteWrap. The bindings are checked when loaded: anything unexpected gives null, and the callers
// keep to net.Socket or undici.

/** The methods of a native TCP handle that netplane calls (lib/net.js calls the same). */
export interface TcpHandle {
  readStart(): number;
  readStop(): number;
  writeBuffer(req: object, data: Uint8Array): number;
  writev(req: object, chunks: (Uint8Array | string)[], allBuffers: boolean): number;
  writeLatin1String(req: object, data: string): number;
  shutdown(req: object): number;
  close(cb?: () => void): void;
  reset(cb?: () => void): number;
  setNoDelay(on: boolean): number;
  getpeername(out: { address?: string }): number;
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
  onread: ((this: TcpHandle, buffer: ArrayBuffer | undefined) => void) | null;
  /** Reads go into `buffer` from now on, reused each time (`onread` gets no ArrayBuffer); Node's StreamBase. */
  useUserBuffer?(buffer: Uint8Array): void;
  readonly writeQueueSize: number;
}

/** A request object of a handle operation (connect, write, shutdown): `oncomplete` gets the status (0 or -errno). */
export interface HandleReq {
  handle?: TcpHandle;
  oncomplete?: (status: number) => void;
  async?: boolean;
  [more: string]: unknown;
}

export interface TcpBindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => HandleReq;
  WriteWrap: new () => HandleReq;
  ShutdownWrap: new () => HandleReq;
  SOCKET: number;
  /** streamBaseState: after a read, [readBytes] holds the byte count (or a negative error), [offset] its offset. */
  state: Int32Array;
  readBytes: number;
  offset: number;
  /** state[lastWriteAsync] is 1 when the last write was queued (its oncomplete follows), 0 when it went at once. */
  lastWriteAsync: number;
}

/** The bindings, or null when they are not as expected. */
export const tcpBindings: TcpBindings | null = load();

function load(): TcpBindings | null {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap') as { TCP?: TcpBindings['TCP']; TCPConnectWrap?: TcpBindings['TCPConnectWrap']; constants?: { SOCKET?: number } };
    const stream = binding('stream_wrap') as Record<string, unknown>;
    const b = {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      SOCKET: tcp.constants?.SOCKET,
      state: stream.streamBaseState,
      readBytes: stream.kReadBytesOrError,
      offset: stream.kArrayBufferOffset,
      lastWriteAsync: stream.kLastWriteWasAsync,
    };
    if (typeof b.TCP !== 'function' || typeof b.TCPConnectWrap !== 'function' || typeof b.WriteWrap !== 'function' || typeof b.ShutdownWrap !== 'function') return null;
    if (typeof b.SOCKET !== 'number' || !(b.state instanceof Int32Array) || typeof b.readBytes !== 'number' || typeof b.offset !== 'number' || typeof b.lastWriteAsync !== 'number') return null;
    const proto = b.TCP.prototype as unknown as Record<string, unknown>;
    for (const m of ['readStart', 'readStop', 'writeBuffer', 'writev', 'writeLatin1String', 'shutdown', 'close', 'reset', 'setNoDelay', 'getpeername', 'connect', 'connect6']) {
      if (typeof proto[m] !== 'function') return null;
    }
    return b as TcpBindings;
  } catch {
    return null;
  }
}

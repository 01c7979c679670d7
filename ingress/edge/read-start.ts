// Reading the first bytes of an accepted connection before it is handed on: a PROXY protocol header, a TLS
// ClientHello. The edge listener (listener.ts) and the TCP services' listeners (ingress/stream/tcp.ts) read them so.
import type { Socket } from 'node:net';

/** What reading the start of a connection came to: the bytes read and what the parser made of them, or why it stopped. */
export type StartRead<T> = { data: Buffer; parsed: Exclude<T, { status: 'incomplete' }> } | { data: Buffer; ended: 'end' | 'timeout' };

/**
 * Reads from `socket` (after the `initial` bytes already read) until `feed`, given each new chunk, says more than
 * incomplete, the client ends, or `timeoutMs` passes; leaves the socket paused. Bounded: a parser says incomplete
 * only while the bytes may begin what it reads, which is capped (a PROXY header at 4112 bytes, a ClientHello at
 * 16 KiB in records of at least one byte each), so no more than that and one chunk is held; the chunks are joined
 * once, at the end.
 */
export function readStart<T extends { status: string }>(socket: Socket, initial: Buffer, timeoutMs: number, feed: (chunk: Buffer) => T): Promise<StartRead<T>> {
  const chunks: Buffer[] = initial.length > 0 ? [initial] : [];
  const data = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  const whole = (p: T): p is Exclude<T, { status: 'incomplete' }> => p.status !== 'incomplete';
  const first = initial.length > 0 ? feed(initial) : undefined;
  if (first !== undefined && whole(first)) return Promise.resolve({ data: initial, parsed: first });
  if (socket.destroyed || socket.readableEnded) return Promise.resolve({ data: data(), ended: 'end' });
  return new Promise((resolve) => {
    const done = (r: StartRead<T>) => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      resolve(r);
    };
    const timer = setTimeout(() => done({ data: data(), ended: 'timeout' }), timeoutMs);
    const onEnd = () => done({ data: data(), ended: 'end' });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const parsed = feed(chunk);
      if (whole(parsed)) done({ data: data(), parsed });
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume();
  });
}

/**
 * A parser of the whole of what was received (parseProxyHeader) as a feed of chunks: the chunks so far are joined
 * and parsed again on each one, which stays cheap because such a parser stops at a small cap.
 */
export function wholeParse<T>(parse: (data: Buffer) => T): (chunk: Buffer) => T {
  let data: Buffer = Buffer.alloc(0);
  return (chunk) => {
    data = data.length === 0 ? chunk : Buffer.concat([data, chunk]);
    return parse(data);
  };
}

// An HTTP/2 client whose TCP connection is reset while the gateway's write to it is pending. Node's HTTP/2 session
// stops reading its socket while a write is in progress, and drops the error of a write that fails (the reset
// arrives as ECONNRESET on that write): the session, its streams, their upstream requests and the socket stay open,
// unseen, until something destroys them. A client that stopped reading and then went away (its process exited, curl
// -m) always leaves this way: data it had not read makes its kernel answer the close with a reset. So while a
// write to such a client is stalled, the kernel is asked now and then whether the connection still has a peer
// (getpeername fails with ENOTCONN once it was reset), and a reset one is destroyed: Node then closes the session
// and its streams as for any closed connection. A client that is slow but still there is not touched.
import type { Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';

/** How often a stalled write asks whether its client's connection was reset. */
export const resetCheckMs = 250;

/** The TCP socket under an HTTP/2 request: the TLS socket's own (`_parent`, passed through HTTP/2's stand-in). */
function tcpSocketOf(req: Http2ServerRequest): Socket | undefined {
  return (req.stream.session?.socket as { _parent?: Socket } | undefined)?._parent;
}

/**
 * Whether the kernel says `socket`'s connection has no peer any more (reset, or closed here); false when it cannot
 * tell (no handle, or one without getpeername).
 */
export function peerReset(socket: Socket): boolean {
  const handle = (socket as { _handle?: { getpeername?: (out: object) => number } | null })._handle;
  if (typeof handle?.getpeername !== 'function') return false;
  return handle.getpeername({}) !== 0;
}

/**
 * Watches an HTTP/2 request's TCP connection every `everyMs` while `stalled()` holds, and destroys it once its peer
 * has reset it. Returns the function that stops watching (the watch also stops when the connection closes).
 */
export function watchResetPeer(req: Http2ServerRequest, stalled: () => boolean, everyMs = resetCheckMs): () => void {
  const socket = tcpSocketOf(req);
  if (socket === undefined || socket.destroyed) return noop;
  const stop = () => {
    clearInterval(timer);
    socket.off('close', stop);
  };
  const timer = setInterval(() => {
    if (!stalled() || !peerReset(socket)) return;
    stop();
    socket.destroy();
  }, everyMs);
  timer.unref();
  socket.once('close', stop);
  return stop;
}

const noop = (): void => {};

// A backend that closes a kept-alive connection as the next request arrives on it (a short idle timeout racing the
// request): a request that may be sent twice goes again to the same endpoint on a new connection, as nginx does; a
// failure on a new connection, or of a request that may not be repeated, is not sent again.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, gateway, get, policy, upstreamsFor } from './helpers.ts';

/** How the backend ends a connection on the request it refuses. */
type Ending = 'fin' | 'rst';

/**
 * A raw HTTP/1.1 backend answering `answered` requests per connection with keep-alive, then closing (`fin`) or
 * resetting (`rst`) the connection when the next request arrives, without answering it. Counts requests it saw.
 */
async function closingBackend(closer: Closer, answered: number, ending: Ending): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let n = 0;
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        seen.push(buf.slice(0, buf.indexOf(' ')));
        buf = buf.slice(end + 4);
        if (++n > answered) {
          if (ending === 'rst') socket.resetAndDestroy();
          else socket.end();
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

describe('forward: a kept-alive upstream connection closed under a request', () => {
  it.each<[string, string, Ending, number[]]>([
    ['GET, the connection closed (FIN)', 'GET', 'fin', [200, 200, 200, 200, 200, 200]],
    ['GET, the connection reset (RST)', 'GET', 'rst', [200, 200, 200, 200, 200, 200]],
    ['DELETE, the connection closed', 'DELETE', 'fin', [200, 200, 200, 200, 200, 200]],
    // Not idempotent: the endpoint may have processed it; nginx does not send it again either.
    ['POST without a body, the connection closed', 'POST', 'fin', [200, 502, 200, 502, 200, 502]],
  ])('%s', async (_name, method, ending, statuses) => {
    const b = await closingBackend(closer, 1, ending);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    // Both clients' and the gateway's connections to the backend are kept alive: undici reuses the one connection.
    const g = await gateway(closer, u, (req) => ({ backend: 'ns/svc:80', policy: policy(), path: req.url ?? '/', headers: {} }));
    const got: number[] = [];
    for (let i = 0; i < statuses.length; i++) {
      got.push((await get(g.port, `/x${i}`, { method })).status);
      // Let the gateway see the answer's end and put the connection back before the next request.
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(got).toEqual(statuses);
    const resent = g.results.filter((r) => r.attempts === 2);
    if (method === 'POST') {
      expect(resent).toEqual([]);
      expect(g.results.filter((r) => r.status === 502).every((r) => r.error === 'CONNECTION_RESET')).toBe(true);
    } else {
      // Every second request met a closed connection and was sent once more, to the same (only) endpoint.
      expect(resent.length).toBe(statuses.length / 2);
      expect(resent.every((r) => r.status === 200 && r.error === undefined && r.endpoint === `127.0.0.1:${b.port}`)).toBe(true);
    }
  });

  it('a request failing on a new connection is not sent again to the same endpoint', async () => {
    // Closes every connection at its first request: nothing to do with keep-alive.
    const b = await closingBackend(closer, 0, 'fin');
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, (req) => ({ backend: 'ns/svc:80', policy: policy(), path: req.url ?? '/', headers: {} }));
    expect((await get(g.port, '/')).status).toBe(502);
    expect(b.seen).toEqual(['GET']);
    expect(g.results[0]).toMatchObject({ status: 502, attempts: 1, error: 'CONNECTION_RESET' });
  });

  it('a request sent again that fails again on its new connection gets 502, not a third try there', async () => {
    // One answer per connection, then every later connection closes at once: the resend's new connection fails too.
    let connections = 0;
    const seen: string[] = [];
    const open = new Set<Socket>();
    const server = createServer((socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      const first = connections++ === 0;
      let n = 0;
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => {
        seen.push(d.toString('latin1').slice(0, 3));
        if (first && n++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
        else socket.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closer.add(() => {
      for (const s of open) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: (server.address() as AddressInfo).port }], 'HTTP');
    const g = await gateway(closer, u, (req) => ({ backend: 'ns/svc:80', policy: policy(), path: req.url ?? '/', headers: {} }));
    expect((await get(g.port, '/a')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    expect((await get(g.port, '/b')).status).toBe(502);
    // The first request, the second on the kept-alive connection, and once more on a new one: no more.
    expect(seen).toEqual(['GET', 'GET', 'GET']);
    expect(g.results[1]).toMatchObject({ status: 502, attempts: 2, error: 'CONNECTION_RESET' });
  });
});

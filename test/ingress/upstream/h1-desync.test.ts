// Response smuggling through the gateway: an upstream that sends more than the response a request asked for (a
// second response glued to the first, or one sent on an idle connection), or a response that can be framed two
// ways, must never have those bytes taken for the next request's answer. Each client request carries its own path;
// the backend answers a request with its path, so an answer to the wrong request shows.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, gateway, get, policy, sleep, upstreamsFor } from './helpers.ts';

/** What the backend sends for the n-th request it reads (1-based, over all connections), given the request's path. */
type Script = (n: number, path: string, socket: Socket) => void;

const answer = (path: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
const smuggled = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED';

async function scriptedBackend(closer: Closer, script: Script): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  let n = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(buf.indexOf(' ') + 1, buf.indexOf(' HTTP/1.1'));
        buf = buf.slice(end + 4);
        script(++n, path, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

async function through(script: Script, requests: number): Promise<{ bodies: string[]; statuses: number[]; connections: number }> {
  const b = await scriptedBackend(closer, script);
  const u = upstreamsFor(closer);
  u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
  const g = await gateway(closer, u, (req) => ({ backend: 'ns/svc:80', policy: policy(), path: req.url ?? '/', headers: {} }));
  const bodies: string[] = [];
  const statuses: number[] = [];
  for (let i = 1; i <= requests; i++) {
    const got = await get(g.port, `/r${i}`);
    bodies.push(got.body);
    statuses.push(got.status);
    // Time for bytes sent after an answer to arrive before the next request goes out.
    await sleep(30);
  }
  return { bodies, statuses, connections: b.connections() };
}

describe('h1 client: no response is taken for another request\'s', () => {
  it('a second response glued to the first is dropped with its connection', async () => {
    const r = await through((n, path, s) => s.write(n === 1 ? answer(path) + smuggled : answer(path)), 3);
    expect(r.bodies).toEqual(['/r1', '/r2', '/r3']);
    expect(r.connections).toBe(2);
  });

  it('a response sent on an idle connection closes it', async () => {
    const r = await through((n, path, s) => {
      s.write(answer(path));
      if (n === 1) setTimeout(() => s.write(smuggled), 5);
    }, 3);
    expect(r.bodies).toEqual(['/r1', '/r2', '/r3']);
    expect(r.connections).toBe(2);
  });

  it('a response framed two ways (Content-Length and chunked) is a 502, and the next request gets its own answer', async () => {
    const r = await through((n, path, s) => {
      if (n === 1) s.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`);
      else s.write(answer(path));
    }, 3);
    expect(r.statuses).toEqual([502, 200, 200]);
    expect(r.bodies.slice(1)).toEqual(['/r2', '/r3']);
  });

  it('two different Content-Lengths are a 502', async () => {
    const r = await through((n, path, s) => s.write(n === 1 ? `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 11\r\n\r\n/r1${smuggled}` : answer(path)), 2);
    expect(r.statuses).toEqual([502, 200]);
    expect(r.bodies[1]).toBe('/r2');
  });

  it('a response longer than its Content-Length leaves the extra bytes behind with the connection', async () => {
    const r = await through((n, path, s) => s.write(n === 1 ? `HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n/r1${smuggled}` : answer(path)), 2);
    expect(r.bodies).toEqual(['/r1', '/r2']);
    expect(r.connections).toBe(2);
  });
});

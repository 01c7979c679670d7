// Framing between an HTTP/2 or HTTP/1.1 client and an HTTP/1.1 backend, as nginx does it: a 204 carries no
// Content-Length to the client (nginx's header filter drops it; an HTTP/2 client reads a non-zero one on a 204 as a
// malformed response), and an HTTP/2 request's Cookie fields reach an HTTP/1.1 backend joined into one header
// (RFC 9113 §8.2.3; nginx's HTTP/2 module joins them with "; ").
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, backend, gateway, get, h2Gateway, policy, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

/** A raw backend answering every request with `response`, byte for byte. */
async function rawBackend(response: string): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(end + 4);
        s.write(response);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closer.add(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

/** One HTTP/2 request over cleartext to `port`; rejects on a stream error. */
function h2get(port: number, headers: Record<string, string | string[]>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const client = h2connect(`http://127.0.0.1:${port}`);
  closer.add(() => void client.close());
  return new Promise((resolve, reject) => {
    client.on('error', reject);
    const stream = client.request({ ':method': 'GET', ':path': '/', ':authority': 'h2.test', ...headers });
    let got: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => (got = h));
    stream.on('data', (c: Buffer) => (body += c));
    stream.on('end', () => resolve({ status: Number(got[':status']), headers: got, body }));
    stream.on('error', reject);
  });
}

const target = { backend: 'ns/svc:80', policy: policy(), path: '/', headers: {} };

describe('forward: a 204 from the backend', () => {
  it.each(['5', '0'])('reaches an HTTP/1.1 client without its Content-Length: %s', async (length) => {
    const port = await rawBackend(`HTTP/1.1 204 No Content\r\nContent-Length: ${length}\r\nX-Up: 1\r\n\r\n`);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port }], 'HTTP');
    const g = await gateway(closer, u, () => target);
    const got = await get(g.port, '/');
    expect([got.status, got.headers['x-up'], got.headers['content-length'], got.body]).toEqual([204, '1', undefined, '']);
  });

  it('reaches an HTTP/2 client as a well-formed response (a Content-Length on it is a stream error)', async () => {
    const port = await rawBackend('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\n');
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port }], 'HTTP');
    const g = await h2Gateway(closer, u, target);
    const got = await h2get(g.port, {});
    expect([got.status, got.headers['x-up'], got.headers['content-length'], got.body]).toEqual([204, '1', undefined, '']);
  });

  it('a 304 keeps its Content-Length (the length of the representation, as nginx passes it)', async () => {
    const port = await rawBackend('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "x"\r\n\r\n');
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port }], 'HTTP');
    const g = await gateway(closer, u, () => target);
    const got = await get(g.port, '/');
    expect([got.status, got.headers['content-length'], got.headers.etag]).toEqual([304, '50', '"x"']);
  });
});

describe('forward: an HTTP/2 client’s cookies', () => {
  it('reach an HTTP/1.1 backend in one Cookie header, joined with "; "', async () => {
    const seen: string[][] = [];
    const b = await backend(closer, (req, res) => {
      seen.push(req.rawHeaders.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'cookie' ? [req.rawHeaders[i + 1]!] : [])));
      res.end('ok');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await h2Gateway(closer, u, target);
    expect((await h2get(g.port, { cookie: ['a=1', 'b=2', 'c=3'] })).status).toBe(200);
    expect((await h2get(g.port, { cookie: 'only=1' })).status).toBe(200);
    expect(seen).toEqual([['a=1; b=2; c=3'], ['only=1']]);
  });
});

// What the client sends after an Upgrade request's head reaches the upstream only once it has switched protocols
// (101), as nginx sends its preread bytes only in ngx_http_upstream_upgrade. The relay wrote them right after the
// request head: an upstream that answered without switching (a 200, 400 or 426 from an app that takes no WebSocket
// on that path) read them as the next request on its connection, one the gateway's steps (routes, auth, source
// ranges, limits) never saw: `GET /ws` with `Upgrade` and, in the same write, `GET /admin` reached /admin. A request
// body, which the relay would send unframed (Transfer-Encoding is hop-by-hop), is refused with 400.
import { createServer, type IncomingMessage } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, listenOn, policy, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

const gatewayPort = 64640;
const backendPort = 64641;

/** A raw HTTP/1.1 backend recording each request line it reads; `switching` answers the first one 101 and echoes. */
async function rawBackend(switching: boolean): Promise<{ lines: string[]; after: string[] }> {
  const seen = { lines: [] as string[], after: [] as string[] };
  const server = createTcpServer((conn) => {
    let buffered = '';
    let upgraded = false;
    conn.on('data', (d) => {
      if (upgraded) {
        seen.after.push(d.toString('latin1'));
        conn.write(d);
        return;
      }
      buffered += d.toString('latin1');
      let end: number;
      while (!upgraded && (end = buffered.indexOf('\r\n\r\n')) >= 0) {
        seen.lines.push(buffered.slice(0, buffered.indexOf('\r\n')));
        buffered = buffered.slice(end + 4);
        if (switching) {
          upgraded = true;
          conn.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
          if (buffered !== '') seen.after.push(buffered);
        } else conn.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\n\r\nnope');
      }
    });
    conn.on('error', () => {});
  });
  await listenOn(closer, server as unknown as ReturnType<typeof createServer>, backendPort);
  return seen;
}

/** A gateway relaying every Upgrade request to the backend. */
async function gateway(): Promise<void> {
  const u = upstreamsFor(closer);
  u.setEndpoints('ns/ws:80', [{ ip: '127.0.0.1', port: backendPort }], 'HTTP');
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void u.upgrade(req, socket, head, { backend: 'ns/ws:80', policy: policy(), path: req.url ?? '/', headers: {} });
  });
  await listenOn(closer, server, gatewayPort);
}

/** Writes `text` in one write; what came back until the gateway closed, or until `until` is in it. */
function exchange(text: string, until?: string): Promise<{ got: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const s = connect(gatewayPort, '127.0.0.1', () => s.write(text));
    let got = '';
    const done = () => resolve({ got, socket: s });
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (until !== undefined && got.includes(until)) done();
    });
    s.on('close', done);
    s.on('error', reject);
    closer.add(() => void s.destroy());
  });
}

const upgrade = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
const smuggled = 'GET /admin HTTP/1.1\r\nHost: a\r\n\r\n';

describe('upgrade: bytes after the request head', () => {
  it('never reach an upstream that answered without switching', async () => {
    const seen = await rawBackend(false);
    await gateway();
    const { got } = await exchange(upgrade + smuggled);
    expect(got).toMatch(/^HTTP\/1\.1 426 /);
    expect(got.endsWith('nope')).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.lines).toEqual(['GET /ws HTTP/1.1']);
  });

  it('reach the upstream after its 101, then flow both ways', async () => {
    const seen = await rawBackend(true);
    await gateway();
    const { got, socket } = await exchange(`${upgrade}EARLY`, 'EARLY');
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    expect(got.endsWith('\r\n\r\nEARLY')).toBe(true);
    expect(seen.lines).toEqual(['GET /ws HTTP/1.1']);
    expect(seen.after.join('')).toBe('EARLY');
    socket.destroy();
  });

  it.each([
    ['chunked', 'Transfer-Encoding: chunked\r\n', `5\r\nhello\r\n0\r\n\r\n${smuggled}`],
    ['Content-Length', 'Content-Length: 5\r\n', 'hello'],
  ])('an Upgrade request with a %s body: 400, nothing sent upstream', async (_what, framing, body) => {
    const seen = await rawBackend(false);
    await gateway();
    const { got } = await exchange(`POST /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${framing}\r\n${body}`);
    expect(got).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen.lines).toEqual([]);
  });
});

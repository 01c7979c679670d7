// DNS over TCP at its edges: a client that half-closes after its queries (sends FIN, as `socket.end(query)` does)
// still gets every answer, the slow ones included, before the server closes its side.
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, frame, readFrames, stuckHandler, SyncHandler, tcpConnect } from './helpers.ts';

let server: DnsServer;
let port: number;

beforeAll(async () => {
  server = new DnsServer({
    listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }],
    handlers: [stuckHandler, new SyncHandler()],
    log: silentLogger(),
    queryTimeoutMs: 500,
    tcpIdleMs: 2000,
  });
  port = (await server.start())[0]!.port;
});
afterAll(() => server.close());

describe('a TCP client that half-closes', () => {
  const rows: Array<{ what: string; names: string[] }> = [
    { what: 'an answer at once', names: ['svc.test.local'] },
    { what: 'a slow answer', names: ['slow.fail'] },
    { what: 'pipelined slow and fast answers', names: ['slow.fail', 'svc.test.local', 'slow.fail'] },
  ];
  it.each(rows)('gets $what, then the server closes', async ({ names }) => {
    const sock = await tcpConnect(port);
    const got = readFrames(sock, names.length, 3000);
    const closed = new Promise<number>((resolve) => sock.once('end', () => resolve(performance.now())));
    sock.end(Buffer.concat(names.map((n, i) => frame(aQuery(n, 40 + i)))));
    const ids = (await got).map((b) => dnsPacket.decode(b).id).sort();
    expect(ids).toEqual(names.map((_, i) => 40 + i));
    // The server ends its side once the answers are out, without waiting for the idle timeout.
    const t0 = performance.now();
    expect((await closed) - t0).toBeLessThan(1000);
    sock.destroy();
  });

  it('with nothing in flight is closed at once', async () => {
    const sock = await tcpConnect(port);
    const closed = new Promise((resolve) => sock.once('end', resolve));
    const t0 = performance.now();
    sock.end();
    await closed;
    expect(performance.now() - t0).toBeLessThan(1000);
    sock.destroy();
  });
});

describe('TCP connections under pressure', () => {
  let small: DnsServer;
  let smallPort: number;
  beforeAll(async () => {
    small = new DnsServer({
      listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }],
      handlers: [stuckHandler, new SyncHandler()],
      log: silentLogger(),
      queryTimeoutMs: 2000,
      tcpIdleMs: 400,
      maxTcpConnections: 3,
    });
    smallPort = (await small.start())[0]!.port;
  });
  afterAll(() => small.close());

  const ask = async (sock: Awaited<ReturnType<typeof tcpConnect>>, id: number) => {
    const got = readFrames(sock, 1, 2000);
    sock.write(frame(aQuery('svc.test.local', id)));
    return dnsPacket.decode((await got)[0]!).id;
  };

  it('at the cap, a new connection is served and the one idle longest is closed (RFC 7766 6.2.3), not one with a query in flight', async () => {
    const busy = await tcpConnect(smallPort);
    busy.on('error', () => {});
    const busyAnswer = readFrames(busy, 1, 3000);
    busy.write(frame(aQuery('stuck.fail', 1)));
    const idle = await tcpConnect(smallPort);
    idle.on('error', () => {});
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    await new Promise((r) => setTimeout(r, 50));
    const recent = await tcpConnect(smallPort);
    recent.on('error', () => {});
    expect(await ask(recent, 2)).toBe(2);
    const fresh = await tcpConnect(smallPort);
    fresh.on('error', () => {});
    expect(await ask(fresh, 3)).toBe(3);
    await idleClosed;
    expect(busy.destroyed).toBe(false);
    // The stuck query still gets its SERVFAIL on the connection that was kept.
    expect((dnsPacket.decode((await busyAnswer)[0]!) as { rcode?: string }).rcode).toBe('SERVFAIL');
    for (const s of [busy, recent, fresh]) s.destroy();
  });

  it('closes a connection whose message does not complete within the idle timeout, however often bytes of it trickle in', async () => {
    const sock = await tcpConnect(smallPort);
    sock.on('error', () => {});
    // After a first query: until then the first-read timeout (3 s) bounds the connection.
    expect(await ask(sock, 8)).toBe(8);
    const t0 = performance.now();
    const closed = new Promise((resolve) => sock.once('close', resolve));
    const bytes = frame(aQuery('svc.test.local', 9));
    let i = 0;
    const timer = setInterval(() => {
      if (i < bytes.length - 1 && !sock.destroyed) sock.write(bytes.subarray(i, ++i));
    }, 100);
    await closed;
    clearInterval(timer);
    // Open for the idle timeout (400 ms) from the answer, not for as long as bytes keep coming.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
    expect(performance.now() - t0).toBeLessThan(1500);
  });
});

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

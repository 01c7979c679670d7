// The idle timeout between queries on a TCP connection is CoreDNS's: miekg/dns sets a read's deadline once, before
// the next message's first byte (the idle timeout after the previous answer), so the next query must be whole
// within it, however late its first byte came and however often more bytes trickle in.
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, frame, readFrames, SyncHandler, tcpConnect } from './helpers.ts';

let server: DnsServer;
let port: number;

beforeAll(async () => {
  server = new DnsServer({ listen: [{ host: '127.0.0.1', port: 0, text: '127.0.0.1:0' }], handlers: [new SyncHandler()], log: silentLogger(), tcpIdleMs: 1000 });
  port = (await server.start())[0]!.port;
});
afterAll(() => server.close());

describe('the idle timeout after an answer', () => {
  const rows: Array<{ what: string; firstByteAfterMs: number | undefined }> = [
    { what: 'nothing more is sent', firstByteAfterMs: undefined },
    { what: 'the next query starts late and trickles in', firstByteAfterMs: 700 },
    { what: 'the next query starts at once and trickles in', firstByteAfterMs: 0 },
  ];
  it.each(rows)('closes the connection about 1 s after the answer when $what', async ({ firstByteAfterMs }) => {
    const sock = await tcpConnect(port);
    sock.on('error', () => {});
    const got = readFrames(sock, 1, 2000);
    sock.write(frame(aQuery('svc.test.local', 1)));
    expect(dnsPacket.decode((await got)[0]!).id).toBe(1);
    const t0 = performance.now();
    const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(performance.now() - t0)));
    let timer: NodeJS.Timeout | undefined;
    if (firstByteAfterMs !== undefined) {
      const bytes = frame(aQuery('svc.test.local', 2));
      let i = 0;
      setTimeout(() => {
        timer = setInterval(() => {
          if (i < bytes.length - 1 && !sock.destroyed) sock.write(bytes.subarray(i, ++i));
        }, 50);
      }, firstByteAfterMs);
    }
    const after = await closed;
    clearInterval(timer);
    expect(after).toBeGreaterThanOrEqual(900);
    // Before: the unfinished message got its own idle timeout from its first byte (1.7 s in the second row).
    expect(after).toBeLessThan(1400);
  });

  it('a query whole within the timeout is answered, and the time starts again from its answer', async () => {
    const sock = await tcpConnect(port);
    sock.on('error', () => {});
    for (const id of [1, 2, 3]) {
      const got = readFrames(sock, 1, 2000);
      sock.write(frame(aQuery('svc.test.local', id)));
      expect(dnsPacket.decode((await got)[0]!).id).toBe(id);
      await new Promise((r) => setTimeout(r, 700));
    }
    expect(sock.destroyed).toBe(false);
    sock.destroy();
  });
});

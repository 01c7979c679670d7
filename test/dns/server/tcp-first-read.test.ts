// A new TCP connection has CoreDNS's read timeout (3 s) for its first query, as miekg/dns's server gives the first
// read of a connection the read timeout and later ones the idle timeout (10 s in CoreDNS): a client that connects and
// sends nothing, or trickles its first query, is closed after about 3 s, not after the idle timeout (10 s), so silent
// connections cannot hold places among the 1000 for long. Between queries the idle timeout still applies.
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsServer } from '../../../dns/server/server.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { aQuery, dig, frame, readFrames, SyncHandler, tcpConnect } from './helpers.ts';

const port = 63620;
let server: DnsServer;

beforeAll(async () => {
  // Default timeouts: the ones netplane dns runs with.
  server = new DnsServer({ listen: [{ host: '127.0.0.1', port, text: `127.0.0.1:${port}` }], handlers: [new SyncHandler()], log: silentLogger() });
  await server.start();
});
afterAll(() => server.close());

/** Resolves with the ms from `t0` to the socket's close, or with Infinity when it is still open after `ms`. */
function closedWithin(sock: Awaited<ReturnType<typeof tcpConnect>>, t0: number, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(Infinity), ms);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
  });
}

describe.concurrent('the first query on a new TCP connection', () => {
  it('a connection that sends nothing is closed after about 3 s, not after the 10 s idle timeout', async () => {
    const t0 = performance.now();
    const sock = await tcpConnect(port);
    sock.on('error', () => {});
    const after = await closedWithin(sock, t0, 5000);
    sock.destroy();
    expect(after).toBeGreaterThanOrEqual(2500);
    expect(after).toBeLessThan(4000);
  });

  it('a first query trickled byte by byte must be whole within those 3 s of the connection', async () => {
    const t0 = performance.now();
    const sock = await tcpConnect(port);
    sock.on('error', () => {});
    const bytes = frame(aQuery('svc.test.local', 5));
    let i = 0;
    const timer = setInterval(() => {
      if (i < bytes.length - 1 && !sock.destroyed) sock.write(bytes.subarray(i, ++i));
    }, 150);
    const after = await closedWithin(sock, t0, 5000);
    clearInterval(timer);
    sock.destroy();
    expect(after).toBeGreaterThanOrEqual(2500);
    expect(after).toBeLessThan(4000);
  });

  it('after a first query, the connection waits the idle timeout for the next one', async () => {
    const sock = await tcpConnect(port);
    sock.on('error', () => {});
    const first = readFrames(sock, 1, 2000);
    sock.write(frame(aQuery('svc.test.local', 1)));
    expect(dnsPacket.decode((await first)[0]!).id).toBe(1);
    await new Promise((r) => setTimeout(r, 4000));
    expect(sock.destroyed).toBe(false);
    const second = readFrames(sock, 1, 2000);
    sock.write(frame(aQuery('svc.test.local', 2)));
    expect(dnsPacket.decode((await second)[0]!).id).toBe(2);
    sock.destroy();
  });

  it('dig over TCP is answered as before', async () => {
    const r = await dig(port, '+tcp', 'svc.test.local', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.transport).toBe('TCP');
    expect(r.answers).toEqual([['svc.test.local.', 'A', '10.0.0.1']]);
  });
});

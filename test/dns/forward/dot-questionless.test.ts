// A DNS-over-TLS upstream that answers an error without the question (FORMERR from a server that does not know
// EDNS0, REFUSED, BADVERS with its upper bits in an OPT record): the exchange fails at once, as over UDP, and the
// error names the rcode (it said "answered another question", which sent whoever read the log after a spoofing or
// ID bug instead of an upstream that does not take our query).
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeQuery, UpstreamReplyError } from '../../../dns/forward/exchange.ts';
import { parseUpstream } from '../../../dns/forward/address.ts';
import { DotPool, trustContext } from '../../../dns/forward/tls.ts';
import { onFrames, writeFrame } from './frames.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { serverCert, testCa } from './dot-upstream.ts';
import type { Pems } from '../../ingress/tls/pki.ts';

let ca: Pems;
let pems: Pems;
beforeAll(async () => {
  ca = await testCa();
  pems = await serverCert(ca, ['dot.test']);
});

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A TLS server that answers every query with `reply(query)`, framed. */
async function tlsUpstream(reply: (q: Buffer) => Buffer): Promise<number> {
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer({ cert: pems.cert, key: pems.key }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onFrames(socket, (q) => writeFrame(socket, reply(q)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as { port: number }).port;
}

/** The query's header alone, as a reply: QR, RD, RA and `rcode`, no question. */
function headerOnly(q: Buffer, rcode: number): Buffer {
  const h = Buffer.alloc(rcode > 15 ? 23 : 12);
  q.copy(h, 0, 0, 2);
  h[2] = 0x81;
  h[3] = 0x80 | (rcode & 0x0f);
  if (rcode > 15) {
    // One additional record: an OPT (root owner, type 41, size 1232) whose TTL's first byte is the extended rcode.
    h.writeUInt16BE(1, 10);
    h.writeUInt16BE(41, 13);
    h.writeUInt16BE(1232, 15);
    h[17] = rcode >> 4;
  }
  return h;
}

const q = encodeQuery({ name: 'www.example.com', qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false }, 0);

describe('DNS over TLS: an error reply without the question', () => {
  it.each([
    { rcode: 1, name: 'FORMERR' },
    { rcode: 5, name: 'REFUSED' },
    { rcode: 16, name: 'BADVERS' },
  ])('with $name fails the exchange at once', async ({ rcode, name }) => {
    const port = await tlsUpstream((query) => headerOnly(query, rcode));
    const p = new DotPool(parseUpstream(`tls://127.0.0.1:${port}#dot.test`), { context: trustContext([ca.cert]), expireMs: 10_000, log: silentLogger() });
    cleanup.push(() => p.close());
    const started = performance.now();
    const err = await p.exchange(q, { timeoutMs: 1500 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamReplyError);
    expect(String((err as Error).message)).toContain(name);
    expect(performance.now() - started).toBeLessThan(800);
  });
});

// An upstream that answers an error rcode without echoing the question (old servers answer FORMERR so to a query
// with EDNS0; some answer REFUSED or NOTIMP so): that is its answer, not a datagram to ignore. The exchange fails at
// once and the forwarder moves on, instead of waiting out every timeout of its budget (CoreDNS's forward takes such
// a reply too, by its ID). A question-less reply with NOERROR is still ignored.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { UpstreamReplyError, encodeQuery, exchange } from '../../../dns/forward/exchange.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { query, startUpstream, a } from './fake-upstream.ts';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** A UDP upstream that answers every query with its header alone: QR, RD, RA and `rcode`, no question. */
async function headerOnly(rcode: number): Promise<{ host: string; port: number; text: string }> {
  const s: Socket = createSocket('udp4');
  s.on('message', (msg, from) => {
    const h = Buffer.alloc(12);
    msg.copy(h, 0, 0, 2);
    h[2] = 0x81;
    h[3] = 0x80 | rcode;
    s.send(h, from.port, from.address);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  open.push(s);
  const port = s.address().port;
  return { host: '127.0.0.1', port, text: `127.0.0.1:${port}` };
}

const q = encodeQuery({ name: 'www.example.com', qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false }, 7);

describe('a reply without the question', () => {
  const rows = [
    { rcode: 1, name: 'FORMERR' },
    { rcode: 4, name: 'NOTIMP' },
    { rcode: 5, name: 'REFUSED' },
    { rcode: 2, name: 'SERVFAIL' },
  ];
  it.each(rows)('with $name fails the exchange at once', async ({ rcode, name }) => {
    const to = await headerOnly(rcode);
    const started = performance.now();
    const err = await exchange(to, q, { timeoutMs: 1500 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamReplyError);
    expect(String((err as Error).message)).toContain(name);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('with NOERROR is ignored (nothing in it answers the query)', async () => {
    const to = await headerOnly(0);
    const err = await exchange(to, q, { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e);
    expect((err as { code?: string }).code).toBe('NETPLANE_DNS_UPSTREAM_TIMEOUT');
  });

  it('sends the forwarder on to the next upstream without waiting', async () => {
    const bad = await headerOnly(1);
    const good = await startUpstream((s) => ({ answers: [a(s.name, '10.0.0.9', 60)] }));
    open.push(good);
    const f = new Forwarder({ upstreams: [bad, good.hostPort], log: silentLogger(), policy: 'sequential', timeoutMs: 1500 });
    open.unshift(f);
    const started = performance.now();
    expect(await f.handle(query('www.example.com'))).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '10.0.0.9' }] });
    expect(performance.now() - started).toBeLessThan(500);
  });
});

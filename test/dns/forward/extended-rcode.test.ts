// An upstream reply whose rcode is extended (RFC 6891 6.1.3: the upper 8 of its 12 bits sit in the OPT record's TTL
// field): BADVERS (16) has a header rcode of 0 and BADCOOKIE (23) one of 7. miekg/dns, and so CoreDNS, reads the
// whole rcode; CoreDNS's cache does not cache it (response.Typify: OtherError) and its serve-stale check takes it as
// a failed refresh, and its forward relays it. netplane reads it whole too: it is relayed as it is (to a client
// with EDNS0; SERVFAIL to one without, as no OPT record could carry its upper bits), never cached as NODATA, and a
// stale answer stands in for it.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { UpstreamReplyError, encodeQuery, exchange } from '../../../dns/forward/exchange.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { a, query, soa, startUpstream, type FakeUpstream } from './fake-upstream.ts';
import { createSocket } from 'node:dgram';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function setup(extendedRcode: number | undefined): Promise<{ up: FakeUpstream; f: Forwarder; registry: Registry; advance: (s: number) => void }> {
  const up = await startUpstream((q) =>
    extendedRcode === undefined ? { answers: [a(q.name, '10.0.0.1', 30)] } : { extendedRcode, authorities: [soa('example.com', 60, 60)] },
  );
  const clock = { now: 1_700_000_000_000 };
  const registry = new Registry();
  const f = new Forwarder({ upstreams: [up.hostPort], log: silentLogger(), registry, now: () => clock.now });
  open.push(up);
  open.unshift(f);
  return { up, f, registry, advance: (s) => (clock.now += s * 1000) };
}

const rows = [
  { name: 'BADVERS', rcode: 16 },
  { name: 'BADCOOKIE', rcode: 23 },
];

describe('an upstream reply with an extended rcode', () => {
  it.each(rows)('$name is relayed, not cached, and counted as $name', async ({ name, rcode }) => {
    const { up, f, registry } = await setup(rcode);
    for (let i = 0; i < 2; i++) {
      const got = await f.handle(query('www.example.com'));
      expect(got.rcode).toBe(name);
    }
    // Nothing was cached: the second query went upstream again.
    expect(up.count()).toBe(2);
    expect(f.cache.size).toBe(0);
    const metrics = await registry.metrics();
    expect(metrics).toContain(`coredns_forward_responses_total{rcode="${name}",to="${up.hostPort.text}"} 2`);
    expect(metrics).not.toMatch(/coredns_forward_responses_total\{rcode="(NOERROR|YXRRSET)"/);
  });

  it.each(rows)('$name as the refresh of an expired answer: the stale answer stands in', async ({ rcode }) => {
    const { up, f, advance } = await setup(undefined);
    await f.handle(query('www.example.com'));
    up.script = () => ({ extendedRcode: rcode, authorities: [soa('example.com', 60, 60)] });
    advance(40);
    expect(await f.handle(query('www.example.com'))).toMatchObject({ rcode: 'NOERROR', source: 'cache', answers: [{ data: '10.0.0.1', ttl: 30 }] });
  });

  it('BADVERS without the question fails the exchange at once, as the other error rcodes do', async () => {
    const s = createSocket('udp4');
    s.on('message', (msg, from) => {
      // Header (QR, RA, rcode 0, no question, one additional) and an OPT record whose extended rcode is 1.
      const r = Buffer.alloc(12 + 11);
      msg.copy(r, 0, 0, 2);
      r[2] = 0x81;
      r[3] = 0x80;
      r.writeUInt16BE(1, 10);
      r.writeUInt16BE(41, 13);
      r.writeUInt16BE(1232, 15);
      r[17] = 1;
      s.send(r, from.port, from.address);
    });
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    open.push(s);
    const port = s.address().port;
    const q = encodeQuery({ name: 'www.example.com', qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false }, 7);
    const started = performance.now();
    const err = await exchange({ host: '127.0.0.1', port, text: `127.0.0.1:${port}` }, q, { timeoutMs: 1500 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamReplyError);
    expect(String((err as Error).message)).toContain('BADVERS');
    expect(performance.now() - started).toBeLessThan(500);
  });
});

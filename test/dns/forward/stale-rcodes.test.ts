// Serve-stale after an upstream error: a refresh counts only when it brings NOERROR or NXDOMAIN (RFC 8767 §4, as
// CoreDNS's cache verifies it); any other rcode leaves the expired answer to stand in, as SERVFAIL does.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { a, query, soa, startUpstream, type FakeUpstream, type Reply } from './fake-upstream.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function setup(): Promise<{ up: FakeUpstream; f: Forwarder; advance: (s: number) => void }> {
  const up = await startUpstream((q) => ({ answers: [a(q.name, '10.0.0.1', 30)] }));
  const clock = { now: 1_700_000_000_000 };
  const f = new Forwarder({ upstreams: [up.hostPort], log: silentLogger(), registry: new Registry(), now: () => clock.now });
  open.push(up);
  open.unshift(f);
  return { up, f, advance: (s) => (clock.now += s * 1000) };
}

describe('an expired answer when the refresh brings an error rcode', () => {
  const rows: Array<{ rcode: Exclude<Reply, 'silent'>['rcode']; stale: boolean }> = [
    { rcode: 'SERVFAIL', stale: true },
    { rcode: 'REFUSED', stale: true },
    { rcode: 'FORMERR', stale: true },
    { rcode: 'NOTIMP', stale: true },
    { rcode: 'YXDOMAIN', stale: true },
    { rcode: 'NXDOMAIN', stale: false },
  ];
  it.each(rows)('$rcode: served stale $stale', async ({ rcode, stale }) => {
    const { up, f, advance } = await setup();
    await f.handle(query('www.example.com'));
    up.script = () => ({ rcode, authorities: rcode === 'NXDOMAIN' ? [soa('example.com', 60, 60)] : [] });
    advance(40);
    const got = await f.handle(query('www.example.com'));
    if (stale) expect(got).toMatchObject({ rcode: 'NOERROR', source: 'cache', answers: [{ data: '10.0.0.1', ttl: 30 }] });
    else expect(got.rcode).toBe('NXDOMAIN');
  });

  it('an uncached name still gets the upstream\'s rcode as it is', async () => {
    const { up, f } = await setup();
    up.script = () => ({ rcode: 'REFUSED' });
    expect((await f.handle(query('new.example.com'))).rcode).toBe('REFUSED');
  });
});

// The DNS-over-TLS connections of one upstream against a scripted TLS server on 127.0.0.1: pipelining, IDs,
// replies out of order, connections closed under queries, timeouts, certificate failures.
import { createServer, type Server, type TLSSocket } from 'node:tls';
import dnsPacket from 'dns-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeQuery, UpstreamTimeoutError, UpstreamUnreachableError, type UpstreamReply } from '../../../dns/forward/exchange.ts';
import { parseUpstream } from '../../../dns/forward/address.ts';
import { DotPool, UpstreamTlsError, trustContext } from '../../../dns/forward/tls.ts';
import { captureLogger } from '../../helpers/wait.ts';
import { serverCert, testCa } from './dot-upstream.ts';
import { onFrames, txtReply, writeFrame } from './frames.ts';
import type { Pems } from '../../ingress/tls/pki.ts';

/** What the server does with one query on one connection: answer (now or with the batch), stay silent, or close. */
type Action = 'answer' | 'batch' | 'silent' | 'end';

interface ScriptedServer {
  port: number;
  /** Connections accepted, each with the IDs of the queries it carried. */
  connections: Array<{ ids: number[] }>;
  /** For each connection, whether it resumed a session. */
  resumed(): boolean[];
  /** TCP connections accepted, handshakes that failed included. */
  accepted(): number;
  close(): Promise<void>;
}

/** A TLS server answering DNS over TCP framing; `batch` queries are held 20 ms, then answered in reverse order. */
async function scripted(pems: Pems, script: (name: string, conn: { ids: number[] }) => Action, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<ScriptedServer> {
  const connections: Array<{ ids: number[] }> = [];
  const resumed: boolean[] = [];
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer({ cert: pems.cert, key: pems.key, maxVersion }, (socket) => {
    const conn = { ids: [] as number[] };
    connections.push(conn);
    resumed.push(socket.isSessionReused());
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const held: Buffer[] = [];
    const answer = (q: Buffer) => writeFrame(socket, txtReply(q));
    onFrames(socket, (q) => {
      conn.ids.push(q.readUInt16BE(0));
      const action = script(dnsPacket.decode(q).questions![0]!.name, conn);
      if (action === 'answer') answer(q);
      if (action === 'end') socket.end();
      if (action === 'batch' && held.push(q) === 1) setTimeout(() => held.splice(0).reverse().forEach(answer), 20);
    });
  });
  let accepted = 0;
  server.on('connection', () => accepted++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    accepted: () => accepted,
    port: (server.address() as { port: number }).port,
    connections,
    resumed: () => resumed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const query = (name: string) => encodeQuery({ name, qtype: 16, qclass: 1, dnssecOk: false, checkingDisabled: false }, 0);
const txt = (r: UpstreamReply) => String(((r.answers[0] as { data?: unknown } | undefined)?.data as Buffer[] | undefined)?.[0] ?? '');

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

/** A pool to the server at `port` trusting the test CA; the logger's records are returned too. */
function pool(port: number, name = 'dot.test', expireMs = 10_000) {
  const { log, records } = captureLogger();
  const p = new DotPool(parseUpstream(`tls://127.0.0.1:${port}#${name}`), { context: trustContext([ca.cert]), expireMs, log });
  cleanup.push(() => p.close());
  return { pool: p, records };
}

describe('DotPool', () => {
  it('pipelines queries, each pending ID unique on its connection, and matches replies that come in reverse order', async () => {
    const server = await scripted(pems, () => 'batch');
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port);
    const names = Array.from({ length: 200 }, (_, i) => `q${i}.example`);
    const replies = await Promise.all(names.map((n) => p.exchange(query(n), { timeoutMs: 5000 })));
    expect(replies.map(txt)).toEqual(names);
    expect(replies.every((r) => r.transport === 'tls')).toBe(true);
    // 200 at once: a few connections, never one per query.
    expect(server.connections.length).toBeGreaterThan(1);
    expect(server.connections.length).toBeLessThanOrEqual(4);
    for (const c of server.connections) expect(new Set(c.ids).size).toBe(c.ids.length);
  });

  it('sends a query again, once, on a new connection when a connection that answered before is closed under it', async () => {
    const server = await scripted(pems, (_name, conn) => (conn.ids.length === 1 ? 'answer' : 'end'));
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port);
    expect(txt(await p.exchange(query('one.example'), { timeoutMs: 2000 }))).toBe('one.example');
    expect(txt(await p.exchange(query('two.example'), { timeoutMs: 2000 }))).toBe('two.example');
    expect(server.connections.map((c) => c.ids.length)).toEqual([2, 1]);
  });

  it('fails the queries of a new connection closed before any reply, without sending them again', async () => {
    const server = await scripted(pems, () => 'end');
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port);
    await expect(p.exchange(query('x.example'), { timeoutMs: 2000 })).rejects.toBeInstanceOf(UpstreamUnreachableError);
    expect(server.connections).toHaveLength(1);
  });

  it('takes no new query on a connection after one timed out there', async () => {
    const server = await scripted(pems, (name) => (name.startsWith('silent') ? 'silent' : 'answer'));
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port);
    await expect(p.exchange(query('silent.example'), { timeoutMs: 200 })).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(txt(await p.exchange(query('after.example'), { timeoutMs: 2000 }))).toBe('after.example');
    expect(server.connections).toHaveLength(2);
  });

  it('closes a connection unused for expireMs', async () => {
    const server = await scripted(pems, () => 'answer');
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port, 'dot.test', 100);
    await p.exchange(query('a.example'), { timeoutMs: 2000 });
    expect(p.connections).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(p.connections).toBe(0);
  });

  // Under TLS 1.2 the session ticket comes before Node checks the name, and a resumed session skips that check.
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`refuses a certificate for another name before sending anything, on every connection, and logs the reason once (${version})`, async () => {
      const server = await scripted(pems, () => 'answer', version);
      cleanup.push(() => server.close());
      const { pool: p, records } = pool(server.port, 'other.test');
      for (let i = 0; i < 3; i++) await expect(p.exchange(query(`n${i}.example`), { timeoutMs: 2000 })).rejects.toBeInstanceOf(UpstreamTlsError);
      expect(server.accepted()).toBe(3);
      expect(server.resumed().filter(Boolean)).toEqual([]);
      expect(server.connections.flatMap((c) => c.ids)).toEqual([]);
      const warnings = records.filter((r) => r.level === 40);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ upstream: `tls://127.0.0.1:${server.port}`, servername: 'other.test' });
      expect(String(warnings[0]!.reason)).toMatch(/other\.test\. is not in the cert's altnames/);
    });
  }

  it('resumes the session of a connection that verified', async () => {
    const server = await scripted(pems, () => 'answer', 'TLSv1.2');
    cleanup.push(() => server.close());
    const { pool: p } = pool(server.port, 'dot.test', 50);
    await p.exchange(query('a.example'), { timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(p.connections).toBe(0);
    await p.exchange(query('b.example'), { timeoutMs: 2000 });
    expect(server.resumed()).toEqual([false, true]);
  });
});

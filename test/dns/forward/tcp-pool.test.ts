// The TCP-only connections of one upstream (tcp://, CoreDNS force_tcp) against a scripted DNS-over-TCP server on
// 127.0.0.1 that holds its answers: a connection per pending query up to 16, pipelined beyond; replies in reverse
// order matched by ID; a kept-open connection closed under a query sends it again once.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeQuery, UpstreamUnreachableError, type UpstreamReply } from '../../../dns/forward/exchange.ts';
import { parseUpstream } from '../../../dns/forward/address.ts';
import { TcpPool } from '../../../dns/forward/stream.ts';
import { onFrames, txtReply, writeFrame } from './frames.ts';

interface Held {
  socket: Socket;
  query: Buffer;
}

/** A DNS-over-TCP server that answers nothing until release(); each answer is a TXT record of the question's name. */
async function holding(): Promise<{ port: number; connections: () => number; held: Held[]; release(): void; closeAll(): void; close(): Promise<void> }> {
  const held: Held[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onFrames(socket, (query) => held.push({ socket, query }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    held,
    release() {
      for (const { socket, query } of held.splice(0).reverse()) writeFrame(socket, txtReply(query));
    },
    closeAll() {
      for (const s of sockets) s.end();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const query = (name: string) => encodeQuery({ name, qtype: 16, qclass: 1, dnssecOk: false, checkingDisabled: false }, 0);
const txt = (r: UpstreamReply) => String(((r.answers[0] as { data?: unknown } | undefined)?.data as Buffer[] | undefined)?.[0] ?? '');

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup() {
  const server = await holding();
  cleanup.push(() => server.close());
  const dials: boolean[] = [];
  const pool = new TcpPool(parseUpstream(`tcp://127.0.0.1:${server.port}`), { expireMs: 10_000, onDial: (reused) => dials.push(reused) });
  cleanup.push(() => pool.close());
  return { server, pool, dials };
}

const until = async (what: string, cond: () => boolean) => {
  const end = performance.now() + 5000;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('TcpPool', () => {
  it('opens a connection per pending query up to 16, pipelines the rest on them, and matches replies that come in reverse order', async () => {
    const { server, pool, dials } = await setup();
    const names = Array.from({ length: 20 }, (_, i) => `q${i}.example`);
    const replies = names.map((n) => pool.exchange(query(n), { timeoutMs: 5000 }));
    await until('20 queries at the server', () => server.held.length === 20);
    expect(server.connections()).toBe(16);
    expect(pool.connections).toBe(16);
    expect(dials.filter((d) => !d)).toHaveLength(16);
    expect(dials.filter((d) => d)).toHaveLength(4);
    // IDs unique among the queries pending on each connection.
    const bySocket = new Map<Socket, number[]>();
    for (const h of server.held) bySocket.set(h.socket, [...(bySocket.get(h.socket) ?? []), h.query.readUInt16BE(0)]);
    for (const ids of bySocket.values()) expect(new Set(ids).size).toBe(ids.length);
    server.release();
    const got = await Promise.all(replies);
    expect(got.map(txt)).toEqual(names);
    expect(got.every((r) => r.transport === 'tcp')).toBe(true);
  });

  it('reuses an open connection once its queries are answered', async () => {
    const { server, pool } = await setup();
    for (const n of ['one.example', 'two.example', 'three.example']) {
      const reply = pool.exchange(query(n), { timeoutMs: 5000 });
      await until('the query at the server', () => server.held.length === 1);
      server.release();
      expect(txt(await reply)).toBe(n);
    }
    expect(server.connections()).toBe(1);
  });

  it('sends a query again, once, on a new connection when a connection that answered before is closed under it', async () => {
    const { server, pool } = await setup();
    const first = pool.exchange(query('first.example'), { timeoutMs: 5000 });
    await until('the first query', () => server.held.length === 1);
    server.release();
    await first;
    const second = pool.exchange(query('second.example'), { timeoutMs: 5000 });
    await until('the second query', () => server.held.length === 1);
    // The server drops what it holds and closes, as an upstream closing an idle connection would.
    server.held.splice(0);
    server.closeAll();
    await until('the query sent again', () => server.held.length === 1);
    expect(server.connections()).toBe(2);
    server.release();
    expect(txt(await second)).toBe('second.example');
  });

  it('fails the queries of a new connection refused or closed before any reply', async () => {
    const { server, pool } = await setup();
    const reply = pool.exchange(query('lost.example'), { timeoutMs: 5000 });
    await until('the query', () => server.held.length === 1);
    server.held.splice(0);
    server.closeAll();
    await expect(reply).rejects.toThrow(UpstreamUnreachableError);
    await expect(reply).rejects.toThrow(/closed the TCP connection without a reply/);
    await server.close();
    await expect(pool.exchange(query('refused.example'), { timeoutMs: 5000 })).rejects.toThrow(/over TCP: connect ECONNREFUSED/);
  });
});

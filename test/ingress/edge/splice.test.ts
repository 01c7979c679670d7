// splice() between real sockets on 127.0.0.1: the bytes already read go first and both directions are relayed; a
// client that goes away at any moment (while its endpoint is being connected, while bytes flow, by a reset) ends
// the splice with both connections closed and nothing thrown; endpoints that refuse are skipped; with an idle
// time-out, bytes either way keep a connection open and silence closes both sides; no endpoint is tried once the
// tries' time limit has passed (an endpoint that never answers a connect: a listener whose accept queue is full).
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientGone, splice, type SpliceResult } from '../../../ingress/edge/splice.ts';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';

/** A server socket on 127.0.0.1 and the connections it accepted, each with what it received. */
async function endpoint(onConnection: (s: Socket) => void = () => {}): Promise<{ server: Server; port: number; accepted: Array<{ socket: Socket; got: Buffer[]; closed: boolean }> }> {
  const accepted: Array<{ socket: Socket; got: Buffer[]; closed: boolean }> = [];
  const server = createServer((socket) => {
    const entry = { socket, got: [] as Buffer[], closed: false };
    accepted.push(entry);
    socket.on('data', (d: Buffer) => entry.got.push(d));
    socket.on('error', () => {});
    socket.on('close', () => (entry.closed = true));
    onConnection(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

/** The gateway's side of a client connection (paused, with the error listener the edge listener keeps), and the client's. */
async function clientPair(): Promise<{ gatewaySide: Socket; client: Socket; close: () => Promise<void> }> {
  let gatewaySide!: Socket;
  const front = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    gatewaySide = s;
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const client = connect({ host: '127.0.0.1', port: (front.address() as AddressInfo).port });
  client.on('error', () => {});
  await waitFor('the accepted connection', () => gatewaySide !== undefined);
  return { gatewaySide, client, close: () => new Promise((r) => front.close(() => r())) };
}

describe('splice', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const closeServer = (s: Server) => () => new Promise<void>((r) => s.close(() => r()));

  it('relays the bytes already read, then both ways, and ends when the client ends', async () => {
    const up = await endpoint((s) => s.on('data', (d: Buffer) => s.write(`echo:${d}`)));
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    const done = splice(pair.gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 3 });
    const got: Buffer[] = [];
    pair.client.on('data', (d: Buffer) => got.push(d));
    await waitFor('the echo', () => Buffer.concat(got).toString().includes('echo:hello'));
    pair.client.end();
    const result = await done;
    expect(result).toMatchObject({ endpoint: `127.0.0.1:${up.port}`, sent: 5 });
    expect(result.received).toBeGreaterThanOrEqual(10);
  });

  it('a client gone while its endpoint is being connected: the endpoint connection is closed and the splice ends', async () => {
    const up = await endpoint();
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    const done = splice(pair.gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 3 });
    // The connect has started but cannot have finished: it needs the event loop.
    pair.client.resetAndDestroy();
    pair.gatewaySide.destroy();
    const result = await Promise.race([done, new Promise<string>((r) => setTimeout(() => r('still open'), 3000))]);
    expect(result).toEqual({ error: clientGone, sent: 0, received: 0 });
    await waitFor('the endpoint connection closed', () => up.accepted.length === 1 && up.accepted[0]!.closed, 3000);
    expect(Buffer.concat(up.accepted[0]!.got).length).toBe(0);
  });

  it('a reset from the client while its endpoint is being connected is handled (nothing thrown)', async () => {
    const up = await endpoint();
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    // Reading, as a socket with buffered data does while it waits: the reset arrives as an 'error'.
    pair.gatewaySide.resume();
    pair.gatewaySide.pause();
    const done = splice(pair.gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 3 });
    pair.client.resetAndDestroy();
    const result: SpliceResult = await done;
    expect(result.endpoint === undefined ? result.error : 'relayed').toMatch(/the client went away|relayed/);
    await waitFor('both connections closed', () => pair.gatewaySide.destroyed && up.accepted.every((a) => a.closed), 3000);
  });

  it.each([['reset', (s: Socket) => s.resetAndDestroy()], ['close', (s: Socket) => s.destroy()]] as const)('a client that goes away (%s) while bytes flow: both closed, the result says so', async (_how, away) => {
    const up = await endpoint((s) => s.write('server hello'));
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    const done = splice(pair.gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 3 });
    await new Promise<void>((r) => pair.client.once('data', () => r()));
    away(pair.client);
    const result = await done;
    expect(result.endpoint).toBe(`127.0.0.1:${up.port}`);
    await waitFor('the endpoint connection closed', () => up.accepted[0]?.closed === true, 3000);
  });

  it('closes both sides after the idle time-out without a byte either way, not while bytes flow one way', async () => {
    // The endpoint sends a byte every 100 ms for 600 ms, then nothing.
    const up = await endpoint((s) => {
      let n = 0;
      const t = setInterval(() => (++n > 6 ? clearInterval(t) : s.write('.')), 100);
      s.on('close', () => clearInterval(t));
    });
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    const started = performance.now();
    const result = await splice(pair.gatewaySide, Buffer.alloc(0), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 1, idleMs: 300 });
    const ms = performance.now() - started;
    expect(result).toMatchObject({ endpoint: `127.0.0.1:${up.port}`, error: 'idle for 300 ms', received: 6 });
    // 600 ms of bytes the client never answered, then 300 ms of silence.
    expect(ms).toBeGreaterThan(850);
    expect(ms).toBeLessThan(2000);
    await waitFor('the endpoint connection closed', () => up.accepted[0]?.closed === true, 3000);
  });

  it('skips an endpoint that refuses, and says why when none takes the connection', async () => {
    const up = await endpoint();
    const closed = await freePort();
    const pair = await clientPair();
    cleanups.push(closeServer(up.server), pair.close);
    const result = splice(pair.gatewaySide, Buffer.from('x'), [{ ip: '127.0.0.1', port: closed }, { ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 3 });
    await waitFor('the second endpoint', () => up.accepted.length === 1);
    pair.client.end();
    expect(await result).toMatchObject({ endpoint: `127.0.0.1:${up.port}` });
    const pair2 = await clientPair();
    cleanups.push(pair2.close);
    expect(await splice(pair2.gatewaySide, Buffer.from('x'), [{ ip: '127.0.0.1', port: closed }], { connectTimeoutMs: 1000, tries: 3 })).toEqual({ error: `127.0.0.1:${closed}: ECONNREFUSED`, sent: 0, received: 0 });
    expect(pair2.gatewaySide.destroyed).toBe(true);
  });

  it('tries no other endpoint once the time limit of the tries has passed, but cuts no try under way', async () => {
    const silent = await unanswered();
    cleanups.push(silent.close);
    const up = await endpoint();
    cleanups.push(closeServer(up.server));
    const endpoints = [{ ip: '127.0.0.1', port: silent.port }, { ip: '127.0.0.1', port: up.port }];
    // The first connect runs its whole 300 ms past a 100 ms limit: the second endpoint is not tried.
    const pair = await clientPair();
    cleanups.push(pair.close);
    const started = performance.now();
    const result = await splice(pair.gatewaySide, Buffer.from('x'), endpoints, { connectTimeoutMs: 300, tries: 3, triesWithinMs: 100 });
    expect(result).toEqual({ error: `127.0.0.1:${silent.port}: no connection within 300 ms; no other endpoint tried after 100 ms`, sent: 0, received: 0 });
    expect(performance.now() - started).toBeGreaterThan(290);
    expect(up.accepted).toHaveLength(0);
    // Within a limit longer than the first try, the second endpoint takes the connection.
    const pair2 = await clientPair();
    cleanups.push(pair2.close);
    const done = splice(pair2.gatewaySide, Buffer.from('x'), endpoints, { connectTimeoutMs: 300, tries: 3, triesWithinMs: 1000 });
    await waitFor('the second endpoint', () => up.accepted.length === 1, 3000);
    pair2.client.end();
    expect(await done).toMatchObject({ endpoint: `127.0.0.1:${up.port}` });
  });
});

/**
 * A port on 127.0.0.1 whose connects never complete: a listener (backlog 1; Node reads 0 as its default) in a child
 * process whose event loop is blocked, so nothing is accepted, with its accept queue filled; Linux then drops further
 * SYNs.
 */
async function unanswered(): Promise<{ port: number; close: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['-e', "const s = require('node:net').createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => { require('node:fs').writeSync(1, `${s.address().port}\\n`); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000); process.exit(0); });"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  // The accept queue holds backlog + 1 connections: fill it.
  const fillers = [0, 1].map(() => connect({ host: '127.0.0.1', port }).on('error', () => {}));
  await new Promise((r) => setTimeout(r, 100));
  return {
    port,
    close: async () => {
      for (const f of fillers) f.destroy();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

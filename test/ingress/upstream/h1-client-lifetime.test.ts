// The HTTP/1.1 upstream client (ingress/upstream/h1) against scripted raw servers (h1-servers.ts), part two: how
// long connections live, timeouts and connect failures, flow control, abort, and the pool's limits and shutdown.
// Part one (h1-client.test.ts) covers the wire. Every request must hear exactly one ending (checkEndings).
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../../ingress/upstream/errors.ts';
import type { H1Controller } from '../../../ingress/upstream/h1/pool.ts';
import { answerOk, body, checkEndings, closer, codeOf, connects, expectOk, final, poolTo, send } from './h1-harness.ts';
import { deadPort, sleep, stalledPort } from './helpers.ts';
import { bodyOf, ok, scriptedServer, until } from './h1-servers.ts';

checkEndings();

describe('h1 client: connection lifetime', () => {
  it.each([
    ['Connection: close from the server', ok('ok', 'Connection: close\r\n')],
    ['an HTTP/1.0 response without Keep-Alive', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ])('%s: the connection is closed by the client, not reused', async (_name, response) => {
    // The server keeps its side open: only the client can close it.
    const s = await scriptedServer(closer, (_req, conn) => conn.write(response));
    const pool = poolTo(s.port);
    expectOk(await send(pool));
    await until(() => s.conns[0]!.closed, 1000, 'the client to close the connection');
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
    expect(s.conns.length).toBe(2);
  });

  it('Keep-Alive: timeout=1 from the server: the client closes the idle connection before 1 s', async () => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write(ok('ok', 'Keep-Alive: timeout=1\r\n')));
    const pool = poolTo(s.port);
    const a = await send(pool);
    expectOk(a);
    await until(() => s.conns[0]!.closed, 1000, 'the client to close the idle connection');
    expect(s.conns[0]!.closedAt - a.endedAt).toBeLessThan(1000);
    await sleep(1500 - (performance.now() - a.endedAt));
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
    expect(s.conns.length).toBe(2);
  });

  it('keepAliveTimeoutMs: an idle connection is closed after it', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port, { keepAliveTimeoutMs: 200 });
    const a = await send(pool);
    expectOk(a);
    await sleep(100);
    expect(s.conns[0]!.closed).toBe(false);
    await until(() => s.conns[0]!.closed, 800, 'the idle connection to close');
    expect(s.conns[0]!.closedAt - a.endedAt).toBeGreaterThanOrEqual(150);
    expect(pool.connectionCount).toBe(0);
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
  });

  it('a kept-alive connection the server closed while idle is not used: the next request gets a new one', async () => {
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write(ok());
      setTimeout(() => conn.socket.end(), 30);
    });
    const pool = poolTo(s.port);
    expectOk(await send(pool));
    await until(() => s.conns[0]!.closed, 1000, 'the server to close');
    await sleep(50);
    expect(pool.connectionCount).toBe(0);
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
    expect(s.conns.length).toBe(2);
  });

  it.each<[string, 'fin' | 'rst']>([
    ['closed (FIN)', 'fin'],
    ['reset (RST)', 'rst'],
  ])('a connection %s right after a request is read: CONNECTION_RESET, reused telling whether it was kept alive', async (_name, ending) => {
    // Per connection: the first request is answered, the second is read and the connection dropped. A new connection's
    // first request is dropped as well when the test asks (`dropFirst`).
    let dropFirst = true;
    const s = await scriptedServer(closer, (_req, conn) => {
      if (conn.requests.length === 1 && !dropFirst) return conn.write(ok());
      if (ending === 'rst') conn.socket.resetAndDestroy();
      else conn.socket.end();
    });
    const pool = poolTo(s.port);
    const fresh = await send(pool, { path: '/fresh' });
    expect(codeOf(fresh)).toBe('CONNECTION_RESET');
    expect(fresh.reused).toEqual([false]);
    expect(fresh.starts).toEqual([]);
    dropFirst = false;
    expectOk(await send(pool, { path: '/one' }));
    const kept = await send(pool, { path: '/two' });
    expect(codeOf(kept)).toBe('CONNECTION_RESET');
    expect(kept.reused).toEqual([true]);
    expect(s.requests.map((r) => r.path)).toEqual(['/fresh', '/one', '/two']);
  });

  it('a connection closed in the middle of a Content-Length body: CONNECTION_RESET after the data, no end', async () => {
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      setTimeout(() => conn.socket.end(), 30);
    });
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(codeOf(a)).toBe('CONNECTION_RESET');
    expect(final(a)?.status).toBe(200);
    expect(body(a)).toBe('abc');
  });
});

describe('h1 client: timeouts and connect failures', () => {
  it('headersTimeout: no answer at all gives READ_TIMEOUT', async () => {
    const s = await scriptedServer(closer, () => {});
    const pool = poolTo(s.port);
    const t0 = performance.now();
    const a = await send(pool, { headersTimeout: 200 });
    expect(codeOf(a)).toBe('READ_TIMEOUT');
    expect(a.endedAt - t0).toBeGreaterThanOrEqual(150);
    expect(a.starts).toEqual([]);
    await until(() => s.conns[0]!.closed, 1000, 'the connection to close');
  });

  it('headersTimeout: half a head, then nothing, gives READ_TIMEOUT', async () => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write('HTTP/1.1 200 OK\r\nContent-Le'));
    const pool = poolTo(s.port);
    const a = await send(pool, { headersTimeout: 200 });
    expect(codeOf(a)).toBe('READ_TIMEOUT');
    expect(a.starts).toEqual([]);
  });

  it.each([
    ['a head in pieces', ['HTTP/1.1 200 OK\r\n', 'Content-Length: 2\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', '\r\nok']],
    ['a 103 before the final head', ['HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n', 'HTTP/1.1 200 OK\r\n', 'Content-Length: 2\r\n', '\r\nok']],
  ])('headersTimeout runs between two reads, as nginx\'s proxy_read_timeout: %s, longer in all than it, completes', async (_name, pieces) => {
    const s = await scriptedServer(closer, (_req, conn) => pieces.forEach((p, i) => setTimeout(() => conn.socket.write(p), i * 120)));
    const pool = poolTo(s.port);
    const t0 = performance.now();
    const a = await send(pool, { headersTimeout: 200 });
    expectOk(a);
    expect(a.endedAt - t0).toBeGreaterThan(300);
  });

  it('bodyTimeout: a head, some body, then nothing gives READ_TIMEOUT after onResponseStart', async () => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const pool = poolTo(s.port);
    const a = await send(pool, { bodyTimeout: 200 });
    expect(codeOf(a)).toBe('READ_TIMEOUT');
    expect(final(a)?.status).toBe(200);
    expect(body(a)).toBe('abc');
    await until(() => s.conns[0]!.closed, 1000, 'the connection to close');
  });

  it.each(['onResponseStart', 'onResponseData'] as const)('bodyTimeout does not run while the handler has paused (from %s)', async (where) => {
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc');
      setTimeout(() => conn.write('def'), 20);
    });
    const pool = poolTo(s.port);
    let paused = false;
    const pause = (controller: H1Controller): void => {
      if (paused) return;
      paused = true;
      controller.pause();
      setTimeout(() => controller.resume(), 450);
    };
    const a = await send(pool, { bodyTimeout: 150 }, where === 'onResponseStart' ? { onResponseStart: pause } : { onResponseData: pause });
    expect(a.error).toBeNull();
    expect(body(a)).toBe('abcdef');
  });

  it('bodyTimeout runs between body reads: a slow trickle within it completes', async () => {
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
      let i = 0;
      const timer = setInterval(() => {
        conn.write('abcde'[i++]!);
        if (i === 5) clearInterval(timer);
      }, 120);
    });
    const pool = poolTo(s.port);
    const a = await send(pool, { bodyTimeout: 300 });
    expect(a.error).toBeNull();
    expect(body(a)).toBe('abcde');
  });

  it('headersTimeout starts when the request is written: a slow upload longer than it completes', async () => {
    const s = await scriptedServer(closer, (req, conn) => conn.write(ok(req.body.toString('latin1'))));
    const pool = poolTo(s.port);
    const a = await send(pool, { method: 'POST', headersTimeout: 200, body: bodyOf(['a', 'b', 'c', 'd'], 150) });
    expectOk(a, 'abcd');
  });

  it('an upstream that takes none of a request body for headersTimeout (no sendTimeout given) fails SEND_TIMEOUT (a stalled upload does not hang)', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      // Reads the head, then nothing more: the client's writes back up.
      socket.once('data', () => socket.pause());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closer.add(() => new Promise<void>((r) => (sockets.forEach((x) => x.destroy()), server.close(() => r()))));
    const pool = poolTo((server.address() as AddressInfo).port);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let left = 512; // 32 MiB: far more than the socket buffers hold
    const upload = new Readable({ read() { this.push(left-- > 0 ? chunk : null); } });
    const t0 = performance.now();
    const a = await send(pool, { method: 'POST', headers: ['content-length', String(512 * chunk.length)], body: upload, headersTimeout: 300 });
    expect(codeOf(a)).toBe('SEND_TIMEOUT');
    expect(classifyError(a.error).status).toBe(504);
    expect(a.endedAt - t0).toBeLessThan(2000);
  });

  /** A server that reads the request head, then reads on only as `reader` lets it; answers ok after `length` body bytes. */
  async function slowReader(length: number, reader: (socket: Socket) => void): Promise<number> {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      let got = -1;
      socket.on('data', (d: Buffer) => {
        if (got < 0) {
          const end = d.indexOf('\r\n\r\n');
          got = d.length - end - 4;
          reader(socket);
        } else got += d.length;
        if (got >= length) socket.write(ok());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closer.add(() => new Promise<void>((r) => (sockets.forEach((x) => x.destroy()), server.close(() => r()))));
    return (server.address() as AddressInfo).port;
  }

  function upload(chunks: number, chunk = Buffer.alloc(64 * 1024, 0x61)): { body: Readable; length: number } {
    let left = chunks;
    return { body: new Readable({ read() { this.push(left-- > 0 ? chunk : null); } }), length: chunks * chunk.length };
  }

  it.each([
    ['still being read from the client', () => upload(512)],
    // Read whole at once: what waits is in the write queue, and the headers timeout must not take over from it.
    ['read whole, waiting in the write queue', () => ({ body: Readable.from([Buffer.alloc(32 << 20, 0x61)]), length: 32 << 20 })],
  ])('sendTimeout, when given, is the limit for a stalled upload instead of headersTimeout: body %s', async (_name, make) => {
    const port = await slowReader(Infinity, (socket) => socket.pause());
    const pool = poolTo(port);
    const u = make();
    const t0 = performance.now();
    const a = await send(pool, { method: 'POST', headers: ['content-length', String(u.length)], body: u.body, headersTimeout: 20_000, sendTimeout: 300 });
    expect(codeOf(a)).toBe('SEND_TIMEOUT');
    expect(String(a.error)).toContain('took none of the request body for 300 ms');
    expect(a.endedAt - t0).toBeLessThan(2000);
  });

  it('sendTimeout counts from the last bytes the upstream took: a slow reader that keeps reading completes', async () => {
    // Takes 512 KiB every 100 ms. The kernel makes room for more writes only once about a third of its send buffer
    // (some 4 MiB on loopback) has drained, so the write queue shrinks every 300 ms or so: well inside the 1 s send
    // timeout, while the whole upload takes some 3 s.
    const length = 16 * 1024 * 1024;
    const port = await slowReader(length, (socket) => {
      socket.pause();
      let burst = 0;
      socket.on('data', (d: Buffer) => {
        burst += d.length;
        if (burst >= 512 * 1024) socket.pause();
      });
      const timer = setInterval(() => {
        burst = 0;
        socket.resume();
      }, 100);
      socket.on('close', () => clearInterval(timer));
    });
    const pool = poolTo(port);
    // One write of it all: its progress shows only in the write queue's size, not in completed writes.
    const body = Readable.from([Buffer.alloc(length, 0x61)]);
    const t0 = performance.now();
    const a = await send(pool, { method: 'POST', headers: ['content-length', String(length)], body, headersTimeout: 20_000, bodyTimeout: 20_000, sendTimeout: 1000 });
    expectOk(a);
    // It did run past the send timeout, so the deadline was moved on by the upstream's reads.
    expect(a.endedAt - t0).toBeGreaterThan(1500);
  }, 30_000);

  it('connect timeout: a listener that never accepts gives CONNECT_TIMEOUT', async () => {
    const port = await stalledPort(closer);
    const pool = poolTo(port, { connectTimeoutMs: 200 });
    const t0 = performance.now();
    const a = await send(pool);
    expect(codeOf(a)).toBe('CONNECT_TIMEOUT');
    expect(classifyError(a.error).code).toBe('CONNECT_TIMEOUT');
    expect(a.endedAt - t0).toBeLessThan(1000);
    expect(a.reused).toEqual([]);
  });

  it('connect timeout: a non-routable address gives CONNECT_TIMEOUT (or unreachable) within 1 s', async (ctx) => {
    // Some sandboxes answer every outgoing connection themselves (a transparent proxy): nothing to time out then.
    if (await connects('10.255.255.1', 81, 300)) return ctx.skip('10.255.255.1:81 accepts connections here (a transparent proxy)');
    const pool = poolTo(81, { connectTimeoutMs: 200 }, '10.255.255.1');
    const t0 = performance.now();
    const a = await send(pool);
    expect(['CONNECT_TIMEOUT', 'ENETUNREACH', 'EHOSTUNREACH']).toContain(codeOf(a));
    expect(['CONNECT_TIMEOUT', 'CONNECT_REFUSED']).toContain(classifyError(a.error).code);
    expect(a.endedAt - t0).toBeLessThan(1000);
  });

  it('a refused connection gives an error with code ECONNREFUSED', async () => {
    const pool = poolTo(await deadPort());
    const a = await send(pool);
    expect(codeOf(a)).toBe('ECONNREFUSED');
    expect(classifyError(a.error).code).toBe('CONNECT_REFUSED');
    expect(pool.connectionCount).toBe(0);
  });

  it('refused with requests waiting: every one of them fails ECONNREFUSED', async () => {
    const pool = poolTo(await deadPort(), { connections: 1 });
    const all = await Promise.all([1, 2, 3].map(() => send(pool)));
    expect(all.map(codeOf)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    expect(pool.connectionCount).toBe(0);
  });
});

describe('h1 client: flow control and abort', () => {
  it('pause holds a 4 MiB body back; after resume all of it arrives intact', async () => {
    const total = 4 * 1024 * 1024;
    const data = Buffer.alloc(total);
    for (let i = 0; i < total; i += 4) data.writeUInt32BE(i, i);
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
      conn.write(data);
    });
    const pool = poolTo(s.port);
    let atPause = -1;
    let received = 0;
    let duringPause = -1;
    let pausedFlag = false;
    const a = await send(pool, {}, {
      onResponseData(controller, chunk) {
        received += chunk.length;
        if (atPause >= 0) return;
        atPause = received;
        controller.pause();
        pausedFlag = controller.paused;
        setTimeout(() => {
          duringPause = received - atPause;
          controller.resume();
        }, 300);
      },
    });
    expect(a.error).toBeNull();
    expect(pausedFlag).toBe(true);
    // What arrived in the 300 ms paused: at most what the client had read before it stopped reading.
    expect(duringPause).toBeGreaterThanOrEqual(0);
    expect(duringPause).toBeLessThan(1024 * 1024);
    expect(received).toBe(total);
    expect(createHash('sha256').update(Buffer.concat(a.chunks)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('a response paused by its handler that completes within the same read leaves a connection that reads the next one', async () => {
    // forward.ts pauses when the client's buffer is full, and the rest of a small response may already be parsed.
    const s = await scriptedServer(closer, (req, conn) => conn.write(ok(`body of ${req.path}`)));
    const pool = poolTo(s.port, { connections: 1 });
    const first = await send(pool, { path: '/one' }, { onResponseData: (controller) => controller.pause() });
    expectOk(first, 'body of /one');
    const second = await send(pool, { path: '/two', headersTimeout: 1000 });
    expectOk(second, 'body of /two');
    expect(second.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
  });

  it('abort while the body streams: onResponseError with the reason, the server sees the close, no onResponseEnd', async () => {
    const s = await scriptedServer(closer, (_req, conn) => {
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n');
      const timer = setInterval(() => conn.write(Buffer.alloc(1000, 0x62)), 5);
      void conn.closedPromise.then(() => clearInterval(timer));
    });
    const pool = poolTo(s.port);
    const reason = new Error('client went away');
    const a = await send(pool, {}, {
      onResponseData(controller) {
        if (!controller.aborted) controller.abort(reason);
      },
    });
    expect(a.error).toBe(reason);
    expect(a.ends).toBe(0);
    expect(a.controller?.aborted).toBe(true);
    await until(() => s.conns[0]!.closed, 1000, 'the server to see the close');
    await sleep(30);
    expect(a.events.slice(a.events.indexOf('error'))).toEqual(['error']);
    expect(pool.connectionCount).toBe(0);
  });

  it('abort while waiting for the head: onResponseError with the reason, the connection closed', async () => {
    const s = await scriptedServer(closer, () => {});
    const pool = poolTo(s.port);
    const reason = new Error('stop');
    const p = send(pool);
    await until(() => s.requests.length === 1, 1000, 'the request');
    p.outcome.controller!.abort(reason);
    const a = await p;
    expect(a.error).toBe(reason);
    await until(() => s.conns[0]!.closed, 1000, 'the server to see the close');
  });
});

describe('h1 client: the pool', () => {
  it('connections: 2 with 5 requests at once: never more than 2 connections, all 5 complete', async () => {
    const s = await scriptedServer(closer, (req, conn) => setTimeout(() => conn.write(ok(req.path)), 80));
    const pool = poolTo(s.port, { connections: 2 });
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, pool.connectionCount)), 2);
    try {
      const all = await Promise.all([1, 2, 3, 4, 5].map((i) => send(pool, { path: `/${i}` })));
      all.forEach((o, i) => expectOk(o, `/${i + 1}`));
    } finally {
      clearInterval(sample);
    }
    expect(s.maxOpen).toBeLessThanOrEqual(2);
    expect(s.conns.length).toBeLessThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(2);
    expect(s.requests.map((r) => r.path).sort()).toEqual(['/1', '/2', '/3', '/4', '/5']);
  });

  it('one request at a time per connection: the second is written only after the first response', async () => {
    const seenWhenAnswering: number[] = [];
    const s = await scriptedServer(closer, (req, conn) =>
      setTimeout(() => {
        seenWhenAnswering.push(conn.requests.length + (conn.pending().length > 0 ? 1 : 0));
        conn.write(ok(req.path));
      }, 60),
    );
    const pool = poolTo(s.port, { connections: 1 });
    const all = await Promise.all(['/1', '/2', '/3'].map((path) => send(pool, { path })));
    all.forEach((o, i) => expectOk(o, `/${i + 1}`));
    expect(seenWhenAnswering).toEqual([1, 2, 3]);
    expect(s.conns.length).toBe(1);
  });

  it('close() while the first connection is still being made: the request goes out and completes', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const a = send(pool);
    await pool.close();
    expectOk(await a);
    expect(pool.connectionCount).toBe(0);
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
  });

  it('close(): the request in flight and a queued one complete, then the connection closes; later dispatches fail UPSTREAM_CLOSED', async () => {
    const s = await scriptedServer(closer, (req, conn) => setTimeout(() => conn.write(ok(req.path)), 100));
    const pool = poolTo(s.port, { connections: 1 });
    const a = send(pool, { path: '/a' });
    const b = send(pool, { path: '/b' });
    await until(() => s.requests.length === 1, 1000, 'the first request');
    let closedAt = 0;
    const closing = pool.close().then(() => (closedAt = performance.now()));
    const late = await send(pool, { path: '/late' });
    expect(codeOf(late)).toBe('UPSTREAM_CLOSED');
    expectOk(await a, '/a');
    expectOk(await b, '/b');
    await closing;
    expect(closedAt).toBeGreaterThanOrEqual(b.outcome.endedAt);
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
    expect(pool.connectionCount).toBe(0);
    expect(s.requests.map((r) => r.path)).toEqual(['/a', '/b']);
    const later = await send(pool);
    expect(codeOf(later)).toBe('UPSTREAM_CLOSED');
  });

  it('close() with idle connections only: they close', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool));
    await pool.close();
    await until(() => s.conns[0]!.closed, 1000, 'the idle connection to close');
    expect(pool.connectionCount).toBe(0);
  });

  it('destroy(): the request in flight and a queued one fail UPSTREAM_CLOSED, the connection closes', async () => {
    const s = await scriptedServer(closer, () => {});
    const pool = poolTo(s.port, { connections: 1 });
    const a = send(pool, { path: '/a' });
    const b = send(pool, { path: '/b' });
    await until(() => s.requests.length === 1, 1000, 'the first request');
    await pool.destroy();
    expect(codeOf(await a)).toBe('UPSTREAM_CLOSED');
    expect(codeOf(await b)).toBe('UPSTREAM_CLOSED');
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
    expect(pool.connectionCount).toBe(0);
    expect(codeOf(await send(pool))).toBe('UPSTREAM_CLOSED');
  });
});

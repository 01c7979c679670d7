// The HTTP/1.1 upstream client (ingress/upstream/h1) against scripted raw servers (h1-servers.ts), part one: what
// goes on the wire, how responses are framed, request bodies, bad input on both sides, and the handler. Part two
// (h1-client-lifetime.test.ts) covers connections' lifetime, timeouts, flow control and the pool. Every request's
// handler must hear exactly one ending (onResponseEnd or onResponseError): checkEndings() checks it after each test.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../../ingress/upstream/errors.ts';
import { answerOk, body, checkEndings, closer, codeOf, expectOk, final, poolTo, send, type DispatchOptions } from './h1-harness.ts';
import { sleep } from './helpers.ts';
import { bodyOf, headerValues, ok, scriptedServer, until } from './h1-servers.ts';

checkEndings();

describe('h1 client: the request on the wire', () => {
  it('GET without a body: the request line, the headers in order, Host added, no body framing', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const given = ['X-First', 'one', 'x-multi', 'a', 'Accept', '*/*', 'x-multi', 'b'];
    expectOk(await send(pool, { path: '/path?q=1&r=%20', headers: given }));
    const head = s.requests[0]!.head;
    const lines = head.slice(0, -4).split('\r\n');
    expect(lines[0]).toBe('GET /path?q=1&r=%20 HTTP/1.1');
    expect(lines.slice(1, 5)).toEqual(['X-First: one', 'x-multi: a', 'Accept: */*', 'x-multi: b']);
    const rest = lines.slice(5);
    expect(rest.filter((l) => l.toLowerCase().startsWith('host:'))).toEqual([`host: 127.0.0.1:${s.port}`]);
    // Nothing else but Host (and at most a keep-alive Connection): no Content-Length, no Transfer-Encoding.
    expect(rest.filter((l) => !l.toLowerCase().startsWith('host:') && l.toLowerCase() !== 'connection: keep-alive')).toEqual([]);
    expect(s.conns[0]!.received().toString('latin1')).toBe(head);
  });

  it('GET with a Host in the list: that Host is sent, once, and none added', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool, { path: '/', headers: ['x-a', '1', 'Host', 'example.test', 'x-b', '2'] }));
    const req = s.requests[0]!;
    expect(headerValues(req, 'host')).toEqual(['example.test']);
    expect(req.headers.slice(0, 3)).toEqual([['x-a', '1'], ['Host', 'example.test'], ['x-b', '2']]);
    expect(headerValues(req, 'content-length')).toEqual([]);
    expect(headerValues(req, 'transfer-encoding')).toEqual([]);
  });

  it('keep-alive: two requests in a row share one connection; the second is told it was reused', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const a = await send(pool, { path: '/a' });
    const b = await send(pool, { path: '/b' });
    expectOk(a);
    expectOk(b);
    expect(a.reused).toEqual([false]);
    expect(b.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
    expect(s.conns[0]!.requests.map((r) => r.path)).toEqual(['/a', '/b']);
    expect(pool.connectionCount).toBe(1);
  });

  it('an IPv6 endpoint: connects to [::1], Host is [::1]:port', async () => {
    const s = await scriptedServer(closer, answerOk, undefined, '::1');
    const pool = poolTo(s.port, {}, '::1', `[::1]:${s.port}`);
    expectOk(await send(pool));
    expect(headerValues(s.requests[0]!, 'host')).toEqual([`[::1]:${s.port}`]);
  });
});

describe('h1 client: response framing', () => {
  it('a Content-Length body; headers lower-case, a repeated name as an array in order; the connection is reused', async () => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write('HTTP/1.1 200 Fine Thanks\r\nContent-Length: 5\r\nX-Y: a\r\nContent-Type: text/plain\r\nx-y: b\r\n\r\nhello'));
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(a.error).toBeNull();
    expect(a.starts).toHaveLength(1);
    expect(final(a)).toMatchObject({ status: 200, message: 'Fine Thanks' });
    expect({ ...final(a)!.headers }).toEqual({ 'content-length': '5', 'x-y': ['a', 'b'], 'content-type': 'text/plain' });
    expect(body(a)).toBe('hello');
    expect({ ...a.trailers }).toEqual({});
    const b = await send(pool);
    expect(body(b)).toBe('hello');
    expect(b.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
  });

  it('a chunked body with extensions and trailers: the trailers reach onResponseEnd with lower-case names', async () => {
    const s = await scriptedServer(closer, (_req, conn) =>
      conn.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: Abc\r\nX-Two: 1\r\n\r\n'),
    );
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(a.error).toBeNull();
    expect(body(a)).toBe('hello world');
    expect({ ...a.trailers }).toEqual({ 'x-sum': 'Abc', 'x-two': '1' });
    const b = await send(pool);
    expect(body(b)).toBe('hello world');
    expect(b.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
  });

  it('a body delimited by the close of the connection: all of it, then a new connection for the next request', async () => {
    let n = 0;
    const s = await scriptedServer(closer, (_req, conn) => {
      if (n++ > 0) return conn.write(ok());
      conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc');
      setTimeout(() => {
        conn.write('def');
        conn.socket.end();
      }, 50);
    });
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(a.error).toBeNull();
    expect(body(a)).toBe('abcdef');
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
    expect(s.conns.length).toBe(2);
  });

  it('HEAD: a Content-Length header without a body completes, and the next response on the connection parses', async () => {
    const s = await scriptedServer(closer, (req, conn) => conn.write(req.method === 'HEAD' ? 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' : ok('after')));
    const pool = poolTo(s.port);
    const a = await send(pool, { method: 'HEAD' });
    expect(a.error).toBeNull();
    expect(final(a)?.status).toBe(200);
    expect(final(a)?.headers['content-length']).toBe('100');
    expect(a.chunks).toEqual([]);
    const b = await send(pool);
    expectOk(b, 'after');
    expect(b.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
  });

  it('204 and 304 (even with a Content-Length) end without a body; the connection carries on', async () => {
    const answers = ['HTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 10\r\n\r\n', ok('third')];
    const s = await scriptedServer(closer, (_req, conn) => conn.write(answers.shift()!));
    const pool = poolTo(s.port);
    const a = await send(pool);
    const b = await send(pool);
    const c = await send(pool);
    expect([final(a)?.status, a.chunks.length, a.error]).toEqual([204, 0, null]);
    expect([final(b)?.status, b.chunks.length, b.error, final(b)?.headers.etag]).toEqual([304, 0, null, '"x"']);
    expectOk(c, 'third');
    expect([a.reused, b.reused, c.reused]).toEqual([[false], [true], [true]]);
    expect(s.conns.length).toBe(1);
  });

  it.each([
    ['100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n'],
    ['103 Early Hints', 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n'],
    ['two 1xx', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n'],
  ])('%s before the final response: the final response follows and completes', async (_name, informational) => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write(`${informational}HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok`));
    const pool = poolTo(s.port);
    const a = await send(pool);
    expectOk(a);
    // forward.ts ignores an onResponseStart below 200 (undici's semantics): any there are come first.
    expect(a.starts.slice(0, -1).every((st) => st.status >= 100 && st.status < 200)).toBe(true);
    expect(final(a)?.headers['x-final']).toBe('1');
    expect(a.events.filter((e) => e === 'data').length).toBeGreaterThan(0);
    expect(a.events.indexOf('data')).toBeGreaterThan(a.events.indexOf('head 200'));
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([true]);
  });

  it.each<[string, string]>([
    ['a second response after the first', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'],
    ['garbage after the first', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\0\x01garbage'],
  ])('bytes past the end of a response (%s) are never taken for the next request\'s response', async (_name, answer) => {
    let n = 0;
    const s = await scriptedServer(closer, (_req, conn) => conn.write(n++ === 0 ? answer : ok('second')));
    const pool = poolTo(s.port);
    expectOk(await send(pool));
    await sleep(20);
    const b = await send(pool);
    expectOk(b, 'second');
    expect(b.reused).toEqual([false]);
  });

  it('the same bytes arriving while the connection is idle: it is not used again', async () => {
    let n = 0;
    const s = await scriptedServer(closer, (_req, conn) => {
      if (n++ > 0) return conn.write(ok('second'));
      conn.write(ok());
      setTimeout(() => conn.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'), 20);
    });
    const pool = poolTo(s.port);
    expectOk(await send(pool));
    await sleep(60);
    const b = await send(pool);
    expectOk(b, 'second');
    expect(b.reused).toEqual([false]);
  });

  it('a response written a byte at a time (head, chunk sizes, trailers) parses', async () => {
    const text = 'HTTP/1.1 200 OK\r\nX-Slow: yes\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n';
    const s = await scriptedServer(closer, (_req, conn) => {
      let i = 0;
      const next = (): void => {
        if (i >= text.length) return;
        conn.write(text[i++]!);
        setTimeout(next, 1);
      };
      next();
    });
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(a.error).toBeNull();
    expect(final(a)?.headers['x-slow']).toBe('yes');
    expect(body(a)).toBe('abcde');
    expect({ ...a.trailers }).toEqual({ 'x-t': '1' });
  });
});

describe('h1 client: request bodies', () => {
  it('with a Content-Length: the bytes as they are, no chunking', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool, { method: 'POST', headers: ['content-type', 'text/plain', 'content-length', '11'], body: bodyOf(['hello ', 'world'], 10) }));
    const req = s.requests[0]!;
    expect(headerValues(req, 'content-length')).toEqual(['11']);
    expect(headerValues(req, 'transfer-encoding')).toEqual([]);
    expect(req.rawBody.toString('latin1')).toBe('hello world');
    expect(s.conns[0]!.received().toString('latin1')).toBe(req.head + 'hello world');
  });

  it('without a Content-Length: chunked, framed correctly and terminated (the connection carries on)', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool, { method: 'POST', path: '/up', body: bodyOf(['abc', Buffer.alloc(70_000, 0x61), 'xyz'], 10) }));
    expectOk(await send(pool, { method: 'PUT', path: '/empty', body: bodyOf([]) }));
    expectOk(await send(pool, { path: '/next' }));
    expect(s.conns.length).toBe(1);
    expect(s.conns[0]!.malformed).toBeNull();
    const [up, empty, next] = s.requests;
    expect(headerValues(up!, 'transfer-encoding')).toEqual(['chunked']);
    expect(headerValues(up!, 'content-length')).toEqual([]);
    expect(up!.chunked).toBe(true);
    expect(up!.body.toString('latin1')).toBe(`abc${'a'.repeat(70_000)}xyz`);
    expect(up!.rawBody.subarray(-5).toString('latin1')).toBe('0\r\n\r\n');
    expect(headerValues(empty!, 'transfer-encoding')).toEqual(['chunked']);
    expect(empty!.body.length).toBe(0);
    expect(next!.path).toBe('/next');
  });

  it.each(['POST', 'PUT', 'PATCH'])('%s with no body sends content-length: 0', async (method) => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool, { method, headers: ['x-a', '1'] }));
    const req = s.requests[0]!;
    expect(req.method).toBe(method);
    expect(headerValues(req, 'content-length')).toEqual(['0']);
    expect(headerValues(req, 'transfer-encoding')).toEqual([]);
  });

  it.each<[string, string[]]>([
    ['with a Content-Length', ['content-length', String(8 * 1024 * 1024)]],
    ['chunked', []],
  ])('an 8 MiB upload %s arrives intact', async (_name, headers) => {
    const data = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i * 7, i);
    const s = await scriptedServer(closer, (req, conn) => conn.write(ok(createHash('sha256').update(req.body).digest('hex'))));
    const pool = poolTo(s.port);
    const parts = Array.from({ length: 128 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    // 8 MiB through loopback on a loaded 2-core CI machine: more than the harness's default 2 s for the answer.
    expectOk(await send(pool, { method: 'PUT', headers, body: Readable.from(parts, { objectMode: false }), headersTimeout: 15_000, bodyTimeout: 15_000 }), createHash('sha256').update(data).digest('hex'));
  });

  it('a body stream that fails part way: onResponseError, and the chunked body is not terminated', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const stream = new Readable({ read() {} });
    stream.push('abc');
    setTimeout(() => stream.destroy(new Error('client body broke')), 30);
    const a = await send(pool, { method: 'POST', body: stream });
    expect(a.error?.message).toBe('client body broke');
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
    expect(s.requests).toEqual([]);
    expect(s.conns[0]!.received().toString('latin1')).not.toContain('0\r\n\r\n');
  });

  it('an answer before the body is all sent: one ending, and the next request is read cleanly by the server', async () => {
    const s = await scriptedServer(
      closer,
      (req, conn) => conn.write(ok(req.path)),
      (conn) => conn.socket.once('data', (d: Buffer) => d.toString('latin1').startsWith('POST') && conn.write('HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n')),
    );
    const pool = poolTo(s.port);
    const a = await send(pool, { method: 'POST', path: '/up', body: bodyOf(['a'.repeat(100), 'b'.repeat(100), 'c'.repeat(100)], 40) });
    expect(a.ends + a.errors).toBe(1);
    if (a.error === null) expect(final(a)?.status).toBe(413);
    const b = await send(pool, { path: '/next' });
    expectOk(b, '/next');
    expect(s.conns.every((c) => c.malformed === null)).toBe(true);
  });

  const smuggled = 'GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n';
  it.each<[string, string[]]>([
    ['in one chunk', [`hello${smuggled}`]],
    ['in two chunks', ['hello', smuggled]],
  ])('a body longer than its Content-Length (%s) fails INVALID_REQUEST; the extra bytes never reach the server', async (_name, chunks) => {
    // No answer: whatever the client does, it decides it alone.
    const s = await scriptedServer(closer, () => {});
    const pool = poolTo(s.port);
    const a = await send(pool, { method: 'POST', headers: ['content-length', '5'], body: bodyOf(chunks, 20) });
    expect(codeOf(a)).toBe('INVALID_REQUEST');
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
    expect(s.requests.map((r) => r.path)).not.toContain('/smuggled');
    expect(s.conns.map((c) => c.received().toString('latin1')).join('')).not.toContain('/smuggled');
    expect(s.requests.every((r) => r.body.toString('latin1') === 'hello')).toBe(true);
  });

  it('a body shorter than its Content-Length fails INVALID_REQUEST; the server never sees a complete request', async () => {
    const s = await scriptedServer(closer, () => {});
    const pool = poolTo(s.port);
    const a = await send(pool, { method: 'POST', headers: ['content-length', '10'], body: bodyOf(['hel', 'lo'], 10) });
    expect(codeOf(a)).toBe('INVALID_REQUEST');
    await until(() => s.conns.every((c) => c.closed), 1000, 'the connection to close');
    expect(s.requests).toEqual([]);
  });
});

describe('h1 client: bad requests are never written', () => {
  it.each<[string, Partial<DispatchOptions>]>([
    ['a header value with CRLF', { headers: ['x-a', 'v\r\nX-Injected: 1'] }],
    ['a header value with a bare LF', { headers: ['x-a', 'v\nX-Injected: 1'] }],
    ['a header value with a bare CR', { headers: ['x-a', 'v\rX'] }],
    ['a header value with NUL', { headers: ['x-a', 'v\0'] }],
    ['a header name with a space', { headers: ['x a', '1'] }],
    ['a header name with a colon', { headers: ['x:a', '1'] }],
    ['an empty header name', { headers: ['', '1'] }],
    ['a path with a space', { path: '/a b' }],
    ['a path with CRLF', { path: '/a\r\nX: y' }],
    ['a path with NUL', { path: '/a\0' }],
    ['a path not starting with /', { path: 'a/b' }],
    ['an empty path', { path: '' }],
  ])('%s: INVALID_REQUEST, nothing on the wire, and the pool still works', async (_name, options) => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const a = await send(pool, options);
    expect(codeOf(a)).toBe('INVALID_REQUEST');
    expect(classifyError(a.error).code).toBe('INVALID_REQUEST');
    expect(a.starts).toEqual([]);
    await sleep(50);
    expect(s.bytes()).toBe(0);
    expect(s.requests).toEqual([]);
    expectOk(await send(pool, { path: '/fine' }));
    expect(s.requests.map((r) => r.path)).toEqual(['/fine']);
  });
});

describe('h1 client: the handler', () => {
  it('abort from onRequestStart: onResponseError with the reason, nothing written, the pool still works', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    const reason = new Error('changed my mind');
    const a = await send(pool, { path: '/no' }, { onRequestStart: (controller) => controller.abort(reason) });
    expect(a.error).toBe(reason);
    await sleep(30);
    expect(s.bytes()).toBe(0);
    expectOk(await send(pool, { path: '/yes' }));
    expect(s.requests.map((r) => r.path)).toEqual(['/yes']);
  });

  it('abort right after dispatch, in the same tick: the head was never written, so the kept-alive connection takes the next request', async () => {
    const s = await scriptedServer(closer, answerOk);
    const pool = poolTo(s.port);
    expectOk(await send(pool, { path: '/warm' }));
    const reason = new Error('gone before the round ended');
    const p = send(pool, { path: '/dropped' });
    // The connection was idle, so onRequestStart ran within dispatch; the head waits for the end of the round.
    expect(p.outcome.events).toEqual(['start']);
    p.outcome.controller!.abort(reason);
    expect((await p).error).toBe(reason);
    const b = await send(pool, { path: '/next' });
    expectOk(b);
    expect(b.reused).toEqual([true]);
    expect(s.conns.length).toBe(1);
    expect(s.conns[0]!.requests.map((r) => r.path)).toEqual(['/warm', '/next']);
  });

  it('requests dispatched together on idle connections each get their own answer', async () => {
    const s = await scriptedServer(closer, (req, conn) => setTimeout(() => conn.write(ok(req.path)), 5));
    const pool = poolTo(s.port, { connections: 3 });
    await Promise.all(['/w1', '/w2', '/w3'].map((path) => send(pool, { path })));
    expect(pool.connectionCount).toBe(3);
    const all = await Promise.all(['/a', '/b', '/c', '/d', '/e', '/f'].map((path) => send(pool, { path })));
    expect(all.map(body)).toEqual(['/a', '/b', '/c', '/d', '/e', '/f']);
    expect(s.conns.length).toBe(3);
    expect(s.conns.flatMap((c) => c.requests.map((r) => r.path)).sort()).toEqual(['/a', '/b', '/c', '/d', '/e', '/f', '/w1', '/w2', '/w3']);
  });

  it('a handler throwing in onResponseData: the request fails with what it threw, once', async () => {
    const s = await scriptedServer(closer, (_req, conn) => conn.write(ok('some body')));
    const pool = poolTo(s.port);
    const thrown = new Error('handler bug');
    const a = await send(pool, {}, {
      onResponseData() {
        throw thrown;
      },
    });
    expect(a.error).toBe(thrown);
    expect(a.ends).toBe(0);
  });
});

describe('h1 client: bad responses', () => {
  it.each<[string, string]>([
    ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['a header block over 16 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\nContent-Length: 2\r\n\r\nok`],
    ['a 101 to a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['a garbled status line', 'HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ])('%s: BAD_RESPONSE, and the next request gets a new connection', async (_name, answer) => {
    let n = 0;
    const s = await scriptedServer(closer, (_req, conn) => conn.write(n++ === 0 ? answer : ok()));
    const pool = poolTo(s.port);
    const a = await send(pool);
    expect(codeOf(a)).toBe('BAD_RESPONSE');
    expect(a.ends).toBe(0);
    const b = await send(pool);
    expectOk(b);
    expect(b.reused).toEqual([false]);
    expect(s.conns.length).toBe(2);
    await until(() => s.conns[0]!.closed, 1000, 'the first connection to close');
  });
});

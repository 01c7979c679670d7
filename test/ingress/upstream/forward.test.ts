// Forwarding through a real gateway to real backends: streaming, headers, errors, timeouts, retries, HTTPS.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Closer, backend, deadPort, gateway, get, httpsBackend, policy, sleep, stalledPort, upstreamsFor } from './helpers.ts';

const closer = new Closer();
afterEach(() => closer.closeAll());

const target = (over: Parameters<typeof policy>[0] = {}, headers: Record<string, string | string[]> = {}) => (req: { url?: string }) => ({
  backend: 'ns/svc:80',
  policy: policy(over),
  path: req.url ?? '/',
  headers,
});

describe('forward: streaming', () => {
  it('streams a 20 MB upload to the upstream intact', async () => {
    const b = await backend(closer, (req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null })));
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const body = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    const got = await get(g.port, '/up', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual({ bytes: body.length, sha: createHash('sha256').update(body).digest('hex'), te: null });
  });

  it('streams a chunked upload as chunked', async () => {
    const b = await backend(closer, (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.end(`${bytes} ${req.headers['transfer-encoding']}`));
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: g.port, method: 'POST', path: '/', agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write('a'.repeat(1000));
      setTimeout(() => req.end('b'.repeat(500)), 20);
    });
    expect(got).toBe('1500 chunked');
  });

  it('streams a 20 MB download intact', async () => {
    const body = Buffer.alloc(20 * 1024 * 1024, 7);
    const b = await backend(closer, (_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await new Promise<{ bytes: number; sha: string; length: string | undefined }>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: g.port, path: '/', agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', () => resolve({ bytes, sha: hash.digest('hex'), length: res.headers['content-length'] }));
      })
        .on('error', reject)
        .end();
    });
    expect(got).toEqual({ bytes: body.length, sha: createHash('sha256').update(body).digest('hex'), length: String(body.length) });
    expect(g.results[0]).toMatchObject({ status: 200, attempts: 1, endpoint: `127.0.0.1:${b.port}` });
    expect(g.results[0]?.error).toBeUndefined();
  });

  it('backpressure: a client that stops reading stops the upstream, and it resumes after', async () => {
    const total = 128 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    let upstreamDone = false;
    const b = await backend(closer, (_req, res) => {
      res.writeHead(200, { 'content-length': total });
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
        upstreamDone = true;
      };
      pump();
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const received = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: g.port, path: '/', agent: false }, (res) => {
        res.pause();
        // The client reads nothing for a while: the upstream must be held back by the socket buffers on the way.
        setTimeout(() => {
          try {
            expect(upstreamDone).toBe(false);
            expect(written).toBeLessThan(48 * 1024 * 1024); // about 8 MB in practice
          } catch (err) {
            reject(err);
            return;
          }
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve(bytes));
          res.resume();
        }, 700);
      })
        .on('error', reject)
        .end();
    });
    expect(received).toBe(total);
    expect(upstreamDone).toBe(true);
  });
});

describe('forward: headers', () => {
  it('strips hop-by-hop headers both ways, keeps Host, applies the pipeline headers', async () => {
    let seen: string[] = [];
    const b = await backend(closer, (req, res) => {
      seen = req.rawHeaders;
      res.writeHead(200, {
        Connection: 'x-resp-private',
        'X-Resp-Private': '1',
        'Keep-Alive': 'timeout=77',
        'Proxy-Authenticate': 'Basic',
        Trailer: 'X-T',
        'X-Kept': 'yes',
        'Set-Cookie': ['a=1', 'b=2'],
      });
      res.end('ok');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({}, { 'X-Forwarded-For': '203.0.113.9', 'x-request-id': 'rid-1' }));
    const got = await get(g.port, '/h?q=1', {
      headers: {
        Host: 'app.example.test:8443',
        Connection: 'keep-alive, X-Private',
        'X-Private': 'secret',
        'Keep-Alive': 'timeout=5',
        TE: 'gzip',
        'Proxy-Authorization': 'Basic eA==',
        'X-Forwarded-For': 'spoofed',
        'X-Request-Id': 'client-chosen',
        'X-Custom': 'kept',
      },
    });
    expect(got.status).toBe(200);
    const names = seen.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const gone of ['x-private', 'keep-alive', 'te', 'proxy-authorization']) expect(names).not.toContain(gone);
    const value = (name: string) => seen.filter((_, i) => i % 2 === 1 && seen[i - 1]?.toLowerCase() === name);
    expect(value('host')).toEqual(['app.example.test:8443']);
    expect(value('x-custom')).toEqual(['kept']);
    expect(value('x-forwarded-for')).toEqual(['203.0.113.9']);
    expect(value('x-request-id')).toEqual(['rid-1']);
    expect(value('connection')).toEqual(['keep-alive']); // undici's own, for its pool
    for (const gone of ['x-resp-private', 'proxy-authenticate', 'trailer']) expect(got.headers[gone]).toBeUndefined();
    expect(got.headers['keep-alive']).not.toBe('timeout=77'); // the gateway's own hint may appear, not the upstream's
    expect(got.headers['x-kept']).toBe('yes');
    expect(got.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(got.body).toBe('ok');
  });

  it('relays HEAD, 204 and 304 without a body, and the upstream status as is', async () => {
    const b = await backend(closer, (req, res) => {
      const status = Number(req.url?.slice(1) || 200);
      res.writeHead(status, status === 200 ? { 'content-length': '11' } : {});
      res.end(req.method === 'HEAD' || status !== 200 ? undefined : 'hello world');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const head = await get(g.port, '/', { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body]).toEqual([200, '11', '']);
    for (const status of [204, 304, 404, 500, 503]) {
      const got = await get(g.port, `/${status}`);
      expect(got.status).toBe(status);
    }
  });
});

describe('forward: errors', () => {
  it('503 without endpoints, or for an unknown backend', async () => {
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [], 'HTTP');
    const g = await gateway(closer, u, (req) => ({ ...target()(req), backend: req.url === '/unknown' ? 'ns/other:80' : 'ns/svc:80' }));
    for (const path of ['/', '/unknown']) {
      const got = await get(g.port, path);
      expect(got.status).toBe(503);
      expect(got.body).toContain('503 Service Temporarily Unavailable');
    }
    expect(g.results.map((r) => [r.status, r.error, r.attempts])).toEqual([
      [503, 'NO_ENDPOINTS', 0],
      [503, 'NO_ENDPOINTS', 0],
    ]);
  });

  it('502 when the endpoint refuses the connection', async () => {
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: await deadPort() }], 'HTTP');
    const g = await gateway(closer, u, target());
    const got = await get(g.port, '/');
    expect(got.status).toBe(502);
    expect(g.results[0]).toMatchObject({ status: 502, error: 'CONNECT_REFUSED', attempts: 1 });
  });

  it('502 when the endpoint closes the connection without answering', async () => {
    const b = await backend(closer, (req) => req.socket.destroy());
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results[0]).toMatchObject({ status: 502, error: 'CONNECTION_RESET' });
  });

  it('504 on connect timeout (an endpoint whose accept queue is full)', async () => {
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: await stalledPort(closer) }], 'HTTP');
    const g = await gateway(closer, u, target({ connectTimeoutMs: 200 }));
    const t0 = Date.now();
    const got = await get(g.port, '/');
    expect(got.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(g.results[0]).toMatchObject({ status: 504, error: 'CONNECT_TIMEOUT' });
  });

  it('504 when the upstream does not answer within the read timeout', async () => {
    const b = await backend(closer, () => {});
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 300 }));
    const t0 = Date.now();
    expect((await get(g.port, '/')).status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(g.results[0]).toMatchObject({ status: 504, error: 'READ_TIMEOUT', attempts: 1 });
  });

  it('504 when the upstream takes none of the request body within the send timeout (proxy-send-timeout)', async () => {
    const b = await backend(closer, (req) => req.pause());
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 20_000, sendTimeoutMs: 300 }));
    const t0 = Date.now();
    const got = await get(g.port, '/up', { method: 'POST', body: Buffer.alloc(32 << 20) });
    expect(got.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(g.results[0]).toMatchObject({ status: 504, error: 'SEND_TIMEOUT', attempts: 1 });
  });

  it('a body that stalls past the read timeout cuts the client response', async () => {
    const b = await backend(closer, (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 300 }));
    const outcome = await new Promise<string>((resolve) => {
      httpRequest({ host: '127.0.0.1', port: g.port, path: '/', agent: false }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      })
        .on('error', () => resolve('cut'))
        .end();
    });
    expect(outcome).toBe('cut');
    await sleep(20);
    expect(g.results[0]).toMatchObject({ status: 200, error: 'READ_TIMEOUT' });
  });

  it('a client that goes away aborts the upstream request', async () => {
    let upstreamClosed = false;
    const b = await backend(closer, (req) => req.socket.on('close', () => (upstreamClosed = true)));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const req = httpRequest({ host: '127.0.0.1', port: g.port, path: '/', agent: false }).on('error', () => {});
    req.end();
    await sleep(150);
    req.destroy();
    await sleep(150);
    expect(upstreamClosed).toBe(true);
    expect(g.results[0]).toMatchObject({ status: 499, error: 'CLIENT_ABORTED' });
    expect(u.endpoints('ns/svc:80')[0]?.inFlight).toBe(0);
  });
});

describe('forward: client aborts', () => {
  it('a client that aborts its upload is not counted against the endpoint', async () => {
    const b = await backend(closer, (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const u = upstreamsFor(closer, { outlier: { consecutiveFailures: 1 } });
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }, { ip: '127.0.0.1', port: await deadPort() }], 'HTTP');
    const g = await gateway(closer, u, target({ loadBalance: 'least_request' }));
    // Least request with nothing in flight may pick the dead endpoint: send until one upload reaches the live one.
    while (!g.results.some((r) => r.error === 'CLIENT_ABORTED')) {
      const req = httpRequest({ host: '127.0.0.1', port: g.port, method: 'POST', path: '/', agent: false, headers: { 'content-length': '100000' } });
      req.on('error', () => {});
      req.write('x'.repeat(1000));
      await sleep(50);
      req.destroy();
      await sleep(50);
    }
    const live = u.endpoints('ns/svc:80').find((e) => e.port === b.port);
    expect(live).toMatchObject({ failures: 0, ejectedUntil: 0, inFlight: 0 });
    expect(g.results.find((r) => r.error === 'CLIENT_ABORTED')).toMatchObject({ status: 499, endpoint: `127.0.0.1:${b.port}` });
  });
});

describe('forward: retries', () => {
  it('a GET to a dead endpoint is retried on a live one, and so is a POST with a body (nothing of it was sent)', async () => {
    const b = await backend(closer, (req, res) => {
      req.resume();
      req.on('end', () => res.end('live'));
    });
    const dead = await deadPort();
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: dead }, { ip: '127.0.0.1', port: b.port }], 'HTTP');
    const g = await gateway(closer, u, target());
    const gets = [];
    for (let i = 0; i < 4; i++) gets.push(await get(g.port, '/'));
    expect(gets.map((r) => [r.status, r.body])).toEqual(Array(4).fill([200, 'live']));
    expect(g.results.map((r) => r.attempts).sort()).toEqual([1, 1, 2, 2]);
    expect(g.results.every((r) => r.endpoint === `127.0.0.1:${b.port}`)).toBe(true);

    g.results.length = 0;
    const posts = [];
    for (let i = 0; i < 2; i++) posts.push((await get(g.port, '/', { method: 'POST', body: 'data' })).status);
    expect(posts).toEqual([200, 200]);
    expect(g.results.map((r) => r.attempts).sort()).toEqual([1, 2]);
  });

  it('a GET is retried after a read timeout, a POST is not (next-upstream.test.ts has more)', async () => {
    let hits = 0;
    const slow = await backend(closer, () => void hits++);
    const slow2 = await backend(closer, () => void hits++);
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: slow.port }, { ip: '127.0.0.1', port: slow2.port }], 'HTTP');
    const g = await gateway(closer, u, target({ readTimeoutMs: 200 }));
    expect((await get(g.port, '/')).status).toBe(504);
    expect(hits).toBe(2);
    expect(g.results[0]).toMatchObject({ attempts: 2, error: 'READ_TIMEOUT' });
    expect((await get(g.port, '/', { method: 'POST' })).status).toBe(504);
    expect(hits).toBe(3);
    expect(g.results[1]).toMatchObject({ attempts: 1, error: 'READ_TIMEOUT' });
  });

  it('gives up after three attempts', async () => {
    const u = upstreamsFor(closer);
    const ports = [await deadPort(), await deadPort(), await deadPort(), await deadPort()];
    u.setEndpoints('ns/svc:80', ports.map((port) => ({ ip: '127.0.0.1', port })), 'HTTP');
    const g = await gateway(closer, u, target());
    expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results[0]).toMatchObject({ status: 502, attempts: 3, error: 'CONNECT_REFUSED' });
  });

  it.each([1, 2, 4])('makes at most proxy-next-upstream-tries attempts (%i)', async (tries) => {
    const u = upstreamsFor(closer);
    const ports = [await deadPort(), await deadPort(), await deadPort(), await deadPort(), await deadPort()];
    u.setEndpoints('ns/svc:80', ports.map((port) => ({ ip: '127.0.0.1', port })), 'HTTP');
    const g = await gateway(closer, u, target({ upstreamTries: tries }));
    expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results[0]).toMatchObject({ status: 502, attempts: tries, error: 'CONNECT_REFUSED' });
  });
});

describe('forward: HTTPS backends', () => {
  it('speaks TLS to a self-signed backend without verifying it or sending SNI, reusing the connection', async () => {
    const b = await httpsBackend(closer, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => res.end(`${req.method} ${req.url} ${req.headers.host} ${body}`));
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTPS');
    const g = await gateway(closer, u, target({ backendProtocol: 'HTTPS' }));
    const a = await get(g.port, '/x?y=1', { headers: { host: 'one.test' } });
    const c = await get(g.port, '/p', { method: 'POST', body: 'payload', headers: { host: 'two.test' } });
    expect([a.status, a.body]).toEqual([200, 'GET /x?y=1 one.test ']);
    expect([c.status, c.body]).toEqual([200, 'POST /p two.test payload']);
    expect(b.snis).toEqual([false]);
  });

  it('502 when the endpoint does not speak TLS', async () => {
    const plain = await backend(closer, (_req, res) => res.end('plain'));
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: plain.port }], 'HTTPS');
    const g = await gateway(closer, u, target({ backendProtocol: 'HTTPS' }));
    expect((await get(g.port, '/')).status).toBe(502);
    expect(g.results[0]?.error).toBe('TLS_FAILED');
  });
});

describe('forward: HTTP/2 clients', () => {
  it('forwards an h2c request: :authority becomes Host, body both ways, hop-by-hop headers dropped', async () => {
    const { createServer, connect } = await import('node:http2');
    let seen: Record<string, unknown> = {};
    const b = await backend(closer, (req, res) => {
      seen = { ...req.headers };
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.writeHead(201, { 'x-from': 'up', 'keep-alive': 'timeout=9', 'content-type': 'text/plain' });
        res.end(`${req.method} ${body.length}`);
      });
    });
    const u = upstreamsFor(closer);
    u.setEndpoints('ns/svc:80', [{ ip: '127.0.0.1', port: b.port }], 'HTTP');
    const server = createServer((req, res) => void u.forward(req, res, { backend: 'ns/svc:80', policy: policy(), path: req.url, headers: {} }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closer.add(() => new Promise<void>((r) => server.close(() => r())));
    const client = connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    closer.add(() => void client.close());
    const ask = (method: string, body?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const stream = client.request({ ':method': method, ':path': '/h2?x=1', ':authority': 'h2.example.test' }, { endStream: body === undefined });
        let text = '';
        let headers: Record<string, unknown> = {};
        stream.on('response', (h) => (headers = h));
        stream.on('data', (c) => (text += c));
        stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: text }));
        stream.on('error', reject);
        if (body !== undefined) stream.end(body);
      });
    const got = await ask('GET');
    expect([got.status, got.body, got.headers['x-from'], got.headers['keep-alive']]).toEqual([201, 'GET 0', 'up', undefined]);
    expect(seen.host).toBe('h2.example.test');
    expect(Object.keys(seen).some((k) => k.startsWith(':'))).toBe(false);
    const posted = await ask('POST', 'y'.repeat(100_000));
    expect([posted.status, posted.body]).toEqual([201, 'POST 100000']);
    expect(seen['transfer-encoding']).toBe('chunked');
  });
});

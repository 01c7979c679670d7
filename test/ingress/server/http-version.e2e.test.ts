// Request lines naming an HTTP version other than 1.x, on the HTTP/1 side of both listeners. node:http's parser
// takes `HTTP/2.0` and `HTTP/0.9`, and gave the gateway an IncomingMessage with httpVersionMajor 2, which the
// pipeline read as an HTTP/2 stream: `GET / HTTP/2.0` threw outside any handler and stopped the whole process (one
// line from any client, found by an audit). nginx 1.22 answers `HTTP/2.0` and `HTTP/3.0` with 505 and `HTTP/0.9`
// with 400 (compared on loopback); so does the gateway now, and it keeps serving. CONNECT, which nginx also answers
// 400, was met by closing the connection without an answer; an HTTP/2 CONNECT stream gets 405 as before (nginx's).
// TRACE, which nginx answers 405 itself, was passed to the backend, which could echo back the headers the gateway
// adds; an HTTP/2 method nginx does not read as one (lower-case letters) too.
import { connect as h2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';
import { FixedPortGateway } from './fixed-ports.ts';
import { rawExchange, statusCodes } from './raw-http1.ts';

describe('request lines with another HTTP version', () => {
  const web = new EchoBackend('web');
  const gw = new FixedPortGateway(64630);

  beforeAll(async () => {
    await new Promise<void>((r) => web.server.listen(64633, '127.0.0.1', r));
    web.port = 64633;
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'site', host: 'site.test', paths: [['Prefix', '/', 'web']] })].join('\n---\n'));
    await gw.start([], { host: 'site.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  /** Sends `text` raw on a new connection (TLS with ALPN http/1.1 when `tls`); the status line's code, or 0. */
  const statusOf = async (text: string, tls: boolean): Promise<number> => statusCodes(await rawExchange(gw, text, tls, 'site.test'))[0] ?? 0;

  const line = (version: string, extra = '') => `GET / HTTP/${version}\r\nHost: site.test\r\nConnection: close\r\n${extra}\r\n`;

  it.each([
    // [listener, request, status]
    ['http', line('2.0'), 505],
    ['http', line('2.0', 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'), 505],
    ['http', line('0.9'), 400],
    ['https', line('2.0'), 505],
    ['https', line('0.9'), 400],
    ['http', 'CONNECT site.test:443 HTTP/1.1\r\nHost: site.test:443\r\n\r\n', 400],
    ['https', 'CONNECT site.test:443 HTTP/1.1\r\nHost: site.test:443\r\n\r\n', 400],
    ['http', 'TRACE / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n', 405],
    ['https', 'TRACE / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n', 405],
    ['http', line('1.1'), 200],
    ['https', line('1.1'), 200],
  ])('%s %j: %i, and the gateway keeps serving', async (listener, text, status) => {
    expect(await statusOf(text, listener === 'https')).toBe(status);
    expect(await statusOf(line('1.1'), false)).toBe(200);
    expect(gw.child?.exitCode).toBeNull();
  });

  it.each([
    // [method, status]
    ['CONNECT', 405],
    ['TRACE', 405],
    ['get', 400],
    ['FOO_BAR-1', 400],
    ['PROPFIND', 200],
  ])('an HTTP/2 %s stream: %i', async (method, want) => {
    const session = h2Connect(`https://127.0.0.1:${gw.https}`, { servername: 'site.test', rejectUnauthorized: false });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const headers = method === 'CONNECT' ? { ':method': method, ':authority': 'site.test:443' } : { ':method': method, ':authority': 'site.test', ':path': '/', ':scheme': 'https' };
        const req = session.request(headers, { endStream: method !== 'CONNECT' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
      });
      expect(status).toBe(want);
    } finally {
      session.destroy();
    }
  });
});

// Requests with a Transfer-Encoding other than `chunked`, on the HTTP/1 side of both listeners. nginx decodes only
// `chunked` and answers any other value (`gzip`, `identity`, `gzip, chunked`) with 501 Not Implemented, and an
// HTTP/1.0 request with Transfer-Encoding with 400 (ngx_http_request.c, 1.21.1 and later). node:http's parser
// refuses `chunked, gzip` itself, hands `gzip` and `identity` on and then fails on the body (the gateway answered
// all three 400), reads `gzip, chunked` as chunked and takes Transfer-Encoding on HTTP/1.0 (both were forwarded,
// 200). None reaches the backend now. An HTTP/1.0 `chunked, gzip` got 501 until the clientError listener read the
// version off the refused packet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';
import { rawExchange, statusCodes } from './raw-http1.ts';

describe('Transfer-Encoding other than chunked', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  let reached = 0;

  beforeAll(async () => {
    await web.start();
    web.handler = () => {
      reached++;
      return false;
    };
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'site', host: 'site.test', paths: [['Prefix', '/', 'web']] })].join('---\n'));
    await gw.start([], { host: 'site.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  /** Sends `text` raw on a new connection (TLS with ALPN http/1.1 when `tls`); every status line's code in the answer. */
  const statusesOf = async (text: string, tls: boolean): Promise<number[]> => statusCodes(await rawExchange(gw, text, tls, 'site.test'));

  const post = (coding: string, version = '1.1') => `POST / HTTP/${version}\r\nHost: site.test\r\nConnection: close\r\nTransfer-Encoding: ${coding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;

  it.each([
    // [listener, request, statuses]
    ['http', post('gzip'), [501]],
    ['http', post('identity'), [501]],
    ['http', post('gzip, chunked'), [501]],
    ['http', post('chunked, gzip'), [501]],
    ['http', post('chunked', '1.0'), [400]],
    ['http', post('gzip', '1.0'), [400]],
    // The parser refuses this one itself: the clientError listener reads the version off the packet it failed in.
    ['http', post('chunked, gzip', '1.0'), [400]],
    ['https', post('gzip'), [501]],
    ['https', post('chunked, gzip'), [501]],
    ['https', post('chunked, gzip', '1.0'), [400]],
  ])('%s %j: %j, not sent to the backend', async (listener, text, statuses) => {
    const before = reached;
    expect(await statusesOf(text, listener === 'https')).toEqual(statuses);
    expect(await statusesOf(post('chunked'), false)).toEqual([200]);
    expect(reached).toBe(before + 1);
    expect(gw.child?.exitCode).toBeNull();
  });

  it.each(['chunked', 'Chunked'])('Transfer-Encoding: %s is read as before', async (coding) => {
    expect(await statusesOf(post(coding), true)).toEqual([200]);
  });
});

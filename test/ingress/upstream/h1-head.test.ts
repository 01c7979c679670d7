// The request head of the HTTP/1.1 upstream client: what reaches the wire, and what never does.
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../../ingress/upstream/errors.ts';
import { keepAliveHint } from '../../../ingress/upstream/h1/connection.ts';
import { headerRecord, requestHead, type RequestHead } from '../../../ingress/upstream/h1/head.ts';

const head = (spec: Partial<Parameters<typeof requestHead>[0]>): RequestHead | UpstreamError =>
  requestHead({ method: 'GET', path: '/', headers: [], hasBody: false, ...spec }, '10.0.0.1:8080');
const text = (spec: Partial<Parameters<typeof requestHead>[0]>): string => {
  const h = head(spec);
  if (h instanceof UpstreamError) throw h;
  return h.text;
};
const refused = (spec: Partial<Parameters<typeof requestHead>[0]>): string => {
  const h = head(spec);
  if (!(h instanceof UpstreamError)) throw new Error(`sent: ${JSON.stringify(h.text)}`);
  expect(h.code).toBe('INVALID_REQUEST');
  return h.message;
};

describe('h1 request head', () => {
  it('writes the request line, the headers in order, a Host when there is none, and keep-alive', () => {
    expect(text({ path: '/a?b=1', headers: ['Host', 'web.example', 'X-One', '1', 'x-two', 'two words'] })).toBe(
      'GET /a?b=1 HTTP/1.1\r\nHost: web.example\r\nX-One: 1\r\nx-two: two words\r\nconnection: keep-alive\r\n\r\n',
    );
    expect(text({ headers: ['accept', '*/*'] })).toBe('GET / HTTP/1.1\r\naccept: */*\r\nhost: 10.0.0.1:8080\r\nconnection: keep-alive\r\n\r\n');
  });

  it('decides the body framing itself: the declared length, else chunked; never the client\'s Transfer-Encoding or Connection', () => {
    const withLength = head({ method: 'POST', headers: ['content-length', '5', 'transfer-encoding', 'chunked', 'Connection', 'close'], hasBody: true }) as RequestHead;
    expect(withLength.text).toBe('POST / HTTP/1.1\r\ncontent-length: 5\r\nhost: 10.0.0.1:8080\r\nconnection: keep-alive\r\n\r\n');
    expect([withLength.contentLength, withLength.chunked]).toEqual([5, false]);
    const streamed = head({ method: 'POST', headers: ['keep-alive', 'timeout=5', 'upgrade', 'h2c'], hasBody: true }) as RequestHead;
    expect(streamed.text).toBe('POST / HTTP/1.1\r\nhost: 10.0.0.1:8080\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n');
    expect(streamed.chunked).toBe(true);
    expect(text({ method: 'PUT' })).toContain('\r\ncontent-length: 0\r\n');
    expect(text({ method: 'GET' })).not.toContain('content-length');
    // The same length twice is one length; two lengths are refused.
    expect(text({ method: 'POST', headers: ['content-length', '3', 'Content-Length', '3'], hasBody: true }).match(/content-length/gi)).toHaveLength(1);
    refused({ method: 'POST', headers: ['content-length', '3', 'content-length', '4'], hasBody: true });
    refused({ method: 'POST', headers: ['content-length', '+3'], hasBody: true });
    refused({ method: 'POST', headers: ['content-length', '3'], hasBody: false });
  });

  it('keeps the first Host only', () => {
    expect(text({ headers: ['host', 'a.example', 'Host', 'b.example'] }).match(/host:/gi)).toHaveLength(1);
  });

  it('refuses what could split the request, before anything is written', () => {
    expect(refused({ headers: ['x-a', 'v\r\nX-Injected: 1'] })).toMatch(/x-a/);
    refused({ headers: ['x-a', 'v\nGET /evil HTTP/1.1'] });
    refused({ headers: ['x-a', 'v\0'] });
    refused({ headers: ['x a', 'v'] });
    refused({ headers: ['x-a:', 'v'] });
    refused({ headers: ['', 'v'] });
    refused({ path: '/a b' });
    refused({ path: '/a\r\nX: y' });
    refused({ path: 'http://elsewhere/' });
    refused({ path: '' });
    refused({ method: 'GET /x HTTP/1.1\r\n' });
    refused({ headers: ['expect', '100-continue'] });
    // Tabs and bytes above 0x7f pass, as the client sent them.
    expect(text({ path: '/caf\u00e9', headers: ['x-a', 'a\tb \u00ff'] })).toContain('x-a: a\tb \u00ff\r\n');
    expect(text({ method: 'OPTIONS', path: '*' })).toMatch(/^OPTIONS \* HTTP\/1\.1\r\n/);
  });

  it('reads response headers as undici gives them: lower-case names, a repeated one as an array, __proto__ a header like any other', () => {
    const r = headerRecord(['Set-Cookie', 'a=1', 'X-One', '1', 'set-cookie', 'b=2', 'SET-COOKIE', 'c=3', '__proto__', 'p']);
    expect(r['set-cookie']).toEqual(['a=1', 'b=2', 'c=3']);
    expect(r['x-one']).toBe('1');
    expect(r['__proto__']).toBe('p');
    expect(Object.keys(r)).toEqual(['set-cookie', 'x-one', '__proto__']);
    // Nothing is inherited: a name the record does not hold is absent, whatever Object.prototype has.
    const none = headerRecord(['Constructor', 'c']);
    expect([none['tostring'], none['toString'], 'hasOwnProperty' in none, none['constructor']]).toEqual([undefined, undefined, false, 'c']);
    expect(Object.isFrozen(Object.getPrototypeOf(none))).toBe(true);
  });

  it('keeps an idle connection less long than the upstream says it will', () => {
    expect(keepAliveHint(undefined, 4000)).toBe(4000);
    expect(keepAliveHint('timeout=2, max=100', 4000)).toBe(1000);
    expect(keepAliveHint('max=5; Timeout = 60', 4000)).toBe(4000);
    expect(keepAliveHint('timeout=1', 4000)).toBe(0);
    expect(keepAliveHint('max=100', 4000)).toBe(4000);
  });
});

import { describe, expect, it } from 'vitest';
import { clientResponseHeaders, connectionListed, isH2cToken, isHopByHop, upgradeTokens, upstreamRequestHeaders } from '../../../ingress/upstream/headers.ts';

describe('isHopByHop', () => {
  it.each([
    ['connection', true], ['keep-alive', true], ['transfer-encoding', true], ['upgrade', true], ['trailer', true],
    ['proxy-authorization', true], ['proxy-connection', true], ['proxy', true], [':authority', true], ['expect', true],
    ['host', false], ['content-length', false], ['x-forwarded-for', false], ['cookie', false], ['authorization', false],
  ])('%s → %s', (name, want) => {
    expect(isHopByHop(name)).toBe(want);
  });
});

describe('upgradeTokens and isH2cToken', () => {
  it.each([
    // [Upgrade value, its tokens, which of them name h2c]
    ['h2c', ['h2c'], [true]],
    [' H2C , websocket,', ['H2C', 'websocket'], [true, false]],
    ['websocket, h2c/1', ['websocket', 'h2c/1'], [false, true]],
    ['h2, h2cx, HTTP/2.0', ['h2', 'h2cx', 'HTTP/2.0'], [false, false, false]],
    ['', [], []],
  ])('%j: %j', (value, tokens, h2c) => {
    expect(upgradeTokens(value)).toEqual(tokens);
    expect(tokens.map(isH2cToken)).toEqual(h2c);
  });
});

describe('connectionListed', () => {
  it.each([
    { value: undefined, want: null },
    { value: 'keep-alive', want: null },
    { value: 'close', want: null },
    { value: 'Upgrade, Keep-Alive', want: null },
    { value: 'X-Foo, close , x-bar', want: ['x-foo', 'x-bar'] },
    { value: ['x-a', 'X-B'], want: ['x-a', 'x-b'] },
  ])('$value', ({ value, want }) => {
    expect(connectionListed(value)).toEqual(want);
  });
});

describe('upstreamRequestHeaders', () => {
  it.each([
    {
      name: 'keeps end-to-end headers in order, case as sent',
      raw: ['Host', 'a.test', 'User-Agent', 'x', 'Accept', '*/*'],
      want: ['Host', 'a.test', 'User-Agent', 'x', 'Accept', '*/*'],
    },
    {
      name: 'drops hop-by-hop headers and the ones Connection lists',
      raw: ['Host', 'a', 'Connection', 'keep-alive, X-Secret', 'X-Secret', '1', 'Keep-Alive', 'timeout=5', 'Proxy-Authorization', 'Basic x', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'X-Ok', '1'],
      want: ['Host', 'a', 'X-Ok', '1'],
    },
    { name: 'keeps TE: trailers only', raw: ['TE', 'trailers', 'te', 'gzip'], want: ['TE', 'trailers'] },
    { name: 'drops Expect', raw: ['Expect', '100-continue', 'Content-Length', '5'], want: ['Content-Length', '5'] },
    { name: 'keeps the first of repeated Host headers', raw: ['Host', 'a', 'host', 'b'], want: ['Host', 'a'] },
    {
      name: 'HTTP/2: pseudo-headers dropped, :authority becomes Host',
      raw: [':method', 'GET', ':path', '/', ':authority', 'h2.test', ':scheme', 'https', 'accept', '*/*'],
      want: ['accept', '*/*', 'host', 'h2.test'],
    },
    { name: 'HTTP/2 with a host header: it wins', raw: [':authority', 'x', 'host', 'y'], want: ['host', 'y'] },
    {
      name: 'HTTP/2: Cookie fields joined with "; " where the first stood',
      raw: [':method', 'GET', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'cookie', 'c=3'],
      want: ['cookie', 'a=1; b=2; c=3', 'accept', '*/*'],
    },
    { name: 'HTTP/1.1: Cookie headers kept as sent', raw: ['Host', 'a', 'Cookie', 'a=1', 'Cookie', 'b=2'], want: ['Host', 'a', 'Cookie', 'a=1', 'Cookie', 'b=2'] },
  ])('$name', ({ raw, want }) => {
    expect(upstreamRequestHeaders(raw)).toEqual(want);
  });

  it('applies the pipeline headers last, replacing the client’s of any case', () => {
    const got = upstreamRequestHeaders(['Host', 'a', 'X-Forwarded-For', 'spoofed', 'X-Request-Id', 'client', 'Cookie', 'c=1'], {
      'x-forwarded-for': '10.0.0.1',
      'X-Request-ID': 'abc',
      'x-multi': ['1', '2'],
    });
    expect(got).toEqual(['Host', 'a', 'Cookie', 'c=1', 'x-forwarded-for', '10.0.0.1', 'X-Request-ID', 'abc', 'x-multi', '1', 'x-multi', '2']);
  });

  it('keeps Upgrade for pass-through, still dropping Connection', () => {
    expect(upstreamRequestHeaders(['Host', 'a', 'Connection', 'Upgrade', 'Upgrade', 'websocket'], undefined, true)).toEqual(['Host', 'a', 'Upgrade', 'websocket']);
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and the ones Connection lists', () => {
    const got = clientResponseHeaders({
      'content-type': 'text/plain',
      connection: 'keep-alive, x-internal',
      'x-internal': 'secret',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      trailer: 'x-t',
      'proxy-authenticate': 'Basic',
      upgrade: 'foo',
      te: 'trailers',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '3',
    });
    expect(got).toEqual(['content-type', 'text/plain', 'set-cookie', ['a=1', 'b=2'], 'content-length', '3']);
  });

  it('drops the headers nginx hides by default (proxy_hide_header)', () => {
    const got = clientResponseHeaders({
      date: 'Mon, 01 Jan 2001 00:00:00 GMT',
      server: 'backend/1',
      'x-pad': 'avoid browser bug',
      'x-accel-expires': '10',
      'x-accel-redirect': '/internal',
      'x-accel-limit-rate': '5',
      'x-accel-buffering': 'no',
      'x-accel-charset': 'utf-8',
      'x-accel-other': 'kept, as nginx keeps it',
      'x-served-by': 'kept',
    });
    expect(got).toEqual(['x-accel-other', 'kept, as nginx keeps it', 'x-served-by', 'kept']);
  });

  it.each([
    { status: 204, want: ['x-a', '1'] },
    { status: 200, want: ['x-a', '1', 'content-length', '5'] },
    { status: 304, want: ['x-a', '1', 'content-length', '5'] },
  ])('a $status keeps Content-Length only when it may carry one', ({ status, want }) => {
    expect(clientResponseHeaders({ 'x-a': '1', 'content-length': '5' }, undefined, status)).toEqual(want);
  });

  it.each([
    { name: 'adds Set-Cookie', headers: { 'x-a': '1' }, want: ['x-a', '1', 'set-cookie', 'route=v'] },
    { name: 'joins one upstream cookie', headers: { 'set-cookie': 'a=1' }, want: ['set-cookie', ['a=1', 'route=v']] },
    { name: 'joins several upstream cookies', headers: { 'set-cookie': ['a=1', 'b=2'] }, want: ['set-cookie', ['a=1', 'b=2', 'route=v']] },
  ])('affinity: $name', ({ headers, want }) => {
    expect(clientResponseHeaders(headers, 'route=v')).toEqual(want);
  });
});

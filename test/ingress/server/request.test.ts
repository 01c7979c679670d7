import { describe, expect, it } from 'vitest';
import { failedRequestVersion, forwardedHeaders, requestHost, requestId, requestPath } from '../../../ingress/server/request.ts';
import { signinLocation } from '../../../ingress/server/answers.ts';

describe('requestHost', () => {
  it.each([
    ['Foo.Example.COM', 'foo.example.com'],
    ['foo.example.com:8080', 'foo.example.com'],
    ['foo.example.com.', 'foo.example.com'],
    ['[::1]:8443', '[::1]'],
    ['10.0.0.1:80', '10.0.0.1'],
    ['', undefined],
    [undefined, undefined],
    ['foo bar', undefined],
    ['foo/bar', undefined],
    ['[::1', undefined],
    ['x'.repeat(256), undefined],
  ])('%j -> %j', (header, host) => {
    expect(requestHost(header)).toBe(host);
  });
});

describe('requestPath', () => {
  it.each([
    ['/a/b?x=1', '/a/b', '?x=1'],
    ['/', '/', ''],
    ['/public/../admin', '/admin', ''],
    ['/public/%2e%2e/admin?q', '/admin', '?q'],
    ['/a/./b', '/a/b', ''],
    ['//evil.example/x', '/evil.example/x', ''],
    ['/a\\..\\admin', '/admin', ''],
    ['/caf%C3%A9', '/caf%C3%A9', ''],
    ['/%61dmin/users', '/admin/users', ''],
    ['/.//admin/users', '/admin/users', ''],
    ['/a//b///c/', '/a/b/c/', ''],
    ['/a/b/..', '/a/', ''],
    ['/a/..', '/', ''],
    ['/a/%2F../b', '/a/%2F../b', ''],
    ['/a%20b', '/a%20b', ''],
    ['/%2F', '/%2F', ''],
    ['/%25', '/%25', ''],
    ['/a?x=%&y=%zz', '/a', '?x=%&y=%zz'],
    ['/admin%2fusers?x', '/admin%2Fusers', '?x'],
  ])('%j -> path %j query %j', (target, path, query) => {
    expect(requestPath(target)).toMatchObject({ path, query });
  });

  // What routes, limits and auth see: every escape decoded, so no spelling of a path escapes its route.
  it.each([
    ['/a/b', '/a/b'],
    ['/%61dmin/users', '/admin/users'],
    ['/admin%2fusers', '/admin/users'],
    ['/admin%2Fusers', '/admin/users'],
    ['/public%2F..%2Fadmin', '/admin'],
    ['/public%5C..%5Cadmin', '/admin'],
    ['/%2F%2Fadmin', '/admin'],
    ['/caf%C3%A9', '/café'],
    ['/100%25', '/100%'],
    ['/a/%2F../b', '/b'],
    ['/a%2Fb/../../x', '/x'],
    ['/a%FFb', '/a\ufffdb'],
  ])('%j is matched as %j', (target, matchPath) => {
    expect(requestPath(target)?.matchPath).toBe(matchPath);
  });

  it.each(['', 'http://example.com/x', '*', undefined, '/a%00b', '/a%0d%0aSet-Cookie:x'])('refuses %j', (target) => {
    expect(requestPath(target)).toBeUndefined();
  });

  // What nginx 1.22 answers 400 (compared on loopback): a path that climbs above the root once its escapes are
  // decoded, and a `%` not followed by two hex digits (in the path; the query is not decoded).
  it.each(['/..', '/../x', '/a/../../x', '/%2e%2e/x', '/a/%2E%2E/%2e%2e/x', '/%2f..', '/a/..%2F..', '/a\\..\\..\\b', '/%', '/%zz', '/%2', '/a%', '/a%2?q', '/a%g0/b'])(
    'refuses %j as nginx does',
    (target) => {
      expect(requestPath(target)).toBeUndefined();
    },
  );
});

describe('forwardedHeaders', () => {
  const base = { clientIP: '192.0.2.7', peer: '10.0.0.9', incomingRequestId: undefined, proto: 'https' as const, host: 'shop.example:8443', port: 8443, requestUri: '/a/../b?q=1' };

  it('replaces an X-Forwarded-For sent by an untrusted peer', () => {
    const h = forwardedHeaders({ ...base, trustedPeer: false, incomingFor: '1.2.3.4' });
    expect(h['x-forwarded-for']).toBe('192.0.2.7');
    expect(h['x-real-ip']).toBe('192.0.2.7');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-host']).toBe('shop.example:8443');
    expect(h['x-forwarded-port']).toBe('8443');
  });

  it('extends the X-Forwarded-For of a trusted peer with the peer itself', () => {
    expect(forwardedHeaders({ ...base, trustedPeer: true, incomingFor: ['1.2.3.4', '5.6.7.8'] })['x-forwarded-for']).toBe('1.2.3.4, 5.6.7.8, 10.0.0.9');
    expect(forwardedHeaders({ ...base, clientIP: '1.2.3.4', trustedPeer: true, incomingFor: '1.2.3.4' })['x-forwarded-for']).toBe('1.2.3.4, 10.0.0.9');
  });

  it("keeps a trusted peer's X-Forwarded-Proto, -Host and -Port when well-formed, and never an untrusted one's", () => {
    const sent = { incomingFor: '1.2.3.4', incomingProto: 'HTTPS', incomingHost: 'www.example.com', incomingPort: '443' };
    const trusted = forwardedHeaders({ ...base, proto: 'http', trustedPeer: true, ...sent });
    expect([trusted['x-forwarded-proto'], trusted['x-forwarded-host'], trusted['x-forwarded-port']]).toEqual(['https', 'www.example.com', '443']);
    const untrusted = forwardedHeaders({ ...base, proto: 'http', trustedPeer: false, ...sent });
    expect([untrusted['x-forwarded-proto'], untrusted['x-forwarded-host'], untrusted['x-forwarded-port']]).toEqual(['http', 'shop.example:8443', '8443']);
    const odd = forwardedHeaders({ ...base, proto: 'http', trustedPeer: true, incomingFor: '1.2.3.4', incomingProto: 'gopher', incomingHost: 'a b', incomingPort: '99999' });
    expect([odd['x-forwarded-proto'], odd['x-forwarded-host'], odd['x-forwarded-port']]).toEqual(['http', 'shop.example:8443', '8443']);
  });

  // [trusted peer, client's X-Forwarded-Proto, client's X-Forwarded-For, X-Scheme and X-Forwarded-Scheme, X-Original-Forwarded-For]
  it.each([
    [false, 'https', '1.2.3.4', 'http', '1.2.3.4'],
    [true, 'https', '1.2.3.4', 'https', '1.2.3.4'],
    [true, undefined, undefined, 'http', []],
    [false, undefined, ['1.2.3.4', '5.6.7.8'], 'http', '1.2.3.4, 5.6.7.8'],
  ] as const)('trusted %s, X-Forwarded-Proto %s, X-Forwarded-For %s: scheme %s, original for %s', (trustedPeer, incomingProto, incomingFor, scheme, originalFor) => {
    const h = forwardedHeaders({ ...base, proto: 'http', trustedPeer, incomingProto, incomingFor: incomingFor as string | string[] | undefined });
    expect([h['x-scheme'], h['x-forwarded-scheme'], h['x-original-uri'], h['x-original-forwarded-for']]).toEqual([scheme, scheme, '/a/../b?q=1', originalFor]);
  });
});

describe('requestId', () => {
  it('keeps a plain token and replaces anything else with one like nginx\'s $request_id (32 lower-case hex)', () => {
    expect(requestId('abc-123')).toBe('abc-123');
    for (const bad of [undefined, 'has space', 'a\r\nb', 'x'.repeat(200), ['a', 'b']]) {
      expect(requestId(bad)).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('makes a different id each time, across refills of its pool of random bytes', () => {
    const ids = Array.from({ length: 2000 }, () => requestId(undefined));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^[0-9a-f]{32}$/.test(id))).toBe(true);
    // Each hex digit about equally often (2000 ids × 32 digits: 4000 each expected).
    const counts = new Map<string, number>();
    for (const id of ids) for (const d of id) counts.set(d, (counts.get(d) ?? 0) + 1);
    expect(counts.size).toBe(16);
    for (const n of counts.values()) expect(n).toBeGreaterThan(3500);
  });
});

describe('signinLocation', () => {
  const x = { proto: 'https' as const, host: 'shop.example.com', path: '/cart', query: '?id=7&x=1' };
  it.each([
    ['oauth2-proxy style, rd given', 'https://$host/oauth2/start?rd=$escaped_request_uri', 'https://shop.example.com/oauth2/start?rd=%2Fcart%3Fid%3D7%26x%3D1'],
    ['no rd: added, absolute', 'https://login.example.com/start', 'https://login.example.com/start?rd=https%3A%2F%2Fshop.example.com%2Fcart%3Fid%3D7%26x%3D1'],
    ['a query already: rd after &', 'https://login.example.com/start?app=shop', 'https://login.example.com/start?app=shop&rd=https%3A%2F%2Fshop.example.com%2Fcart%3Fid%3D7%26x%3D1'],
    ['scheme and http_host', '$scheme://$http_host/auth?rd=$scheme://$host$request_uri', 'https://shop.example.com/auth?rd=https://shop.example.com/cart?id=7&x=1'],
  ])('%s', (_what, template, want) => {
    expect(signinLocation(template, x)).toBe(want);
  });
});

describe('failedRequestVersion', () => {
  const te = 'Transfer-Encoding: chunked, gzip\r\n\r\n';
  it.each([
    // [what, packet, where the parser stopped (-1: the end), version]
    ['an HTTP/1.0 request', `POST / HTTP/1.0\r\nHost: a\r\n${te}`, -1, '1.0'],
    ['an HTTP/1.1 request', `POST / HTTP/1.1\r\nHost: a\r\n${te}`, -1, '1.1'],
    ['bare LF line ends', `POST / HTTP/1.0\nHost: a\n${te}`, -1, '1.0'],
    ['the refused request, not an earlier one of the packet', `GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.0\r\nHost: a\r\n${te}`, -1, '1.0'],
    ['after a body with no line end of its own', `POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na bPOST / HTTP/1.0\r\n${te}`, -1, '1.0'],
    ['not a later request of the packet', `POST / HTTP/1.0\r\n${te}GET / HTTP/1.1\r\n\r\n`, 20, '1.0'],
    ['not a header value ending like a version', `POST / HTTP/1.0\r\nVia: 1.1 proxy HTTP/1.1\r\n${te}`, -1, '1.0'],
    ['not a folded header line', `POST / HTTP/1.0\r\nX-A: a\r\n  b HTTP/1.1\r\n${te}`, -1, '1.0'],
    ['no request line in the packet (a head in pieces)', `Host: a\r\n${te}`, -1, undefined],
  ])('%s', (_what, packet, offset, version) => {
    const buf = Buffer.from(packet, 'latin1');
    expect(failedRequestVersion(buf, offset === -1 ? buf.length : offset)).toBe(version);
  });
});

import { describe, expect, it } from 'vitest';
import { forwardedHeaders, requestHost, requestId, requestPath } from '../../../ingress/server/request.ts';
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
  ])('%j -> path %j query %j', (target, path, query) => {
    expect(requestPath(target)).toEqual({ path, query });
  });

  it.each(['', 'http://example.com/x', '*', undefined])('refuses %j', (target) => {
    expect(requestPath(target)).toBeUndefined();
  });
});

describe('forwardedHeaders', () => {
  const base = { clientIP: '192.0.2.7', incomingRequestId: undefined, proto: 'https' as const, host: 'shop.example:8443', port: 8443 };

  it('replaces an X-Forwarded-For sent by an untrusted peer', () => {
    const h = forwardedHeaders({ ...base, trustedPeer: false, incomingFor: '1.2.3.4' });
    expect(h['x-forwarded-for']).toBe('192.0.2.7');
    expect(h['x-real-ip']).toBe('192.0.2.7');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-host']).toBe('shop.example:8443');
    expect(h['x-forwarded-port']).toBe('8443');
  });

  it('extends the X-Forwarded-For of a trusted peer', () => {
    expect(forwardedHeaders({ ...base, trustedPeer: true, incomingFor: ['1.2.3.4', '5.6.7.8'] })['x-forwarded-for']).toBe('1.2.3.4, 5.6.7.8, 192.0.2.7');
  });
});

describe('requestId', () => {
  it('keeps a plain token and replaces anything else with a UUID', () => {
    expect(requestId('abc-123')).toBe('abc-123');
    for (const bad of [undefined, 'has space', 'a\r\nb', 'x'.repeat(200), ['a', 'b']]) {
      expect(requestId(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
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

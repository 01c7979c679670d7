// proxy-cookie-path / proxy-cookie-domain: the rewrite of one Set-Cookie value, of Node's header field and of a raw
// response head. The expected values are what nginx 1.22 sent for the same headers with `proxy_cookie_path /two/
// /one/; proxy_cookie_domain backend.local example.org;` (test/ingress/e2e/proxy-cookie.test.ts compares with a
// running nginx too).
import { describe, expect, it } from 'vitest';
import { rewriteSetCookie, rewriteSetCookieHead, rewriteSetCookies } from '../../../ingress/upstream/cookie-rewrite.ts';
import type { CookieRewrite } from '../../../ingress/routes/types.ts';

const r: CookieRewrite = { path: { from: '/two/', to: '/one/' }, domain: { from: 'backend.local', to: 'example.org' } };

describe('rewriteSetCookie', () => {
  it.each([
    ['s=1; Path=/two/x; Domain=.Backend.Local; HttpOnly', 's=1; Path=/one/x; Domain=.example.org; HttpOnly'],
    // The cookie itself is never rewritten, even when named path; only the attribute.
    ['path=/two; Max-Age=5;path=/two/y', 'path=/two; Max-Age=5; path=/one/y'],
    // Names and values trimmed of spaces, the whole header written again as nginx writes it.
    ['t=2;  PATH  =  /two/z ;domain=backend.local;Secure', 't=2; PATH=/one/z; domain=example.org; Secure'],
    ['u=3', 'u=3'],
    // Path is compared case-sensitively, Domain exactly (not a suffix): nothing changes, not even the spacing.
    ['v=4;  path=/TWO/a;domain=other.local', 'v=4;  path=/TWO/a;domain=other.local'],
    ['w=5; path=/twox; domain=', 'w=5; path=/twox; domain='],
    ['x=6; domain=sub.backend.local', 'x=6; domain=sub.backend.local'],
    ['y=7; Path=/two/', 'y=7; Path=/one/'],
  ])('%s', (header, expected) => {
    expect(rewriteSetCookie(header, r)).toBe(expected);
  });

  it('applies only the rewrite that is asked for', () => {
    expect(rewriteSetCookie('a=1; Path=/two/x; Domain=backend.local', { path: { from: '/', to: '/app/' } })).toBe('a=1; Path=/app/two/x; Domain=backend.local');
    expect(rewriteSetCookie('a=1; Path=/two/x; Domain=backend.local', { domain: { from: 'backend.local', to: 'shop.com' } })).toBe('a=1; Path=/two/x; Domain=shop.com');
  });

  it('rewrites each value of a repeated field, and hands back the same field when nothing changed', () => {
    const list = ['a=1; Path=/two/a', 'b=2; Path=/three'];
    expect(rewriteSetCookies(list, r)).toEqual(['a=1; Path=/one/a', 'b=2; Path=/three']);
    expect(list).toEqual(['a=1; Path=/two/a', 'b=2; Path=/three']);
    const untouched = ['b=2; Path=/three'];
    expect(rewriteSetCookies(untouched, r)).toBe(untouched);
    expect(rewriteSetCookies('a=1; Path=/two/', r)).toBe('a=1; Path=/one/');
  });
});

describe('rewriteSetCookieHead', () => {
  it('rewrites the Set-Cookie lines of a raw head and keeps every other byte', () => {
    const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSet-Cookie: a=1; Path=/two/ws\r\nX-Path: /two/\r\nset-cookie:b=2\r\n', 'latin1');
    expect(rewriteSetCookieHead(head, r).toString('latin1')).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nset-cookie: a=1; Path=/one/ws\r\nX-Path: /two/\r\nset-cookie:b=2\r\n');
  });

  it('hands back the same Buffer when there is nothing to rewrite', () => {
    const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nSet-Cookie: a=1; Path=/three\r\n', 'latin1');
    expect(rewriteSetCookieHead(head, r)).toBe(head);
  });
});

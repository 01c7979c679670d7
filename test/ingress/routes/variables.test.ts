// nginx variables in auth-url, auth-signin and the redirect annotations: which templates are read (and why others
// are refused), and what they become for a request — with the host always the route's, never one a client chose.
import { describe, expect, it } from 'vitest';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import { escapeUri, expandUrl, readUrlTemplate, redirectUrl, signinUrl, type UrlFacts, type UrlUse } from '../../../ingress/routes/variables.ts';

const key = 'nginx.ingress.kubernetes.io/auth-url';
const read = (value: string, use: UrlUse) => readUrlTemplate({ key, value }, use);

describe('readUrlTemplate', () => {
  // [template, use, what comes back]
  it.each([
    ['https://$host/oauth2/auth', 'fetched', 'https://$host/oauth2/auth'],
    ['https://$host/oauth2/start?rd=$escaped_request_uri', 'client', 'https://$host/oauth2/start?rd=$escaped_request_uri'],
    ['$scheme://$http_host/oauth2/start?rd=$scheme://$best_http_host$request_uri', 'client', '$scheme://$http_host/oauth2/start?rd=$scheme://$best_http_host$request_uri'],
    ['https://new.example.com$request_uri', 'client', 'https://new.example.com$request_uri'],
    ['https://new.example.com$uri$is_args$args', 'client', 'https://new.example.com$uri$is_args$args'],
    ['https://${host}:8443/x', 'client', 'https://${host}:8443/x'],
    ['http://auth.shop.svc/check?uri=$escaped_request_uri&host=$host', 'fetched', 'http://auth.shop.svc/check?uri=$escaped_request_uri&host=$host'],
    ['https://auth.$server_name/check', 'fetched', 'https://auth.$server_name/check'],
    ['https://例え.jp/パス', 'client', 'https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9'],
  ] as const)('reads %s (%s)', (template, use, want) => {
    expect(read(template, use)).toBe(want);
  });

  // [template, use, words of the refusal]
  it.each([
    ['https://$host/start?u=$remote_user', 'client', '$remote_user is not a variable netplane fills in'],
    ['https://$hostname/x', 'client', '$hostname is not a variable'],
    ['https://a.example.com/$1', 'client', '$1 is not a variable'],
    ['https://a.example.com/$', 'client', 'must start a variable'],
    ['https://a.example.com/${host', 'client', 'must start a variable'],
    ['https://auth.svc/check$request_uri', 'fetched', 'only $escaped_request_uri'],
    ['https://auth.svc/check?$args', 'fetched', 'only $escaped_request_uri'],
    ['https://$request_uri', 'client', 'cannot stand in the URL\'s host'],
    ['https://a.example.com$args', 'client', 'cannot stand in the URL\'s host'],
    ['https://$escaped_request_uri.example.com/', 'client', 'cannot stand in the URL\'s host'],
    ['https://user@$host/', 'client', 'allowed is an absolute http or https URL'],
    ['$host://a.example.com/', 'client', 'cannot stand in the scheme'],
    ['ftp://$host/', 'client', 'allowed is an absolute http or https URL'],
    ['/oauth2/start?rd=$escaped_request_uri', 'client', 'allowed is an absolute http or https URL'],
    ['https://$host/ä', 'client', 'visible ASCII'],
  ] as const)('refuses %s (%s)', (template, use, words) => {
    let error: unknown;
    try {
      read(template, use);
    } catch (e) {
      error = e;
    }
    expect(error instanceof AnnotationError && error.annotation === key).toBe(true);
    expect((error as Error).message).toContain(words);
    expect((error as Error).message).toContain(`annotation ${key} is `);
  });
});

describe('expandUrl', () => {
  const request = (over: Partial<UrlFacts> = {}): UrlFacts => ({ proto: 'https', host: 'shop.example.com', hostHeader: 'shop.example.com:8443', route: { host: 'shop.example.com' }, path: '/cart/ä b', query: '?id=7&x=(1)', ...over });
  // [what, template, facts, use, result]
  const cases: [string, string, UrlFacts, UrlUse, string | undefined][] = [
    ['host of an exact rule', 'https://$host/oauth2/auth', request(), 'fetched', 'https://shop.example.com/oauth2/auth'],
    ['host of a wildcard rule: the request\'s, under its domain', 'https://$host/oauth2/auth', request({ host: 'a.apps.example.com', route: { host: '*.apps.example.com' } }), 'fetched', 'https://a.apps.example.com/oauth2/auth'],
    ['a rule without host: no host for a subrequest', 'https://$host/oauth2/auth', request({ host: 'evil.example.net', route: { host: '' } }), 'fetched', undefined],
    ['no route known: no host for a subrequest', 'https://$host/oauth2/auth', request({ route: undefined }), 'fetched', undefined],
    ['a rule without host: the client\'s own host to send it back to', 'https://$host/start', request({ host: 'other.example.net', route: { host: '' } }), 'client', 'https://other.example.net/start'],
    ['the client\'s port on its way back', '$scheme://$http_host/start', request(), 'client', 'https://shop.example.com:8443/start'],
    ['never the client\'s port in a subrequest', 'http://$best_http_host/check', request(), 'fetched', 'http://shop.example.com/check'],
    ['request URI kept, unsafe bytes encoded', 'https://new.example.com$request_uri', request(), 'client', 'https://new.example.com/cart/%E4%20b?id=7&x=(1)'],
    ['path and query apart', 'https://new.example.com/v2$uri$is_args$args', request(), 'client', 'https://new.example.com/v2/cart/%E4%20b?id=7&x=(1)'],
    ['no query: no "?"', 'https://new.example.com$uri$is_args$args', request({ query: '' }), 'client', 'https://new.example.com/cart/%E4%20b'],
    ['escaped as nginx escapes it', 'http://auth.svc/check?rd=$escaped_request_uri', request(), 'fetched', 'http://auth.svc/check?rd=%2Fcart%2F%E4%20b%3Fid%3D7%26x%3D%281%29'],
    // Node reads a request line one character per byte: the UTF-8 bytes of "ä" arrive as "Ã¤".
    ['a UTF-8 path: its bytes escaped once', 'http://auth.svc/check?rd=$escaped_request_uri', request({ path: '/\u00c3\u00a4', query: '' }), 'fetched', 'http://auth.svc/check?rd=%2F%C3%A4'],
    ['a UTF-8 path kept in a redirect', 'https://new.example.com$request_uri', request({ path: '/\u00c3\u00a4', query: '' }), 'client', 'https://new.example.com/%C3%A4'],
    ['braces and schemes', '${scheme}://${host}/x?s=$pass_access_scheme', request({ proto: 'http' }), 'client', 'http://shop.example.com/x?s=http'],
    ['no variables: as written', 'https://a.example.com/x', request(), 'fetched', 'https://a.example.com/x'],
  ];
  it.each(cases)('%s', (_what, template, facts, use, want) => {
    expect(expandUrl(template, facts, use)).toBe(want);
  });

  it('escapes every character but letters, digits and -._~, as set_escape_uri', () => {
    expect(escapeUri("/a b?c=d&e=f!'()*~._-")).toBe('%2Fa%20b%3Fc%3Dd%26e%3Df%21%27%28%29%2A~._-');
  });
});

describe('signinUrl and redirectUrl', () => {
  const x: UrlFacts = { proto: 'https', host: 'shop.example.com', hostHeader: 'shop.example.com', route: { host: 'shop.example.com' }, path: '/cart', query: '?id=7&x=1' };
  it.each([
    ['oauth2-proxy style, rd given', 'https://$host/oauth2/start?rd=$escaped_request_uri', 'https://shop.example.com/oauth2/start?rd=%2Fcart%3Fid%3D7%26x%3D1'],
    ['no rd: added, absolute', 'https://login.example.com/start', 'https://login.example.com/start?rd=https%3A%2F%2Fshop.example.com%2Fcart%3Fid%3D7%26x%3D1'],
    ['no rd, a port in Host: kept in rd', 'https://login.example.com/start?app=shop', 'https://login.example.com/start?app=shop&rd=https%3A%2F%2Fshop.example.com%3A8443%2Fcart%3Fid%3D7%26x%3D1'],
  ])('%s', (what, template, want) => {
    expect(signinUrl(template, what.includes('port') ? { ...x, hostHeader: 'shop.example.com:8443' } : x)).toBe(want);
  });

  it('redirects keep the path, with the route\'s host', () => {
    expect(redirectUrl('https://www.$host$request_uri', x)).toBe('https://www.shop.example.com/cart?id=7&x=1');
    expect(redirectUrl('https://new.example.com/', x)).toBe('https://new.example.com/');
  });
});

// custom-headers and auth-proxy-set-headers: the ConfigMap name, the header data it may hold, and what the route
// compiler makes of it (the policy's headers; a missing or bad ConfigMap takes only that Ingress out of service).
import { describe, expect, it } from 'vitest';
import { subrequestHeaders } from '../../../ingress/auth/external.ts';
import { ConfigMapPendingError, configMapRef, headerDataProblem, readHeaderMap, type ConfigMapLookup, type HeaderUse } from '../../../ingress/routes/configmap-headers.ts';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import type { ExternalAuthPolicy } from '../../../ingress/routes/types.ts';
import { compile, defaults, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const ch = `${ngx}custom-headers`;

describe('the ConfigMap an annotation names', () => {
  // [value, the ConfigMap, or a word of the problem]
  const cases: [string, { namespace: string; name: string } | undefined | RegExp][] = [
    ['shop/headers', { namespace: 'shop', name: 'headers' }],
    ['shop/sec.headers-1', { namespace: 'shop', name: 'sec.headers-1' }],
    ['', undefined],
    ['headers', /"namespace\/name".*bare name/],
    ['other/headers', /own namespace "shop"/],
    ['shop/Headers', /"namespace\/name"/],
    ['shop/a/b', /"namespace\/name"/],
    ['/headers', /"namespace\/name"/],
  ];
  it.each(cases)('%j', (value, want) => {
    const read = () => configMapRef({ key: ch, value }, 'shop');
    if (want instanceof RegExp) {
      expect(read).toThrow(AnnotationError);
      expect(read).toThrow(want);
    } else expect(read()).toEqual(want);
  });
});

describe('header data', () => {
  // [use, data, a word of the problem or undefined when usable]
  const cases: [HeaderUse, Record<string, string>, RegExp | undefined][] = [
    ['custom-headers', { 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'self'; img-src *", X_Under: 'a "quoted" literal' }, undefined],
    ['custom-headers', { 'X-Id': '$request_id' }, /nginx would expand "\$"/],
    ['custom-headers', {}, undefined],
    ['custom-headers', { 'X Bad': 'v' }, /key "X Bad" is not a header name/],
    ['custom-headers', { 'X-Ünicode': 'v' }, /not a header name/],
    ['custom-headers', { 'X:Colon': 'v' }, /not a header name/],
    ['custom-headers', { 'X-A': 'line\r\nInjected: yes' }, /value of "X-A" is "line\\r\\nInjected: yes": allowed is visible ASCII/],
    ['custom-headers', { 'X-A': 'nul\0' }, /visible ASCII/],
    ['custom-headers', { 'X-A': 'tab\there' }, /visible ASCII/],
    ['custom-headers', { 'X-A': 'café' }, /non-ASCII/],
    ['custom-headers', { 'X-A': ' padded' }, /spaces only inside/],
    ['custom-headers', { 'X-A': '' }, /not empty/],
    ['custom-headers', { 'Content-Length': '0' }, /key "Content-Length" is not allowed: it describes the connection/],
    ['custom-headers', { 'transfer-encoding': 'chunked' }, /not allowed/],
    ['custom-headers', { 'X-A': '1', 'x-a': '2' }, /keys "X-A" and "x-a" name the same header/],
    ['auth-proxy-set-headers', { 'X-Tenant': 'blue', 'X-Strip': '' }, undefined],
    ['auth-proxy-set-headers', { 'X-Tenant': '$http_x_tenant' }, /nginx would expand "\$"/],
    ['auth-proxy-set-headers', { 'X-Forwarded-For': '1.2.3.4' }, /netplane sets it on the auth subrequest itself/],
    ['auth-proxy-set-headers', { Host: 'auth.internal' }, /not allowed/],
    ['auth-proxy-set-headers', { 'ssl-client-verify': 'SUCCESS' }, /not allowed/],
    ['auth-proxy-set-headers', { 'X-A': 'bad\nline' }, /visible ASCII/],
  ];
  it.each(cases)('%s %j', (use, data, want) => {
    const problem = headerDataProblem(data, use);
    if (want === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(want);
  });
});

describe('readHeaderMap', () => {
  const lookup: ConfigMapLookup = (ref) => (ref.name === 'pending' ? 'loading' : ref.name === 'hdrs' ? { data: { 'X-B': '2', 'X-A': '1' } } : undefined);
  it('gives the data with lower-case names; names a missing ConfigMap; marks one being read as pending', () => {
    expect(readHeaderMap({ key: ch, value: 'shop/hdrs' }, 'shop', lookup, 'custom-headers')).toEqual({ 'x-a': '1', 'x-b': '2' });
    expect(readHeaderMap({ key: ch, value: '' }, 'shop', lookup, 'custom-headers')).toBeUndefined();
    expect(() => readHeaderMap({ key: ch, value: 'shop/gone' }, 'shop', lookup, 'custom-headers')).toThrow(/names ConfigMap shop\/gone, which is not there/);
    expect(() => readHeaderMap({ key: ch, value: 'shop/gone' }, 'shop', undefined, 'custom-headers')).toThrow(AnnotationError);
    const pending = (() => {
      try {
        readHeaderMap({ key: ch, value: 'shop/pending' }, 'shop', lookup, 'custom-headers');
      } catch (e) {
        return e;
      }
    })();
    expect(pending).toBeInstanceOf(ConfigMapPendingError);
  });
});

describe('through the route compiler', () => {
  const web = (name: string, annotations: Record<string, string>) => ingress(name, { namespace: 'shop', annotations, rules: [rule(`${name}.com`, `Prefix / ${name}:80`)] });
  const maps: Record<string, Record<string, string>> = {
    'shop/security': { 'X-Frame-Options': 'DENY', 'Strict-Transport-Security': 'max-age=60' },
    'shop/auth': { 'X-Tenant': 'blue', Cookie: '' },
    'shop/bad': { 'X-A': 'evil\r\nSet-Cookie: x=1' },
  };
  const configMaps: ConfigMapLookup = (ref) => {
    const data = maps[`${ref.namespace}/${ref.name}`];
    return data === undefined ? undefined : { data };
  };
  const withMaps = { defaults: { ...defaults, configMaps } };

  it('puts the headers on the policy: response headers, and those of the auth subrequest', () => {
    const { table } = compile(
      [web('a', { [ch]: 'shop/security' }), web('b', { [`${ngx}auth-url`]: 'https://auth.example.com/check', [`${ngx}auth-proxy-set-headers`]: 'shop/auth' })],
      withMaps,
    );
    expect(table.problems).toEqual([]);
    expect(table.ingresses.get('shop/a')?.customHeaders).toEqual({ 'x-frame-options': 'DENY', 'strict-transport-security': 'max-age=60' });
    expect((table.ingresses.get('shop/b')?.auth as ExternalAuthPolicy).proxySetHeaders).toEqual({ 'x-tenant': 'blue', cookie: '' });
  });

  it('takes only the Ingress whose ConfigMap is missing or bad out of service, naming it; the others are served', () => {
    const { table } = compile([web('a', { [ch]: 'shop/gone' }), web('b', { [ch]: 'shop/bad' }), web('c', { [ch]: 'shop/security' })], withMaps);
    expect(table.problems.map((p) => [p.ingress, p.keptLastGood, p.pending])).toEqual([
      ['shop/b', false, undefined],
      ['shop/a', false, undefined],
    ]);
    expect(table.problems[1]!.reason).toBe(`annotation ${ch} names ConfigMap shop/gone, which is not there`);
    expect(table.problems[0]!.reason).toMatch(/names ConfigMap shop\/bad, which cannot be used: the value of "X-A" is "evil\\r\\nSet-Cookie: x=1": allowed is visible ASCII/);
    expect(table.match('a.com', '/')).toBeUndefined();
    expect(table.match('b.com', '/')).toBeUndefined();
    expect(table.match('c.com', '/')?.ingress).toBe('shop/c');
  });

  it('keeps the last good version while the new one names a ConfigMap that is not there', () => {
    const good = web('a', { [ch]: 'shop/security' });
    const next = web('a', { [ch]: 'shop/gone' });
    const { table } = compile([next], { ...withMaps, lastGood: new Map([['shop/a', good]]) });
    expect(table.problems.map((p) => [p.ingress, p.keptLastGood])).toEqual([['shop/a', true]]);
    expect(table.match('a.com', '/')?.policy.customHeaders).toEqual({ 'x-frame-options': 'DENY', 'strict-transport-security': 'max-age=60' });
  });

  it('marks the problem pending while the ConfigMap is being read', () => {
    const { table } = compile([web('a', { [ch]: 'shop/security' })], { defaults: { ...defaults, configMaps: () => 'loading' } });
    expect(table.problems.map((p) => [p.ingress, p.keptLastGood, p.pending])).toEqual([['shop/a', false, true]]);
  });

  it('refuses a ConfigMap of another namespace, and a bare name', () => {
    const { table } = compile([web('a', { [ch]: 'kube-system/security' }), web('b', { [ch]: 'security' })], withMaps);
    expect(table.problems.map((p) => p.ingress)).toEqual(['shop/b', 'shop/a']);
  });
});

describe('the auth subrequest with auth-proxy-set-headers', () => {
  it('replaces the client\'s header of the same name, removes it for an empty value, and never overrides the gateway\'s own', () => {
    const req = { method: 'GET', url: '/p', host: 'a.com', proto: 'https' as const, clientIP: '192.0.2.1', headers: { 'X-Tenant': 'red', cookie: 'session=1', accept: '*/*' } };
    const out = subrequestHeaders(req, undefined, { 'x-tenant': 'blue', cookie: '' });
    expect(out['x-tenant']).toBe('blue');
    expect(out['X-Tenant']).toBeUndefined();
    expect(out.cookie).toBeUndefined();
    expect(out.accept).toBe('*/*');
    expect(out['x-original-url']).toBe('https://a.com/p');
  });
});

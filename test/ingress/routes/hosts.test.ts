// Host matching (exact, wildcard of one label, any host, default backend) and TLS lookup, as tables.
import { describe, expect, it } from 'vitest';
import { backend, compile, ingress, rule, show } from './fixtures.ts';

describe('host matching', () => {
  const { table } = compile([
    ingress('exact', { rules: [rule('Foo.Example.COM', 'Prefix /api foo-api:80'), rule('bar.example.com', 'Prefix /only-bar bar:80')] }),
    ingress('wild', { rules: [rule('*.example.com', 'Prefix / wild:80', 'Prefix /api wild-api:80')] }),
    ingress('any', { rules: [rule('', 'Prefix / any:80')] }),
    ingress('zz-default', { defaultBackend: backend('fallback:8080') }),
  ]);

  // [request host, path, route]
  const cases: [string, string, string][] = [
    ['foo.example.com', '/api/x', 'foo.example.com /api Prefix -> default/foo-api:80'],
    ['FOO.example.com', '/api', 'foo.example.com /api Prefix -> default/foo-api:80'],
    // The exact host has rules, so its rule set is the only one tried: no fallback to the wildcard's `/`, nor to the
    // default backend of an Ingress without rules (the catch-all server's, in ingress-nginx).
    ['foo.example.com', '/other', 'none'],
    ['bar.example.com', '/only-bar', 'bar.example.com /only-bar Prefix -> default/bar:80'],
    ['baz.example.com', '/api/v1', '*.example.com /api Prefix -> default/wild-api:80'],
    ['baz.example.com', '/', '*.example.com / Prefix -> default/wild:80'],
    // A wildcard covers exactly one label.
    ['example.com', '/api', '* / Prefix -> default/any:80'],
    ['deep.baz.example.com', '/api', '* / Prefix -> default/any:80'],
    ['.example.com', '/api', '* / Prefix -> default/any:80'],
    ['other.org', '/x', '* / Prefix -> default/any:80'],
    ['', '/x', '* / Prefix -> default/any:80'],
  ];
  it.each(cases)('%s %s', (host, path, want) => {
    expect(show(table.match(host, path))).toBe(want);
  });

  it('keeps wildcard hosts as written in routes and lower-cases hosts', () => {
    expect(table.match('q.example.com', '/')?.host).toBe('*.example.com');
    expect(table.match('foo.example.com', '/api')?.host).toBe('foo.example.com');
  });
});

describe('default backend', () => {
  it('answers hosts no rule names and misses of the rules without a host, never misses of a host with rules', () => {
    const rules = [rule('a.com', 'Prefix /aaa a:80'), rule('', 'Prefix /any any:80')];
    const withDefault = compile([ingress('r', { rules }), ingress('d', { defaultBackend: backend('def:80') })]).table;
    const without = compile([ingress('r', { rules })]).table;
    expect([show(withDefault.match('a.com', '/ccc')), show(withDefault.match('b.com', '/')), show(withDefault.match('b.com', '/any/1')), show(without.match('b.com', '/ccc'))]).toEqual([
      'none',
      '* / Prefix -> default/def:80',
      '* /any Prefix -> default/any:80',
      'none',
    ]);
  });

  it('is the oldest of the served Ingresses, with that Ingress and policy', () => {
    const at = (year: number) => `${year}-01-01T00:00:00Z`;
    const { table } = compile([
      ingress('b', { namespace: 'a', created: at(2021), defaultBackend: backend('ab:80') }),
      ingress('a', { namespace: 'b', created: at(2022), defaultBackend: backend('ba:80') }),
      ingress('a', { namespace: 'a-z', created: at(2023), defaultBackend: backend('aza:80') }),
      ingress('c', { namespace: 'a', created: at(2020), defaultBackend: backend('ac:80'), annotations: { 'netplane.io/limit-rps': 'x' } }),
      ingress('0', { namespace: 'a', created: at(2019), className: 'other', defaultBackend: backend('other:80') }),
    ]);
    const route = table.match('x', '/');
    expect([route?.ingress, route?.backend.key]).toEqual(['a/b', 'a/ab:80']);
    expect(route?.policy).toBe(table.ingresses.get('a/b'));
    // Only the default backend in use is a backend of the table.
    expect([...table.backends.keys()]).toEqual(['a/ab:80']);
    expect(table.size).toBe(0);
  });
});

describe('TLS lookup', () => {
  const { table } = compile([
    ingress('a', {
      namespace: 'shop',
      tls: [{ hosts: ['Shop.Example.com', 'pay.example.com'], secretName: 'shop-tls' }, { hosts: ['*.example.com'], secretName: 'wild-tls' }, { hosts: ['plain.example.org'] }],
      rules: [rule('shop.example.com', 'Prefix / shop:80')],
    }),
  ]);
  const cases: [string, object | undefined][] = [
    ['shop.example.com', { secret: { namespace: 'shop', name: 'shop-tls' }, ingress: 'shop/a' }],
    ['SHOP.example.com', { secret: { namespace: 'shop', name: 'shop-tls' }, ingress: 'shop/a' }],
    ['pay.example.com', { secret: { namespace: 'shop', name: 'shop-tls' }, ingress: 'shop/a' }],
    ['other.example.com', { secret: { namespace: 'shop', name: 'wild-tls' }, ingress: 'shop/a' }],
    ['example.com', undefined],
    ['a.b.example.com', undefined],
    ['plain.example.org', { ingress: 'shop/a' }],
    ['nothing.net', undefined],
  ];
  it.each(cases)('%s', (host, want) => {
    expect(table.tls(host)).toEqual(want);
  });
});

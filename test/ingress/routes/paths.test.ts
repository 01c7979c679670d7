// Path matching: the examples table of the Kubernetes Ingress documentation
// (https://kubernetes.io/docs/concepts/services-networking/ingress/#examples), then the edges around it.
import { describe, expect, it } from 'vitest';
import { compile, ingress, rule } from './fixtures.ts';

/** Rules as `Type /path`; each gets its own backend, so the match names the rule that won. */
function table(rules: string[]) {
  const paths = rules.map((r, i) => `${r} svc${i}:80`);
  const { table, served } = compile([ingress('paths', { rules: [rule('', ...paths)] })]);
  expect(table.problems).toEqual([]);
  expect(served.size).toBe(1);
  return (request: string) => {
    const route = table.match('example.com', request);
    return route === undefined ? 'no match' : rules[Number(route.backend.service.slice(3))];
  };
}

describe('Kubernetes path-matching examples', () => {
  // [kind, rules, request paths, the rule that matches (or 'no match')]
  const cases: [string, string[], string[], string][] = [
    ['Prefix /', ['Prefix /'], ['/', '/foo', '/aaa/bbb/ccc', '/foo/'], 'Prefix /'],
    ['Exact /foo', ['Exact /foo'], ['/foo'], 'Exact /foo'],
    ['Exact /foo vs /bar', ['Exact /foo'], ['/bar'], 'no match'],
    ['Exact /foo vs /foo/', ['Exact /foo'], ['/foo/'], 'no match'],
    ['Exact /foo/ vs /foo', ['Exact /foo/'], ['/foo'], 'no match'],
    ['Prefix /foo', ['Prefix /foo'], ['/foo', '/foo/'], 'Prefix /foo'],
    ['Prefix /foo/', ['Prefix /foo/'], ['/foo', '/foo/'], 'Prefix /foo/'],
    ['Prefix /aaa/bb vs /aaa/bbb', ['Prefix /aaa/bb'], ['/aaa/bbb'], 'no match'],
    ['Prefix /aaa/bbb', ['Prefix /aaa/bbb'], ['/aaa/bbb'], 'Prefix /aaa/bbb'],
    ['Prefix /aaa/bbb/ ignores the trailing slash', ['Prefix /aaa/bbb/'], ['/aaa/bbb'], 'Prefix /aaa/bbb/'],
    ['Prefix /aaa/bbb/ vs /aaa/bbb/', ['Prefix /aaa/bbb/'], ['/aaa/bbb/'], 'Prefix /aaa/bbb/'],
    ['Prefix /aaa/bbb matches a trailing slash', ['Prefix /aaa/bbb'], ['/aaa/bbb/'], 'Prefix /aaa/bbb'],
    ['Prefix /aaa/bbb matches a subpath', ['Prefix /aaa/bbb'], ['/aaa/bbb/ccc'], 'Prefix /aaa/bbb'],
    ['Prefix /aaa/bbb does not match a string prefix', ['Prefix /aaa/bbb'], ['/aaa/bbbxyz'], 'no match'],
    ['Prefix /, /aaa vs /aaa/ccc', ['Prefix /', 'Prefix /aaa'], ['/aaa/ccc'], 'Prefix /aaa'],
    ['Prefix /, /aaa, /aaa/bbb vs /aaa/bbb', ['Prefix /', 'Prefix /aaa', 'Prefix /aaa/bbb'], ['/aaa/bbb'], 'Prefix /aaa/bbb'],
    ['Prefix /, /aaa, /aaa/bbb vs /ccc', ['Prefix /', 'Prefix /aaa', 'Prefix /aaa/bbb'], ['/ccc'], 'Prefix /'],
    ['Prefix /aaa vs /ccc', ['Prefix /aaa'], ['/ccc'], 'no match'],
    ['Mixed: Prefix /foo and Exact /foo prefer Exact', ['Prefix /foo', 'Exact /foo'], ['/foo'], 'Exact /foo'],
    ['Mixed, other order', ['Exact /foo', 'Prefix /foo'], ['/foo'], 'Exact /foo'],
  ];
  it.each(cases)('%s', (_name, rules, requests, want) => {
    const match = table(rules);
    for (const request of requests) expect([request, match(request)]).toEqual([request, want]);
  });
});

describe('path matching beyond the examples', () => {
  const cases: [string, string[], string, string][] = [
    ['longest prefix wins whatever the rule order', ['Prefix /aaa/bbb', 'Prefix /aaa', 'Prefix /'], '/aaa/bbb/ccc/ddd', 'Prefix /aaa/bbb'],
    ['Exact beats a shorter Prefix', ['Prefix /aaa', 'Exact /aaa/bbb'], '/aaa/bbb', 'Exact /aaa/bbb'],
    ['Exact is not a prefix', ['Prefix /aaa', 'Exact /aaa/bbb'], '/aaa/bbb/ccc', 'Prefix /aaa'],
    ['Prefix /foo and Exact /foo: /foo/ takes the Prefix', ['Prefix /foo', 'Exact /foo'], '/foo/', 'Prefix /foo'],
    ['Exact /foo/ matches /foo/ only', ['Exact /foo/', 'Prefix /'], '/foo/', 'Exact /foo/'],
    ['Exact /foo/ and Prefix /foo: /foo/ takes the Exact', ['Prefix /foo', 'Exact /foo/'], '/foo/', 'Exact /foo/'],
    ['Exact /foo/ and Prefix /foo: /foo/x takes the Prefix', ['Prefix /foo', 'Exact /foo/'], '/foo/x', 'Prefix /foo'],
    ['Exact / matches / only', ['Exact /'], '/x', 'no match'],
    ['Exact / and Prefix /: / takes the Exact', ['Prefix /', 'Exact /'], '/', 'Exact /'],
    ['Exact / and Prefix /: /x takes the Prefix', ['Prefix /', 'Exact /'], '/x', 'Prefix /'],
    ['repeated trailing slashes', ['Prefix /aaa'], '/aaa//', 'Prefix /aaa'],
    ['an empty element', ['Prefix /aaa/bbb', 'Prefix /aaa'], '/aaa//bbb', 'Prefix /aaa'],
    ['ImplementationSpecific is Prefix', ['ImplementationSpecific /aaa'], '/aaa/x', 'ImplementationSpecific /aaa'],
    ['a missing path is /', ['Prefix -'], '/anything', 'Prefix -'],
    ['case matters in paths', ['Prefix /Foo'], '/foo', 'no match'],
    ['a path not starting with / matches no Prefix', ['Prefix /'], '*', 'no match'],
    ['percent-encoded paths are compared as sent', ['Prefix /a%20b'], '/a%20b/c', 'Prefix /a%20b'],
    ['a long path under a short rule', ['Prefix /a'], `/a${'/x'.repeat(200)}`, 'Prefix /a'],
  ];
  it.each(cases)('%s', (_name, rules, request, want) => {
    expect(table(rules)(request)).toBe(want);
  });

  it('normalises Prefix paths in routes and keeps Exact paths as written', () => {
    const { table } = compile([ingress('n', { rules: [rule('a.com', 'Prefix /aaa/ x', 'Exact /bbb/ y', 'ImplementationSpecific - z')] })]);
    expect(['/aaa/1', '/bbb/', '/zzz'].map((p) => table.match('a.com', p)).map((r) => [r?.path, r?.pathType])).toEqual([
      ['/aaa', 'Prefix'],
      ['/bbb/', 'Exact'],
      ['/', 'Prefix'],
    ]);
  });

  it('matches the same with 10,000 rules as with one (every rule found, misses stay misses)', () => {
    const rules = Array.from({ length: 2000 }, (_, i) =>
      rule(`h${i}.example.com`, `Prefix /api s${i}:80`, `Prefix /api/v1 s${i}:81`, `Prefix /static s${i}:82`, `Prefix /app${i % 7} s${i}:83`, `Exact /login s${i}:84`),
    );
    const { table } = compile([ingress('big', { rules })]);
    expect(table.size).toBe(10_000);
    for (const i of [0, 1, 999, 1999]) {
      const h = `h${i}.example.com`;
      expect(['/api/v1/users/7', '/api/items', '/static/a.css', `/app${i % 7}/x`, '/login', '/apix', '/login/x'].map((p) => table.match(h, p)?.backend.key)).toEqual([
        `default/s${i}:81`, `default/s${i}:80`, `default/s${i}:82`, `default/s${i}:83`, `default/s${i}:84`, undefined, undefined,
      ]);
    }
  });
});

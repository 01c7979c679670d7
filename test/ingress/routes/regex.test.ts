// ingress-nginx regex paths read by structure (routes/pattern.ts): the shapes users write, checked case by case and
// against an oracle — the same expression as nginx writes it (`^<path>`, case-insensitive) run by the test's own
// regex engine over many paths — the refusals, the rewrite targets, and ingress-nginx's location order.
import { describe, expect, it } from 'vitest';
import { IngressSpecError } from '../../../ingress/routes/errors.ts';
import { locationBefore, parseRegexPath, regexGroups, rewriteParts, rewritePath } from '../../../ingress/routes/pattern.ts';

const read = (source: string) => parseRegexPath(source, 'path');

describe('the regex paths netplane reads', () => {
  // [path as written, request path, capture groups ($1, $2 ...) or 'no match']
  const cases: [string, string, string[] | 'no match'][] = [
    // ingress-nginx's rewrite example (docs/examples/rewrite): /something(/|$)(.*) with /$2.
    ['/something(/|$)(.*)', '/something', ['', '']],
    ['/something(/|$)(.*)', '/something/', ['/', '']],
    ['/something(/|$)(.*)', '/something/new', ['/', 'new']],
    ['/something(/|$)(.*)', '/SomeThing/New/x', ['/', 'New/x']],
    ['/something(/|$)(.*)', '/somethingelse', 'no match'],
    ['/something(/|$)(.*)', '/some', 'no match'],
    ['/something($|/)(.*)', '/something/a', ['/', 'a']],
    ['/something(?:/|$)(.*)', '/something/a', ['a']],
    ['/something(/|$)', '/something/a/b', ['/']],
    ['/something(/|$)(.+)', '/something/', 'no match'],
    ['/something(/|$)(.+)', '/something', 'no match'],
    ['/something(/|$)(.+)', '/something/a', ['/', 'a']],
    // Its older spelling: /something/?(.*) with /$1.
    ['/something/?(.*)', '/something', ['']],
    ['/something/?(.*)', '/something/', ['']],
    ['/something/?(.*)', '/something/new', ['new']],
    ['/something/?(.*)', '/somethingelse', ['else']],
    ['/api/?$', '/api', []],
    ['/api/?$', '/api/', []],
    ['/api/?$', '/api/x', 'no match'],
    // <prefix>/(.*) with /$1; (.+) needs a character.
    ['/api/(.*)', '/api/v1/users', ['v1/users']],
    ['/api/(.*)', '/api/', ['']],
    ['/api/(.*)', '/api', 'no match'],
    ['/foo/bar/(.+)', '/foo/bar/', 'no match'],
    ['/foo/bar/(.+)', '/foo/bar/1', ['1']],
    ['/(.*)', '/', ['']],
    ['/(.*)', '/index.html', ['index.html']],
    // <prefix>(.*): a prefix of characters, not path elements.
    ['/app(.*)', '/app', ['']],
    ['/app(.*)', '/apple', ['le']],
    ['/app(.*)', '/app/x', ['/x']],
    ['/english(.+)', '/english', 'no match'],
    ['/english(.+)', '/english/x', ['/x']],
    // A group that starts inside the fixed part.
    ['/app(/.*)', '/app', 'no match'],
    ['/app(/.*)', '/app/x/y', ['/x/y']],
    ['/operator(/validate/.*)', '/operator/validate/a', ['/validate/a']],
    ['/operator(/validate/.*)', '/operator/other', 'no match'],
    ['/a(/b)(.*)', '/a/b/c', ['/b', '/c']],
    ['/a(?:/b)(.*)', '/a/B/c', ['/c']],
    // No groups: a literal path with use-regex, .* and $.
    ['/api', '/api', []],
    ['/api', '/apix', []],
    ['/api', '/API/v1', []],
    ['/api', '/ap', 'no match'],
    ['/foo/.*', '/foo/', []],
    ['/foo/.*', '/foo', 'no match'],
    ['/exact$', '/exact', []],
    ['/exact$', '/exact/', 'no match'],
    // `.` is any character, `\.` a dot.
    ['/v1.0/(.*)', '/v1.0/x', ['x']],
    ['/v1.0/(.*)', '/v1x0/x', ['x']],
    ['/v1\\.0/(.*)', '/v1x0/x', 'no match'],
    ['/v1\\.0/(.*)', '/V1.0/x', ['x']],
    ['/c\\+\\+/(.*)', '/c++/x', ['x']],
    ['/', '/anything', []],
  ];
  it.each(cases)('%s on %s', (source, path, want) => {
    expect(regexGroups(read(source), path) ?? 'no match').toEqual(want);
  });

  // The same results as the expression itself, as nginx writes the location: `^<path>`, case-insensitive. Paths
  // are every string of up to 5 characters over an alphabet that exercises the shapes, after a few starts.
  const sources = [
    '/a(/|$)(.*)', '/a($|/)(.*)', '/a(/|$)', '/a(/|$)(.+)', '/a/?(.*)', '/a/?$', '/a/(.*)', '/a/(.+)', '/a(.*)', '/a(.+)',
    '/a(/.*)', '/a(/b.*)', '/a(/b)(.*)', '/a', '/a$', '/a.*', '/a.+', '/a.b(.*)', '/(.*)', '/?(.*)', '/A\\.b(/|$)(.*)',
  ];
  const alphabet = ['a', 'A', 'b', '/', '.', 'x'];
  const paths: string[] = [];
  const grow = (s: string, depth: number) => {
    paths.push(s);
    if (depth > 0) for (const c of alphabet) grow(s + c, depth - 1);
  };
  for (const start of ['/', '/a', '/A']) grow(start, 4);
  it.each(sources)('%s gives what the expression gives, path by path', (source) => {
    // The test's own engine on the test's own expressions: never a user's.
    const oracle = new RegExp(`^${source}`, 'i');
    const rp = read(source);
    for (const path of paths) {
      const m = oracle.exec(path);
      expect([path, regexGroups(rp, path)]).toEqual([path, m === null ? undefined : m.slice(1).map((g) => g ?? '')]);
    }
  });
});

describe('regex paths netplane refuses', () => {
  // [path, a word the sentence names]
  const cases: [string, string][] = [
    ['/foo/bar/[A-Z0-9]{3}', '"["'],
    ['/(api|v1)/(.*)', 'more than fixed characters'],
    ['/api/v[0-9]+/(.*)', '"["'],
    ['/api/\\d+', '"\\\\d"'],
    ['/a+', '"+"'],
    ['/a?b', '"?"'],
    ['/a/?b', 'must end the path'],
    ['/a(.*)/b', 'must end the path'],
    ['/a.*/b', 'must end the path'],
    ['/a$/b', 'must end the path'],
    ['/a(/|$)/b', 'may be followed only by'],
    ['/a((b))', 'not nested'],
    ['/a(b', 'closed'],
    ['/a(?=b)', 'more than fixed characters'],
    ['/a(b)*', '"*"'],
    ['^/a', 'start with "/"'],
    ['/a b', '" "'],
    ['/café', '"é"'],
  ];
  it.each(cases)('%s', (source, named) => {
    let error: unknown;
    try {
      read(source);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IngressSpecError);
    const message = (error as IngressSpecError).message;
    expect(message).toContain(JSON.stringify(source));
    expect(message).toContain(named);
    expect((error as IngressSpecError).code).toBe('NETPLANE_INGRESS_SPEC');
  });

  it('reads a long path in one pass', () => {
    const start = performance.now();
    for (const source of [`/${'('.repeat(50_000)}`, `/${'a'.repeat(100_000)}(.*)`, `/${'/?'.repeat(30_000)}`, `/${'(a)'.repeat(30_000)}(.*)`]) {
      try {
        read(source);
      } catch (e) {
        expect(e).toBeInstanceOf(IngressSpecError);
      }
    }
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('rewrite targets', () => {
  // [path, target, request path (as $uri, one character per byte), upstream path]
  const cases: [string, string, string, string][] = [
    ['/something(/|$)(.*)', '/$2', '/something', '/'],
    ['/something(/|$)(.*)', '/$2', '/something/new', '/new'],
    ['/something(/|$)(.*)', '/base/$2', '/something/a/b', '/base/a/b'],
    ['/api/(.*)', '/$1', '/api/users', '/users'],
    ['/app(.*)', '/$1', '/app/x', '//x'],
    ['/app(/.*)', '$1', '/app/x', '/x'],
    ['/operator(/validate/.*)', '$1', '/operator/validate/x', '/validate/x'],
    // $12 is $1 and "2"; a group the path does not have is empty.
    ['/a/(.*)', '/v$12', '/a/x', '/vx2'],
    ['/v2', '/$1', '/v2/anything', '/'],
    ['/a/(.*)', '/$1/$3', '/a/x', '/x/'],
    // Groups are escaped again as nginx's proxy escapes a rewritten URI (and the few bytes a path may not hold raw).
    ['/a/(.*)', '/$1', '/a/b c', '/b%20c'],
    ['/a/(.*)', '/$1', '/a/100%', '/100%25'],
    ['/a/(.*)', '/$1', '/a/x?y#z', '/x%3Fy%23z'],
    ['/a/(.*)', '/$1', '/a/caf\u00c3\u00a9', '/caf%C3%A9'],
    ['/a/(.*)', '/$1', '/a/"<>', '/%22%3C%3E'],
    ['/a/(.*)', '/$1', "/a/x:y@z;k=v,!$&'()*+", "/x:y@z;k=v,!$&'()*+"],
  ];
  it.each(cases)('%s with %s: %s -> %s', (source, target, uri, want) => {
    const rp = read(source);
    expect(rewritePath(rp, rewriteParts(target, rp, 'path'), uri)).toBe(want);
  });

  // [path, target]: a request could go up with an empty path or one without a leading "/".
  const refused: [string, string][] = [
    ['/myflaskapp/(.*)', '$1'],
    ['/user(.*)', '$1'],
    ['/admin(/|$)(.*)', '$1'],
    ['/admin(/|$)(.*)', '$2'],
    ['/admin(/|$)(.*)', '$1$2'],
    ['/a', '$1'],
    ['/a.(.*)', '$1'],
  ];
  it.each(refused)('refuses %s with %s', (source, target) => {
    expect(() => rewriteParts(target, read(source), 'path')).toThrow(/could send a path that is empty or does not start with "\/"/);
  });
});

describe("ingress-nginx's location order", () => {
  // [a, b, a is written before b]: longer first, then the greater string.
  const cases: [string, string, boolean][] = [
    ['/foo/bar/(.+)', '/foo/bar/', true],
    ['/foo/bar/', '/foo/bar', true],
    ['/api(/|$)(.*)', '/api/v2/', true],
    ['/(.*)', '/api/', false],
    ['/ab(.*)', '/a.(.*)', true],
    ['/a', '/a', false],
  ];
  it.each(cases)('%s before %s: %s', (a, b, want) => {
    expect(locationBefore(a, b)).toBe(want);
  });
});

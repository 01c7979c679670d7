// upstreamPath: the path and query a matched request is forwarded with, with and without rewrite-target, as
// ingress-nginx rewrites (the whole path becomes the target, its $1..$9 filled in from the path's groups). Requests go
// through the real request reader (server/request.ts) and the compiled table, as the pipeline does.
import { describe, expect, it } from 'vitest';
import { upstreamPath } from '../../../ingress/routes/rewrite.ts';
import { requestPath } from '../../../ingress/server/request.ts';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

/** The upstream target of request `target` (path and query) on host a.com of an Ingress with these rules and annotations; 404 when no rule matches. */
function forward(rules: string[], annotations: Record<string, string>, target: string): string | 400 | 404 {
  const { table } = compile([ingress('r', { annotations, rules: [rule('a.com', ...rules.map((r) => `${r} web:80`))] })]);
  expect(table.problems).toEqual([]);
  const request = requestPath(target);
  if (request === undefined) return 400;
  const route = table.match('a.com', request.matchPath);
  return route === undefined ? 404 : upstreamPath(route, request.path, request.query);
}

describe('rewrite-target without groups', () => {
  // As ingress-nginx (>= 0.22.0) rewrites: `rewrite "(?i)<path>" <target> break;` replaces the whole URI, keeping the
  // arguments; no rewrite when the target is the rule's path. A rewrite-target makes ingress-nginx read the paths as
  // regular expressions (`~* "^/app"`): a prefix of characters, either case.
  // [rule, rewrite-target, request, upstream]
  const cases: [string, string | undefined, string, string | 404][] = [
    ['Prefix /app', undefined, '/app/x?q=1', '/app/x?q=1'],
    ['Prefix /app', undefined, '/app/x', '/app/x'],
    ['Prefix /app', undefined, '/apple', 404],
    ['Prefix /app', '/', '/app/x?q', '/?q'],
    ['Prefix /app', '/', '/app/x/y?q=1', '/?q=1'],
    ['Prefix /app', '/', '/app', '/'],
    ['Prefix /app', '/', '/app/', '/'],
    ['Prefix /app', '/', '/app/a/b/?x=1&y=2', '/?x=1&y=2'],
    ['Prefix /app', '/', '/APP/x', '/'],
    ['Prefix /app', '/', '/apple', '/'],
    ['Prefix /app/', '/', '/app/x', '/'],
    ['Prefix /app/', '/', '/app', 404],
    ['Prefix /webhook', '/api/hook', '/webhook/github/push', '/api/hook'],
    ['Prefix /app', '/new/', '/app/x', '/new/'],
    ['Prefix /app', '/new', '/app?a', '/new?a'],
    ['Prefix /', '/jenkins', '/x/y', '/jenkins'],
    ['Prefix /', '/jenkins', '/?a=1', '/jenkins?a=1'],
    ['Exact /old', '/new', '/old?v=2', '/new?v=2'],
    // ingress-nginx writes an Exact path under a rewrite as `~* "^/old"` too.
    ['Exact /old', '/new', '/older', '/new'],
    ['ImplementationSpecific /api', '/v2', '/api/users', '/v2'],
    // The target is the rule's own path: no rewrite, and ingress-nginx does not read the path as a regex then.
    ['Prefix /', '/', '/x/y?q', '/x/y?q'],
    ['Prefix /', '/', '/x?', '/x'],
    ['Prefix /app', '/app', '/app/x', '/app/x'],
    ['Prefix /app', '/app', '/apple', 404],
    ['Prefix /app/', '/app/', '/app/x', '/app/x'],
    ['Exact /old', '/old', '/old?v', '/old?v'],
    // The Kubernetes documentation's minikube example: `/$1` with paths without groups sends `/` ($1 is empty).
    ['Prefix /v2', '/$1', '/v2/anything', '/'],
  ];
  it.each(cases)('%s rewrite %s: %s -> %s', (r, target, request, want) => {
    expect(forward([r], target === undefined ? {} : { [`${ngx}rewrite-target`]: target }, request)).toBe(want);
  });
});

describe('rewrite-target with capture groups', () => {
  // [rule, rewrite-target, request, upstream]; use-regex set (ingress-nginx reads the paths as regexes with a
  // rewrite-target anyway).
  const cases: [string, string | undefined, string, string | 400 | 404][] = [
    // ingress-nginx's rewrite example.
    ['ImplementationSpecific /something(/|$)(.*)', '/$2', '/something', '/'],
    ['ImplementationSpecific /something(/|$)(.*)', '/$2', '/something/', '/'],
    ['ImplementationSpecific /something(/|$)(.*)', '/$2', '/something/new', '/new'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/new/deeper?a=1&b', '/new/deeper?a=1&b'],
    ['Prefix /something(/|$)(.*)', '/$2', '/SOMETHING/New', '/New'],
    ['Prefix /something(/|$)(.*)', '/$2', '/somethingelse', 404],
    ['Prefix /something(/|$)(.*)', '/base/$2', '/something/a', '/base/a'],
    ['Prefix /something/?(.*)', '/$1', '/something', '/'],
    ['Prefix /something/?(.*)', '/$1', '/something/new', '/new'],
    ['ImplementationSpecific /api/(.*)', '/$1', '/api/v1/users?id=7', '/v1/users?id=7'],
    ['ImplementationSpecific /api/(.*)', '/$1', '/api', 404],
    ['ImplementationSpecific /(.*)', '/$1', '/index.html', '/index.html'],
    ['ImplementationSpecific /app(.*)', '/$1', '/app/x', '//x'],
    ['ImplementationSpecific /app(/.*)', '$1', '/app/x/y', '/x/y'],
    ['ImplementationSpecific /api/warga(/auth.*)', '$1', '/api/warga/auth/login', '/auth/login'],
    // No rewrite-target: the path goes up as it came.
    ['ImplementationSpecific /api/(.*)', undefined, '/API/x', '/API/x'],
    ['ImplementationSpecific /foo/.*', undefined, '/foo/bar', '/foo/bar'],
    // The groups come from the decoded path and are escaped again, as nginx rewrites $uri and its proxy escapes it.
    ['Prefix /something(/|$)(.*)', '/$2', '/something/a%2Fb', '/a/b'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/caf%C3%A9', '/caf%C3%A9'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/100%25', '/100%25'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/a%3Fb?c=%3F', '/a%3Fb?c=%3F'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/a%20b', '/a%20b'],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/%61b', '/ab'],
    // Dot segments are resolved before matching: they never step out through a group.
    ['Prefix /something(/|$)(.*)', '/$2', '/something/..%2Fetc', 404],
    ['Prefix /something(/|$)(.*)', '/$2', '/something/..%2F..%2Fetc', 400],
    ['Prefix /something(/|$)(.*)', '/$2', '/other/../something/x', '/x'],
  ];
  it.each(cases)('%s rewrite %s: %s -> %s', (r, target, request, want) => {
    const annotations: Record<string, string> = { [`${ngx}use-regex`]: 'true', ...(target === undefined ? {} : { [`${ngx}rewrite-target`]: target }) };
    expect(forward([r], annotations, request)).toBe(want);
  });

  it('leaves a path the route does not match unchanged', () => {
    const { table } = compile([ingress('r', { annotations: { [`${ngx}rewrite-target`]: '/$2' }, rules: [rule('a.com', 'Prefix /app(/|$)(.*) web:80')] })]);
    const route = table.match('a.com', '/app/x')!;
    expect([upstreamPath(route, '/other', '?q'), upstreamPath(route, '/apple', ''), upstreamPath(route, '/app/x', '')]).toEqual(['/other?q', '/apple', '/x']);
  });
});

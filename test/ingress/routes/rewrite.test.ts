// upstreamPath: the path and query a matched request is forwarded with, with and without rewrite-target, as
// ingress-nginx rewrites (the whole path becomes the target).
import { describe, expect, it } from 'vitest';
import { upstreamPath } from '../../../ingress/routes/rewrite.ts';
import { compile, ingress, rule } from './fixtures.ts';

/** The route `host path` of an Ingress with these rules and rewrite-target (none when undefined). */
function routeFor(rules: string[], target: string | undefined, request: string) {
  const annotations: Record<string, string> = target === undefined ? {} : { 'nginx.ingress.kubernetes.io/rewrite-target': target };
  const { table } = compile([ingress('r', { annotations, rules: [rule('a.com', ...rules.map((r) => `${r} web:80`))] })]);
  expect(table.problems).toEqual([]);
  return table.match('a.com', request)!;
}

describe('upstreamPath', () => {
  // As ingress-nginx (>= 0.22.0) rewrites: `rewrite "(?i)<path>" <target> break;` replaces the whole URI, keeping the
  // arguments; no rewrite when the target is the rule's path.
  // [rule, rewrite-target, request path, query, upstream]
  const cases: [string, string | undefined, string, string, string][] = [
    ['Prefix /app', undefined, '/app/x', '?q=1', '/app/x?q=1'],
    ['Prefix /app', undefined, '/app/x', '', '/app/x'],
    ['Prefix /app', '/', '/app/x', '?q', '/?q'],
    ['Prefix /app', '/', '/app/x/y', '?q=1', '/?q=1'],
    ['Prefix /app', '/', '/app', '', '/'],
    ['Prefix /app', '/', '/app/', '', '/'],
    ['Prefix /app', '/', '/app/a/b/', 'x=1&y=2', '/?x=1&y=2'],
    ['Prefix /app/', '/', '/app/x', '', '/'],
    ['Prefix /webhook', '/api/hook', '/webhook/github/push', '', '/api/hook'],
    ['Prefix /app', '/new/', '/app/x', '', '/new/'],
    ['Prefix /app', '/new', '/app', '?a', '/new?a'],
    ['Prefix /', '/jenkins', '/x/y', '', '/jenkins'],
    ['Prefix /', '/jenkins', '/', '?a=1', '/jenkins?a=1'],
    ['Exact /old', '/new', '/old', '?v=2', '/new?v=2'],
    ['ImplementationSpecific /api', '/v2', '/api/users', '', '/v2'],
    // The target is the rule's own path: no rewrite (ingress-nginx's "invalid redirect / to /").
    ['Prefix /', '/', '/x/y', '?q', '/x/y?q'],
    ['Prefix /', '/', '/x', '?', '/x'],
    ['Prefix /app', '/app', '/app/x', '', '/app/x'],
    ['Prefix /app/', '/app/', '/app/x', '', '/app/x'],
    ['Exact /old', '/old', '/old', '?v', '/old?v'],
  ];
  it.each(cases)('%s rewrite %s: %s%s', (r, target, path, query, want) => {
    expect(upstreamPath(routeFor([r], target, path), path, query)).toBe(want);
  });

  it('leaves a path the route does not match unchanged', () => {
    const route = routeFor(['Prefix /app'], '/', '/app');
    expect([upstreamPath(route, '/other', '?q'), upstreamPath(route, '/appx', '')]).toEqual(['/other?q', '/appx']);
  });
});

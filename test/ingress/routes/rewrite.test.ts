// upstreamPath: the path and query a matched request is forwarded with, with and without rewrite-target.
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
  // [rule, rewrite-target, request path, query, upstream]
  const cases: [string, string | undefined, string, string, string][] = [
    ['Prefix /app', undefined, '/app/x', '?q=1', '/app/x?q=1'],
    ['Prefix /app', undefined, '/app/x', '', '/app/x'],
    ['Prefix /app', '/', '/app/x', '?q', '/x?q'],
    ['Prefix /app', '/', '/app', '', '/'],
    ['Prefix /app', '/', '/app/', '', '/'],
    ['Prefix /app', '/', '/app/a/b/', 'x=1&y=2', '/a/b/?x=1&y=2'],
    ['Prefix /app/', '/', '/app/x', '', '/x'],
    ['Prefix /app', '/new', '/app/x', '', '/new/x'],
    ['Prefix /app', '/new/', '/app/x', '', '/new/x'],
    ['Prefix /app', '/new', '/app', '?a', '/new?a'],
    ['Prefix /', '/base', '/x/y', '', '/base/x/y'],
    ['Prefix /', '/base/', '/x', '', '/base/x'],
    ['Prefix /', '/', '/x', '?', '/x'],
    ['Exact /old', '/new', '/old', '?v=2', '/new?v=2'],
    ['ImplementationSpecific /api', '/v2', '/api/users', '', '/v2/users'],
  ];
  it.each(cases)('%s rewrite %s: %s%s', (r, target, path, query, want) => {
    expect(upstreamPath(routeFor([r], target, path), path, query)).toBe(want);
  });

  it('leaves a path the route does not match unchanged', () => {
    const route = routeFor(['Prefix /app'], '/', '/app');
    expect([upstreamPath(route, '/other', '?q'), upstreamPath(route, '/appx', '')]).toEqual(['/other?q', '/appx']);
  });
});

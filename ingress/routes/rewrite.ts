// The path a request is forwarded with: the route's rewrite-target in place of the request's path, as ingress-nginx
// (0.22.0 and later) rewrites. Its template writes `rewrite "(?i)<rule path>" <target> break;` (buildProxyPass), and
// nginx's rewrite replaces the whole URI with the replacement when the expression matches, keeping the arguments.
// Without regex captures (which are refused at compile time) that is every request of the rule: `/app` with target
// `/` sends `/app`, `/app/x` and `/app/x/y` all as `/`. Since 0.22.0, ingress-nginx users who want the rest of the
// path kept write it as a capture (`/app(/|$)(.*)` with `/$2`): an Ingress without one that works there relies on
// the whole path being replaced, and is served the same here.

import type { Route } from './types.ts';

/**
 * The upstream request target for `path` (no query) matched by `route`, with `query` (with or without its leading
 * "?") kept. Without rewrite-target, or with one equal to the rule's path (ingress-nginx writes no rewrite then; a
 * Prefix rule's trailing slash does not count): the path and query unchanged. Otherwise the target and the query.
 * A path the route does not match is returned unchanged.
 */
export function upstreamPath(route: Route, path: string, query: string): string {
  const q = query === '' || query === '?' ? '' : query.startsWith('?') ? query : `?${query}`;
  const target = route.policy.rewriteTarget;
  if (target === undefined || !rewrites(route, target) || !matches(route, path)) return path + q;
  return target + q;
}

/** Whether the route's rewrite-target changes anything: not when it is the rule's own path. */
function rewrites(route: Route, target: string): boolean {
  if (target === route.path) return false;
  // A Prefix rule's path is kept without its trailing slash: `/app/` with target `/app/` is the same path.
  return !(route.pathType === 'Prefix' && target === `${route.path}/`);
}

/** Whether `path` is one the route matches (Exact: the same; Prefix: by path element). */
function matches(route: Route, path: string): boolean {
  if (route.pathType === 'Exact') return path === route.path;
  if (route.path === '/') return true;
  return path.startsWith(route.path) && (path.length === route.path.length || path.charCodeAt(route.path.length) === 0x2f);
}

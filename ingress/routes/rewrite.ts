// The path a request is forwarded with: the route's rewrite-target in place of the matched prefix.

import type { Route } from './types.ts';

/**
 * The upstream request target for `path` (no query) matched by `route`, with `query` (with or without its leading
 * "?") kept. Without rewrite-target: the path and query unchanged. With one, the part of the path the rule matched
 * is replaced by the target: route `/app` with target `/` turns `/app/x` into `/x`; an Exact route's whole path
 * becomes the target. A path the route does not match is returned unchanged.
 */
export function upstreamPath(route: Route, path: string, query: string): string {
  const q = query === '' || query === '?' ? '' : query.startsWith('?') ? query : `?${query}`;
  const target = route.policy.rewriteTarget;
  if (target === undefined) return path + q;
  let rest: string;
  if (route.pathType === 'Exact') {
    if (path !== route.path) return path + q;
    rest = '';
  } else if (route.path === '/') {
    // `/` matches every path, and all of it is past the prefix.
    rest = path;
  } else {
    if (!path.startsWith(route.path) || (path.length > route.path.length && path.charCodeAt(route.path.length) !== 0x2f)) return path + q;
    rest = path.slice(route.path.length);
  }
  if (rest === '') return target + q;
  // Join without doubling the slash between the target and the rest: `/` + `/x` is `/x`, `/new` + `/x` is `/new/x`.
  return (target.endsWith('/') ? target + rest.slice(1) : target + rest) + q;
}

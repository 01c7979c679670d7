// The path a request is forwarded with. ingress-nginx (0.22.0 and later) rewrites with `rewrite "(?i)<rule path>"
// <target> break;` (buildProxyPass): nginx replaces the whole URI with the target, its `$1`..`$9` filled in from the
// path's capture groups (a group the path does not have is empty), and keeps the arguments. A target without
// groups sends every request of the rule as the target: `/app` with `/` sends `/app`, `/app/x` and `/app/x/y` all
// as `/`; users who want the rest kept capture it (`/app(/|$)(.*)` with `/$2`). Only the rules of an Ingress with
// use-regex or a changing rewrite-target rewrite (they carry Route.regex, with the rewrite of each rule: none where
// the target is the rule's own path); nginx rewrites $uri, the decoded path, so the groups are taken from it and
// escaped again, as nginx's proxy escapes a rewritten URI.
import { rewritePath } from './pattern.ts';
import type { Route } from './types.ts';

/**
 * The upstream request target for `path` (as the pipeline forwards it: normalised, escapes of reserved characters
 * kept; no query) matched by `route`, with `query` (with or without its leading "?") kept. Without a rewrite: the
 * path and query unchanged. A path the route does not match is returned unchanged.
 */
export function upstreamPath(route: Route, path: string, query: string): string {
  const q = query === '' || query === '?' ? '' : query.startsWith('?') ? query : `?${query}`;
  const regex = route.regex;
  const rewrite = regex?.rewrite;
  if (regex === undefined || rewrite === undefined) return path + q;
  return (rewritePath(regex, rewrite, uriOf(path)) ?? path) + q;
}

const escape = /%([0-9A-Fa-f]{2})/g;

/**
 * The request path as nginx's $uri: every escape decoded, one character per byte (Node reads a request target as
 * latin1, so raw bytes are already one character each), `\` read as `/` and segments resolved again, as
 * server/request.ts reads the path routes match on (there decoded further as UTF-8).
 */
function uriOf(path: string): string {
  if (!path.includes('%')) return path;
  return resolveSegments(path.replace(escape, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replaceAll('\\', '/'));
}

/** Merges repeated slashes and resolves `.` and `..` segments (never above the root); keeps a trailing slash. */
export function resolveSegments(path: string): string {
  return resolve(path, false)!;
}

/**
 * As resolveSegments, but undefined for a path whose `..` segments climb above the root (`/../x`, `/a/../../x`),
 * which nginx refuses with 400 (ngx_http_parse_complex_uri) rather than stopping at the root.
 */
export function resolveWithinRoot(path: string): string | undefined {
  return resolve(path, true);
}

function resolve(path: string, strict: boolean): string | undefined {
  const out: string[] = [];
  const parts = path.split('/');
  let trailing = false;
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i]!;
    const last = i === parts.length - 1;
    if (seg === '' || seg === '.') trailing = last;
    else if (seg === '..') {
      if (out.pop() === undefined && strict) return undefined;
      trailing = last;
    } else {
      out.push(seg);
      trailing = false;
    }
  }
  return out.length === 0 ? '/' : `/${out.join('/')}${trailing ? '/' : ''}`;
}

// upstream-hash-by: the nginx expression ingress-nginx hashes requests by ($request_uri, $remote_addr, $http_x_user,
// $cookie_session, $arg_id, $host$request_uri, ${request_uri}-v2), read into parts once and filled in per request as
// data. Nothing is evaluated: a part is literal text, a fact of the request, or a named header, cookie or argument.
import { readCookie } from '../upstream/affinity.ts';
import { invalid, type Annotation } from './annotations.ts';
import type { HashKeyPart, HashVariable } from './types.ts';
import { variableTokens } from './variables.ts';

// Every HashVariable, so that the compiler checks this list against the type.
const facts: Readonly<Record<HashVariable, true>> = {
  remote_addr: true, binary_remote_addr: true, host: true, http_host: true, server_name: true, scheme: true,
  request_uri: true, uri: true, args: true, query_string: true, is_args: true, request_method: true,
};
const isFact = (name: string): name is HashVariable => Object.hasOwn(facts, name);

/** The variables an upstream-hash-by key may use, as written in nginx, for problem sentences. */
export const hashVariables: readonly string[] = [...Object.keys(facts).map((n) => `$${n}`), '$http_NAME', '$cookie_NAME', '$arg_NAME'];

const visibleAscii = /^[\x21-\x7e]+$/;
const usage = `allowed is an nginx expression of ${hashVariables.join(', ')} and text, such as $request_uri or $host$request_uri`;

/**
 * Reads upstream-hash-by into parts; throws AnnotationError for a value that is not visible ASCII, a `$` that starts
 * no variable, a variable netplane does not fill in, or an expression of text alone (every request would go to the
 * same endpoint, surely not what was meant).
 */
export function readHashKey(a: Annotation): HashKeyPart[] {
  if (!visibleAscii.test(a.value)) throw invalid(a, usage);
  const parts: HashKeyPart[] = [];
  for (const t of variableTokens(a.value)) {
    if (typeof t === 'string') {
      const last = parts.length - 1;
      if (typeof parts[last] === 'string') parts[last] += t;
      else parts.push(t);
      continue;
    }
    parts.push(hashPart(a, t.name));
  }
  if (parts.every((p) => typeof p === 'string')) throw invalid(a, `it uses no variable, so every request would go to the same endpoint; ${usage}`);
  return parts;
}

function hashPart(a: Annotation, name: string): HashKeyPart {
  if (name === '') throw invalid(a, `a "$" must start a variable; ${usage}`);
  if (isFact(name)) return { variable: name };
  // nginx's prefixed variables: the rest of the name is the header (its "_" standing for "-"), cookie or argument.
  const prefixed = /^(http|cookie|arg)_(\w+)$/.exec(name);
  if (prefixed?.[1] === 'http') return { header: prefixed[2]!.toLowerCase().replaceAll('_', '-') };
  if (prefixed?.[1] === 'cookie') return { cookie: prefixed[2]! };
  if (prefixed?.[1] === 'arg') return { arg: prefixed[2]! };
  throw invalid(a, `$${name} is not a variable netplane hashes by; ${usage}`);
}

/** What a hash key reads of a request. */
export interface HashFacts {
  /** The client's address (a trusted proxy's X-Forwarded-For counts), as nginx's $remote_addr with real_ip. */
  clientIP: string;
  /** The request's host, lower case, without port. */
  host: string;
  /** The Host header as received. */
  hostHeader: string;
  /** The matched rule's host ('' for a rule without host). */
  routeHost: string;
  /** The scheme of the connection. */
  proto: 'http' | 'https';
  method: string;
  /** The path as it goes upstream, and the query with its leading `?` or ''. */
  path: string;
  query: string;
  /** Request headers, lower-case names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The key of one request: `parts` filled in; a header, cookie or argument the request lacks is empty, as in nginx. */
export function hashKeyOf(parts: readonly HashKeyPart[], f: HashFacts): string {
  let key = '';
  for (const p of parts) {
    if (typeof p === 'string') key += p;
    else if ('variable' in p) key += factOf(p.variable, f);
    else if ('header' in p) {
      const v = f.headers[p.header];
      key += v === undefined ? '' : typeof v === 'string' ? v : v.join(', ');
    } else if ('cookie' in p) key += readCookie(f.headers.cookie, p.cookie, true) ?? '';
    else key += argOf(f.query, p.arg);
  }
  return key;
}

function factOf(name: HashVariable, f: HashFacts): string {
  switch (name) {
    case 'remote_addr':
    case 'binary_remote_addr':
      // The address's text stands for its bytes: the same client gives the same key either way.
      return f.clientIP;
    case 'host':
      return f.host;
    case 'http_host':
      return f.hostHeader;
    case 'server_name':
      return f.routeHost;
    case 'scheme':
      return f.proto;
    case 'request_uri':
      return `${f.path}${f.query}`;
    case 'uri':
      return f.path;
    case 'args':
    case 'query_string':
      return f.query.slice(1);
    case 'is_args':
      return f.query === '' ? '' : '?';
    case 'request_method':
      return f.method;
  }
}

/** The raw value of the first query argument `name=` (name compared ignoring case, as nginx's $arg_NAME), or ''. */
function argOf(query: string, name: string): string {
  const lower = name.toLowerCase();
  for (const pair of query.slice(1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq === name.length && pair.slice(0, eq).toLowerCase() === lower) return pair.slice(eq + 1);
  }
  return '';
}

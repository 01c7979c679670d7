// nginx variables in the URLs of auth-url, auth-signin, permanent-redirect and temporal-redirect, as ingress-nginx
// users write them (`https://$host/oauth2/auth`, `https://$host/oauth2/start?rd=$escaped_request_uri`,
// `https://new.example.com$request_uri`). A small fixed set is filled in at request time, as data: no expression,
// no other variable, no template language. What a client sends can never move the URL to another host: the host is
// the matched route's (the request's only under a wildcard rule, or for a redirect back to the client itself), and
// the request's path and query may stand only after the URL's authority.
import { invalid, type Annotation } from './annotations.ts';
import { dnsName } from './names.ts';

/**
 * Who follows the URL: the gateway itself (auth-url, a subrequest that decides on access), or the client (a redirect
 * or sign-in Location). A fetched URL takes no raw path or query of the request, only $escaped_request_uri, and its
 * host comes from the route's rule, never from a rule without host.
 */
export type UrlUse = 'fetched' | 'client';

type Kind = 'scheme' | 'host' | 'hostPort' | 'uri' | 'query' | 'escaped';

// ingress-nginx sets $pass_access_scheme (the trusted X-Forwarded-Proto, else $scheme), $best_http_host and
// $escaped_request_uri itself; the others are nginx's own.
const kinds: Readonly<Record<string, Kind>> = {
  scheme: 'scheme',
  pass_access_scheme: 'scheme',
  host: 'host',
  server_name: 'host',
  http_host: 'hostPort',
  best_http_host: 'hostPort',
  request_uri: 'uri',
  uri: 'uri',
  args: 'query',
  query_string: 'query',
  is_args: 'query',
  escaped_request_uri: 'escaped',
};

/** The variables netplane fills in, as written in nginx. */
export const urlVariables: readonly string[] = Object.keys(kinds).map((n) => `$${n}`);

// `$name` (nginx reads a name greedily) or `${name}`.
const variable = /\$(?:\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]*))/g;
const visibleAscii = /^[\x21-\x7e]+$/;
const literalHost = /^[A-Za-z0-9.\-:[\]]*$/;

/** Example values for checking a template's shape once all variables are filled in. */
const probe: Readonly<Record<Kind, string>> = { scheme: 'https', host: 'h.example', hostPort: 'h.example:8443', uri: '/p?q', query: 'q=1', escaped: '%2Fp' };

/** What a request contributes to a URL: the pipeline's parsed host, the route it matched, its path and query. */
export interface UrlFacts {
  /** The scheme the client used (a trusted proxy's X-Forwarded-Proto counts). */
  proto: 'http' | 'https';
  /** The request's host, lower case, without port, host characters only (the pipeline's parsed one). */
  host: string;
  /** The Host header as received, for its port; absent or '' when unknown. */
  hostHeader?: string;
  /** The matched route: its host is used when it names one. */
  route?: { host: string } | undefined;
  /** The path as it goes upstream. */
  path: string;
  /** The query with its leading `?`, or ''. */
  query: string;
}

/**
 * Reads an absolute http(s) URL that may use the variables of `urlVariables` (see UrlUse for which, and where);
 * throws AnnotationError naming an unknown variable, a variable out of place, or a URL that is not http(s). A URL
 * without variables comes back in its encoded form when it holds non-ASCII text.
 */
export function readUrlTemplate(a: Annotation, use: UrlUse): string {
  if (!a.value.includes('$')) return plainUrl(a);
  const allowed = use === 'fetched' ? fetchedVariables : urlVariables;
  const usage = `allowed is an absolute http or https URL, which may use ${allowed.join(', ')}`;
  if (!visibleAscii.test(a.value)) throw invalid(a, `a URL with nginx variables must be visible ASCII (percent-encode the rest); ${usage}`);
  const tokens = tokenize(a.value);
  for (const t of tokens) {
    if (typeof t === 'string') continue;
    if (t.kind === undefined) {
      throw invalid(a, t.name === '' ? `a "$" must start a variable; ${usage}` : `$${t.name} is not a variable netplane fills in; ${usage}`);
    }
    if (use === 'fetched' && (t.kind === 'uri' || t.kind === 'query')) {
      throw invalid(a, `$${t.name} would let a client choose the path or query the auth service is asked on, so the auth URL may use only $escaped_request_uri of the request; ${usage}`);
    }
  }
  checkAuthority(a, tokens, usage);
  let sample = '';
  for (const t of tokens) sample += typeof t === 'string' ? t : probe[t.kind!];
  const url = URL.parse(sample);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') throw invalid(a, usage);
  return a.value;
}

const fetchedVariables = urlVariables.filter((v) => kinds[v.slice(1)] !== 'uri' && kinds[v.slice(1)] !== 'query');

/**
 * The URL for one request: `template` with its variables filled in. Undefined when it needs a host and none can be
 * trusted: a fetched URL under a rule without host, or under a wildcard rule with a host that is no DNS name.
 */
export function expandUrl(template: string, f: UrlFacts, use: UrlUse): string | undefined {
  if (!template.includes('$')) return template;
  let missing = false;
  const url = template.replace(variable, (whole, braced: string | undefined, bare: string | undefined) => {
    const value = valueOf(braced ?? bare ?? '', f, use);
    if (value === undefined) missing = true;
    // Unknown names never get here (readUrlTemplate refused them); kept as written if one does.
    return value ?? whole;
  });
  return missing ? undefined : url;
}

/**
 * auth-signin's Location for one request: the template filled in for the client and, as ingress-nginx does, `rd=`
 * (where to come back: scheme, host and port, escaped URI) added when the URL has none.
 */
export function signinUrl(template: string, f: UrlFacts, param = 'rd'): string {
  const url = expandUrl(template, f, 'client') ?? template;
  const query = url.indexOf('?') === -1 ? '' : url.slice(url.indexOf('?') + 1);
  if (query.split('&').some((kv) => kv.startsWith(`${param}=`))) return url;
  const back = `${f.proto}://${valueOf('http_host', f, 'client')}${encodeLoose(`${f.path}${f.query}`)}`;
  return `${url}${url.includes('?') ? '&' : '?'}${param}=${escapeUri(back)}`;
}

/** The Location of permanent-redirect / temporal-redirect for one request. */
export function redirectUrl(template: string, f: UrlFacts): string {
  return expandUrl(template, f, 'client') ?? template;
}

/**
 * The Location of a from-to-www-redirect: `host` (a name from the Ingress, never the client's) with the request's
 * scheme, the Host header's port, and its path and query as they are.
 */
export function hostRedirectUrl(host: string, f: UrlFacts): string {
  const port = /:(\d{1,5})$/.exec(f.hostHeader ?? '')?.[1];
  return `${f.proto}://${host}${port === undefined ? '' : `:${port}`}${encodeLoose(`${f.path}${f.query}`)}`;
}

/** The host a URL may name for this request (see expandUrl); for the client, the request's own as a last resort. */
export function trustedHost(f: UrlFacts, use: UrlUse): string | undefined {
  const rule = f.route?.host;
  if (rule !== undefined && rule !== '' && !rule.startsWith('*.')) return rule;
  // Under a wildcard the request's host matched it, so it is one label under the rule's domain.
  if (rule !== undefined && rule.startsWith('*.') && f.host.endsWith(rule.slice(1)) && dnsName.test(f.host)) return f.host;
  // A redirect goes back to the client that named the host; a subrequest would go wherever a client pointed it.
  return use === 'client' ? f.host : undefined;
}

/**
 * `text` escaped as nginx's set_escape_uri does for $escaped_request_uri: every byte but letters, digits and `-._~`.
 * The request's path and query are bytes as Node read them (one character per byte), so a UTF-8 path comes out as
 * its own bytes escaped, not encoded twice.
 */
export function escapeUri(text: string): string {
  let out = '';
  for (const b of bytesOf(text)) out += unreserved(b) ? String.fromCharCode(b) : hex(b);
  return out;
}

const unreserved = (b: number): boolean => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
const hex = (b: number): string => `%${b.toString(16).toUpperCase().padStart(2, '0')}`;

/** The bytes of request text: one per character as Node reads a request line; UTF-8 if a character is beyond a byte. */
function bytesOf(text: string): Buffer {
  return Buffer.from(text, /[^\x00-\xff]/.test(text) ? 'utf8' : 'latin1');
}

type Token = string | { name: string; kind: Kind | undefined };

/**
 * `template` as literal text and nginx variables: `$name` (the name read greedily, as nginx reads it) or `${name}`.
 * A `$` that starts no name (`$`, `${`, `$-`) gives a variable named ''.
 */
export function variableTokens(template: string): (string | { name: string })[] {
  const out: (string | { name: string })[] = [];
  let at = 0;
  for (const m of template.matchAll(variable)) {
    if (m.index > at) out.push(template.slice(at, m.index));
    out.push({ name: m[1] ?? m[2] ?? '' });
    at = m.index + m[0].length;
  }
  if (at < template.length) out.push(template.slice(at));
  return out;
}

function tokenize(template: string): Token[] {
  return variableTokens(template).map((t) => (typeof t === 'string' ? t : { name: t.name, kind: kinds[t.name] }));
}

/**
 * The scheme and authority must be the template's own or the host variables': a scheme variable may stand only before
 * `://`, the authority holds host characters and host variables and is not empty, and it ends at a literal `/`, `?`
 * or `#`, or at $request_uri / $uri (which start with `/`), before any other variable of the request.
 */
function checkAuthority(a: Annotation, tokens: readonly Token[], usage: string): void {
  let scheme = '';
  let rest: Token[] | undefined;
  for (let i = 0; i < tokens.length && rest === undefined; i++) {
    const t = tokens[i]!;
    if (typeof t !== 'string') {
      if (t.kind !== 'scheme') throw invalid(a, `$${t.name} cannot stand in the scheme; ${usage}`);
      scheme += 'https';
      continue;
    }
    const sep = t.indexOf('://');
    if (sep < 0) scheme += t;
    else {
      scheme += t.slice(0, sep);
      rest = [t.slice(sep + 3), ...tokens.slice(i + 1)];
    }
  }
  if (rest === undefined || (scheme !== 'http' && scheme !== 'https')) throw invalid(a, usage);
  let authority = 0;
  for (const t of rest) {
    if (typeof t === 'string') {
      const end = t.search(/[/?#]/);
      const part = end < 0 ? t : t.slice(0, end);
      if (!literalHost.test(part)) throw invalid(a, usage);
      authority += part.length;
      if (end >= 0) break;
      continue;
    }
    if (t.kind === 'host' || t.kind === 'hostPort') {
      authority++;
      continue;
    }
    if (t.kind === 'uri' && authority > 0) break;
    throw invalid(a, `$${t.name} cannot stand in the URL's host, where a client would choose where it leads; ${usage}`);
  }
  if (authority === 0) throw invalid(a, usage);
}

function valueOf(name: string, f: UrlFacts, use: UrlUse): string | undefined {
  switch (kinds[name]) {
    case 'scheme':
      return f.proto;
    case 'host':
      return trustedHost(f, use);
    case 'hostPort': {
      const host = trustedHost(f, use);
      // The client's port only on its own way back: a subrequest to a port a client named could reach another service.
      const port = use === 'client' ? /:(\d{1,5})$/.exec(f.hostHeader ?? '')?.[1] : undefined;
      return host === undefined || port === undefined ? host : `${host}:${port}`;
    }
    case 'uri':
      return encodeLoose(name === 'uri' ? f.path : `${f.path}${f.query}`);
    case 'query':
      if (name === 'is_args') return f.query === '' ? '' : '?';
      return encodeLoose(f.query.slice(1));
    case 'escaped':
      return escapeUri(`${f.path}${f.query}`);
    default:
      return undefined;
  }
}

/** `text` with the bytes a Location must not carry raw (spaces, controls, non-ASCII) percent-encoded. */
function encodeLoose(text: string): string {
  if (/^[\x21-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const b of bytesOf(text)) out += b > 0x20 && b < 0x7f ? String.fromCharCode(b) : hex(b);
  return out;
}

/** A URL without variables: absolute http(s); non-ASCII text comes back encoded. Throws InvalidAnnotation. */
export function plainUrl(a: Annotation): string {
  const url = URL.parse(a.value);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw invalid(a, 'allowed is an absolute http or https URL');
  // Sent as a header value (Location) or fetched: a non-ASCII host or path is written in its encoded form.
  return visibleAscii.test(a.value) ? a.value : url.href;
}

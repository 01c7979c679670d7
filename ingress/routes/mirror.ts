// ingress-nginx's mirror-target, mirror-host and mirror-request-body, read as data. ingress-nginx renders them into
// an internal location (`location = /_mirror-<uid> { internal; proxy_set_header Host <host>; proxy_pass <target>; }`)
// that the Ingress's locations copy each request to with nginx's mirror module; its answer is ignored. netplane reads
// the target as a fixed origin (`scheme://host:port`, never from a variable, so no client can point the copy
// elsewhere) and a path of literal text and the few variables that mean something there, filled in per request.
import { invalid, type Annotation, type AnnotationReader } from './annotations.ts';
import { variableTokens } from './variables.ts';

/** A variable of a mirror target's path: what the client asked for, as nginx fills it in for the mirror subrequest. */
export type MirrorVariable = 'request_uri' | 'args' | 'is_args';

/** Where and how requests of an Ingress are copied (ingress-nginx mirror-target, mirror-host, mirror-request-body). */
export interface MirrorPolicy {
  /** `http://host[:port]` or `https://host[:port]`: the target's scheme and authority, as written (lower-case scheme). */
  origin: string;
  /** The target's path and query: literal text and variables, filled in per request by mirrorPath. */
  path: readonly (string | { variable: MirrorVariable })[];
  /** A target without variables: the client's query is appended to its path, as nginx's proxy_pass with a URI does. */
  appendQuery: boolean;
  /** The Host header of the copy: mirror-host, else the target's host without port (ingress-nginx's url.Hostname()). */
  host: string;
  /** mirror-request-body (default on): the copy carries the client's body; off: no body, no Content-Length. */
  body: boolean;
}

const names: Readonly<Record<string, MirrorVariable>> = { request_uri: 'request_uri', args: 'args', query_string: 'args', is_args: 'is_args' };
const allowed = 'allowed is an absolute http or https URL with a path, such as https://mirror.example.com$request_uri; its path and query may use $request_uri, $args, $query_string and $is_args';
const visibleAscii = /^[\x21-\x7e]+$/;
// The scheme and the authority: host characters only (no userinfo, no variable), up to the path, query or a variable.
const head = /^(https?):\/\/([A-Za-z0-9.\-:[\]]+)(.*)$/i;
// What a Host header may hold: a host name or address with an optional port, as upstream-vhost takes.
const hostValue = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The mirror of an Ingress, or undefined without mirror-target. mirror-host and mirror-request-body are checked also
 * without it (they then change nothing, as in ingress-nginx). Throws AnnotationError for a target that is not an
 * http(s) URL with a path, that uses another variable, or a variable before its path; for a bad host or on/off value.
 */
export function readMirror(a: AnnotationReader): MirrorPolicy | undefined {
  const body = (a.oneOf('mirror-request-body', ['on', 'off'] as const) ?? 'on') === 'on';
  const host = a.get('mirror-host');
  if (host !== undefined && !hostValue.test(host.value)) throw invalid(host, 'allowed is a host name or address with an optional port, such as mirror.example.com or mirror.example.com:8443');
  const target = a.get('mirror-target');
  // An empty value asks for nothing, as ingress-nginx reads it.
  if (target === undefined || target.value === '') return undefined;
  const { hostname, ...parsed } = parseTarget(target);
  return { ...parsed, host: host?.value ?? hostname, body };
}

/** The origin, path and default Host of a mirror-target value; throws AnnotationError (see readMirror). */
export function parseTarget(a: Annotation): Omit<MirrorPolicy, 'host' | 'body'> & { hostname: string } {
  if (!visibleAscii.test(a.value)) throw invalid(a, `a mirror target must be visible ASCII (percent-encode the rest); ${allowed}`);
  const m = head.exec(a.value);
  const url = m === null ? null : URL.parse(`${m[1]}://${m[2]}/`);
  if (m === null || url === null || url.hostname === '') {
    if (/^https?:\/\/\$/i.test(a.value)) throw invalid(a, `the target's host must be written out: a variable there would let a client choose where the copy goes; ${allowed}`);
    throw invalid(a, allowed);
  }
  const rest = m[3]!;
  const origin = `${m[1]!.toLowerCase()}://${m[2]}`;
  if (rest.includes('#')) throw invalid(a, `a fragment is never sent; ${allowed}`);
  const path: (string | { variable: MirrorVariable })[] = [];
  for (const t of variableTokens(rest)) {
    if (typeof t === 'string') {
      path.push(t);
      continue;
    }
    path.push({ variable: variableOf(a, t.name) });
  }
  const first = path[0];
  if (first === undefined) {
    throw invalid(a, `without a path ingress-nginx sends the mirror its internal location (/_mirror-<uid>) instead of the client's path; write $request_uri after the host for the client's path and query, or a path; ${allowed}`);
  }
  if (typeof first !== 'string' ? first.variable !== 'request_uri' : !first.startsWith('/') && !first.startsWith('?')) {
    throw invalid(a, `the target's host must end with its port, "/", "?" or $request_uri; ${allowed}`);
  }
  const literal = path.length === 1 && typeof first === 'string';
  if (literal && first.includes('?')) {
    throw invalid(a, `a target without variables may not hold a query: nginx appends the client's query to it after a second "?"; write the query with $args or $is_args$args; ${allowed}`);
  }
  return { origin, path, appendQuery: literal, hostname: url.hostname };
}

function variableOf(a: Annotation, name: string): MirrorVariable {
  const known = names[name];
  if (known !== undefined) return known;
  if (name === '') throw invalid(a, `a "$" must start a variable; ${allowed}`);
  if (name === 'uri') throw invalid(a, `$uri in ingress-nginx's mirror location is that location's own path (/_mirror-<uid>), not the client's; use $request_uri; ${allowed}`);
  throw invalid(a, `$${name} is not a variable netplane fills in in a mirror target; ${allowed}`);
}

/**
 * The path and query a request is copied to: the target's path with its variables filled in from the request's path
 * (as it was asked for, before any rewrite-target) and query ('' or with its leading "?"); bytes a request line may
 * not carry raw are percent-encoded. A path that starts with its query gets "/" in front, as nginx sends it.
 */
export function mirrorPath(m: MirrorPolicy, path: string, query: string): string {
  const args = query.length > 1 ? query.slice(1) : '';
  let out = '';
  for (const part of m.path) {
    if (typeof part === 'string') out += part;
    else if (part.variable === 'request_uri') out += encodeLoose(args === '' ? path : `${path}?${args}`);
    else if (part.variable === 'args') out += encodeLoose(args);
    else out += args === '' ? '' : '?';
  }
  if (m.appendQuery && args !== '') out += `?${encodeLoose(args)}`;
  return out.startsWith('?') ? `/${out}` : out;
}

/** `text` with the bytes a request line must not carry raw (spaces, controls, non-ASCII) percent-encoded. */
function encodeLoose(text: string): string {
  if (/^[\x21-\x7e]*$/.test(text)) return text;
  // Node reads a request target one character per byte; beyond a byte, the text is read as UTF-8.
  const bytes = Buffer.from(text, /[^\x00-\xff]/.test(text) ? 'utf8' : 'latin1');
  let out = '';
  for (const b of bytes) out += b > 0x20 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

// Pure pieces of reading a request: the host it names, the path routes match on, the X-Forwarded-* headers sent
// upstream, and the version of a request the HTTP parser refused.
import { randomFillSync } from 'node:crypto';
import { resolveSegments, resolveWithinRoot } from '../routes/rewrite.ts';

/**
 * The host a request names, lower-case, without port or trailing dot; IPv6 literals keep their brackets.
 * Undefined when the header is missing or not a plausible host (the pipeline answers 400).
 */
export function requestHost(header: string | undefined): string | undefined {
  if (!header) return undefined;
  let h = header;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    h = h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.length === 0 || h.length > 255 || !hostChars.test(h)) return undefined;
  if (h.charCodeAt(h.length - 1) === 46 /* . */) h = h.slice(0, -1);
  return h.toLowerCase();
}

const hostChars = /^[A-Za-z0-9.\-_[\]:]+$/;

/** A request target split into the path routes match on and the query, or undefined for a target that is not a path. */
export interface RequestPath {
  /**
   * The path as it goes upstream, normalised the way nginx reads it before matching a location: unreserved
   * characters percent-decoded (`%61` is `a`, `%2e` is `.`), `\\` read as `/`, repeated slashes merged, dot segments
   * resolved. Other escapes stay as sent (`%2F` reaches the backend as `%2F`, as in ingress-nginx).
   */
  path: string;
  /**
   * The path routes, limits and auth match on: `path` with every escape decoded and normalised again, so that
   * `/admin%2Fusers` and `/%61dmin/users` are the `/admin` route's, whatever the backend makes of them.
   */
  matchPath: string;
  /** The query with its leading `?`, or ''. */
  query: string;
}

/**
 * Splits a request target and normalises its path (see RequestPath). Undefined, as nginx answers 400, for a target
 * that is not a path, a `%` not followed by two hex digits, `..` segments that climb above the root, or an escape
 * that decodes to a control character (`%00`, `%0A`: nginx refuses only `%00`; a backend could read a line end).
 */
export function requestPath(target: string | undefined): RequestPath | undefined {
  if (!target || target.charCodeAt(0) !== 47 /* / */) return undefined;
  const q = target.indexOf('?');
  let path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  // Only a path that might hold a dot segment, an escape, a backslash or an empty segment pays for normalising.
  if (!path.includes('/.') && !path.includes('%') && !path.includes('\\') && !path.includes('//')) return { path, matchPath: path, query };
  // nginx answers 400 for a `%` not followed by two hex digits in the path (the query is not decoded), and for
  // `..` segments that climb above the root once every escape is decoded (`/../x`, `/%2e%2e/x`, `/%2F..`).
  if (badEscape.test(path)) return undefined;
  const partial = path.replace(escape, decodeUnreserved).replaceAll('\\', '/');
  if (!partial.includes('%')) {
    const resolved = resolveWithinRoot(partial);
    return resolved === undefined ? undefined : { path: resolved, matchPath: resolved, query };
  }
  if (resolveWithinRoot(partial.replace(escape, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replaceAll('\\', '/')) === undefined) return undefined;
  path = resolveSegments(partial);
  // Escapes are bytes (Node reads the target as latin1); the bytes are read as UTF-8, as routes are written.
  const decoded = Buffer.from(path.replace(escape, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  if (controls.test(decoded)) return undefined;
  return { path, matchPath: resolveSegments(decoded.replaceAll('\\', '/')), query };
}

const escape = /%([0-9A-Fa-f]{2})/g;
const badEscape = /%(?![0-9A-Fa-f]{2})/;
const controls = /[\u0000-\u001f\u007f]/;

/** A `%XX` escape: the character itself when it is unreserved (RFC 3986 2.3), else the escape in upper case. */
function decodeUnreserved(_: string, hex: string): string {
  const c = parseInt(hex, 16);
  const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
  return unreserved ? String.fromCharCode(c) : `%${hex.toUpperCase()}`;
}

/**
 * An absolute-form request target (`http://host:port/path?q`, as sent to proxies): its authority and its
 * origin-form target. Undefined for anything else (`*`, an authority alone, another scheme, userinfo).
 */
export function absoluteTarget(url: string): { host: string; target: string } | undefined {
  const m = /^https?:\/\/([^/?#@]+)(.*)$/i.exec(url);
  if (!m) return undefined;
  const rest = m[2]!;
  if (rest.includes('#')) return undefined;
  return { host: m[1]!, target: rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest };
}

/** What the forwarded headers are made from. */
export interface ForwardedFacts {
  clientIP: string;
  /** The socket's peer address. */
  peer: string;
  /** The peer is a trusted proxy: its X-Forwarded-* headers are believed, and its X-Forwarded-For extended. */
  trustedPeer: boolean;
  incomingFor: string | string[] | undefined;
  incomingRequestId: string | string[] | undefined;
  /** The client's X-Forwarded-Proto, -Host and -Port (used only from a trusted peer). */
  incomingProto?: string | string[] | undefined;
  incomingHost?: string | string[] | undefined;
  incomingPort?: string | string[] | undefined;
  proto: 'http' | 'https';
  /** The Host header as received. */
  host: string;
  port: number;
  /** The request target as received (origin form: path and query), nginx's $request_uri. */
  requestUri: string;
}

/**
 * The X-Forwarded-* headers, X-Real-IP and X-Request-Id for the upstream request. From an untrusted peer they are
 * made afresh (X-Forwarded-For replaced, not extended), so a client cannot forge where it came from or how; from a
 * trusted proxy (a load balancer in front) its X-Forwarded-For is extended with the proxy's own address, and its
 * X-Forwarded-Proto, -Host and -Port are kept when well-formed, as ingress-nginx does with use-forwarded-headers.
 * As ingress-nginx's proxy_set_header lines: X-Scheme and X-Forwarded-Scheme are the scheme sent as X-Forwarded-Proto
 * ($pass_access_scheme), X-Original-URI the target as received ($request_uri), and X-Original-Forwarded-For the
 * client's own X-Forwarded-For ($http_x_forwarded_for) — none when it sent none (an empty list: the client's header
 * of that name is dropped, not passed on). The client's headers of these names never reach the upstream.
 */
export function forwardedHeaders(f: ForwardedFacts): Record<string, string | string[]> & { 'x-request-id': string } {
  const incoming = Array.isArray(f.incomingFor) ? f.incomingFor.join(', ') : f.incomingFor;
  const trustedHost = f.trustedPeer ? single(f.incomingHost) : undefined;
  const trustedPort = f.trustedPeer ? single(f.incomingPort) : undefined;
  const scheme = forwardedProto(f) ?? f.proto;
  return {
    'x-forwarded-for': f.trustedPeer && incoming ? `${incoming}, ${f.peer}` : f.clientIP,
    'x-forwarded-proto': scheme,
    'x-forwarded-host': trustedHost !== undefined && requestHost(trustedHost) !== undefined ? trustedHost : f.host,
    'x-forwarded-port': trustedPort !== undefined && /^[0-9]{1,5}$/.test(trustedPort) && Number(trustedPort) <= 65535 ? trustedPort : String(f.port),
    'x-forwarded-scheme': scheme,
    'x-scheme': scheme,
    'x-original-uri': f.requestUri,
    'x-original-forwarded-for': incoming ? incoming : [],
    'x-real-ip': f.clientIP,
    'x-request-id': requestId(f.incomingRequestId),
  };
}

/** The scheme a trusted proxy says the client used (X-Forwarded-Proto `http` or `https`); else undefined. */
export function forwardedProto(f: Pick<ForwardedFacts, 'trustedPeer' | 'incomingProto'>): 'http' | 'https' | undefined {
  if (!f.trustedPeer) return undefined;
  const v = single(f.incomingProto)?.trim().toLowerCase();
  return v === 'https' || v === 'http' ? v : undefined;
}

const single = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

const requestIdShape = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request's id: the client's X-Request-Id when it is a plain token, else a new one as ingress-nginx makes its
 * $req_id (nginx's $request_id): 16 random bytes as 32 lower-case hex characters.
 */
export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && requestIdShape.test(incoming) ? incoming : newRequestId();
}

// Random bytes for 256 ids drawn at a time, as crypto.randomUUID caches its own: an id costs no more than a UUID did.
const idBytes = 16;
const idPool = Buffer.allocUnsafeSlow(idBytes * 256);
let idAt = idPool.length;

function newRequestId(): string {
  if (idAt === idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  const id = idPool.toString('hex', idAt, idAt + idBytes);
  idAt += idBytes;
  return id;
}

/**
 * The HTTP version (`1.0`, `1.1`) of the request a parse error stopped in, read off the bytes node:http hands its
 * clientError listener: `packet` (the error's rawPacket, the chunk being parsed) up to `offset` (its bytesParsed),
 * from the last request line there. Undefined when that line is not in the chunk (a head that came in pieces).
 */
export function failedRequestVersion(packet: Buffer, offset: number): string | undefined {
  const lines = packet.toString('latin1', 0, Math.min(Math.max(offset, 0), packet.length)).split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    // Header lines (`name:`) and folded continuations (leading whitespace) are never the request line. What stands
    // before the method on its line (the end of a body before it) does not matter: the version closes the line.
    if (headerLine.test(line)) continue;
    const m = versionAtEnd.exec(line);
    if (m !== null) return m[1];
  }
  return undefined;
}

const headerLine = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:|[ \t])/;
const versionAtEnd = / HTTP\/(\d\.\d)\r?$/;

// Pure pieces of reading a request: the host it names, the path routes match on, and the X-Forwarded-* headers
// sent upstream.
import { randomUUID } from 'node:crypto';

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
  path: string;
  /** The query with its leading `?`, or ''. */
  query: string;
}

/**
 * Splits a request target. The path is normalised the way a browser would (dot segments resolved, `%2e` included),
 * so `/public/../admin` is matched, limited and authenticated as `/admin`, and that is also what goes upstream.
 */
export function requestPath(target: string | undefined): RequestPath | undefined {
  if (!target || target.charCodeAt(0) !== 47 /* / */) return undefined;
  const q = target.indexOf('?');
  let path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  // Only a path that might hold a dot segment, an encoded character or a backslash pays for the URL parser.
  if (path.includes('/.') || path.includes('%') || path.includes('\\') || path.startsWith('//')) {
    try {
      path = new URL(path.replace(/^\/+/, '/'), 'http://h').pathname;
    } catch {
      return undefined;
    }
  }
  return { path, query };
}

/** What the forwarded headers are made from. */
export interface ForwardedFacts {
  clientIP: string;
  /** The socket's peer is a trusted proxy: an incoming X-Forwarded-For is kept and extended. */
  trustedPeer: boolean;
  incomingFor: string | string[] | undefined;
  incomingRequestId: string | string[] | undefined;
  proto: 'http' | 'https';
  /** The Host header as received. */
  host: string;
  port: number;
}

/**
 * The X-Forwarded-* headers, X-Real-IP and X-Request-Id for the upstream request. An X-Forwarded-For from an
 * untrusted peer is replaced, not extended, so a client cannot forge where it came from.
 */
export function forwardedHeaders(f: ForwardedFacts): Record<string, string> {
  const incoming = Array.isArray(f.incomingFor) ? f.incomingFor.join(', ') : f.incomingFor;
  return {
    'x-forwarded-for': f.trustedPeer && incoming ? `${incoming}, ${f.clientIP}` : f.clientIP,
    'x-forwarded-proto': f.proto,
    'x-forwarded-host': f.host,
    'x-forwarded-port': String(f.port),
    'x-real-ip': f.clientIP,
    'x-request-id': requestId(f.incomingRequestId),
  };
}

const requestIdShape = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: the client's X-Request-Id when it is a plain token, else a new UUID. */
export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && requestIdShape.test(incoming) ? incoming : randomUUID();
}

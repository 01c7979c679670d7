// The head of a request to an HTTP/1.1 upstream, checked and written out: nothing that could split it into two
// requests (a CR, LF or NUL in a value, a space in the path, a name that is not a token) reaches the wire, and the
// body's framing is decided here, never taken from the client (RFC 9112 §6: Content-Length, else chunked).
import { UpstreamError } from '../errors.ts';

/** What the client sends, as forward.ts gives it. */
export interface RequestSpec {
  method: string;
  /** origin-form (`/path?query`), or `*`. */
  path: string;
  /** Flat [name, value, ...]; hop-by-hop headers are already dropped (headers.ts). */
  headers: readonly string[];
  hasBody: boolean;
}

/** The head to write, and how the body is framed: its length, or -1 for chunked, or 0 without body. */
export interface RequestHead {
  text: string;
  contentLength: number;
  chunked: boolean;
}

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, space, tab and obs-text (RFC 9110 §5.5); no other control character.
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
// The request target: no control character, space or DEL; bytes above 0x7f pass as the client sent them.
const target = /^[\x21-\x7e\x80-\xff]+$/;
// Methods whose requests carry `Content-Length: 0` without a body, as undici and curl send them.
const payloadMethods: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);
// Set by the head itself, never copied from the list.
const framing: ReadonlySet<string> = new Set(['transfer-encoding', 'connection', 'keep-alive', 'upgrade']);

function invalid(why: string): UpstreamError {
  return new UpstreamError('INVALID_REQUEST', `the request cannot be sent upstream: ${why}`);
}

/** The request's head for an upstream at `authority` (`ip:port`, used as Host when the list has none), or the reason it cannot be sent. */
export function requestHead(spec: RequestSpec, authority: string): RequestHead | UpstreamError {
  if (!token.test(spec.method)) return invalid(`the method ${JSON.stringify(spec.method)} is not a token`);
  const path = spec.path;
  if (!target.test(path) || (path.charCodeAt(0) !== 47 /* / */ && path !== '*')) return invalid(`the path ${JSON.stringify(path)} is not an origin-form target`);
  let text = `${spec.method} ${path} HTTP/1.1\r\n`;
  let host = false;
  let length: string | undefined;
  const list = spec.headers;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    if (!token.test(name)) return invalid(`the header name ${JSON.stringify(name)} is not a token`);
    if (!fieldValue.test(value)) return invalid(`the value of ${name} holds a control character`);
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== value)) return invalid(`Content-Length ${JSON.stringify(value)}`);
      if (length !== undefined) continue;
      length = value;
    } else if (lower === 'host') {
      if (host) continue;
      host = true;
    } else if (lower === 'expect') {
      return invalid('Expect is not sent upstream');
    } else if (framing.has(lower)) {
      continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  if (!host) text += `host: ${authority}\r\n`;
  // HTTP/1.1's default, said out loud as undici says it (an HTTP/1.0-minded upstream then keeps the connection too).
  text += 'connection: keep-alive\r\n';
  let contentLength = length === undefined ? 0 : Number(length);
  let chunked = false;
  if (!spec.hasBody) {
    if (contentLength > 0) return invalid(`Content-Length ${contentLength} without a body`);
    if (length === undefined && payloadMethods.has(spec.method)) text += 'content-length: 0\r\n';
  } else if (length === undefined) {
    chunked = true;
    contentLength = -1;
    text += 'transfer-encoding: chunked\r\n';
  }
  return { text: `${text}\r\n`, contentLength, chunked };
}

/** The size line of one chunk of a chunked body. */
export function chunkHeader(size: number): string {
  return `${size.toString(16)}\r\n`;
}

/** The last chunk of a chunked body, without trailers. */
export const lastChunk = '0\r\n\r\n';

// The prototype of header records: empty and frozen, with nothing above it, so that no name is inherited and a header
// named __proto__ is a header like any other. Not a null prototype itself: V8 keeps an object made by
// Object.create(null) in dictionary mode, whose stores and for-in cost ten times more (a response's headers are
// written once and enumerated once, for every request).
const recordProto: object = Object.freeze(Object.create(null) as object);

/** A header list from the parser's flat [name, value, ...] as undici gives it: lower-case names, a repeated name as an array in order. */
export function headerRecord(raw: readonly string[]): Record<string, string | string[]> {
  const out = Object.create(recordProto) as Record<string, string | string[]>;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (typeof had === 'string') out[name] = [had, value];
    else had.push(value);
  }
  return out;
}

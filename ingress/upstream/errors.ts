// What went wrong talking to an upstream, as a stable code, the status the client gets, whether the failure
// happened while connecting (counted for outlier ejection), and which of nginx's proxy_next_upstream cases it is
// (`error`, `timeout`, `invalid_header`); passesToNext says whether an Ingress's proxy-next-upstream sends it on.
import type { NextUpstreamPolicy } from '../routes/types.ts';

/** Stable codes of upstream failures, as reported in ForwardResult.error and in logs. */
export type UpstreamErrorCode =
  | 'NO_ENDPOINTS'
  | 'CONNECT_REFUSED'
  | 'CONNECT_TIMEOUT'
  | 'CONNECTION_RESET'
  | 'TLS_FAILED'
  | 'READ_TIMEOUT'
  /** The upstream took none of the request body for proxy-send-timeout (nginx's proxy_send_timeout). */
  | 'SEND_TIMEOUT'
  | 'BAD_RESPONSE'
  | 'INVALID_REQUEST'
  | 'UPSTREAM_CLOSED'
  | 'CLIENT_ABORTED'
  /** The client took none of the response for proxy-read-timeout (nginx's send_timeout): it was cut. */
  | 'CLIENT_TIMEOUT'
  | 'BODY_TOO_LARGE'
  | 'UPSTREAM_ERROR';

/** An upstream failure with a stable code; `cause` holds the socket or undici error. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;

  constructor(code: UpstreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** How a failure is answered and counted. */
export interface FailureClass {
  code: UpstreamErrorCode;
  /** Status for the client when no response has started (499: the client went away, nothing is sent). */
  status: number;
  /** The endpoint could not be reached or dropped the connection before answering: counts toward ejection. */
  connect: boolean;
  /**
   * The proxy_next_upstream case of a try that failed before the response head (nginx's ft_type in
   * ngx_http_upstream_next), null when no value of proxy-next-upstream sends it on. Whether it goes to the next
   * endpoint is passesToNext's, and whether the request may still be sent again forward.ts's.
   */
  next: FailureCase | null;
}

/** The proxy_next_upstream values that name failures of a try (the others name statuses, or non_idempotent). */
export type FailureCase = 'error' | 'timeout' | 'invalid_header';

function failure(code: UpstreamErrorCode, status: number, connect: boolean, next: FailureCase | null = connect ? 'error' : null): FailureClass {
  return Object.freeze({ code, status, connect, next });
}

const refused = failure('CONNECT_REFUSED', 502, true);
const connectTimeout = failure('CONNECT_TIMEOUT', 504, true, 'timeout');
const reset = failure('CONNECTION_RESET', 502, true);
const tls = failure('TLS_FAILED', 502, true);
// nginx's `timeout` covers the wait for the response head too (ngx_http_upstream_process_header); a body that
// stalls is only ever seen after the response began, when nothing is retried. Not the endpoint's failure here.
const readTimeout = failure('READ_TIMEOUT', 504, false, 'timeout');
// A response head that cannot be read (or is too large): nginx's NGX_HTTP_UPSTREAM_INVALID_HEADER. Also a body
// shorter than its Content-Length, seen only after the response began, when nothing is retried.
const badResponse = failure('BAD_RESPONSE', 502, false, 'invalid_header');
const invalidRequest = failure('INVALID_REQUEST', 400, false);
// The pool was closed under the request (endpoint removed, shutdown): not the endpoint's fault; another may be tried.
const closed = failure('UPSTREAM_CLOSED', 502, false, 'error');
const aborted = failure('CLIENT_ABORTED', 499, false);
const other = failure('UPSTREAM_ERROR', 502, false);

const byCode: Record<string, FailureClass> = {
  ECONNREFUSED: refused,
  EHOSTUNREACH: refused,
  ENETUNREACH: refused,
  EADDRNOTAVAIL: refused,
  UND_ERR_CONNECT_TIMEOUT: connectTimeout,
  ETIMEDOUT: connectTimeout,
  ECONNRESET: reset,
  EPIPE: reset,
  UND_ERR_SOCKET: reset,
  EPROTO: tls,
  UND_ERR_HEADERS_TIMEOUT: readTimeout,
  UND_ERR_BODY_TIMEOUT: readTimeout,
  UND_ERR_HEADERS_OVERFLOW: badResponse,
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: badResponse,
  UND_ERR_INVALID_ARG: invalidRequest,
  UND_ERR_NOT_SUPPORTED: invalidRequest,
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: invalidRequest,
  ERR_HTTP_INVALID_HEADER_VALUE: invalidRequest,
  ERR_INVALID_CHAR: invalidRequest,
  UND_ERR_CLOSED: closed,
  UND_ERR_DESTROYED: closed,
  UND_ERR_ABORTED: aborted,
  UND_ERR_ABORT: aborted,
  ABORT_ERR: aborted,
};

const ownCodes: Record<UpstreamErrorCode, FailureClass> = {
  NO_ENDPOINTS: failure('NO_ENDPOINTS', 503, false),
  CONNECT_REFUSED: refused,
  CONNECT_TIMEOUT: connectTimeout,
  CONNECTION_RESET: reset,
  TLS_FAILED: tls,
  READ_TIMEOUT: readTimeout,
  // nginx's `timeout` (ngx_http_upstream_send_request), though a body on its way is never sent again (forward.ts).
  SEND_TIMEOUT: failure('SEND_TIMEOUT', 504, false, 'timeout'),
  BAD_RESPONSE: badResponse,
  INVALID_REQUEST: invalidRequest,
  UPSTREAM_CLOSED: closed,
  CLIENT_ABORTED: aborted,
  // Only ever logged after the response began (nginx: 408 when nothing was sent, which cannot happen here).
  CLIENT_TIMEOUT: failure('CLIENT_TIMEOUT', 408, false),
  // A streamed request body went past proxy-body-size: the client's fault, as nginx's 413.
  BODY_TOO_LARGE: failure('BODY_TOO_LARGE', 413, false),
  UPSTREAM_ERROR: other,
};

// The codes Node gives a certificate OpenSSL did not verify (its X509_V_ERR_* names without the prefix).
const certificateErrors: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_REVOKED', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH',
]);

/** Classifies a socket, TLS, undici or UpstreamError error; unknown errors are a plain 502. */
export function classifyError(err: unknown): FailureClass {
  if (err instanceof UpstreamError) return ownCodes[err.code];
  const code = (err as { code?: unknown } | null)?.code;
  // undici's HTTPParserError has no code when llhttp named none ("Expected HTTP/"): still an unreadable response.
  if (typeof code !== 'string') return (err as { name?: unknown } | null)?.name === 'HTTPParserError' ? badResponse : other;
  const known = byCode[code];
  if (known !== undefined) return known;
  // Node's TLS layer: ERR_SSL_* from OpenSSL, ERR_TLS_* from Node, and OpenSSL's certificate verification results
  // (proxy-ssl-verify, see pool.ts).
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || certificateErrors.has(code)) return tls;
  // llhttp parse errors of the upstream's response.
  if (code.startsWith('HPE_')) return badResponse;
  return other;
}

/**
 * Whether proxy-next-upstream (`p`; undefined: nginx's default `error timeout`) sends a try that failed with `what`
 * (a failure case, or the status the backend answered) to the next endpoint, as nginx's ngx_http_upstream_next and
 * ngx_http_upstream_test_next test `(next_upstream & ft_type) == ft_type`: a POST, LOCK or PATCH already sent
 * (`sentNonIdempotent`) needs `non_idempotent` too. The other conditions (tries left, proxy-next-upstream-timeout, a
 * request that can still be sent) are the caller's.
 */
export function passesToNext(p: NextUpstreamPolicy | undefined, what: FailureCase | number | null, sentNonIdempotent: boolean): boolean {
  if (what === null) return false;
  if (p === undefined) return (what === 'error' || what === 'timeout') && !sentNonIdempotent;
  if (sentNonIdempotent && !p.nonIdempotent) return false;
  switch (what) {
    case 'error': return p.error;
    case 'timeout': return p.timeout;
    case 'invalid_header': return p.invalidHeader;
    default: return p.statuses.includes(what);
  }
}

/** `err` as an UpstreamError with the code it is classified under (itself when it is one). */
export function asUpstreamError(err: Error): UpstreamError {
  return err instanceof UpstreamError ? err : new UpstreamError(classifyError(err).code, err.message, { cause: err });
}

/** The plain-text body of an error status, as nginx words it. */
export function statusText(status: number): string {
  switch (status) {
    case 413: return '413 Request Entity Too Large';
    case 400: return '400 Bad Request';
    case 502: return '502 Bad Gateway';
    case 503: return '503 Service Temporarily Unavailable';
    case 504: return '504 Gateway Time-out';
    default: return `${status}`;
  }
}

// gRPC through the gateway (backend-protocol GRPC and GRPCS): the answer a gRPC client gets for a failure of the
// gateway's own, and gRPC's status fields carried to the client. Facts from gRPC's "gRPC over HTTP2" description: a
// response ends with grpc-status (and grpc-message) in trailers, or, when it has no message, in the one HEADERS frame
// that also ends the stream (Trailers-Only); status numbers are google.rpc.Code's.
import type { UpstreamErrorCode } from './errors.ts';
import { isHopByHop, type HeaderList, type HeaderValue } from './headers.ts';

/** The gRPC status codes the gateway answers with itself (google.rpc.Code numbers). */
export const grpcCode = { DEADLINE_EXCEEDED: 4, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/**
 * What a gRPC client is told for each failure: UNAVAILABLE where nginx answers 502 or 503 (gRPC clients read those
 * statuses as UNAVAILABLE too), DEADLINE_EXCEEDED for the backend's silence past proxy-read-timeout (nginx: 504),
 * RESOURCE_EXHAUSTED for a request over proxy-body-size (nginx: 413), INTERNAL where nginx answers 400. The
 * CLIENT_* codes are never written: the client is gone.
 */
const failures: Readonly<Record<UpstreamErrorCode, readonly [code: number, message: string]>> = {
  NO_ENDPOINTS: [grpcCode.UNAVAILABLE, 'no endpoint of the backend is available'],
  CONNECT_REFUSED: [grpcCode.UNAVAILABLE, 'the backend refused the connection'],
  CONNECT_TIMEOUT: [grpcCode.UNAVAILABLE, 'connecting to the backend timed out'],
  CONNECTION_RESET: [grpcCode.UNAVAILABLE, 'the backend closed the connection'],
  TLS_FAILED: [grpcCode.UNAVAILABLE, 'the TLS handshake with the backend failed'],
  UPSTREAM_CLOSED: [grpcCode.UNAVAILABLE, 'the backend connection was closed'],
  UPSTREAM_ERROR: [grpcCode.UNAVAILABLE, 'the request to the backend failed'],
  READ_TIMEOUT: [grpcCode.DEADLINE_EXCEEDED, 'the backend did not answer within proxy-read-timeout'],
  SEND_TIMEOUT: [grpcCode.DEADLINE_EXCEEDED, 'the backend took none of the request within proxy-send-timeout'],
  BAD_RESPONSE: [grpcCode.INTERNAL, 'the backend response cannot be relayed'],
  INVALID_REQUEST: [grpcCode.INTERNAL, 'the request cannot be sent to the backend'],
  BODY_TOO_LARGE: [grpcCode.RESOURCE_EXHAUSTED, 'the request is larger than proxy-body-size'],
  CLIENT_ABORTED: [grpcCode.UNAVAILABLE, 'the client went away'],
  CLIENT_TIMEOUT: [grpcCode.UNAVAILABLE, 'the client took no data'],
};

/** The grpc-status and grpc-message for a failure the gateway answers itself on a gRPC route. */
export function grpcFailure(code: UpstreamErrorCode): { status: number; message: string } {
  const [status, message] = failures[code];
  return { status, message };
}

/** What writeGrpcFailure needs of a client response (both HTTP versions have it). */
export interface GrpcSink {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: HeaderList): unknown;
  addTrailers(trailers: Record<string, HeaderValue>): void;
  end(): unknown;
}

/**
 * Answers a gRPC request with a failure as gRPC clients read one: HTTP 200, `content-type: application/grpc`, no
 * message, grpc-status and grpc-message in trailers over HTTP/2, in the headers over HTTP/1.x (a Trailers-Only
 * response, as gRPC-Web reads it). Nothing is written once a response has begun or the client is gone. Returns
 * the grpc-status.
 */
export function writeGrpcFailure(res: GrpcSink, http2: boolean, code: UpstreamErrorCode): number {
  const { status, message } = grpcFailure(code);
  if (res.headersSent || res.destroyed || res.writableEnded) return status;
  if (http2) {
    res.writeHead(200, ['content-type', 'application/grpc']);
    res.addTrailers({ 'grpc-status': String(status), 'grpc-message': message });
  } else {
    res.writeHead(200, ['content-type', 'application/grpc', 'grpc-status', String(status), 'grpc-message', message, 'content-length', '0']);
  }
  res.end();
  return status;
}

// The fields of a Trailers-Only response that stay in the headers: what describes the HTTP response itself (its
// type and length) and the gateway's affinity cookie. Everything else is the call's trailing metadata.
const headerFields: ReadonlySet<string> = new Set(['content-type', 'content-length', 'set-cookie']);

/**
 * Splits the headers of a Trailers-Only response (one carrying grpc-status) into headers and trailers; null when the
 * headers carry no grpc-status. Node sends a response's HEADERS frame without END_STREAM, and a gRPC client reads
 * headers as the call's status and trailing metadata only from a frame that ends the stream: sent on as they came,
 * the call would end "without gRPC status". Moved to trailers, they are read as from any response.
 */
export function splitTrailersOnly(list: HeaderList): { headers: HeaderList; trailers: Record<string, HeaderValue> } | null {
  let found = false;
  for (let i = 0; i < list.length; i += 2) if (list[i] === 'grpc-status') found = true;
  if (!found) return null;
  const headers: HeaderList = [];
  const trailers: Record<string, HeaderValue> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    if (headerFields.has(name)) headers.push(name, list[i + 1]!);
    else trailers[name] = list[i + 1]!;
  }
  return { headers, trailers };
}

/**
 * The upstream's trailers to send to the client (lower-case names, as undici gives them), hop-by-hop and
 * pseudo-header fields dropped, after `held` (the status fields of a Trailers-Only response); undefined when none.
 */
export function relayedTrailers(trailers: Readonly<Record<string, HeaderValue | undefined>>, held: Record<string, HeaderValue> | null): Record<string, HeaderValue> | undefined {
  let out: Record<string, HeaderValue> | undefined = held ?? undefined;
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined || name === 'te' || isHopByHop(name)) continue;
    (out ??= {})[name] = value;
  }
  return out;
}

/** The grpc-status number in trailers (or Trailers-Only headers); undefined when absent or not a number. */
export function grpcStatusOf(fields: Readonly<Record<string, HeaderValue | undefined>> | undefined): number | undefined {
  const value = fields?.['grpc-status'];
  return typeof value === 'string' && /^\d{1,3}$/.test(value) ? Number(value) : undefined;
}

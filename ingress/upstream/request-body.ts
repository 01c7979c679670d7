// The request body as it is sent upstream when it must be watched on its way: counted against proxy-body-size, and
// an HTTP/2 client's reset seen as an abort.
import type { Http2ServerRequest } from 'node:http2';
import { Transform } from 'node:stream';
import { UpstreamError } from './errors.ts';
import type { ClientRequest } from './forward.ts';

/**
 * The request body as a stream that fails with BODY_TOO_LARGE once more than `limit` bytes came (0: no limit),
 * without touching the client's connection (the gateway still answers 413 on it); and, for HTTP/2, that fails
 * instead of ending when the client reset its stream: Node ends an HTTP/2 request normally when its stream is reset,
 * so without this a cancelled upload reaches the backend as aborted only if the response's close aborts the upstream
 * request before the body's end is written. (A client that ends its stream and then resets it sent a whole body.)
 */
export function guardedBody(req: ClientRequest, limit: number): Transform {
  let seen = 0;
  const stream = req.httpVersionMajor === 2 ? (req as Http2ServerRequest).stream : undefined;
  const guarded = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (limit > 0 && seen > limit) return done(new UpstreamError('BODY_TOO_LARGE', `the request body is larger than ${limit} bytes (proxy-body-size)`));
      done(null, chunk);
    },
    flush(done) {
      // A stream reset before its END_STREAM is marked aborted before the request ends.
      if (stream !== undefined && stream.aborted) return done(new UpstreamError('CLIENT_ABORTED', 'the client reset its stream before the body was complete'));
      done();
    },
  });
  (req as NodeJS.ReadableStream).pipe(guarded);
  return guarded;
}

import { describe, expect, it } from 'vitest';
import { errors } from 'undici';
import { UpstreamError, classifyError, passesToNext } from '../../../ingress/upstream/errors.ts';
import type { NextUpstreamPolicy } from '../../../ingress/routes/types.ts';

const sys = (code: string) => Object.assign(new Error(code), { code });

describe('classifyError', () => {
  it.each([
    { err: sys('ECONNREFUSED'), code: 'CONNECT_REFUSED', status: 502, connect: true, next: 'error' },
    { err: new errors.ConnectTimeoutError(), code: 'CONNECT_TIMEOUT', status: 504, connect: true, next: 'timeout' },
    { err: sys('ECONNRESET'), code: 'CONNECTION_RESET', status: 502, connect: true, next: 'error' },
    { err: new errors.SocketError('other side closed'), code: 'CONNECTION_RESET', status: 502, connect: true, next: 'error' },
    { err: sys('ERR_SSL_WRONG_VERSION_NUMBER'), code: 'TLS_FAILED', status: 502, connect: true, next: 'error' },
    { err: new errors.HeadersTimeoutError(), code: 'READ_TIMEOUT', status: 504, connect: false, next: 'timeout' },
    { err: new errors.BodyTimeoutError(), code: 'READ_TIMEOUT', status: 504, connect: false, next: 'timeout' },
    { err: sys('HPE_INVALID_CONSTANT'), code: 'BAD_RESPONSE', status: 502, connect: false, next: 'invalid_header' },
    { err: new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol (Expected HTTP/, RTSP/ or ICE/)'), code: 'BAD_RESPONSE', status: 502, connect: false, next: 'invalid_header' },
    { err: new errors.InvalidArgumentError('x'), code: 'INVALID_REQUEST', status: 400, connect: false, next: null },
    { err: new errors.ClientClosedError(), code: 'UPSTREAM_CLOSED', status: 502, connect: false, next: 'error' },
    { err: new errors.RequestAbortedError(), code: 'CLIENT_ABORTED', status: 499, connect: false, next: null },
    { err: new UpstreamError('CONNECT_TIMEOUT', 'x'), code: 'CONNECT_TIMEOUT', status: 504, connect: true, next: 'timeout' },
    { err: new UpstreamError('NO_ENDPOINTS', 'x'), code: 'NO_ENDPOINTS', status: 503, connect: false, next: null },
    { err: new Error('mystery'), code: 'UPSTREAM_ERROR', status: 502, connect: false, next: null },
    { err: null, code: 'UPSTREAM_ERROR', status: 502, connect: false, next: null },
  ])('$code from $err.code', ({ err, ...want }) => {
    expect({ ...classifyError(err) }).toEqual(want);
  });

  it('UpstreamError carries its code and cause', () => {
    const cause = new Error('root');
    const e = new UpstreamError('READ_TIMEOUT', 'slow', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('READ_TIMEOUT');
    expect(e.name).toBe('UpstreamError');
    expect(e.cause).toBe(cause);
  });
});

describe('passesToNext: nginx\'s (next_upstream & ft_type) == ft_type', () => {
  const off: NextUpstreamPolicy = { error: false, timeout: false, invalidHeader: false, statuses: [], nonIdempotent: false };
  const errorOnly: NextUpstreamPolicy = { ...off, error: true };
  const http503: NextUpstreamPolicy = { ...off, error: true, statuses: [503] };
  const nonIdempotent: NextUpstreamPolicy = { ...off, error: true, timeout: true, nonIdempotent: true };
  const invalidHeader: NextUpstreamPolicy = { ...off, invalidHeader: true };
  it.each<[string, NextUpstreamPolicy | undefined, 'error' | 'timeout' | 'invalid_header' | number | null, boolean, boolean]>([
    ['default: error', undefined, 'error', false, true],
    ['default: timeout', undefined, 'timeout', false, true],
    ['default: not invalid_header', undefined, 'invalid_header', false, false],
    ['default: no status', undefined, 503, false, false],
    ['default: a POST already sent is not sent again', undefined, 'error', true, false],
    ['off: no error', off, 'error', false, false],
    ['off: no timeout', off, 'timeout', false, false],
    ['error only: no timeout', errorOnly, 'timeout', false, false],
    ['error only: error', errorOnly, 'error', false, true],
    ['http_503: 503', http503, 503, false, true],
    ['http_503: not 502', http503, 502, false, false],
    ['http_503: not for a POST sent', http503, 503, true, false],
    ['non_idempotent: a POST sent after an error', nonIdempotent, 'error', true, true],
    ['invalid_header', invalidHeader, 'invalid_header', false, true],
    ['a failure of no case', undefined, null, false, false],
  ])('%s', (_name, policy, what, sentNonIdempotent, want) => {
    expect(passesToNext(policy, what, sentNonIdempotent)).toBe(want);
  });
});

import { describe, expect, it } from 'vitest';
import { errors } from 'undici';
import { UpstreamError, classifyError } from '../../../ingress/upstream/errors.ts';

const sys = (code: string) => Object.assign(new Error(code), { code });

describe('classifyError', () => {
  it.each([
    { err: sys('ECONNREFUSED'), code: 'CONNECT_REFUSED', status: 502, connect: true, retry: true },
    { err: new errors.ConnectTimeoutError(), code: 'CONNECT_TIMEOUT', status: 504, connect: true, retry: true },
    { err: sys('ECONNRESET'), code: 'CONNECTION_RESET', status: 502, connect: true, retry: true },
    { err: new errors.SocketError('other side closed'), code: 'CONNECTION_RESET', status: 502, connect: true, retry: true },
    { err: sys('ERR_SSL_WRONG_VERSION_NUMBER'), code: 'TLS_FAILED', status: 502, connect: true, retry: true },
    { err: new errors.HeadersTimeoutError(), code: 'READ_TIMEOUT', status: 504, connect: false, retry: true },
    { err: new errors.BodyTimeoutError(), code: 'READ_TIMEOUT', status: 504, connect: false, retry: true },
    { err: sys('HPE_INVALID_CONSTANT'), code: 'BAD_RESPONSE', status: 502, connect: false, retry: false },
    { err: new errors.InvalidArgumentError('x'), code: 'INVALID_REQUEST', status: 400, connect: false, retry: false },
    { err: new errors.ClientClosedError(), code: 'UPSTREAM_CLOSED', status: 502, connect: false, retry: true },
    { err: new errors.RequestAbortedError(), code: 'CLIENT_ABORTED', status: 499, connect: false, retry: false },
    { err: new UpstreamError('CONNECT_TIMEOUT', 'x'), code: 'CONNECT_TIMEOUT', status: 504, connect: true, retry: true },
    { err: new UpstreamError('NO_ENDPOINTS', 'x'), code: 'NO_ENDPOINTS', status: 503, connect: false, retry: false },
    { err: new Error('mystery'), code: 'UPSTREAM_ERROR', status: 502, connect: false, retry: false },
    { err: null, code: 'UPSTREAM_ERROR', status: 502, connect: false, retry: false },
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

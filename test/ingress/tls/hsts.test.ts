// The Strict-Transport-Security header value.
import { describe, expect, it } from 'vitest';
import { BadHstsError } from '../../../ingress/tls/errors.ts';
import { hstsHeader } from '../../../ingress/tls/hsts.ts';

describe('hstsHeader', () => {
  it.each([
    [31536000, true, false, 'max-age=31536000; includeSubDomains'],
    [15724800, false, false, 'max-age=15724800'],
    [63072000, true, true, 'max-age=63072000; includeSubDomains; preload'],
    [0, false, false, 'max-age=0'],
    [300, false, true, 'max-age=300; preload'],
  ])('max-age %d, includeSubDomains %s, preload %s → %s', (age, sub, preload, want) => {
    expect(hstsHeader(age, sub, preload)).toBe(want);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses max-age %d', (age) => {
    expect(() => hstsHeader(age, false, false)).toThrow(BadHstsError);
    expect(() => hstsHeader(age, false, false)).toThrow(expect.objectContaining({ code: 'ERR_BAD_HSTS' }));
  });
});

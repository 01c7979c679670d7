// The Strict-Transport-Security response header (RFC 6797 §6.1).
import { BadHstsError } from './errors.ts';

/**
 * The Strict-Transport-Security value, e.g. `max-age=31536000; includeSubDomains`. Throws BadHstsError when
 * maxAgeSeconds is not a non-negative integer (RFC 6797 §6.1.1: delta-seconds).
 */
export function hstsHeader(maxAgeSeconds: number, includeSubDomains: boolean, preload: boolean): string {
  if (!Number.isSafeInteger(maxAgeSeconds) || maxAgeSeconds < 0) {
    throw new BadHstsError(`HSTS max-age ${maxAgeSeconds} is not allowed; give a whole number of seconds, 0 or more.`);
  }
  let value = `max-age=${maxAgeSeconds}`;
  if (includeSubDomains) value += '; includeSubDomains';
  // `preload` is the hstspreload.org convention, not part of RFC 6797; browsers ignore it.
  if (preload) value += '; preload';
  return value;
}

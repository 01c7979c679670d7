// varyWith: `Vary: Origin` joins the Vary a response already has (RFC 9110 12.5.5), never replaces it.
import { describe, expect, it } from 'vitest';
import { varyWith } from '../../../ingress/server/cors.ts';

describe('varyWith', () => {
  it.each([
    // [the response's Vary, what goes out]
    ['', 'Origin'],
    ['Accept-Encoding', 'Accept-Encoding, Origin'],
    ['Accept-Encoding, Accept-Language', 'Accept-Encoding, Accept-Language, Origin'],
    ['origin', 'origin'],
    ['Accept, ORIGIN', 'Accept, ORIGIN'],
    ['*', '*'],
    [['Accept-Encoding', 'Cookie'], 'Accept-Encoding, Cookie, Origin'],
    [['Accept', 'Origin'], 'Accept, Origin'],
  ])('%j → %j', (vary, out) => {
    expect(varyWith(vary, 'Origin')).toBe(out);
  });
});

// Which requests go to a route's canary, as ingress-nginx decides it: canary-by-header, then canary-by-cookie, then
// canary-weight; a header or cookie value other than the ones it knows leaves the choice to the next rule.
import { describe, expect, it } from 'vitest';
import { routesToCanary } from '../../../ingress/routes/canary.ts';
import type { Canary } from '../../../ingress/routes/types.ts';
import { policy } from '../upstream/helpers.ts';

const canary = (over: Partial<Canary>): Canary => ({
  ingress: 'shop/next',
  backend: { namespace: 'shop', service: 'next', port: 80, key: 'shop/next:80' },
  weight: 0,
  weightTotal: 100,
  policy: policy(),
  ...over,
});
const byHeaderAndCookie = (weight: number) => canary({ header: 'X-Canary', cookie: 'canary', weight });

describe('routesToCanary', () => {
  // [what, canary, request headers, goes to the canary]
  const cases: [string, Canary, Record<string, string | string[]>, boolean][] = [
    ['nothing set, weight 0', byHeaderAndCookie(0), {}, false],
    ['nothing set, weight 100', byHeaderAndCookie(100), {}, true],
    ['cookie always, weight 0', byHeaderAndCookie(0), { cookie: 'a=1; canary=always' }, true],
    ['cookie never, weight 100', byHeaderAndCookie(100), { cookie: 'canary=never' }, false],
    ['cookie of another value, weight 0', byHeaderAndCookie(0), { cookie: 'canary=yes' }, false],
    ['cookie of another value, weight 100', byHeaderAndCookie(100), { cookie: 'canary=no' }, true],
    ['another cookie named always, weight 0', byHeaderAndCookie(0), { cookie: 'canaryx=always; xcanary=always' }, false],
    ['the cookie name in another case (nginx ignores it)', byHeaderAndCookie(0), { cookie: 'CANARY=always' }, true],
    ['two cookies of the name: the first counts', byHeaderAndCookie(0), { cookie: 'canary=never; canary=always' }, false],
    ['cookie header lines as HTTP/2 may send them', byHeaderAndCookie(0), { cookie: ['a=1', 'canary=always'] }, true],
    ['header always before cookie never', byHeaderAndCookie(0), { 'x-canary': 'always', cookie: 'canary=never' }, true],
    ['header never before cookie always', byHeaderAndCookie(100), { 'x-canary': 'never', cookie: 'canary=always' }, false],
    ['header of another value, then cookie always', byHeaderAndCookie(0), { 'x-canary': 'maybe', cookie: 'canary=always' }, true],
    ['header of another value, then cookie never', byHeaderAndCookie(100), { 'x-canary': 'maybe', cookie: 'canary=never' }, false],
    ['header of another value, cookie of another value, weight 100', byHeaderAndCookie(100), { 'x-canary': 'maybe', cookie: 'canary=maybe' }, true],
    ['header value matched, before cookie never', canary({ header: 'X-Canary', headerValue: 'beta', cookie: 'canary' }), { 'x-canary': 'beta', cookie: 'canary=never' }, true],
    ['header value not matched: "never" is no word of its own, the cookie decides', canary({ header: 'X-Canary', headerValue: 'beta', cookie: 'canary' }), { 'x-canary': 'never', cookie: 'canary=always' }, true],
    ['header value not matched, cookie never, weight 100', canary({ header: 'X-Canary', headerValue: 'beta', cookie: 'canary', weight: 100 }), { 'x-canary': 'always', cookie: 'canary=never' }, false],
    ['cookie only, no header configured', canary({ cookie: 'canary' }), { 'x-canary': 'never', cookie: 'canary=always' }, true],
    ['header only: a cookie named always does nothing', canary({ header: 'X-Canary' }), { cookie: 'canary=always' }, false],
  ];

  it.each(cases)('%s', (_what, c, headers, want) => {
    expect(routesToCanary(c, headers, () => 0.5)).toBe(want);
  });

  it.each([
    [50, 100, 0.49, true],
    [50, 100, 0.5, false],
    [3, 10, 0.29, true],
    [3, 10, 0.3, false],
    [0, 100, 0, false],
  ])('weight %i of %i with a draw of %d: %s', (weight, weightTotal, draw, want) => {
    expect(routesToCanary(canary({ cookie: 'canary', weight, weightTotal }), { cookie: 'canary=other' }, () => draw)).toBe(want);
  });
});

describe('routesToCanary with canary-by-header-pattern (ingress-nginx: ngx.re.match, after the exact value)', () => {
  const byPattern = (headerPattern: string, over: Partial<Canary> = {}) => canary({ header: 'X-Region', headerPattern, cookie: 'canary', ...over });
  // [what, canary, request headers, goes to the canary]
  const cases: [string, Canary, Record<string, string>, boolean][] = [
    ['the pattern matches', byPattern('^eu-'), { 'x-region': 'eu-west' }, true],
    ['it matches anywhere (unanchored)', byPattern('west'), { 'x-region': 'eu-west-1' }, true],
    ['case-sensitive', byPattern('^EU-'), { 'x-region': 'eu-west' }, false],
    ['unless the pattern says (?i)', byPattern('(?i)^EU-'), { 'x-region': 'eu-west' }, true],
    ['no match: the cookie decides', byPattern('^eu-'), { 'x-region': 'us-east', cookie: 'canary=always' }, true],
    ['no match: then the weight', byPattern('^eu-', { weight: 100 }), { 'x-region': 'us-east' }, true],
    ['"always" that does not match is no word of its own', byPattern('^eu-'), { 'x-region': 'always' }, false],
    ['"never" that does not match does not keep the cookie from deciding', byPattern('^eu-'), { 'x-region': 'never', cookie: 'canary=always' }, true],
    ['a match wins over cookie never', byPattern('^eu-'), { 'x-region': 'eu-west', cookie: 'canary=never' }, true],
    ['no header: the cookie decides', byPattern('^eu-'), { cookie: 'canary=always' }, true],
    ['an exact value wins: the pattern is not used', byPattern('^eu-', { headerValue: 'beta' }), { 'x-region': 'eu-west' }, false],
    ['an empty exact value is none: the pattern is used', byPattern('^eu-', { headerValue: '' }), { 'x-region': 'eu-west' }, true],
    ['an empty pattern is none: always and never apply', byPattern(''), { 'x-region': 'always' }, true],
    ['(a+)+$ against a long value: answered', byPattern('(a+)+$'), { 'x-region': `${'a'.repeat(10_000)}!` }, false],
  ];
  it.each(cases)('%s', (_what, c, headers, want) => {
    expect(routesToCanary(c, headers, () => 0.5)).toBe(want);
  });
});

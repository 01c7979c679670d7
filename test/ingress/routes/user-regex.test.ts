// User-written regular expressions (canary-by-header-pattern, auth-tls-match-cn): checked once, then matched by a
// linear-time engine (re2js), never a backtracking one; what RE2 cannot run is refused with one sentence.
import { describe, expect, it } from 'vitest';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import { findPcreOnly, matchesUserRegex, maxPatternLength, maxProgramSize, readUserRegex } from '../../../ingress/routes/user-regex.ts';

const key = 'nginx.ingress.kubernetes.io/canary-by-header-pattern';
const read = (value: string) => readUserRegex({ key, value });

describe('readUserRegex refuses what RE2 cannot run, naming the annotation', () => {
  // [pattern, a word of the reason]
  const cases: Array<[string, string]> = [
    ['(a)\\1', 'a back-reference'],
    ['(?<n>a)\\k<n>', 'a back-reference'],
    ['(a)\\g1', 'a back-reference'],
    ['beta(?=-)', 'a look-ahead or look-behind'],
    ['beta(?!-x)', 'a look-ahead or look-behind'],
    ['(?<=x)beta', 'a look-ahead or look-behind'],
    ['(?<!x)beta', 'a look-ahead or look-behind'],
    ['(?>a+)b', 'an atomic group'],
    ['a(?R)?b', 'a recursive subpattern'],
    ['(?(1)a|b)', 'a conditional subpattern'],
    ['(*SKIP)a', 'control verb'],
    ['a\\vb', 'vertical whitespace in PCRE'],
    ['a++', 'not a regular expression RE2 reads (invalid nested repetition operator'],
    ['(?x) a b', 'not a regular expression RE2 reads'],
    ['a\\Z', 'not a regular expression RE2 reads'],
    ['(unclosed', 'not a regular expression RE2 reads (missing closing )'],
    ['a{1001}', 'invalid repeat count'],
    ['x[a-z]{600}', `at most ${maxProgramSize}`],
    ['a'.repeat(maxPatternLength + 1), `at most ${maxPatternLength}`],
    ['a\u0000b', 'control characters'],
    ['a\tb', 'control characters'],
  ];
  it.each(cases)('%j', (pattern, why) => {
    let error: unknown;
    try {
      read(pattern);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AnnotationError);
    expect((error as AnnotationError).annotation).toBe(key);
    const message = (error as AnnotationError).message;
    expect(message).toMatch(new RegExp(`^annotation ${key} is ".*"; `));
    expect(message).toContain(why);
    expect(message).not.toMatch(/[\x00-\x1f]/);
    // One sentence.
    expect(message.slice(0, -1)).not.toMatch(/\.\s+[A-Z]/);
  });

  it('finds PCRE-only constructs outside classes and \\Q...\\E only', () => {
    expect(findPcreOnly('[\\1(?=]x')).toBeUndefined();
    expect(findPcreOnly('[]\\1]')).toBeUndefined();
    expect(findPcreOnly('\\Q(?=\\1\\Ex')).toBeUndefined();
    expect(findPcreOnly('\\\\1')).toBeUndefined();
    expect(findPcreOnly('[a]\\1')).toBe('a back-reference');
  });
});

describe('matchesUserRegex: as ngx.re.match without options (PCRE: unanchored, case-sensitive, bytes)', () => {
  // [pattern, input, matches]
  const cases: Array<[string, string, boolean]> = [
    ['beta', 'x-beta-1', true],
    ['^beta$', 'x-beta-1', false],
    ['^beta$', 'beta', true],
    ['Beta', 'beta', false],
    ['(?i)Beta', 'BETA', true],
    ['^(eu|us)-[0-9]+$', 'eu-42', true],
    ['^(eu|us)-[0-9]+$', 'asia-42', false],
    ['always', 'always', true],
    ['\\d{3}', 'ab123', true],
    ['\\bv2\\b', 'api v2 beta', true],
    ['a.c', 'a\u00c3\u00a9c', false],
    // "é" in the pattern is its UTF-8 bytes, as a header value reaches Node one character per byte.
    ['^é$', Buffer.from('é', 'utf8').toString('latin1'), true],
    ['^..$', Buffer.from('é', 'utf8').toString('latin1'), true],
    ['\\Q.*\\E', 'a.*b', true],
    ['\\Q.*\\E', 'ab', false],
    ['CN=client1,', 'CN=client1,O=Org', true],
    ['', 'anything', true],
  ];
  it.each(cases)('%j on %j: %s', (pattern, input, want) => {
    expect(matchesUserRegex(read(pattern), input)).toBe(want);
  });

  it('a pattern that never passed readUserRegex matches nothing', () => {
    expect(matchesUserRegex('(a)\\1', 'aa')).toBe(false);
    expect(matchesUserRegex('x[a-z]{600}', `x${'a'.repeat(600)}`)).toBe(false);
  });

  it('(a+)+$ against a long value answers (a backtracking engine would run for ages)', () => {
    const pattern = read('(a+)+$');
    // 30 a's and a "!" already take PCRE without JIT past its match limit, and JavaScript's RegExp minutes.
    expect(matchesUserRegex(pattern, `${'a'.repeat(16_000)}!`)).toBe(false);
    expect(matchesUserRegex(pattern, 'a'.repeat(16_000))).toBe(true);
    expect(matchesUserRegex(read('^(a|aa)+$'), `${'a'.repeat(16_000)}b`)).toBe(false);
  });
});

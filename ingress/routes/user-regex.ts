// The one place that compiles a regular expression a user wrote (canary-by-header-pattern, auth-tls-match-cn).
// ingress-nginx hands these to PCRE, a backtracking engine, where a pattern like `(a+)+$` takes time exponential in
// the input (ReDoS). netplane never runs a backtracking engine on them: they are compiled by re2js, a JavaScript port
// of RE2, whose matching takes time linear in the input and in the pattern's program. The pattern is data for that
// matcher, never code. What RE2 cannot do is refused with one sentence, so the Ingress is not served rather than
// served with a different meaning.
//
// PCRE → RE2 differences that matter here (ingress-nginx matches without flags: case-sensitive, unanchored, bytes):
// - refused: back-references (\1, \g{1}, \k<name>), look-ahead and look-behind ((?=, (?!, (?<=, (?<!), atomic groups
//   and possessive quantifiers ((?>, a++), recursion and conditionals, \K \G \R \h \X \C \Z, (?x), (*VERBS), \v
//   (vertical whitespace in PCRE, a vertical tab in RE2), and repeat counts above 1000 (PCRE allows 65535).
// - the same for what is accepted: literals, classes, alternation, groups, greedy and lazy repetition, ^ $ \b \A \z,
//   (?i) (?s) (?m) (?U); a match is found exactly when PCRE finds one, since only whether it matches is used.
// - bytes: a header value reaches Node as one character per byte, as PCRE (without its UTF mode) sees it, and the
//   pattern is matched as its UTF-8 bytes too, so `.` is one byte in both. Under (?i) RE2 also folds the case of
//   Latin-1 letters (bytes 0xC0-0xFE), where PCRE folds ASCII only; for ASCII input, the usual case, they agree.
// - `$` without (?m) also matches before a final line break in PCRE; header values and certificate names never
//   hold one (Node refuses control characters in header values, and nginx escapes them in a DN), so this changes nothing.
import { RE2JS } from 're2js';
import { invalid, type Annotation } from './annotations.ts';

/**
 * The longest pattern accepted, in characters. Patterns written by hand to match a header value or a certificate
 * name are a few dozen characters; a longer one is generated or a mistake, and the bound keeps every refusal and log
 * line short and compiling cheap.
 */
export const maxPatternLength = 1024;

/**
 * The most instructions a compiled pattern may have. Matching costs time in proportion to program size times input
 * length, on the gateway's one event loop: measured on this project's machine, a 500-instruction program over a
 * 16 KiB header (Node's whole header limit) costs at most about 0.2 s, and patterns people write are under 100.
 */
export const maxProgramSize = 500;

/** The PCRE constructs RE2 has no equivalent of, found by a scan of the pattern, and how to name them. */
const pcreOnly: ReadonlyArray<[RegExp, string]> = [
  [/^\\[1-9]|^\\g|^\\k/, 'a back-reference'],
  [/^\(\?<?[=!]|^\(\*(?:positive_|negative_)?look/, 'a look-ahead or look-behind'],
  [/^\(\?>|^\(\*atomic/, 'an atomic group'],
  [/^\(\?(?:R|[+-]?\d|&|P>)/, 'a recursive subpattern'],
  [/^\(\?\(/, 'a conditional subpattern'],
  [/^\(\*[A-Z]/, 'a backtracking control verb'],
  [/^\\v/, '\\v (vertical whitespace in PCRE, a vertical tab in RE2: write [\\n\\x0b\\f\\r] or \\x0b)'],
];

const controlCharacter = /[\x00-\x1f\x7f]/;

/**
 * Checks the pattern of annotation `a` and returns it; throws AnnotationError (one sentence naming the annotation,
 * its value and why) for a control character, a pattern longer than maxPatternLength, a PCRE construct RE2 cannot
 * run, a syntax error, or a program larger than maxProgramSize.
 */
export function readUserRegex(a: Annotation): string {
  const p = a.value;
  if (controlCharacter.test(p)) throw invalid(a, 'a pattern must not contain control characters');
  if (p.length > maxPatternLength) throw invalid(a, `the pattern has ${p.length} characters, and netplane accepts at most ${maxPatternLength}`);
  const unsupported = findPcreOnly(p);
  if (unsupported !== undefined) {
    throw invalid(a, `it uses ${unsupported}, which RE2, the linear-time engine netplane matches patterns with (never a backtracking one), cannot run: write it without`);
  }
  let compiled: RE2JS;
  try {
    compiled = compileBytes(p);
  } catch (e) {
    throw invalid(a, `it is not a regular expression RE2 reads (${(e as Error).message.replace(/^error parsing regexp: /, '')})`);
  }
  const size = compiled.re2Input.numberOfInstructions();
  if (size > maxProgramSize) throw invalid(a, `it compiles to ${size} instructions, and netplane accepts at most ${maxProgramSize} (each match costs time in proportion)`);
  remember(p, compiled);
  return p;
}

/**
 * Whether `text` holds a match of `pattern` (unanchored, as PCRE's match), where `pattern` passed readUserRegex; a
 * pattern that did not is never matched (false). `text` is taken one character per byte, as Node gives header values.
 */
export function matchesUserRegex(pattern: string, text: string): boolean {
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    try {
      compiled = compileBytes(pattern);
    } catch {
      return false;
    }
    if (compiled.re2Input.numberOfInstructions() > maxProgramSize || pattern.length > maxPatternLength) return false;
    remember(pattern, compiled);
  }
  return compiled.matcher(text).find();
}

/** The first PCRE-only construct of `p` outside `\Q...\E` and character classes, named; undefined when none. */
export function findPcreOnly(p: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\' && p[i + 1] === 'Q') {
      const end = p.indexOf('\\E', i + 2);
      if (end < 0) return undefined;
      i = end + 1;
      continue;
    }
    if (inClass) {
      if (c === '\\') i++;
      else if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // A "]" (or "^]") right after "[" is a literal member, not the end.
      if (p[i + 1] === '^') i++;
      if (p[i + 1] === ']') i++;
      continue;
    }
    const rest = p.slice(i, i + 24);
    for (const [test, name] of pcreOnly) if (test.test(rest)) return name;
    if (c === '\\') i++;
  }
  return undefined;
}

// Compiled patterns by source: a few per Ingress, compiled once. Bounded, so that Ingresses coming and going with
// ever new patterns cannot grow it without end; the oldest goes first.
const cache = new Map<string, RE2JS>();
const cacheLimit = 4096;

function remember(pattern: string, compiled: RE2JS): void {
  if (cache.size >= cacheLimit) cache.delete(cache.keys().next().value!);
  cache.set(pattern, compiled);
}

/** The pattern compiled over its UTF-8 bytes, one character per byte, as PCRE without its UTF mode reads it. */
function compileBytes(pattern: string): RE2JS {
  return RE2JS.compile(Buffer.from(pattern, 'utf8').toString('latin1'));
}

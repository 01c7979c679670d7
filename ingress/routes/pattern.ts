// ingress-nginx regex paths, read without running a regex. With use-regex, or a rewrite-target that changes a path,
// ingress-nginx writes each location as `location ~* "^<path>"` (PCRE, case-insensitive, anchored at the start only)
// and the rewrite as `rewrite "(?i)<path>" <target> break;` (template.go buildLocation, buildProxyPass). netplane
// never evaluates an expression a user wrote: it recognises the shapes users write — a fixed start, then one of a few
// endings — and matches them by their structure, in one pass over the path, with the results PCRE gives for them:
//
//   <start>                      anything may follow: a prefix of characters, not of path elements
//   <start>$                     nothing may follow
//   <start>.*   <start>(.*)      anything; the group is all of it
//   <start>.+   <start>(.+)      at least one character
//   <start>(/|$)  then nothing, .*, (.*), .+ or (.+)   "/" or the end ($1 "/" or ""), then the rest ($2, without the "/")
//   <start>/?  /?.*  /?(.*)  /?$                      an optional "/" ($1 the rest without it)
//   <start>(<fixed>.*)  <start>(<fixed>.+)              the group starts at <fixed>: (/.*), (/api.*)
//
// The start is literal characters (letters, digits and - _ ~ ! & ' , ; = : @ % /), `\` escapes of the punctuation a
// path may hold (\. \- \/ \+ \* \( \) \$ ...), `.` (any ASCII character) and groups of these, `(...)` or `(?:...)`;
// letters match either case. Alternatives elsewhere, classes, repetition, anchors inside, back-references: refused.
import { IngressSpecError, quote } from './errors.ts';
import type { RegexGroup, RegexPath } from './types.ts';

/** The shapes netplane reads, for problem sentences. */
const shapes = '<start>, <start>$, <start>(.*), <start>(.+), <start>(/|$)(.*), <start>/?(.*), <start>(/.*) or <start>.*';

/** Punctuation a `\` makes literal that a path may hold. */
const escapable = new Set(".-/+*()$_~!&',;=:@%");

/** Whether character code `c` is literal in PCRE and allowed in a URL path: letters, digits, - _ ~ ! & ' , ; = : @ % /. */
function isLiteral(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || "-_~!&',;=:@%/".includes(String.fromCharCode(c));
}

function refuse(source: string, where: string, why: string): IngressSpecError {
  return new IngressSpecError(
    `${where} ${quote(source)} is a regular expression netplane does not read (${why}); it reads a start of letters, digits, "-_~!&',;=:@%/", "\\." and "." followed by ${shapes}`,
  );
}

/**
 * One character of a fixed start at `i`: what it adds to the prefix (NUL for `.`) and how many characters it takes,
 * or undefined when it is not one.
 */
function fixedChar(s: string, i: number): [string, number] | undefined {
  const c = s.charCodeAt(i);
  if (isLiteral(c)) return [s[i]!.toLowerCase(), 1];
  if (c === 0x2e /* . */) return ['\0', 1];
  if (c === 0x5c /* \ */ && i + 1 < s.length && escapable.has(s[i + 1]!)) return [s[i + 1]!, 2];
  return undefined;
}

/** A run of fixed characters as prefix text, or undefined when it holds anything else. */
function fixedRun(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; ) {
    const c = fixedChar(s, i);
    if (c === undefined) return undefined;
    out += c[0];
    i += c[1];
  }
  return out;
}

const boundaries = ['(/|$)', '($|/)', '(?:/|$)', '(?:$|/)'] as const;

/**
 * Reads an Ingress path as the ingress-nginx regex it is under use-regex; throws IngressSpecError naming `where` and
 * the path when it is not one of the shapes above. Linear in the path's length.
 */
export function parseRegexPath(source: string, where: string): RegexPath {
  if (source.charCodeAt(0) !== 0x2f) throw refuse(source, where, 'it must start with "/"');
  let prefix = '';
  const groups: RegexGroup[] = [];
  const done = (after: RegexPath['after'], ...more: RegexGroup[]): RegexPath => ({ source, prefix, after, groups: [...groups, ...more] });
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if ((c === '/' && next === '?') || (c === '.' && (next === '*' || next === '+')) || c === '$') {
      const end = tail(source.slice(i));
      if (end === undefined) throw refuse(source, where, `${quote(source.slice(i))} must end the path as one of the endings`);
      return done(end[0], ...end[1]);
    }
    if (c === '(') {
      const boundary = boundaries.find((b) => source.startsWith(b, i));
      if (boundary !== undefined) {
        const end = afterBoundary(source.slice(i + boundary.length), !boundary.startsWith('(?:'));
        if (end === undefined) throw refuse(source, where, `${boundary} may be followed only by nothing, .*, (.*), .+ or (.+)`);
        return done(end[0], ...end[1]);
      }
      const close = source.indexOf(')', i);
      const inner = close < 0 ? '' : source.slice(i + 1, close);
      if (close < 0 || inner.includes('(')) throw refuse(source, where, 'its groups must be closed and not nested');
      const capturing = !inner.startsWith('?:');
      const body = capturing ? inner : inner.slice(2);
      const rest = body.endsWith('.*') || body.endsWith('.+');
      const fixed = fixedRun(rest ? body.slice(0, -2) : body);
      if (fixed === undefined) throw refuse(source, where, `the group ${quote(source.slice(i, close + 1))} holds more than fixed characters`);
      const from = prefix.length;
      prefix += fixed;
      if (rest) {
        if (close !== source.length - 1) throw refuse(source, where, `a group ending in .* or .+ must end the path`);
        return done(body.endsWith('.*') ? 'any' : 'some', ...(capturing ? [{ from }] : []));
      }
      if (capturing) groups.push({ from, to: prefix.length });
      i = close + 1;
      continue;
    }
    const f = fixedChar(source, i);
    if (f === undefined) throw refuse(source, where, `${quote(c === '\\' ? source.slice(i, i + 2) : c)} at character ${i + 1} is not read`);
    prefix += f[0];
    i += f[1];
  }
  return done('any');
}

/** The endings that may follow a fixed start from a `/?`, `.*`, `.+` or `$` on: what must follow, and the groups. */
function tail(t: string): [RegexPath['after'], RegexGroup[]] | undefined {
  switch (t) {
    case '$': return ['none', []];
    case '.*': case '/?': case '/?.*': return ['any', []];
    case '.+': return ['some', []];
    case '/?(.*)': return ['any', ['after-slash']];
    case '/?$': return ['slash-then-none', []];
    default: return undefined;
  }
}

/** What may follow `(/|$)`: nothing or a rest, captured or not. */
function afterBoundary(t: string, capturing: boolean): [RegexPath['after'], RegexGroup[]] | undefined {
  const slash: RegexGroup[] = capturing ? ['slash'] : [];
  switch (t) {
    case '': case '.*': return ['slash-or-none', slash];
    case '(.*)': return ['slash-or-none', [...slash, 'after-slash']];
    case '.+': return ['slash-and-some', slash];
    case '(.+)': return ['slash-and-some', [...slash, 'after-slash']];
    default: return undefined;
  }
}

/**
 * Whether `path` is one of `rp`'s: the prefix at its start (letters of either case, NUL any ASCII character), then
 * what must follow. As PCRE reads the expression; no allocation.
 */
export function regexMatches(rp: RegexPath, path: string): boolean {
  const p = rp.prefix;
  const n = p.length;
  if (path.length < n) return false;
  for (let i = 0; i < n; i++) {
    const want = p.charCodeAt(i);
    const c = path.charCodeAt(i);
    if (want === 0) {
      if (c > 0x7f) return false;
    } else if (c !== want && (c < 0x41 || c > 0x5a || c + 0x20 !== want)) return false;
  }
  const rest = path.length - n;
  const slash = rest > 0 && path.charCodeAt(n) === 0x2f;
  switch (rp.after) {
    case 'any': return true;
    case 'some': return rest > 0;
    case 'none': return rest === 0;
    case 'slash-or-none': return rest === 0 || slash;
    case 'slash-and-some': return slash && rest > 1;
    case 'slash-then-none': return rest === 0 || (slash && rest === 1);
  }
}

/** The capture groups of `path` under `rp` ($1 first), or undefined when it is not one of its paths. */
export function regexGroups(rp: RegexPath, path: string): string[] | undefined {
  if (!regexMatches(rp, path)) return undefined;
  const n = rp.prefix.length;
  const slash = path.charCodeAt(n) === 0x2f;
  return rp.groups.map((g) => (g === 'slash' ? (slash ? '/' : '') : g === 'after-slash' ? path.slice(slash ? n + 1 : n) : path.slice(g.from, g.to)));
}

/**
 * Whether ingress-nginx writes location `a` before `b` in a host's server, where regex locations are tried in the
 * order written: the longer path first, then the greater string (controller.go sorts by path, descending, then
 * stably by length).
 */
export function locationBefore(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

/** How a part of a rewrite starts: always with "/"; empty or with "/"; possibly otherwise. */
type Start = 'slash' | 'empty-or-slash' | 'other';

function startOf(part: string | number, rp: RegexPath): Start {
  if (typeof part === 'string') return part.startsWith('/') ? 'slash' : 'other';
  const g = rp.groups[part - 1];
  // A group the path does not have is empty, as in nginx.
  if (g === undefined || g === 'slash') return 'empty-or-slash';
  if (g === 'after-slash') return 'other';
  const n = rp.prefix.length;
  if (g.to === g.from) return 'empty-or-slash';
  if (g.from < n) return rp.prefix.charCodeAt(g.from) === 0x2f ? 'slash' : 'other';
  // The group is what follows the prefix.
  switch (rp.after) {
    case 'none': case 'slash-or-none': case 'slash-then-none': return 'empty-or-slash';
    case 'slash-and-some': return 'slash';
    default: return 'other';
  }
}

/**
 * The rewrite-target of a rule with regex path `rp` as parts: literal text and group numbers ($1 → 1). Throws
 * IngressSpecError when a request of the rule could be sent upstream with an empty path (nginx answers 500) or one
 * that does not start with "/" (nginx sends a broken request line): `$1` after `/app(.*)`, `$2` after `(/|$)(.*)`.
 */
export function rewriteParts(target: string, rp: RegexPath, where: string): (string | number)[] {
  const parts: (string | number)[] = [];
  let last = 0;
  for (const m of target.matchAll(/\$([1-9])/g)) {
    if (m.index > last) parts.push(target.slice(last, m.index));
    parts.push(Number(m[1]));
    last = m.index + 2;
  }
  if (last < target.length) parts.push(target.slice(last));
  for (const part of parts) {
    const start = startOf(part, rp);
    if (start === 'slash') return parts;
    if (start === 'other') break;
  }
  throw new IngressSpecError(
    `rewrite-target ${quote(target)} with ${where} ${quote(rp.source)} could send a path that is empty or does not start with "/" (ingress-nginx then answers 500 or sends a broken request); start the target with "/" or a group that always does, such as (/.*), or write the path as <start>(/|$)(.*) with the target /$2`,
  );
}

/**
 * The path a request goes upstream with under a rule with a rewrite: the target with its groups filled in from
 * `uri` (the request path decoded as nginx's $uri, one character per byte), each group escaped as a URL path needs
 * (nginx's proxy escapes a rewritten URI's spaces, `#`, `%`, `?` and non-ASCII bytes; netplane also the few
 * characters a path may not hold raw). Undefined when `uri` is not one of the rule's paths.
 */
export function rewritePath(rp: RegexPath, rewrite: readonly (string | number)[], uri: string): string | undefined {
  const groups = regexGroups(rp, uri);
  if (groups === undefined) return undefined;
  let out = '';
  for (const part of rewrite) out += typeof part === 'string' ? part : escapePath(groups[part - 1] ?? '');
  return out;
}

/** Bytes (one per character) as URL path text: RFC 3986 pchar and "/" kept, every other byte as %XX. */
function escapePath(bytes: string): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    out += c < 0x80 && pathChar[c] === 1 ? bytes[i] : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const pathChar = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") pathChar[c.charCodeAt(0)] = 1;

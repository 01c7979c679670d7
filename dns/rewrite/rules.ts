// Name rewrite rules as CoreDNS's `rewrite name exact|suffix FROM TO` reads them (plugin/rewrite/name.go): the
// query name is matched and rewritten, and the names in the answer are mapped back (`answer auto`). Pure functions:
// nothing a user writes is compiled or run, only compared as text.

/** One `--rewrite-name` rule: names are lower case, without a trailing dot. */
export interface NameRule {
  match: 'exact' | 'suffix';
  from: string;
  to: string;
}

/** The longest name in text form (RFC 1035: 255 octets on the wire). */
const maxName = 253;
const labelChars = /^[a-z0-9_-]{1,63}$/;

/** Bad `--rewrite-name` value: says which value and what is allowed. */
export class RewriteRuleError extends Error {
  override readonly name = 'RewriteRuleError';
  readonly code = 'NETPLANE_DNS_REWRITE_RULE';
}

/**
 * Reads `exact:FROM:TO` or `suffix:FROM:TO` (case-insensitive, a trailing dot ignored). An exact name must be a
 * whole domain name; a suffix is text the name ends with, as in CoreDNS (`.example.com` for whole labels; written
 * without the leading dot it also matches `myexample.com`). Throws a RewriteRuleError naming the part that is wrong.
 */
export function parseNameRule(raw: string): NameRule {
  const parts = raw.split(':');
  const [match, from = '', to = ''] = parts;
  if (parts.length !== 3 || (match !== 'exact' && match !== 'suffix')) {
    throw new RewriteRuleError('must be exact:FROM:TO or suffix:FROM:TO, e.g. exact:api.example.com:api.prod.svc.cluster.local');
  }
  return { match, from: normalize(from, match, 'FROM'), to: normalize(to, match, 'TO') };
}

function normalize(raw: string, match: NameRule['match'], what: string): string {
  const name = raw.toLowerCase().replace(/\.$/, '');
  const body = match === 'suffix' && name.startsWith('.') ? name.slice(1) : name;
  if (body === '' || name.length > maxName || !body.split('.').every((l) => labelChars.test(l))) {
    const shape = match === 'exact' ? 'a domain name such as api.example.com' : 'a name suffix such as .example.com';
    throw new RewriteRuleError(`${what} "${raw}" of the ${match} rule must be ${shape} (letters, digits, - and _, labels of 1 to 63)`);
  }
  return name;
}

/** A query name rewritten by the first rule that matches it, and that rule; undefined when none matches. */
export function rewriteQueryName(rules: readonly NameRule[], lname: string): { rule: NameRule; name: string } | undefined {
  for (const rule of rules) {
    // CoreDNS's default `stop`: the first rule that matches is the only one applied.
    if (rule.match === 'exact' ? lname === rule.from : lname.endsWith(rule.from)) {
      return { rule, name: rule.match === 'exact' ? rule.to : lname.slice(0, lname.length - rule.from.length) + rule.to };
    }
  }
  return undefined;
}

/** Whether a rewritten name can be asked at all: at most 253 characters, no empty label, labels of at most 63. */
export function isAskable(name: string): boolean {
  return name.length > 0 && name.length <= maxName && name.split('.').every((l) => l.length > 0 && l.length <= 63);
}

/**
 * Maps a name in the answer back (CoreDNS `answer auto`): for an exact rule, the rewritten name and names under it
 * become the asked name and names under that; for a suffix rule, a name ending in TO ends in FROM again. Names that
 * do not match come back as they are (the same string). The part kept keeps its letter case.
 */
export function revertName(rule: NameRule, name: string): string {
  const lower = name.toLowerCase();
  const matches = rule.match === 'exact' ? lower === rule.to || lower.endsWith(`.${rule.to}`) : lower.endsWith(rule.to);
  return matches ? name.slice(0, name.length - rule.to.length) + rule.from : name;
}

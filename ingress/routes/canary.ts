// Which requests of a route go to its canary, in ingress-nginx's order (its balancer's route_to_alternative_balancer):
// canary-by-header, then canary-by-cookie, then canary-weight. Each of the first two decides only for the values it
// knows and otherwise leaves the request to the next. Pure: the random draw is passed in.
import { readCookie } from '../upstream/affinity.ts';
import { matchesUserRegex } from './user-regex.ts';
import type { Canary } from './types.ts';

/** Request headers as Node gives them: lower-case names. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * Whether a request goes to the route's canary: its canary-by-header header decides when it is "always" or "never"
 * (or, with canary-by-header-value, when it equals that value; else with canary-by-header-pattern, when the pattern
 * matches somewhere in it: then to the canary); else its canary-by-cookie cookie when that is "always" or "never";
 * else the weight, `weight` out of `weightTotal`. `random` returns [0, 1).
 */
export function routesToCanary(c: Canary, headers: RequestHeaders, random: () => number = Math.random): boolean {
  if (c.header !== undefined) {
    const v = headers[c.header.toLowerCase()];
    if (typeof v === 'string') {
      // ingress-nginx reads an empty canary-by-header-value as unset.
      if (c.headerValue !== undefined && c.headerValue !== '') {
        if (v === c.headerValue) return true;
      } else if (c.headerPattern !== undefined && c.headerPattern !== '') {
        // ngx.re.match(value, pattern): unanchored, case-sensitive unless the pattern says (?i). A value that does not
        // match (even "always" or "never") leaves the choice to the cookie and the weight.
        if (matchesUserRegex(c.headerPattern, v)) return true;
      } else if (v === 'always') return true;
      else if (v === 'never') return false;
    }
  }
  if (c.cookie !== undefined) {
    // nginx's $cookie_NAME, which ingress-nginx reads, matches the name ignoring case and takes the first.
    const v = readCookie(headers.cookie, c.cookie, true);
    if (v === 'always') return true;
    if (v === 'never') return false;
  }
  return c.weight > 0 && random() * c.weightTotal < c.weight;
}

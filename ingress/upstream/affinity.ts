// Cookie affinity (ingress-nginx `affinity: cookie`): the cookie names an endpoint by a short hash of its address,
// so the address itself never reaches the client.
import { createHash } from 'node:crypto';
import type { IngressPolicy } from '../routes/types.ts';

/** The affinity cookie value of an endpoint `ip:port`: 16 hex digits of its SHA-256, stable across restarts and replicas. */
export function affinityValue(endpoint: string): string {
  return createHash('sha256').update(endpoint).digest('hex').slice(0, 16);
}

/**
 * The value of the first cookie `name` in a Cookie header (`a=1; b=2`), or undefined. Scans without splitting.
 * `ignoreCase`: the name matched ignoring ASCII case, as nginx's `$cookie_NAME` does.
 */
export function readCookie(header: string | string[] | undefined, name: string, ignoreCase = false): string | undefined {
  if (header === undefined) return undefined;
  const text = typeof header === 'string' ? header : header.join('; ');
  const lower = ignoreCase ? name.toLowerCase() : name;
  let at = 0;
  while (at < text.length) {
    while (text.charCodeAt(at) === 32 || text.charCodeAt(at) === 59 /* ';' */) at++;
    const end = text.indexOf(';', at);
    const stop = end === -1 ? text.length : end;
    const eq = text.indexOf('=', at);
    if (eq !== -1 && eq < stop && eq - at === name.length && (ignoreCase ? text.slice(at, eq).toLowerCase() === lower : text.startsWith(name, at))) {
      let value = text.slice(eq + 1, stop).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    at = stop + 1;
  }
  return undefined;
}

const tokenName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const safePath = /^[\x21-\x3a\x3c-\x7e]*$/; // printable ASCII without ';' or space (RFC 6265 path-av)

/** Where the affinity cookie is set: the route's path (when the policy names none) and whether the request came over HTTPS. */
export interface CookieScope {
  path: string;
  https: boolean;
}

/**
 * The Set-Cookie value pinning a client to the endpoint whose affinity value is `value`, as ingress-nginx writes it:
 * Path the policy's, else the route's; Secure over HTTPS (or always with session-cookie-secure); HttpOnly. Undefined
 * when the cookie name or path could not be written safely.
 */
export function affinitySetCookie(affinity: NonNullable<IngressPolicy['affinity']>, value: string, scope: CookieScope = { path: '/', https: false }): string | undefined {
  const path = affinity.path ?? scope.path;
  if (!tokenName.test(affinity.cookieName) || !safePath.test(path)) return undefined;
  let cookie = `${affinity.cookieName}=${value}; Path=${path}; HttpOnly`;
  const maxAge = affinity.maxAgeSeconds;
  if (maxAge !== undefined && Number.isInteger(maxAge) && maxAge > 0) cookie += `; Max-Age=${maxAge}`;
  if (affinity.secure === true || scope.https) cookie += '; Secure';
  if (affinity.sameSite !== undefined) cookie += `; SameSite=${affinity.sameSite}`;
  return cookie;
}

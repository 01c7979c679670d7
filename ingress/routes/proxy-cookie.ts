// Reading proxy-cookie-path and proxy-cookie-domain: ingress-nginx writes each value into nginx's
// proxy_cookie_path / proxy_cookie_domain directive as it stands, so the value is two words, what to replace and
// its replacement, or "off". netplane reads the plain-text form only: a regex (`~...`), an nginx variable (`$host`)
// or anything nginx's configuration syntax would read otherwise (quotes, `;`, braces, backslashes) is refused.
import { invalid, type Annotation, type AnnotationReader } from './annotations.ts';
import type { CookieRewrite } from './types.ts';

// A cookie Path (RFC 6265 path-value, visible ASCII but ";") without what nginx would read as syntax or a variable.
const pathWord = /^\/[\x21\x23\x25-\x26\x28-\x3a\x3c-\x5b\x5d-\x7a\x7c\x7e]*$/;
// A host name or IPv4 address, with or without a leading dot (nginx drops it from both words: the cookie's own dot stays).
const domainWord = /^\.?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;

/** proxy-cookie-path and proxy-cookie-domain as one rewrite, or undefined when neither asks for one. */
export function readCookieRewrite(a: AnnotationReader): CookieRewrite | undefined {
  const path = pair(a.get('proxy-cookie-path'), pathWord, 'allowed is "off" or a path and its replacement, such as "/ /app/" (each starting with "/"; nginx regexes and variables are not read)');
  const domain = pair(a.get('proxy-cookie-domain'), domainWord, 'allowed is "off" or a domain and its replacement, such as "backend.local example.com" (host names; nginx regexes and variables are not read)');
  if (path === undefined && domain === undefined) return undefined;
  return {
    ...(path ? { path } : {}),
    ...(domain ? { domain: { from: undot(domain.from).toLowerCase(), to: undot(domain.to) } } : {}),
  };
}

const undot = (d: string) => (d.startsWith('.') ? d.slice(1) : d);

function pair(a: Annotation | undefined, word: RegExp, allowed: string): { from: string; to: string } | undefined {
  if (a === undefined || a.value === '' || a.value === 'off') return undefined;
  const words = a.value.split(/ +/);
  if (words.length !== 2 || !word.test(words[0]!) || !word.test(words[1]!)) throw invalid(a, allowed);
  return { from: words[0]!, to: words[1]! };
}

// Reading proxy-redirect-from and proxy-redirect-to: ingress-nginx writes them as nginx's
// `proxy_redirect <from> <to>;`, which replaces the start of a backend's Location and Refresh headers. netplane reads
// the plain-text form: `from` a path or absolute URL as the backend writes it; `to` a path or absolute URL, which may
// use the nginx variables of variables.ts (`https://$host/`), filled in per request. "off" and "default" (ingress-nginx's
// upstream is named upstream_balancer, so nginx's default rewrite never matches a backend's Location) ask for nothing.
import { invalid, type AnnotationReader } from './annotations.ts';
import { readUrlTemplate } from './variables.ts';

// A path or absolute URL without what nginx would read as syntax or a variable.
const word = /^[\x21\x23\x25-\x26\x28-\x3a\x3c-\x5b\x5d-\x7a\x7c\x7e]+$/;
const pathOrUrl = (v: string) => word.test(v) && (v.startsWith('/') || /^https?:\/\/[^/]/i.test(v));

/** The Location/Refresh rewrite of an Ingress, or undefined when it asks for none. */
export function readLocationRewrite(a: AnnotationReader): { from: string; to: string } | undefined {
  const from = a.get('proxy-redirect-from');
  if (from === undefined || from.value === '' || from.value === 'off' || from.value === 'default') return undefined;
  if (!pathOrUrl(from.value)) throw invalid(from, 'allowed is "off", "default", or the start of the backend\'s Location to replace: a path or an absolute http or https URL (nginx regexes and variables are not read)');
  const to = a.get('proxy-redirect-to');
  if (to === undefined || to.value === '') throw invalid(from, 'it needs proxy-redirect-to, what to put in its place, which is not set');
  if (to.value.includes('$')) return { from: from.value, to: readUrlTemplate(to, 'client') };
  if (!pathOrUrl(to.value)) throw invalid(to, 'allowed is a path or an absolute http or https URL, which may use nginx variables such as $host');
  return { from: from.value, to: to.value };
}

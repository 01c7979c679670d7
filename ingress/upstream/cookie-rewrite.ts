// proxy-cookie-path and proxy-cookie-domain: the Path and Domain attributes of a backend's Set-Cookie headers
// rewritten on the way to the client, as nginx's proxy_cookie_path and proxy_cookie_domain do (1.19.3 and later):
//  - the header is split at ";" into attributes, spaces around names and values trimmed; the first pair is the
//    cookie itself and is never rewritten (a cookie named "path" keeps its value);
//  - Path: the first `from` characters replaced by `to` when the value starts with `from` (case-sensitive);
//  - Domain: replaced when the value equals `from` ignoring case, a leading dot skipped and kept;
//  - a header with nothing rewritten is passed on byte for byte; a rewritten one is written again as nginx writes
//    it, `name=value` pairs joined with "; ".
// Only plain text: nginx's regex (`~`) and variable forms are refused when the annotation is read.
import type { CookieRewrite } from '../routes/types.ts';
import type { HeaderValue } from './headers.ts';

interface Attr {
  name: string;
  /** Undefined for an attribute without "=" (Secure, HttpOnly). */
  value: string | undefined;
}

/** One Set-Cookie value with `r` applied; the same string when nothing matched. */
export function rewriteSetCookie(header: string, r: CookieRewrite): string {
  const attrs = parseCookie(header);
  let changed = false;
  for (let i = 1; i < attrs.length; i++) {
    const a = attrs[i]!;
    if (a.value === undefined) continue;
    const name = a.name.toLowerCase();
    if (name === 'path' && r.path !== undefined && a.value.startsWith(r.path.from)) {
      a.value = r.path.to + a.value.slice(r.path.from.length);
      changed = true;
    } else if (name === 'domain' && r.domain !== undefined) {
      const dot = a.value.startsWith('.') ? '.' : '';
      if (a.value.slice(dot.length).toLowerCase() === r.domain.from) {
        a.value = dot + r.domain.to;
        changed = true;
      }
    }
  }
  if (!changed) return header;
  return attrs.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join('; ');
}

/** The Set-Cookie field as Node or undici hands it out, rewritten; `value` itself when nothing changed. */
export function rewriteSetCookies(value: HeaderValue, r: CookieRewrite): HeaderValue {
  if (typeof value === 'string') return rewriteSetCookie(value, r);
  let out: string[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const next = rewriteSetCookie(value[i]!, r);
    if (next !== value[i]) (out ??= [...value])[i] = next;
  }
  return out ?? value;
}

const setCookieLine = /^set-cookie[ \t]*:/i;

/**
 * A raw HTTP/1.x response head (status line and header lines, each ending in CRLF, without the blank line) with
 * its Set-Cookie lines rewritten; the same Buffer when none changed.
 */
export function rewriteSetCookieHead(head: Buffer, r: CookieRewrite): Buffer {
  const text = head.toString('latin1');
  if (!/set-cookie/i.test(text)) return head;
  let changed = false;
  const lines = text.split('\r\n').map((line) => {
    const m = setCookieLine.exec(line);
    if (m === null) return line;
    const value = line.slice(m[0].length).trim();
    const next = rewriteSetCookie(value, r);
    if (next === value) return line;
    changed = true;
    return `set-cookie: ${next}`;
  });
  return changed ? Buffer.from(lines.join('\r\n'), 'latin1') : head;
}

function parseCookie(header: string): Attr[] {
  const attrs: Attr[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    attrs.push(eq === -1 ? { name: trimSpaces(part), value: undefined } : { name: trimSpaces(part.slice(0, eq)), value: trimSpaces(part.slice(eq + 1)) });
  }
  return attrs;
}

/** Spaces trimmed at both ends, as nginx trims them (only spaces: a tab stays). */
function trimSpaces(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) === 32) a++;
  while (b > a && s.charCodeAt(b - 1) === 32) b--;
  return s.slice(a, b);
}

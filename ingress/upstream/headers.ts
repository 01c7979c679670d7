// Header filtering between the client and the upstream: hop-by-hop headers (RFC 9110 §7.6.1) stay on their own
// connection. Lists are flat [name, value, name, value ...] arrays, the form Node's writeHead and undici both take,
// so no per-request object is built.

/** A header value as Node and undici hand them out. */
export type HeaderValue = string | string[];

/** A flat header list: name at even indexes, its value after it. */
export type HeaderList = (string | string[])[];

// Never forwarded, either way. `te` is handled apart (kept when it is exactly "trailers").
const hopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'http2-settings',
  // The client's 100-continue is answered by Node's server; undici refuses to send Expect.
  'expect',
]);

/** True for a lower-case header name that is never forwarded (hop-by-hop, Proxy-*, Expect, HTTP/2 pseudo-headers). */
export function isHopByHop(lower: string): boolean {
  // `proxy-*` and the bare `proxy` header (httpoxy): meant for a proxy, never for the origin.
  return hopByHop.has(lower) || lower.startsWith('proxy') || lower.charCodeAt(0) === 58; /* ':' */
}

// nginx's proxy_hide_header defaults (ngx_http_proxy_hide_headers): the client gets the gateway's own Date (and no
// backend's Server), and X-Accel-* are instructions from a backend to nginx itself, never meant for the client.
const hiddenFromClient: ReadonlySet<string> = new Set([
  'date',
  'server',
  'x-pad',
  'x-accel-expires',
  'x-accel-redirect',
  'x-accel-limit-rate',
  'x-accel-buffering',
  'x-accel-charset',
]);

/** True for a lower-case response header name nginx's proxy module does not pass to the client by default. */
export function isHiddenResponseHeader(lower: string): boolean {
  return hiddenFromClient.has(lower);
}

/**
 * The header names a Connection header lists (lower-case), besides the ones already dropped or meaningless
 * (close, keep-alive, upgrade); null when there are none, the usual case.
 */
export function connectionListed(value: HeaderValue | undefined): string[] | null {
  if (value === undefined) return null;
  const text = typeof value === 'string' ? value : value.join(',');
  let listed: string[] | null = null;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
    (listed ??= []).push(name);
  }
  return listed;
}

/** The protocols an Upgrade header value lists, trimmed, empty ones left out. */
export function upgradeTokens(value: string): string[] {
  return value.split(',').map((t) => t.trim()).filter((t) => t !== '');
}

/**
 * True for an Upgrade token naming h2c (any case, any version): HTTP/2 over cleartext, whose upgrade the gateway
 * never relays. A backend that switched would give the client an HTTP/2 connection to it, and each request on it
 * would skip the gateway's routing, auth and limits (h2c smuggling); RFC 9113 §3.1 dropped the upgrade besides.
 */
export function isH2cToken(token: string): boolean {
  const slash = token.indexOf('/');
  return (slash === -1 ? token : token.slice(0, slash)).trim().toLowerCase() === 'h2c';
}

/**
 * The headers to send upstream from the client's raw headers (Node's `rawHeaders`): hop-by-hop headers, the ones
 * Connection lists, TE other than "trailers" and HTTP/2 pseudo-headers dropped; Host kept as sent (HTTP/2's
 * :authority becomes Host); a repeated Host dropped; an HTTP/2 request's Cookie fields joined into one, where the
 * first stood; then `extra`, the pipeline's headers, appended: they replace the client's of the same name (any
 * case). `keepUpgrade` keeps the client's Upgrade header (pass-through).
 */
export function upstreamRequestHeaders(raw: readonly string[], extra?: Readonly<Record<string, HeaderValue>>, keepUpgrade = false): string[] {
  let overridden: string[] | null = null;
  if (extra !== undefined) {
    for (const name in extra) (overridden ??= []).push(name.toLowerCase());
  }
  let listed: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      const more = connectionListed(raw[i + 1]);
      if (more !== null) listed = listed === null ? more : listed.concat(more);
    }
  }
  const out: string[] = [];
  let host = false;
  let authority: string | undefined;
  // HTTP/2 may split Cookie into one field per cookie; an HTTP/1.1 request carries one Cookie header, so they are
  // joined with "; " (RFC 9113 §8.2.3, as nginx's HTTP/2 module does). Only HTTP/2 has pseudo-headers.
  const h2 = raw.length > 0 && (raw[0] as string).charCodeAt(0) === 58; /* ':' */
  let cookieAt = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (lower === 'host') {
      if (host) continue;
      host = true;
    } else if (lower === 'te') {
      if (value.trim().toLowerCase() !== 'trailers') continue;
    } else if (lower === 'upgrade' && keepUpgrade) {
      // kept for Upgrade pass-through
    } else if (isHopByHop(lower)) {
      if (lower === ':authority') authority = value;
      continue;
    }
    if (listed !== null && listed.includes(lower)) continue;
    if (overridden !== null && overridden.includes(lower)) continue;
    // ssl-client-* tell the upstream what the gateway verified of a client certificate: never the client's own.
    if (lower.charCodeAt(0) === 115 /* s */ && lower.startsWith('ssl-client-')) continue;
    if (h2 && lower === 'cookie') {
      if (cookieAt >= 0) {
        out[cookieAt] += `; ${value}`;
        continue;
      }
      cookieAt = out.length + 1;
    }
    out.push(name, value);
  }
  if (!host && authority !== undefined && (overridden === null || !overridden.includes('host'))) out.push('host', authority);
  if (extra !== undefined) {
    for (const name in extra) {
      const value = extra[name] as HeaderValue;
      if (typeof value === 'string') out.push(name, value);
      else for (const v of value) out.push(name, v);
    }
  }
  return out;
}

/**
 * The headers to send to the client from the upstream's parsed headers (lower-case names, as undici gives them):
 * hop-by-hop headers, the ones Connection lists and the ones nginx hides (isHiddenResponseHeader) dropped;
 * `setCookie` (one header or several) added after the upstream's Set-Cookie. A 204's Content-Length is dropped: RFC 9110 §8.6 forbids it, nginx's header filter drops
 * it, and an HTTP/2 client takes a non-zero one on a 204 for a malformed response.
 */
export function clientResponseHeaders(headers: Readonly<Record<string, HeaderValue | undefined>>, setCookie?: string | readonly string[], status?: number): HeaderList {
  const listed = headers.connection === undefined ? null : connectionListed(headers.connection);
  const noLength = status === 204;
  const out: HeaderList = [];
  const added = setCookie === undefined ? [] : typeof setCookie === 'string' ? [setCookie] : setCookie;
  let cookieAdded = added.length === 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'te' || isHopByHop(name) || hiddenFromClient.has(name)) continue;
    if (listed !== null && listed.includes(name)) continue;
    if (noLength && name === 'content-length') continue;
    if (!cookieAdded && name === 'set-cookie') {
      // One entry per name: HTTP/2 responses keep only the last value of a repeated name.
      out.push(name, [value, added].flat());
      cookieAdded = true;
      continue;
    }
    out.push(name, value);
  }
  if (!cookieAdded) out.push('set-cookie', added.length === 1 ? added[0]! : [...added]);
  return out;
}

/** True when a header value can be written on the wire as is (no CR, LF or NUL: no header injection). */
export function isSafeHeaderValue(value: string): boolean {
  return !/[\r\n\0]/.test(value);
}

/** A header list without the client's body framing (Content-Length), for a request sent without the body. */
export function withoutBodyHeaders(list: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() !== 'content-length') out.push(list[i]!, list[i + 1]!);
  return out;
}

/** A flat header list with `extra` (lower-case names) in place of the list's headers of those names. */
export function withHeaders(list: HeaderList, extra: Record<string, string>): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!Object.hasOwn(extra, (list[i] as string).toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  for (const name in extra) out.push(name, extra[name]!);
  return out;
}

// The CORS step (enable-cors): a preflight is answered here; every other response of the route, whoever writes it,
// gets the CORS headers for an allowed origin, as ingress-nginx's more_set_headers in the location put them on the
// backend's answer and on nginx's own (401 of auth, 429 of a limit, 502/504), and `Vary: Origin` is added to the
// response's own Vary, never in its place.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { corsHeaders, corsVaries } from '../routes/cors.ts';
import { forceResponseHeaders } from './custom-headers.ts';
import type { Step } from './steps.ts';

type Headers = Record<string, unknown> | unknown[] | undefined;

/**
 * A Vary field's value with `token` in it: `*` (varies on everything) and a list that names the token already are
 * kept; otherwise the token is appended. Several field lines are read as one list (RFC 9110 5.3).
 */
export function varyWith(value: unknown, token: string): string {
  const list = (Array.isArray(value) ? value.map(String) : [String(value)]).join(', ');
  const names = list.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
  if (names.length === 0) return token;
  return names.includes('*') || names.includes(token.toLowerCase()) ? list : `${list}, ${token}`;
}

/** `headers` as writeHead takes them, with `token` added to their Vary; null when they have no Vary. */
function headersVaryingOn(headers: Headers, token: string): Headers | null {
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      const pairs = headers as unknown[][];
      const at = pairs.findIndex((pair) => String(pair[0]).toLowerCase() === 'vary');
      if (at < 0) return null;
      const varies = pairs.filter((pair) => String(pair[0]).toLowerCase() === 'vary').map((pair) => pair[1]);
      return [...pairs.filter((pair) => String(pair[0]).toLowerCase() !== 'vary'), [pairs[at]![0], varyWith(varies.flat(), token)]];
    }
    const out: unknown[] = [];
    const varies: unknown[] = [];
    let name: unknown;
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'vary') {
        name ??= headers[i];
        varies.push(headers[i + 1]);
      } else out.push(headers[i], headers[i + 1]);
    }
    return name === undefined ? null : [...out, name, varyWith(varies.flat(), token)];
  }
  if (headers !== null && typeof headers === 'object') {
    const name = Object.keys(headers).find((n) => n.toLowerCase() === 'vary');
    return name === undefined ? null : { ...headers, [name]: varyWith(headers[name], token) };
  }
  return null;
}

/**
 * Makes the response say `Vary: <token>` as well as whatever Vary its writer gives it (in writeHead, or set before),
 * whoever writes it from here on. A header forced earlier (custom-headers' Vary) still wins. No-op once sent.
 */
export function varyOn(res: ServerResponse | Http2ServerResponse, token: string): void {
  if (res.headersSent) return;
  const r = res as unknown as Record<'writeHead', (...args: unknown[]) => unknown>;
  const writeHead = r.writeHead.bind(res);
  r.writeHead = (status: unknown, ...rest: unknown[]) => {
    // writeHead(status), writeHead(status, headers) or writeHead(status, statusMessage, headers).
    const at = typeof rest[0] === 'string' ? 1 : 0;
    const given = rest.length > at ? headersVaryingOn(rest[at] as Headers, token) : null;
    if (given !== null) rest[at] = given;
    else {
      const set = res.getHeader('vary');
      res.setHeader('vary', set === undefined ? token : varyWith(set, token));
    }
    return writeHead(status, ...rest);
  };
}

/**
 * CORS (enable-cors): a preflight (OPTIONS with an Origin) is answered here with 204 before auth, as browsers send
 * no credentials with it; every other response to an allowed origin gets the CORS headers, the gateway's own
 * refusals and errors included (a browser script can then read a 401 or 429 instead of a CORS failure).
 */
export const cors: Step = {
  name: 'cors',
  run(x) {
    const p = x.route!.policy.cors;
    if (p === undefined) return 'next';
    const origin = x.req.headers.origin;
    const preflight = x.req.method === 'OPTIONS' && origin !== undefined;
    const headers = corsHeaders(p, origin, preflight);
    if (corsVaries(p)) varyOn(x.res, 'Origin');
    if (headers !== undefined) forceResponseHeaders(x.res, headers);
    if (preflight) {
      x.refused = 'cors-preflight';
      (x.res as ServerResponse).writeHead(204, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '0' });
      x.res.end();
      return 'done';
    }
    return 'next';
  },
};

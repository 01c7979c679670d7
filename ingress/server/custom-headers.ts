// custom-headers: the headers of an Ingress's ConfigMap on every response of its routes, as ingress-nginx writes
// them with more_set_headers in the location (no -s: every status). Whoever writes the response — the backend, a
// refusal (401, 403, 413, 429), a redirect, the gateway's own 502/503/504, a custom error page — its headers of the
// same names give way to these. They are set on the response once the route is known, and the response's writeHead
// drops those names from what it is handed, so one choke point covers every writer.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Step } from './steps.ts';

type Headers = Record<string, unknown> | unknown[] | undefined;

/** `headers` as writeHead takes them (an object, a flat list, or a list of pairs) without the names in `names`. */
export function withoutNames(headers: Headers, names: ReadonlySet<string>): Headers {
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return headers.filter((pair) => !names.has(String((pair as unknown[])[0]).toLowerCase()));
    const out: unknown[] = [];
    for (let i = 0; i < headers.length; i += 2) if (!names.has(String(headers[i]).toLowerCase())) out.push(headers[i], headers[i + 1]);
    return out;
  }
  if (headers !== null && typeof headers === 'object') return Object.fromEntries(Object.entries(headers).filter(([n]) => !names.has(n.toLowerCase())));
  return headers;
}

/**
 * Sets `headers` (lower-case names) on `res` so that they win over any header of the same name written later: by
 * writeHead (each of its forms), setHeader or appendHeader. Headers already sent are not changed.
 */
export function forceResponseHeaders(res: ServerResponse | Http2ServerResponse, headers: Readonly<Record<string, string>>): void {
  if (res.headersSent) return;
  const names = new Set(Object.keys(headers));
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  const r = res as unknown as Record<'writeHead' | 'setHeader' | 'appendHeader', (...args: unknown[]) => unknown>;
  const writeHead = r.writeHead.bind(res);
  const setHeader = r.setHeader.bind(res);
  r.writeHead = (status: unknown, ...rest: unknown[]) => {
    // writeHead(status, headers) or writeHead(status, statusMessage, headers).
    const at = typeof rest[0] === 'string' ? 1 : 0;
    if (rest.length > at) rest[at] = withoutNames(rest[at] as Headers, names);
    return writeHead(status, ...rest);
  };
  r.setHeader = (name: unknown, ...rest: unknown[]) => (names.has(String(name).toLowerCase()) ? res : setHeader(name, ...rest));
  if (typeof r.appendHeader === 'function') {
    const appendHeader = r.appendHeader.bind(res);
    r.appendHeader = (name: unknown, ...rest: unknown[]) => (names.has(String(name).toLowerCase()) ? res : appendHeader(name, ...rest));
  }
}

/** Puts the route's custom-headers on the response, whatever answers it from here on. */
export const customHeaders: Step = {
  name: 'custom-headers',
  run(x) {
    const headers = x.route!.policy.customHeaders;
    if (headers !== undefined) forceResponseHeaders(x.res, headers);
    return 'next';
  },
};

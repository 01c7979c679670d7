// proxy-redirect-from / proxy-redirect-to: the start of a backend's Location header, and of the URL in its Refresh
// header, replaced on the way to the client, as nginx's proxy_redirect does with a text (case-sensitive prefix).

/**
 * `value` with `from` at its start replaced by `to`; `value` itself when it does not start with `from`. With
 * `origin` (scheme and host of the request), a rewritten Location that is a path becomes absolute, as nginx's
 * header filter writes it (ingress-nginx keeps absolute_redirect on, with port_in_redirect and
 * server_name_in_redirect off: the request's scheme and host, no port).
 */
export function rewriteLocation(value: string, from: string, to: string, origin?: string): string {
  if (!value.startsWith(from)) return value;
  const next = to + value.slice(from.length);
  return origin !== undefined && next.startsWith('/') && !next.startsWith('//') ? origin + next : next;
}

/** A Refresh value (`5; url=http://...`) with its URL rewritten as a Location; `value` itself when nothing matches. */
export function rewriteRefresh(value: string, from: string, to: string): string {
  const m = /url=/i.exec(value);
  if (m === null) return value;
  const at = m.index + m[0].length;
  const url = value.slice(at);
  const next = rewriteLocation(url, from, to);
  return next === url ? value : value.slice(0, at) + next;
}

// The order in which Ingresses claim what they share — a host+path+type, a host's certificate, the catch-all default
// backend, a host's client-certificate check: ingress-nginx's (sortIngressSlice in internal/ingress/controller/store),
// the oldest by metadata.creationTimestamp first; at equal timestamps, the greater `namespace/name` first. An Ingress
// without a creationTimestamp (a manifest that does not write one) counts as the oldest, as Go's zero time does.
import type { Ingress } from '../../cluster/model/ingress.ts';

/** Milliseconds since the epoch of an Ingress's creationTimestamp; -Infinity when it has none. */
function created(ingress: Ingress): number {
  const t = ingress.metadata.creationTimestamp;
  return t === undefined ? -Infinity : Date.parse(t);
}

/** `namespace/name`, compared as ingress-nginx compares it (bytewise, the whole string). */
function keyOf(ingress: Ingress): string {
  return `${ingress.metadata.namespace}/${ingress.metadata.name}`;
}

/** Sort comparator: negative when `a` comes first (older; at equal age, greater `namespace/name`). */
export function byAge(a: Ingress, b: Ingress): number {
  const x = created(a);
  const y = created(b);
  if (x !== y) return x < y ? -1 : 1;
  const p = keyOf(a);
  const q = keyOf(b);
  return p > q ? -1 : p < q ? 1 : 0;
}

/** Why `first` comes before `later`, for a log line: "is older (...)" or how the tie was broken. */
export function whyFirst(first: Ingress, later: Ingress): string {
  const x = first.metadata.creationTimestamp;
  const y = later.metadata.creationTimestamp;
  if (created(first) !== created(later)) return `is older (created ${x ?? 'without a creationTimestamp'}; this one ${y})`;
  const when = x === undefined ? 'neither has a creationTimestamp' : `both were created at ${x}`;
  return `comes first: ${when}, and at equal age the greater namespace/name comes first, as in ingress-nginx`;
}

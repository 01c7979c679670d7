// What the client library's informer cannot take from an API server (a null list item, an event without an object)
// and would crash on: found here, so the source can skip and log it.
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../runtime/logger.ts';

/**
 * Why the client library's informer cannot take `object` (a list item, or a watch event's object when `type` is
 * given), or undefined when it can. The informer reads `metadata.namespace` of every item and event object, and
 * `code` of an ERROR event's, outside any error handling: a null there is a TypeError that ends the process.
 */
export function unusableObject(object: unknown, type?: string): string | undefined {
  if (object === null || object === undefined) return `is ${String(object)}`;
  if (typeof object !== 'object' || Array.isArray(object)) return `is ${Array.isArray(object) ? 'an array' : `a ${typeof object}`}, not an object`;
  if (type === 'ERROR') return undefined;
  const metadata = (object as { metadata?: unknown }).metadata;
  if (metadata === null || metadata === undefined) return 'has no metadata';
  if (typeof metadata !== 'object' || Array.isArray(metadata)) return 'has metadata that is not an object';
  return undefined;
}

/**
 * `list` without the items unusableObject refuses, each reported to `skipped` with its index and why; the same list
 * when every item is usable.
 */
export function usableItems<T extends KubernetesObject>(list: KubernetesListObject<T>, skipped: (index: number, reason: string) => void): KubernetesListObject<T> {
  if (!Array.isArray(list.items)) return list;
  const items = list.items.filter((item: unknown, i) => {
    const reason = unusableObject(item);
    if (reason) skipped(i, reason);
    else trimObject(item);
    return !reason;
  });
  return items.length === list.items.length ? list : { ...list, items };
}

/**
 * Drops what no component reads and the client library's cache would otherwise hold for every object: the server's
 * managedFields and kubectl's last-applied-configuration annotation, often larger than the rest of the object
 * (client-go users trim them with an informer transform for the same reason). In place: the object was just parsed.
 */
export function trimObject(obj: unknown): void {
  const meta = (obj as { metadata?: { managedFields?: unknown; annotations?: Record<string, string> } } | null)?.metadata;
  if (meta === undefined || meta === null || typeof meta !== 'object') return;
  delete meta.managedFields;
  if (meta.annotations && typeof meta.annotations === 'object') delete meta.annotations[lastApplied];
}

const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Cuts an object the informer has cached down to what its cache reads — name, namespace and resourceVersion, to
 * file it, tell a new version from the same one, and find what a relist no longer has — once the store holds its
 * parsed copy. In place, since the cache holds this very object. Kept whole, the informers' copies were 11 MiB of
 * live heap for dns at 10,000 Services with 50,000 endpoints.
 */
export function keepIdentityOnly(obj: { metadata?: { name?: string; namespace?: string; resourceVersion?: string } }): void {
  const m = obj.metadata ?? {};
  const identity: { name?: string; namespace?: string; resourceVersion?: string } = { name: m.name, resourceVersion: m.resourceVersion };
  if (m.namespace !== undefined) identity.namespace = m.namespace;
  for (const key of Object.keys(obj)) if (key !== 'metadata') delete (obj as Record<string, unknown>)[key];
  obj.metadata = identity;
}

/**
 * Logs what was skipped of `kind`'s list and watch at `path`: a warn line each, naming the item or event and why;
 * `what` names the informer in the message (default the kind).
 */
export function skipLoggers(log: Logger, kind: string, path: string, what = kind) {
  return {
    item: (i: number, reason: string) => log.warn({ kind, path, item: i, reason }, `${what} list: skipped items[${i}], which ${reason}`),
    event: (type: string, reason: string) => log.warn({ kind, path, event: type, reason }, `${what} watch: skipped event ${type}: ${reason}`),
  };
}

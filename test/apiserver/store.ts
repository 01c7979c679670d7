// The test API server's storage: objects under one etcd-like revision counter, with the change history watches replay.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { isPlainObject, mergePatch, storageKey, type KubeObject, type Resource } from './resources.ts';

/** The type of a stored change, as a watch event names it. */
export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change: its revision, the new state (for DELETED, the last state at the deletion's revision) and the state before. */
export interface Change {
  readonly rv: number;
  readonly type: ChangeType;
  readonly resource: Resource;
  readonly object: KubeObject;
  readonly prev?: KubeObject;
}

/** An object handed to apply() that cannot be stored; the message names the field and what is allowed. */
export class InvalidObjectError extends Error {
  override readonly name = 'InvalidObjectError';
  readonly code = 'APISERVER_INVALID_OBJECT';
}

/** Objects of every served resource, one global resourceVersion, and the history of changes since the last compaction. */
export class ObjectStore {
  // etcd revisions start above zero; "0" means "any version" to a client, so no object ever carries it.
  #rv = 1;
  #floor = 1;
  #objects = new Map<string, KubeObject>();
  #history: Change[] = [];
  #onChange: (change: Change) => void;

  /** `onChange` is called synchronously for every change, after it is stored. */
  constructor(onChange: (change: Change) => void) {
    this.#onChange = onChange;
  }

  /** The current global revision. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** The oldest revision a watch may resume from; older ones get 410 Expired. */
  get floor(): number {
    return this.#floor;
  }

  /** The objects of a resource (in one namespace, or all), sorted by namespace and name like etcd keys. */
  list(resource: Resource, namespace?: string): KubeObject[] {
    return [...this.#objects.entries()]
      .filter(([, o]) => o.apiVersion === resource.apiVersion && o.kind === resource.kind)
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => obj);
  }

  /** One object, or undefined. */
  get(resource: Resource, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#objects.get(storageKey(resource, resource.namespaced ? namespace : undefined, name));
  }

  /** Creates or replaces an object; an update that changes nothing is a no-op (no new revision, no event), as on a real server. */
  apply(resource: Resource, input: Record<string, unknown>): KubeObject {
    const meta = input.metadata;
    if (!isPlainObject(meta) || typeof meta.name !== 'string' || meta.name === '') {
      throw new InvalidObjectError(`${resource.kind} needs metadata.name, a non-empty string; got ${JSON.stringify(isPlainObject(meta) ? meta.name : meta)}`);
    }
    const namespace = resource.namespaced ? (typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default') : undefined;
    const prev = this.get(resource, namespace, meta.name);
    const obj = structuredClone(input) as KubeObject;
    obj.kind = resource.kind;
    obj.apiVersion = resource.apiVersion;
    if (namespace === undefined) delete obj.metadata.namespace;
    else obj.metadata.namespace = namespace;
    obj.metadata.uid = prev?.metadata.uid ?? (typeof meta.uid === 'string' ? meta.uid : randomUUID());
    obj.metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.resourceVersion = prev?.metadata.resourceVersion ?? '';
    if (prev && isDeepStrictEqual(prev, obj)) return prev;
    return this.#commit(prev ? 'MODIFIED' : 'ADDED', resource, obj, prev);
  }

  /**
   * Applies a merge patch (RFC 7386, or strategic: see mergePatch) to an existing object (identity fields stay);
   * undefined when it does not exist. Through the `status` subresource only status and metadata change; a Node
   * patched directly keeps its status, as the real server keeps it for every type with a status subresource.
   */
  patch(resource: Resource, namespace: string | undefined, name: string, patch: unknown, options: { strategic?: boolean; subresource?: 'status' } = {}): KubeObject | undefined {
    const prev = this.get(resource, namespace, name);
    if (!prev) return undefined;
    const obj = mergePatch(prev, patch, options.strategic ?? false) as KubeObject;
    if (options.subresource === 'status') {
      for (const k of Object.keys(obj)) if (k !== 'status' && k !== 'metadata') obj[k] = structuredClone(prev[k]);
    } else if (resource.kind === 'Node') {
      if (prev.status === undefined) delete obj.status;
      else obj.status = structuredClone(prev.status);
    }
    obj.kind = prev.kind;
    obj.apiVersion = prev.apiVersion;
    const { name: n, namespace: ns, uid, creationTimestamp, resourceVersion } = prev.metadata;
    obj.metadata = { ...(isPlainObject(obj.metadata) ? obj.metadata : {}), name: n, uid, creationTimestamp, resourceVersion };
    if (ns !== undefined) obj.metadata.namespace = ns;
    if (isDeepStrictEqual(prev, obj)) return prev;
    return this.#commit('MODIFIED', resource, obj, prev);
  }

  /** Deletes an object; false when it does not exist. */
  remove(resource: Resource, namespace: string | undefined, name: string): boolean {
    const prev = this.get(resource, namespace, name);
    if (!prev) return false;
    this.#commit('DELETED', resource, structuredClone(prev), prev);
    return true;
  }

  /** The changes after revision `rv`, oldest first; undefined when history before the floor would be needed. */
  changesSince(rv: number): Change[] | undefined {
    if (rv < this.#floor) return undefined;
    return this.#history.filter((c) => c.rv > rv);
  }

  /** Forgets the whole history: from now on only watches from the current revision (or a list) can resume. */
  compact(): void {
    this.#history = [];
    this.#floor = this.#rv;
  }

  #commit(type: ChangeType, resource: Resource, obj: KubeObject, prev: KubeObject | undefined): KubeObject {
    const rv = ++this.#rv;
    obj.metadata.resourceVersion = String(rv);
    const key = storageKey(resource, obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') this.#objects.delete(key);
    else this.#objects.set(key, obj);
    const change: Change = { rv, type, resource, object: obj, ...(prev ? { prev } : {}) };
    this.#history.push(change);
    this.#onChange(change);
    return obj;
  }
}

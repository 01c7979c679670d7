// The one view of the cluster: objects by kind and key, change events in batches, and whether the view is
// complete (synced) and current (not stale).
import { isDeepStrictEqual } from 'node:util';
import { allKinds, objectKey, type AnyObject, type Kind, type ObjectOf } from './model/index.ts';

/** One change to one object; `old` is absent for an add, `object` for a delete. */
export type StoreChange = {
  [K in Kind]: { kind: K; key: string; old: ObjectOf[K] | undefined; object: ObjectOf[K] | undefined };
}[Kind];

/** A write to the store: put an object, or delete the object at a key. */
export type StoreWrite = AnyObject | { kind: Kind; key: string; object: undefined };

/** Where the view stands: every kind it waits for listed once (synced), and whether the source is currently cut off. */
export interface StoreStatus {
  synced: boolean;
  stale: boolean;
  /** Why the view is stale, when it is. */
  staleReason?: string;
  /** Milliseconds since the epoch of the last time the source was known current: now while it is current; 0 before it ever was. */
  lastCurrentAt: number;
}

type Listener = (changes: readonly StoreChange[]) => void;
type StatusListener = (status: StoreStatus) => void;
type WantListener = (kind: Kind, keys: ReadonlySet<string>) => void;
type LoadedListener = (kind: Kind, key: string) => void;

/** Options of a store. */
export interface StoreOptions {
  /**
   * Kinds kept only by reference: the store holds (and the source reads) just the objects named with `want`, not
   * every object of the kind. The ingress gateway reads Secrets this way.
   */
  byReference?: Iterable<Kind>;
  /**
   * Kinds the view does not wait for: read only under a flag (dns's Pods with --pods verified), they must not hold
   * back the rest, as CoreDNS serves Services while its Pods cannot be listed. The store is synced once the other
   * kinds are; whoever reads one of these asks `hasSynced` before taking an absent object for a missing one.
   */
  optional?: Iterable<Kind>;
}

/**
 * Holds the objects of the kinds a component asked for. Sources write batches; subscribers receive only the
 * writes that changed something (an equal object written again is not a change). Listeners must not throw.
 */
export class Store {
  readonly kinds: ReadonlySet<Kind>;
  readonly byReference: ReadonlySet<Kind>;
  readonly optional: ReadonlySet<Kind>;
  #objects = new Map<Kind, Map<string, unknown>>();
  #listeners = new Set<Listener>();
  #statusListeners = new Set<StatusListener>();
  #syncedKinds = new Set<Kind>();
  #status: StoreStatus = { synced: false, stale: false, lastCurrentAt: 0 };
  /** By-reference kinds: the keys wanted, and those of them the source has read once. */
  #wanted = new Map<Kind, { keys: Set<string>; loaded: Set<string> }>();
  #wantListeners = new Set<WantListener>();
  #loadedListeners = new Set<LoadedListener>();

  constructor(kinds: Iterable<Kind> = allKinds, options: StoreOptions = {}) {
    this.kinds = new Set(kinds);
    for (const k of this.kinds) this.#objects.set(k, new Map());
    this.byReference = new Set([...(options.byReference ?? [])].filter((k) => this.kinds.has(k)));
    for (const k of this.byReference) this.#wanted.set(k, { keys: new Set(), loaded: new Set() });
    this.optional = new Set([...(options.optional ?? [])].filter((k) => this.kinds.has(k)));
  }

  /** The object of a kind at a key, or undefined. */
  get<K extends Kind>(kind: K, key: string): ObjectOf[K] | undefined {
    return this.#objects.get(kind)?.get(key) as ObjectOf[K] | undefined;
  }

  /** Every object of a kind, in no particular order. */
  list<K extends Kind>(kind: K): ObjectOf[K][] {
    return [...(this.#objects.get(kind)?.values() ?? [])] as ObjectOf[K][];
  }

  /** Number of objects of a kind. */
  count(kind: Kind): number {
    return this.#objects.get(kind)?.size ?? 0;
  }

  /**
   * Applies writes in order, then tells subscribers what changed. Writes of kinds not kept, and of by-reference
   * objects not wanted, are ignored.
   */
  apply(writes: readonly StoreWrite[]): StoreChange[] {
    return this.#write(writes, true);
  }

  #write(writes: readonly StoreWrite[], onlyWanted: boolean): StoreChange[] {
    const changes: StoreChange[] = [];
    for (const w of writes) {
      const objects = this.#objects.get(w.kind);
      if (!objects) continue;
      const key = w.object === undefined ? (w as { key: string }).key : objectKey(w.kind, w.object.metadata);
      if (onlyWanted && this.#wanted.get(w.kind)?.keys.has(key) === false) continue;
      const old = objects.get(key);
      if (w.object === undefined) {
        if (old === undefined) continue;
        objects.delete(key);
      } else {
        if (old !== undefined && isDeepStrictEqual(old, w.object)) continue;
        objects.set(key, w.object);
      }
      changes.push({ kind: w.kind, key, old, object: w.object } as StoreChange);
    }
    if (changes.length > 0) for (const l of this.#listeners) l(changes);
    return changes;
  }

  /** The wanted keys of a by-reference kind; undefined for a kind kept whole. */
  wanted(kind: Kind): ReadonlySet<string> | undefined {
    return this.#wanted.get(kind)?.keys;
  }

  /**
   * Sets the objects of a by-reference kind the store keeps: the ones no longer wanted are dropped (subscribers see
   * them deleted) and the source is told, through `onWanted`, to read the new ones.
   */
  want(kind: Kind, keys: Iterable<string>): void {
    const w = this.#wanted.get(kind);
    if (!w) throw new Error(`the store keeps every ${kind}; only by-reference kinds can be wanted by key`);
    const next = new Set(keys);
    if (next.size === w.keys.size && [...next].every((k) => w.keys.has(k))) return;
    w.keys = next;
    for (const k of w.loaded) if (!next.has(k)) w.loaded.delete(k);
    const drops = [...this.#objects.get(kind)!.keys()].filter((k) => !next.has(k)).map((key) => ({ kind, key, object: undefined }));
    this.#write(drops, false);
    for (const l of this.#wantListeners) l(kind, next);
  }

  /** Calls `listener` whenever the wanted keys of a by-reference kind change; returns a function that unsubscribes. */
  onWanted(listener: WantListener): () => void {
    this.#wantListeners.add(listener);
    return () => this.#wantListeners.delete(listener);
  }

  /** Records that the source has read a wanted object once (found or not); the first time, tells `onLoaded` listeners. */
  markLoaded(kind: Kind, key: string): void {
    const w = this.#wanted.get(kind);
    if (!w?.keys.has(key) || w.loaded.has(key)) return;
    w.loaded.add(key);
    for (const l of this.#loadedListeners) l(kind, key);
  }

  /**
   * Calls `listener` when a wanted object of a by-reference kind has been read for the first time, found or not (one
   * not found makes no change, so this is how a reader learns it is absent rather than on its way); returns a
   * function that unsubscribes.
   */
  onLoaded(listener: LoadedListener): () => void {
    this.#loadedListeners.add(listener);
    return () => this.#loadedListeners.delete(listener);
  }

  /** The wanted keys of a by-reference kind that the source has not read yet, sorted. */
  loading(kind: Kind): string[] {
    const w = this.#wanted.get(kind);
    return w ? [...w.keys].filter((k) => !w.loaded.has(k)).sort() : [];
  }

  /** Calls `listener` with every batch of changes from now on; returns a function that unsubscribes. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The current status. */
  get status(): StoreStatus {
    // While the source is current, it is current now: the time moves on (what an age alert subtracts from).
    if (this.#status.lastCurrentAt > 0 && !this.#status.stale) return { ...this.#status, lastCurrentAt: Date.now() };
    return { ...this.#status };
  }

  /** Calls `listener` whenever synced or stale changes; returns a function that unsubscribes. */
  onStatus(listener: StatusListener): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  /** Records that a kind has been listed completely once; the store is synced when every kind but the optional ones has. */
  markSynced(kind: Kind): void {
    this.#syncedKinds.add(kind);
    const synced = [...this.kinds].every((k) => this.optional.has(k) || this.#syncedKinds.has(k));
    this.#setStatus({ synced: this.#status.synced || synced });
  }

  /** For a store of no kinds (a component that reads no cluster): synced, and current, at once. */
  markNothingToRead(): void {
    if (this.kinds.size > 0) throw new Error(`a store of ${[...this.kinds].join(', ')} has them to read`);
    this.#setStatus({ synced: true, stale: false, lastCurrentAt: Date.now() });
  }

  /** Whether a kind has been listed completely once (an optional kind may not be, long after the store is synced). */
  hasSynced(kind: Kind): boolean {
    return this.#syncedKinds.has(kind);
  }

  /** Marks the view stale (the source is cut off) with a reason, or current again. */
  markStale(stale: boolean, reason?: string): void {
    // The view was current until now, the moment it is found stale (not moved again while it stays stale).
    if (stale) this.#setStatus({ stale: true, staleReason: reason, ...(this.#status.stale || this.#status.lastCurrentAt === 0 ? {} : { lastCurrentAt: Date.now() }) });
    else this.#setStatus({ stale: false, staleReason: undefined, lastCurrentAt: Date.now() });
  }

  #setStatus(patch: Partial<StoreStatus>): void {
    const next = { ...this.#status, ...patch };
    if (next.staleReason === undefined) delete next.staleReason;
    const changed = next.synced !== this.#status.synced || next.stale !== this.#status.stale || next.staleReason !== this.#status.staleReason;
    this.#status = next;
    if (changed) for (const l of this.#statusListeners) l(this.status);
  }

  /** A plain snapshot of every object, keyed by kind then key, sorted; for tests and debugging. */
  dump(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const k of [...this.kinds].sort()) {
      const objects = this.#objects.get(k)!;
      out[k] = Object.fromEntries([...objects.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return out;
  }
}

// The things in flight (requests, connections) as a doubly linked list rather than a Set, for code paths that add and
// remove one per request. A Set that many short-lived objects pass through keeps them alive for V8's young-generation
// collector: each time V8 rehashes the Set it keeps the old table, with the entries it held, pointing to the new one,
// so that iterators can move on. Once one old table has been promoted, the whole chain of tables after it, and
// everything their entries reach, survives every young collection until a full one. In the ingress under load that
// promoted every request (3.7 MB per collection, 6 ms pauses instead of 1.4 ms; README, Ingress benchmark). An
// entry taken out of this list points at nothing, so a removed request dies young.

export interface LiveEntry<T> {
  readonly value: T;
  prev: LiveEntry<T> | null;
  next: LiveEntry<T> | null;
  /** Whether the entry is still in its list. */
  linked: boolean;
}

export class LiveList<T> {
  #head: LiveEntry<T> | null = null;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds `value`; the entry is what `delete` takes. */
  add(value: T): LiveEntry<T> {
    const entry: LiveEntry<T> = { value, prev: null, next: this.#head, linked: true };
    if (this.#head !== null) this.#head.prev = entry;
    this.#head = entry;
    this.#size++;
    return entry;
  }

  /** Takes `entry` out; false when it was out already (as a Set's delete says). */
  delete(entry: LiveEntry<T>): boolean {
    if (!entry.linked) return false;
    entry.linked = false;
    if (entry.prev !== null) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next !== null) entry.next.prev = entry.prev;
    entry.prev = entry.next = null;
    this.#size--;
    return true;
  }

  /** Takes every entry out. */
  clear(): void {
    for (const e of this.entries()) this.delete(e);
  }

  /**
   * The entries in the list when the loop begins that are still in it when it comes to them, newest first: the
   * loop's body may delete any entry, and what it adds is not visited.
   */
  *entries(): IterableIterator<LiveEntry<T>> {
    const all: LiveEntry<T>[] = [];
    for (let e = this.#head; e !== null; e = e.next) all.push(e);
    for (const e of all) if (e.linked) yield e;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const e of this.entries()) yield e.value;
  }
}

// One open watch: a chunked HTTP response of newline-delimited JSON events, filtered like the API server's cacher does.
import type { ServerResponse } from 'node:http';
import type { Matcher } from './selectors.ts';
import { status, type KubeObject, type Resource } from './resources.ts';
import type { Change } from './store.ts';

/** What a watch selects and how it behaves. */
export interface WatchSpec {
  resource: Resource;
  /** Only this namespace (per-namespace paths). */
  namespace?: string;
  /** Only this object (single-object paths with watch=true). */
  name?: string;
  labels: Matcher;
  fields: Matcher;
  /** The request had allowWatchBookmarks=true. */
  bookmarks: boolean;
  /** Only changes after this revision are sent (the request's resourceVersion, or the current one). */
  after: number;
  /** End the response after this long (timeoutSeconds). */
  timeoutMs?: number;
}

/** The event types a watch stream carries. */
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** An open watch response; `onClose` runs once when it ends for any reason (server end, client abort, socket loss). */
export class WatchStream {
  readonly spec: WatchSpec;
  #res: ServerResponse;
  #timer?: NodeJS.Timeout;

  constructor(res: ServerResponse, spec: WatchSpec, onClose: (w: WatchStream) => void) {
    this.#res = res;
    this.spec = spec;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    // The client's fetch resolves on the headers; a real server sends them before any event.
    res.flushHeaders();
    res.on('close', () => {
      clearTimeout(this.#timer);
      onClose(this);
    });
    if (spec.timeoutMs !== undefined) this.#timer = setTimeout(() => this.end(), spec.timeoutMs);
  }

  /** Whether an object falls in this watch's resource, namespace, name and selectors. */
  selects(obj: KubeObject): boolean {
    const s = this.spec;
    return (
      obj.apiVersion === s.resource.apiVersion &&
      obj.kind === s.resource.kind &&
      (s.namespace === undefined || obj.metadata.namespace === s.namespace) &&
      (s.name === undefined || obj.metadata.name === s.name) &&
      s.labels(obj) &&
      s.fields(obj)
    );
  }

  /** Sends a synthetic ADDED for every selected object (a watch from resourceVersion "" or "0"). */
  snapshot(objects: readonly KubeObject[]): void {
    for (const obj of objects) if (this.selects(obj)) this.#send('ADDED', obj);
  }

  /**
   * Sends a stored change as this watch sees it. Like the cacher, an object that starts or stops matching the
   * selectors arrives as ADDED or DELETED (the latter with its previous content at the change's revision).
   */
  change(c: Change): void {
    if (c.rv <= this.spec.after) return;
    const now = c.type !== 'DELETED' && this.selects(c.object);
    const before = c.prev !== undefined && this.selects(c.prev);
    if (now) this.#send(before ? 'MODIFIED' : 'ADDED', c.object);
    else if (before) this.#send('DELETED', { ...c.prev!, metadata: { ...c.prev!.metadata, resourceVersion: String(c.rv) } });
  }

  /** Sends a BOOKMARK at revision `rv` if the client asked for bookmarks. */
  bookmark(rv: number): void {
    if (!this.spec.bookmarks) return;
    const { kind, apiVersion } = this.spec.resource;
    this.#send('BOOKMARK', { kind, apiVersion, metadata: { resourceVersion: String(rv) } });
  }

  /** Sends the 410 Expired ERROR event the real server sends for a too old resourceVersion, and ends the response. */
  expire(rv: number, floor: number): void {
    this.#send('ERROR', status(410, 'Expired', `too old resource version: ${rv} (${floor})`));
    this.end();
  }

  /** Writes `event` as one JSON line, whatever it is (a malformed event, for tests of the client). */
  raw(event: unknown): void {
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.write(`${JSON.stringify(event)}\n`);
  }

  /** Ends the response cleanly: the client sees the stream close and normally re-watches from its last revision. */
  end(): void {
    if (!this.#res.writableEnded) this.#res.end();
  }

  #send(type: EventType, object: object): void {
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.write(`${JSON.stringify({ type, object })}\n`);
  }
}

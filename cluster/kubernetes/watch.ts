// The client library's Watch, asking for bookmarks and a server-side timeout, reporting when a watch is up and when
// anything arrives on it, for the source's liveness check, and holding back events the library cannot take.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { trimObject, unusableObject } from './unusable.ts';

/** What a BookmarkWatch reports, and how long it waits. */
export interface BookmarkWatchOptions {
  /** Called when the API server has answered a watch request (the response has started). */
  onConnected: () => void;
  /** Called for every event that arrives, bookmarks included. */
  onEvent: () => void;
  /**
   * No response, or no byte on an open response, for this long ends the watch with a TimeoutError, after which the
   * informer watches again at once. The library reports no error for it, so the source checks liveness itself.
   */
  idleTimeoutMs: number;
  /** Called for each event skipped because its object is unusable (see unusableObject), with the event type and why. */
  onMalformed?: (type: string, reason: string) => void;
  /**
   * Called when the server ends a watch without error after it was open at least a second: the informer should watch
   * again at once (the library doubles its reconnect delay after every watch that brought no event, up to 30 s).
   */
  onCleanClose?: () => void;
}

/** Whether a watch ERROR's Status says the resourceVersion asked is ahead of the server (client-go's isTooLargeResourceVersionError). */
function tooLargeVersion(status: any): boolean {
  if (status === null || typeof status !== 'object' || status.code !== 504) return false;
  const causes: any[] = Array.isArray(status.details?.causes) ? status.details.causes : [];
  return causes.some((c) => c?.reason === 'ResourceVersionTooLarge') || /too large resource version/i.test(String(status.message ?? ''));
}

/** A watch shorter than this that ends without error keeps the library's backoff (client-go's "very short watch"). */
const minWatchMs = 1000;

/** Watch that sends allowWatchBookmarks and timeoutSeconds, and reports connections and events. */
export class BookmarkWatch extends Watch {
  #onConnected: () => void;
  #onEvent: () => void;
  #onMalformed?: (type: string, reason: string) => void;
  #onCleanClose?: () => void;

  constructor(config: KubeConfig, options: BookmarkWatchOptions) {
    super(config);
    this.#onConnected = options.onConnected;
    this.#onEvent = options.onEvent;
    this.#onMalformed = options.onMalformed;
    this.#onCleanClose = options.onCleanClose;
    // The field is private in the typings only; the library reads it for every watch, for the wait for the response
    // and then for the silence between two chunks.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = options.idleTimeoutMs;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    let failed = false;
    // client-go picks a random server-side timeout between 5 and 10 minutes so watches do not reconnect in step.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    const onEvent = (phase: string, apiObj: any, watchObj?: any) => {
      this.#onEvent();
      // "Too large resource version" (the server is behind the version asked, e.g. after a failover to a lagging
      // replica) comes as an ERROR of code 504; client-go relists then, as for 410 Gone. The library relists only on
      // 410, and would ask again from the same version forever.
      if (phase === 'ERROR' && tooLargeVersion(apiObj)) return callback(phase, { ...apiObj, code: 410 }, watchObj);
      const reason = unusableObject(apiObj, phase);
      if (reason) return this.#onMalformed?.(String(phase), `its object ${reason}`);
      trimObject(apiObj);
      callback(phase, apiObj, watchObj);
    };
    let controller: AbortController;
    const openedAt = performance.now();
    try {
      controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, onEvent, (err) => {
        if (err) failed = true;
        // A watch the server ended normally after a while (its timeout, a proxy's idle cut) is watched again at
        // once, as client-go's reflector does; only errors and very short watches (under 1 s) back off.
        else if (performance.now() - openedAt >= minWatchMs) this.#onCleanClose?.();
        done(err);
      });
    } catch (e) {
      // The library prepares the request (credentials, TLS options) outside its error handling; the informer awaits
      // this call where nothing catches, so a throw here would end the process. It is a failed watch instead.
      done(e);
      return new AbortController();
    }
    if (!failed) this.#onConnected();
    return controller;
  }
}

// The client library's Watch, asking for bookmarks and a server-side timeout, and reporting when a watch is up and
// when anything arrives on it, for the source's liveness check.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

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
}

/** Watch that sends allowWatchBookmarks and timeoutSeconds, and reports connections and events. */
export class BookmarkWatch extends Watch {
  #onConnected: () => void;
  #onEvent: () => void;

  constructor(config: KubeConfig, options: BookmarkWatchOptions) {
    super(config);
    this.#onConnected = options.onConnected;
    this.#onEvent = options.onEvent;
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
      callback(phase, apiObj, watchObj);
    };
    const controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, onEvent, (err) => {
      if (err) failed = true;
      done(err);
    });
    if (!failed) this.#onConnected();
    return controller;
  }
}

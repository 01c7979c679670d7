// The client library's Watch, asking for bookmarks and a server-side timeout, and reporting when a watch is up.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

/** Watch that sends allowWatchBookmarks and timeoutSeconds, and calls `onConnected` when the stream opens. */
export class BookmarkWatch extends Watch {
  #onConnected: () => void;

  constructor(config: KubeConfig, onConnected: () => void) {
    super(config);
    this.#onConnected = onConnected;
    // Quiet resources still get a bookmark about once a minute; a longer silence means a dead connection.
    // The field is private in the typings only; the library reads it for every watch.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 90_000;
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
    const controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds }, callback, (err) => {
      if (err) failed = true;
      done(err);
    });
    if (!failed) this.#onConnected();
    return controller;
  }
}

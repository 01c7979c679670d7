// The interface both sources (a manifest directory, the Kubernetes API) implement.
import type { Store } from './store.ts';

/** Feeds a Store. `start` resolves once the first full view is in the store, or rejects when it never can be. */
export interface ClusterSource {
  /** "manifests" or "kubernetes", for logs and metrics. */
  readonly name: string;
  /** The API server's URL (kubernetes), whose requests a component counts under client-go's metrics. */
  readonly apiServer?: string | undefined;
  /** Loads the first full view into the store, then keeps it current until `stop`. */
  start(store: Store): Promise<void>;
  /** Stops watching; the store keeps what it holds. */
  stop(): Promise<void>;
  /**
   * What the view lacks because it could never be read, one entry each (manifests: files rejected since they were
   * first seen, with the reason); empty or absent when the view is whole as far as the source knows.
   */
  neverRead?(): string[];
  /** Calls `listener` when what neverRead() lists changes (a file fixed or removed); returns a function that unsubscribes. */
  onNeverReadChange?(listener: () => void): () => void;
}

// Connect timeouts of the userspace proxy's dials, all served by one coarse interval timer. A timer per dial (what
// `socket.setTimeout` arms) is set up and torn down for every connection; at thousands of new connections per
// second that bookkeeping is a measurable share of the proxy's CPU, while a connect timeout needs no precision.
// The pending dials are a linked list, not a Map: a Map that every connection passes through keeps them all alive
// for V8's young collections (runtime/live-list.ts says why).
import { LiveList, type LiveEntry } from '../../runtime/live-list.ts';

/** Dials per new connection, each to another endpoint when there is one (kube-proxy's userspace EndpointDialTimeouts). */
export const maxDialAttempts = 4;

/**
 * Calls a dial's `onTimeout` once it has been pending for `timeoutMs` — doubled for each retry, as kube-proxy's
 * userspace proxier waits 250 ms, 500 ms, 1 s and 2 s — give or take one tick (a fifth of `timeoutMs`, at most 1 s).
 * Time is counted in ticks of the interval, so a wall-clock jump neither fires nor delays one. The interval is
 * unref'd and stops at the first tick that finds nothing pending.
 */
export class DialDeadlines {
  readonly #tickMs: number;
  /** Ticks a dial may stay pending; it times out at the tick after that. */
  readonly #ticks: number;
  readonly #pending = new LiveList<Pending>();
  #now = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#tickMs = Math.min(1000, Math.max(10, Math.ceil(timeoutMs / 5)));
    this.#ticks = Math.max(1, Math.ceil(timeoutMs / this.#tickMs));
  }

  /** Dials pending now. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Starts the clock of a dial, the `attempt`-th (from 0) for its connection; `onTimeout` runs at most once, unless
   * `settle` is given the returned dial first.
   */
  start(onTimeout: () => void, attempt = 0): PendingDial {
    const dial = this.#pending.add({ expires: this.#now + this.#ticks * 2 ** attempt + 1, onTimeout });
    this.#timer ??= setInterval(() => this.#tick(), this.#tickMs).unref();
    return dial;
  }

  /** Stops the clock of `dial`; false if it was not pending (it settled or timed out already). */
  settle(dial: PendingDial): boolean {
    return this.#pending.delete(dial);
  }

  /** Stops the timer and forgets every pending dial without calling back. */
  clear(): void {
    this.#pending.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    this.#now++;
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    for (const dial of this.#pending.entries()) {
      if (dial.value.expires > this.#now) continue;
      this.#pending.delete(dial);
      dial.value.onTimeout();
    }
  }
}

/** A dial whose clock runs: what `settle` takes. */
export type PendingDial = LiveEntry<Pending>;

interface Pending {
  /** The tick at which the dial times out. */
  expires: number;
  onTimeout: () => void;
}

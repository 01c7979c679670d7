// Passive outlier ejection (Envoy's consecutive gateway failures): an endpoint that fails to connect N times in a row
// is left out of balancing for a while, doubling each time it is ejected again, never for more than half of its
// backend. There is no active probing: when its time is up it simply gets traffic again. Pure: `now` is passed in.

/** Tuning of outlier ejection. */
export interface OutlierOptions {
  /** Consecutive connect failures that eject an endpoint. */
  consecutiveFailures: number;
  /** First ejection time; doubled on each repeat. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** Share of a backend's endpoints that may be ejected at once, in percent (rounded down). */
  maxEjectedPercent: number;
}

/** Defaults: 5 failures, 10 s doubling up to 5 min, at most half of the endpoints. */
export const defaultOutlierOptions: Readonly<OutlierOptions> = Object.freeze({
  consecutiveFailures: 5,
  baseEjectionMs: 10_000,
  maxEjectionMs: 300_000,
  maxEjectedPercent: 50,
});

/** The outlier state an endpoint carries (as plain fields, so the balancer reads them without a lookup). */
export interface OutlierState {
  /** Consecutive connect failures since the last success or ejection. */
  failures: number;
  /** Ejected while now < ejectedUntil (ms, same clock as `now`: the forwarders pass performance.now(), monotonic). */
  ejectedUntil: number;
  /** Ejections in the current streak: the next one lasts base × 2^ejections. */
  ejections: number;
  /** Length of the last ejection, to decide when a streak is over. */
  lastEjectionMs: number;
}

/** A fresh outlier state. */
export function newOutlierState(): OutlierState {
  return { failures: 0, ejectedUntil: 0, ejections: 0, lastEjectionMs: 0 };
}

/** Applies the ejection rules to OutlierStates. */
export class OutlierTracker {
  readonly options: Readonly<OutlierOptions>;

  constructor(options: Partial<OutlierOptions> = {}) {
    this.options = { ...defaultOutlierOptions, ...options };
  }

  /** True while the endpoint is ejected. */
  ejected(state: OutlierState, now: number): boolean {
    return state.ejectedUntil > now;
  }

  /**
   * Records a connect failure of `state`, one of `peers` (its backend's endpoints, itself included); returns the
   * ejection time when this failure ejects it, else 0. Failures past the cap keep counting and eject it as soon
   * as another endpoint returns.
   */
  failure(state: OutlierState, peers: readonly OutlierState[], now: number): number {
    if (state.ejectedUntil > now) return 0;
    state.failures++;
    if (state.failures < this.options.consecutiveFailures) return 0;
    const cap = Math.floor((peers.length * this.options.maxEjectedPercent) / 100);
    let ejected = 0;
    for (const peer of peers) if (peer.ejectedUntil > now) ejected++;
    if (ejected + 1 > cap) return 0;
    const ms = Math.min(this.options.baseEjectionMs * 2 ** state.ejections, this.options.maxEjectionMs);
    state.ejectedUntil = now + ms;
    state.lastEjectionMs = ms;
    state.ejections++;
    state.failures = 0;
    return ms;
  }

  /** Records an answer from the endpoint; a streak of ejections ends once it has answered well for as long as it was last ejected. */
  success(state: OutlierState, now: number): void {
    state.failures = 0;
    if (state.ejections > 0 && now >= state.ejectedUntil + state.lastEjectionMs) state.ejections = 0;
  }
}

// Two small things long-lived servers share: waiting for work in flight to end (a drain), and warning of a repeated
// event at most once a minute per reason (one client may cause thousands).

/** Waits for a condition that can change only when `check()` is called (as each piece of work ends). */
export class SettleWaiter {
  #hook: (() => void) | undefined;

  /** Resolves once `done()` holds, looked at now and at each check(), or after `ms`. */
  until(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    this.#hook = () => {
      if (done()) (clearTimeout(timer), resolve());
    };
    return promise.finally(() => (this.#hook = undefined));
  }

  /** Something ended: the condition waited for is looked at again. */
  check(): void {
    this.#hook?.();
  }
}

/** Warnings of a repeated event, at most one a minute per reason, saying how many more there were. */
export class MinuteWarnings<R extends string = string> {
  readonly #warned = new Map<R, { at: number; since: number }>();

  /**
   * The suffix to log `reason`'s warning with now (empty, or how many were left unlogged in the last minute), or
   * undefined when one was logged less than a minute ago (this one is counted).
   */
  take(reason: R, now = Date.now()): string | undefined {
    const warned = this.#warned.get(reason);
    if (warned && now - warned.at < 60_000) {
      warned.since++;
      return undefined;
    }
    this.#warned.set(reason, { at: now, since: 0 });
    return warned?.since ? ` (and ${warned.since} more for this reason in the last minute)` : '';
  }
}

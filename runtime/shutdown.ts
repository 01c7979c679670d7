// Clean shutdown on SIGTERM and SIGINT: stop in reverse order of start, bounded in time.
import type { Logger } from './logger.ts';

type Step = { name: string; run: () => Promise<void> | void };

/** Runs registered steps, last registered first, when the process is told to stop. */
export class Shutdown {
  #steps: Step[] = [];
  #log: Logger;
  #timeoutMs: number;
  #started?: Promise<void>;
  #exit: (code: number) => void;

  constructor(log: Logger, options: { timeoutMs?: number; exit?: (code: number) => void } = {}) {
    this.#log = log;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#exit = options.exit ?? ((code) => process.exit(code));
  }

  /** Registers a step to run on shutdown. */
  add(name: string, run: Step['run']): void {
    this.#steps.push({ name, run });
  }

  /** Gives the whole shutdown at least `ms` (a component that drains for that long asks for it). */
  allow(ms: number): void {
    this.#timeoutMs = Math.max(this.#timeoutMs, ms);
  }

  /** Listens for SIGTERM and SIGINT; a second signal exits at once. */
  installSignalHandlers(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (this.#started) {
          this.#log.warn({ signal }, 'second signal; exiting now');
          this.#exit(130);
          return;
        }
        this.#log.info({ signal }, 'shutting down');
        void this.run(0);
      });
    }
  }

  /**
   * Runs every step (each failure is logged, not fatal), then exits with `code`, or calls `instead` (a restart in
   * place, which does not return); a hung step is cut off, and the process exits.
   */
  run(code: number, instead?: () => void): Promise<void> {
    this.#started ??= (async () => {
      const timer = setTimeout(() => {
        this.#log.error({ timeoutMs: this.#timeoutMs }, 'shutdown took too long; exiting');
        this.#exit(code === 0 ? 1 : code);
      }, this.#timeoutMs);
      timer.unref();
      for (const step of [...this.#steps].reverse()) {
        try {
          await step.run();
        } catch (e) {
          this.#log.error({ err: e, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
      if (instead === undefined) this.#exit(code);
      else {
        try {
          instead();
        } catch (e) {
          this.#log.error({ err: e }, 'restart in place failed; exiting');
          this.#exit(code === 0 ? 1 : code);
        }
      }
    })();
    return this.#started;
  }
}

// limit-rate and limit-rate-after: a response body written to the client no faster than a rate, after a first part
// sent at full speed, as nginx's limit_rate and limit_rate_after take it (ngx_http_write_filter): by the time t seconds
// have passed since the response began, at most `after + rate × t` bytes have gone out, so a body takes
// (size − after) / rate in all, as through nginx; a client that fell behind may catch up with the clock but never get
// ahead of it. Chunks from the upstream
// wait in a queue; `write` returns false while any wait, and 'drain' (once) says the queue has gone out, so the
// upstream is read no faster than the client is served.

/** A response body limit: bytes per second, after a number of bytes sent unlimited. */
export interface ResponseRate {
  bytesPerSecond: number;
  afterBytes: number;
}

/** What the pacer writes to: a client response. */
export interface PacedSink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** Writes chunks to `sink` at `rate`; `stop()` drops what waits (the client went away). */
export class Pacer {
  readonly #sink: PacedSink;
  readonly #rate: ResponseRate;
  readonly #now: () => number;
  readonly #start: number;
  #sent = 0;
  #queue: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The sink itself is full: waiting for its drain. */
  #sinkFull = false;
  #drains: Array<() => void> = [];
  #empty: (() => void) | undefined;
  #stopped = false;

  constructor(sink: PacedSink, rate: ResponseRate, now: () => number = () => performance.now()) {
    this.#sink = sink;
    this.#rate = rate;
    this.#now = now;
    this.#start = now();
  }

  /** Bytes written to the sink so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Whether the client's side is full (it is not taking data), as opposed to chunks waiting for the rate. */
  get clientFull(): boolean {
    return this.#sinkFull;
  }

  /** Whether chunks wait to be written. */
  get pending(): boolean {
    return this.#queue.length > 0;
  }

  /** Queues `chunk` and writes what the rate allows now; false when something waits (then 'drain' follows). */
  write(chunk: Buffer): boolean {
    if (this.#stopped) return true;
    this.#queue.push(chunk);
    // While a timer or the sink's drain is due, that flush takes the chunk too.
    if (this.#timer === undefined && !this.#sinkFull) this.#flush();
    return this.#queue.length === 0 && !this.#sinkFull;
  }

  /** `listener` once the queue has gone out and the sink took it. */
  once(_event: 'drain', listener: () => void): this {
    this.#drains.push(listener);
    return this;
  }

  /** `done` once the queue is empty: at once when it is. */
  whenEmpty(done: () => void): void {
    if (this.#queue.length === 0) return done();
    this.#empty = done;
  }

  /** Drops the queue and every pending timer and listener. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
    this.#drains = [];
    this.#empty = undefined;
  }

  /**
   * How many bytes may go out now; negative when over. nginx's write filter lets `after + rate × (t + 1)` go but then
   * waits for each send's bytes at the rate, which pays the extra second back: a response takes
   * (size − after) / rate in all. The bound here is that total's: `after + rate × t`.
   */
  allowance(): number {
    const seconds = (this.#now() - this.#start) / 1000;
    return Math.floor(this.#rate.afterBytes + this.#rate.bytesPerSecond * seconds) - this.#sent;
  }

  #queued(): number {
    let n = 0;
    for (const c of this.#queue) n += c.length;
    return n;
  }

  #flush(): void {
    while (this.#queue.length > 0 && !this.#stopped && !this.#sinkFull) {
      let budget = this.allowance();
      // Written in steps of at least an eighth of a second's worth (or what is left), not a byte per timer.
      const step = Math.min(this.#queued(), Math.max(1, Math.floor(this.#rate.bytesPerSecond / 8)));
      if (budget < step) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#flush();
        }, Math.ceil(((step - budget) * 1000) / this.#rate.bytesPerSecond));
        return;
      }
      while (budget > 0 && this.#queue.length > 0 && !this.#sinkFull) {
        const head = this.#queue[0]!;
        const part = head.length <= budget ? head : head.subarray(0, budget);
        if (part === head) this.#queue.shift();
        else this.#queue[0] = head.subarray(budget);
        this.#sent += part.length;
        budget -= part.length;
        if (!this.#sink.write(part)) {
          this.#sinkFull = true;
          this.#sink.once('drain', () => {
            this.#sinkFull = false;
            this.#flush();
          });
        }
      }
    }
    if (this.#queue.length > 0 || this.#sinkFull || this.#stopped) return;
    const drains = this.#drains;
    this.#drains = [];
    for (const d of drains) d();
    const empty = this.#empty;
    this.#empty = undefined;
    empty?.();
  }
}

// A gateway-wide cap on open connections per client IP (ingress-nginx has none; it guards the gateway's own file
// descriptors and memory against one client opening connections without end).

/** A cap that is not a positive integer. */
export class ConnectionCapError extends Error {
  override readonly name = 'ConnectionCapError';
  readonly code = 'NETPLANE_INGRESS_CONNECTION_CAP';
}

/** A cap on open connections per client IP across the whole gateway; memory is one entry per IP with connections open. */
export class ConnectionCap {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /** Throws ConnectionCapError unless `maxPerIP` is a positive integer (or Infinity: no cap, only counting). */
  constructor(maxPerIP: number) {
    if (!(maxPerIP === Infinity || (Number.isSafeInteger(maxPerIP) && maxPerIP > 0))) {
      throw new ConnectionCapError(`connections per client IP ${maxPerIP} is not allowed: it must be a positive integer`);
    }
    this.#max = maxPerIP;
  }

  /** Counts a new connection from `ip`; false (and not counted) when `ip` already has the maximum open. */
  acquire(ip: string): boolean {
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.#max) return false;
    this.#open.set(ip, n + 1);
    return true;
  }

  /** Uncounts a connection of `ip` that acquire() counted; call exactly once per successful acquire(). */
  release(ip: string): void {
    const n = this.#open.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.#open.delete(ip);
    else this.#open.set(ip, n - 1);
  }

  /** IPs with at least one connection open. */
  get size(): number {
    return this.#open.size;
  }

  /** Connections open from `ip`. */
  count(ip: string): number {
    return this.#open.get(ip) ?? 0;
  }
}

// The upstream list and its health, after CoreDNS's forward plugin: failed exchanges count against an upstream;
// after `maxFails` in a row it is down and probed in the background every `probeIntervalMs` until it answers
// anything at all. Down upstreams are tried last, so a dead first nameserver stops costing every query a timeout;
// when every one is down they are all still tried, in order (health checking may be what is broken), unless failFast.
import { isIPv6 } from 'node:net';
import type { HostPort } from '../../runtime/flags.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { UpstreamAddress } from './address.ts';

/**
 * How healthy upstreams are ordered for a query (CoreDNS forward `policy`): shuffled per query (`random`, CoreDNS's
 * default), rotated by one per query (`round_robin`), or as configured (`sequential`: resolv.conf order, failover).
 */
export type Policy = 'random' | 'round_robin' | 'sequential';

/** The policies, for flag checking. */
export const policies: readonly Policy[] = ['random', 'round_robin', 'sequential'];

/** One upstream and its health. */
export interface Upstream {
  readonly to: UpstreamAddress;
  /** "host:port" ("[v6]:port"), the `to` label of the metrics (also for DNS over TLS, as in CoreDNS). */
  readonly label: string;
  /** Failed exchanges (or probes) in a row. */
  fails: number;
  down: boolean;
}

/** Options of the upstream set. */
export interface UpstreamSetOptions {
  policy: Policy;
  /** Failures in a row that take an upstream down; 0: none ever does. */
  maxFails: number;
  probeIntervalMs: number;
  /** Asks the upstream something; resolves true on any reply, false (or rejects) otherwise. */
  probe: (u: Upstream) => Promise<boolean>;
  log: Logger;
  onProbeFailed?: (u: Upstream) => void;
  /** Called when a query finds every upstream down (coredns_forward_healthcheck_broken_total). */
  onAllDown?: () => void;
  /** With every upstream down, try none (the query fails at once) instead of all (CoreDNS failfast_all_unhealthy_upstreams). */
  failFast?: boolean;
}

/** The `to` label for an address. */
export function upstreamLabel(to: HostPort): string {
  return isIPv6(to.host) ? `[${to.host}]:${to.port}` : `${to.host}:${to.port}`;
}

/** The upstreams of one forwarder. */
export class UpstreamSet {
  readonly all: readonly Upstream[];
  /** The upstreams still used: all but those excluded (found to loop back to us). */
  #active: Upstream[];
  #o: UpstreamSetOptions;
  #probes = new Map<Upstream, NodeJS.Timeout>();
  #probing = new Set<Upstream>();
  #closed = false;
  /** Queries ordered so far under round_robin. */
  #robin = 0;

  constructor(upstreams: readonly UpstreamAddress[], options: UpstreamSetOptions) {
    this.all = upstreams.map((to) => ({ to, label: upstreamLabel(to), fails: 0, down: false }));
    this.#active = [...this.all];
    this.#o = options;
  }

  /** The order to try upstreams in for one query: healthy ones by policy, then down ones as configured. */
  order(): Upstream[] {
    const active = this.#active;
    const up = active.filter((u) => !u.down);
    if (up.length === 0) {
      if (active.length > 0) this.#o.onAllDown?.();
      return this.#o.failFast ? [] : [...active];
    }
    if (this.#o.policy === 'random') {
      for (let i = up.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [up[i], up[j]] = [up[j]!, up[i]!];
      }
    } else if (this.#o.policy === 'round_robin' && up.length > 1) {
      const r = this.#robin++ % up.length;
      up.push(...up.splice(0, r));
    }
    return up.length === active.length ? up : [...up, ...active.filter((u) => u.down)];
  }

  /** Upstreams still used. */
  get usable(): number {
    return this.#active.length;
  }

  /** Stops using `u` for good (it forwards back to us), probes included. */
  exclude(u: Upstream): void {
    this.#active = this.#active.filter((a) => a !== u);
    clearInterval(this.#probes.get(u));
    this.#probes.delete(u);
  }

  /** An exchange (or probe) got a reply: the upstream is healthy. */
  succeeded(u: Upstream): void {
    u.fails = 0;
    if (!u.down) return;
    u.down = false;
    clearInterval(this.#probes.get(u));
    this.#probes.delete(u);
    this.#o.log.info({ upstream: u.label }, 'DNS upstream answers again');
  }

  /** An exchange failed (timeout, refused, bad reply). */
  failed(u: Upstream): void {
    u.fails++;
    // max_fails 0: never taken down, as CoreDNS's (its health checking is off then).
    if (this.#o.maxFails === 0 || u.down || u.fails < this.#o.maxFails || this.#closed || !this.#active.includes(u)) return;
    u.down = true;
    this.#o.log.warn({ upstream: u.label, fails: u.fails }, 'DNS upstream failed repeatedly; trying it last and probing it until it answers');
    const timer = setInterval(() => void this.#probe(u), this.#o.probeIntervalMs);
    timer.unref();
    this.#probes.set(u, timer);
  }

  /** Stops every probe. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#probes.values()) clearInterval(timer);
    this.#probes.clear();
  }

  async #probe(u: Upstream): Promise<void> {
    if (this.#probing.has(u)) return;
    this.#probing.add(u);
    let ok = false;
    try {
      ok = await this.#o.probe(u);
    } catch {
      ok = false;
    } finally {
      this.#probing.delete(u);
    }
    if (this.#closed || !u.down) return;
    if (ok) this.succeeded(u);
    else this.#o.onProbeFailed?.(u);
  }
}

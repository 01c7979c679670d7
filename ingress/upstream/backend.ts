// A backend's endpoints and the choice among them: affinity cookie first, then the policy's balancing, leaving out
// ejected endpoints and the ones a retry already tried.
import type { Logger } from '../../runtime/logger.ts';
import type { IngressPolicy } from '../routes/types.ts';
import { RoundRobin, pickByHash, pickBySubset, pickLeastRequest } from './balancer.ts';
import type { OutlierTracker } from './outlier.ts';
import { UpstreamEndpoint, endpointAddress, overTls, type BackendProtocol, type Endpoint, type UpstreamTls } from './pool.ts';

/** The endpoints of one backend (BackendRef.key) and their balancing state. */
export class Backend {
  readonly key: string;
  #protocol: BackendProtocol = 'HTTP';
  #members: UpstreamEndpoint[] = [];
  #byCookie = new Map<string, UpstreamEndpoint>();
  readonly #rr = new RoundRobin(Math.floor(Math.random() * 1024));
  readonly #tracker: OutlierTracker;
  readonly #log: Logger;
  readonly #connections: number;
  // The latest ejectedUntil of any member: while it is in the past, no member is ejected and picks skip the check.
  #ejectedUntil = 0;

  constructor(key: string, tracker: OutlierTracker, log: Logger, connections: number) {
    this.key = key;
    this.#tracker = tracker;
    this.#log = log;
    this.#connections = connections;
  }

  /** The endpoints in use. */
  get members(): readonly UpstreamEndpoint[] {
    return this.#members;
  }

  /** Replaces the endpoint list; endpoints that stay keep their pools and state. Returns the ones removed. */
  update(endpoints: readonly Endpoint[], protocol: BackendProtocol, tls?: UpstreamTls): UpstreamEndpoint[] {
    const old = new Map<string, UpstreamEndpoint>();
    for (const m of this.#members) old.set(m.address, m);
    const next: UpstreamEndpoint[] = [];
    const seen = new Set<string>();
    for (const e of endpoints) {
      const address = endpointAddress(e);
      if (seen.has(address)) continue;
      seen.add(address);
      let m = old.get(address);
      if (m !== undefined && m.protocol === protocol && m.tls?.id === (overTls(protocol) ? tls?.id : undefined)) old.delete(address);
      else m = new UpstreamEndpoint(e, protocol, this.#connections, tls);
      next.push(m);
    }
    this.#byCookie.clear();
    for (const m of next) this.#byCookie.set(m.cookie, m);
    this.#members = next;
    this.#protocol = protocol;
    this.#ejectedUntil = 0;
    for (const m of next) if (m.ejectedUntil > this.#ejectedUntil) this.#ejectedUntil = m.ejectedUntil;
    return [...old.values()];
  }

  /** The protocol of the current endpoints. */
  get protocol(): BackendProtocol {
    return this.#protocol;
  }

  /** The endpoint an affinity cookie names, when it is present and not ejected. */
  byCookie(value: string | undefined, now: number): UpstreamEndpoint | undefined {
    if (value === undefined) return undefined;
    const m = this.#byCookie.get(value);
    return m !== undefined && !this.#tracker.ejected(m, now) ? m : undefined;
  }

  /**
   * An endpoint by the policy's balancing — by `hashKey` on the consistent hash ring when there is one — not ejected
   * and not in `exclude`; undefined when none is left. When only ejected ones are left (the endpoint list changed
   * under the ejections), they are used rather than none.
   */
  pick(policy: IngressPolicy, exclude: readonly UpstreamEndpoint[] | null, now: number, hashKey?: string): UpstreamEndpoint | undefined {
    const ejected = this.#ejectedUntil > now;
    if (exclude === null && !ejected) return this.#choose(policy, undefined, true, hashKey);
    const tracker = this.#tracker;
    const m = this.#choose(policy, (m) => (exclude === null || !exclude.includes(m)) && !tracker.ejected(m, now), exclude === null, hashKey);
    if (m !== undefined || !ejected) return m;
    return exclude === null ? this.#choose(policy, undefined, true, hashKey) : this.#choose(policy, (m) => !exclude.includes(m), false, hashKey);
  }

  #choose(policy: IngressPolicy, accept: ((m: UpstreamEndpoint) => boolean) | undefined, advance: boolean, hashKey: string | undefined): UpstreamEndpoint | undefined {
    if (hashKey !== undefined) {
      const size = policy.upstreamHashSubset;
      return size === undefined ? pickByHash(this.#members, hashKey, accept) : pickBySubset(this.#members, hashKey, size, accept);
    }
    return policy.loadBalance === 'least_request' ? pickLeastRequest(this.#members, accept) : this.#rr.pick(this.#members, accept, advance);
  }

  /** Records a connect failure of `m` for outlier ejection. */
  failed(m: UpstreamEndpoint, now: number): void {
    if (!this.#members.includes(m)) return;
    const ms = this.#tracker.failure(m, this.#members, now);
    if (ms > 0) {
      if (m.ejectedUntil > this.#ejectedUntil) this.#ejectedUntil = m.ejectedUntil;
      this.#log.warn({ backend: this.key, endpoint: m.address, ejectedMs: ms }, 'upstream endpoint ejected after consecutive connect failures');
    }
  }

  /** Records an answer from `m`. */
  succeeded(m: UpstreamEndpoint, now: number): void {
    if (m.failures !== 0 || m.ejections !== 0) this.#tracker.success(m, now);
  }
}

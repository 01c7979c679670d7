// Choosing an endpoint for a new TCP connection or UDP flow: round-robin (even by construction), with kube-proxy's
// ClientIP session affinity. Pure: no I/O, the clock is injected, so the rules are unit-tested without sockets.
import { BlockList, isIPv6 } from 'node:net';
import type { Target } from '../plan/types.ts';
import type { ListenerSpec } from './listeners.ts';

/** `ip:port` (`[ip]:port` for IPv6): how an endpoint is identified. */
export function targetKey(t: Target): string {
  return t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`;
}

interface Sticky {
  key: string;
  /** When the client last started a connection or flow (ms on the picker's clock: performance.now() unless a test injects one). */
  last: number;
}

/**
 * Spreads new connections over a Service's endpoints in turn. With affinity (`affinitySeconds > 0`) a client IP
 * keeps its endpoint until `affinitySeconds` pass without a new connection from it, or the endpoint goes away.
 * Expired entries are pruned as picks happen (at most once per timeout), so the table does not need a timer.
 */
export class EndpointPicker {
  #endpoints: Target[] = [];
  #byKey = new Map<string, Target>();
  #next: number;
  #affinityMs = 0;
  #sticky = new Map<string, Sticky>();
  #lastPrune = 0;
  readonly #now: () => number;

  constructor(endpoints: readonly Target[], affinitySeconds: number, now: () => number = () => performance.now()) {
    this.#now = now;
    // A random start, so that several threads or a restart do not all send their first connection to endpoint 0.
    this.#next = Math.floor(Math.random() * 1024);
    this.update(endpoints, affinitySeconds);
  }

  /** Number of endpoints. */
  get size(): number {
    return this.#endpoints.length;
  }

  /** Whether picks depend on the client IP (ClientIP affinity is on); without it any IP, even '', picks alike. */
  get needsClientIP(): boolean {
    return this.#affinityMs > 0;
  }

  /** Number of client IPs with a live affinity entry (expired ones may linger until the next prune). */
  get stickyClients(): number {
    return this.#sticky.size;
  }

  /** The endpoints, in the order given. */
  get endpoints(): readonly Target[] {
    return this.#endpoints;
  }

  /** Replaces the endpoints and the affinity timeout in place; clients whose endpoint is gone lose their entry. */
  update(endpoints: readonly Target[], affinitySeconds: number): void {
    this.#endpoints = [...endpoints];
    this.#byKey = new Map(this.#endpoints.map((t) => [targetKey(t), t]));
    this.#affinityMs = Math.max(0, affinitySeconds) * 1000;
    if (this.#affinityMs === 0) this.#sticky.clear();
    for (const [ip, s] of this.#sticky) if (!this.#byKey.has(s.key)) this.#sticky.delete(ip);
  }

  /**
   * The endpoint for a new connection from `clientIP`, or undefined when there is none. `avoid` is an endpoint that
   * just failed: it is not chosen (a retry), and the client's affinity moves to the new choice.
   */
  pick(clientIP: string, avoid?: Target): Target | undefined {
    const now = this.#now();
    if (this.#affinityMs > 0) {
      this.#prune(now);
      const s = this.#sticky.get(clientIP);
      const avoidKey = avoid ? targetKey(avoid) : undefined;
      if (s && now - s.last <= this.#affinityMs && s.key !== avoidKey) {
        const t = this.#byKey.get(s.key);
        if (t) {
          s.last = now;
          return t;
        }
      }
      const t = this.#roundRobin(avoidKey);
      if (t) this.#sticky.set(clientIP, { key: targetKey(t), last: now });
      else this.#sticky.delete(clientIP);
      return t;
    }
    return this.#roundRobin(avoid ? targetKey(avoid) : undefined);
  }

  #roundRobin(avoidKey: string | undefined): Target | undefined {
    const n = this.#endpoints.length;
    for (let i = 0; i < n; i++) {
      const t = this.#endpoints[this.#next++ % n]!;
      if (this.#next >= 1 << 30) this.#next = 0;
      if (avoidKey === undefined || targetKey(t) !== avoidKey) return t;
    }
    return undefined;
  }

  #prune(now: number): void {
    if (now - this.#lastPrune < this.#affinityMs) return;
    this.#lastPrune = now;
    for (const [ip, s] of this.#sticky) if (now - s.last > this.#affinityMs) this.#sticky.delete(ip);
  }
}

/** What a listener's picker reads of its spec. */
export type PickerSpec = Pick<ListenerSpec, 'endpoints' | 'affinitySeconds' | 'shortcut'>;

/** A BlockList of CIDRs (`addr/len`; a bare address is a host); malformed entries are left out. */
function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = '', len] = c.split('/');
    const v6 = isIPv6(addr);
    try {
      list.addSubnet(addr, len === undefined ? (v6 ? 128 : 32) : Number(len), v6 ? 'ipv6' : 'ipv4');
    } catch {
      // not an address: matches nothing
    }
  }
  return list;
}

/**
 * The endpoint choice of one listener. With a short-cut in the spec (externalTrafficPolicy Local at a nodePort),
 * clients from its sources (this node, the pod network) pick among the short-cut endpoints, others among
 * `endpoints`, each with its own round-robin and affinity table; else every client picks among `endpoints`.
 */
export class ListenerPicker {
  readonly #main: EndpointPicker;
  #shortcut?: EndpointPicker;
  #sources?: BlockList;
  readonly #now: () => number;

  constructor(spec: PickerSpec, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#main = new EndpointPicker(spec.endpoints, spec.affinitySeconds, now);
    this.update(spec);
  }

  /** Takes new endpoints, affinity and short-cut in place. */
  update(spec: PickerSpec): void {
    this.#main.update(spec.endpoints, spec.affinitySeconds);
    if (!spec.shortcut) {
      this.#shortcut = undefined;
      this.#sources = undefined;
      return;
    }
    if (this.#shortcut) this.#shortcut.update(spec.shortcut.endpoints, spec.affinitySeconds);
    else this.#shortcut = new EndpointPicker(spec.shortcut.endpoints, spec.affinitySeconds, this.#now);
    this.#sources = cidrList(spec.shortcut.sources);
  }

  /** Whether picks depend on the client IP (affinity, or a short-cut). */
  get needsClientIP(): boolean {
    return this.#shortcut !== undefined || this.#main.needsClientIP;
  }

  /** Whether a client at `ip` takes the short-cut endpoints. */
  shortcuts(ip: string): boolean {
    if (!this.#sources) return false;
    // A dual-stack socket shows IPv4 clients as IPv4-mapped IPv6 addresses.
    const plain = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
    return this.#sources.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  }

  /** The endpoint for a new connection or flow from `clientIP` (see EndpointPicker.pick); undefined when none. */
  pick(clientIP: string, avoid?: Target): Target | undefined {
    return (this.#shortcut && this.shortcuts(clientIP) ? this.#shortcut : this.#main).pick(clientIP, avoid);
  }

  /** Every endpoint a client may be sent to. */
  get endpoints(): readonly Target[] {
    return this.#shortcut ? [...this.#main.endpoints, ...this.#shortcut.endpoints] : this.#main.endpoints;
  }
}

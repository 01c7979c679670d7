// The userspace backend of `netplane proxy --mode userspace`: needs no privileges. Every Service port becomes a
// listening socket on the bind address (at its nodePort if it has one, else at its port), and connections and UDP
// flows are forwarded inside the process to the port's endpoints.
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ProxyBackend, SyncResult } from '../backend.ts';
import type { ProxyPlan } from '../plan/types.ts';
import type { Logger } from '../../runtime/logger.ts';
import { listenerSpecs, type ListenerSpec, type LoopingEndpoint } from './listeners.ts';
import { TcpListener } from './tcp.ts';
import { UdpListener } from './udp.ts';
import { FlowBudget, type UdpDropReason } from './flow-budget.ts';
import { TcpWorkerPool } from './workers.ts';

/** Options of the userspace backend. */
export interface UserspaceOptions {
  log: Logger;
  /** The address every Service port listens on. Default 127.0.0.1. */
  bindAddress?: string;
  /** A UDP flow with no datagram either way for this long is closed (kube-proxy's --udp-timeout). Default 250 ms. */
  udpIdleMs?: number;
  /** At most this many UDP flows per Service port; past it the least recently used is evicted. Default 4096. */
  udpMaxFlows?: number;
  /** Called once per UDP flow evicted at the cap (a metric). */
  onUdpEviction?: () => void;
  /**
   * At most this many UDP flows over every Service port together; past it a new client evicts its port's least
   * recently used flow, or is refused when its port has none. Default 16384.
   */
  udpMaxFlowsTotal?: number;
  /** Called once per UDP datagram dropped, with why (a metric). */
  onUdpDrop?: (reason: UdpDropReason) => void;
  /** The first dial's time-out; each of the up to three retries (on another endpoint when there is one) waits twice as long. Default 250 ms, as kube-proxy's userspace proxier. */
  connectTimeoutMs?: number;
  /**
   * Threads that accept and relay TCP. Default 1: everything runs in the main thread, which suits a node agent.
   * With N > 1, N - 1 worker threads listen on the same TCP ports too (SO_REUSEPORT; the kernel spreads new
   * connections), for more connections per second on a multi-core host. Ports with ClientIP affinity and UDP ports
   * stay in the main thread (one affinity table, one flow table). SO_REUSEPORT also lets another process of the
   * same user bind such a port alongside; with 1 thread it is not set and such a bind fails as usual.
   */
  threads?: number;
  /** Relay TCP on native handles when Node's bindings allow (relay.ts). Default true; false keeps to net.Socket. */
  nativeRelay?: boolean;
  /**
   * This node's addresses, read at every sync: clients from them (and from the pod network) take the short-cut of
   * Local-policy nodePorts. Default: the addresses of the network namespace's interfaces.
   */
  localAddresses?: () => string[];
}

/** The addresses of this network namespace's interfaces. */
function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address.split('%')[0]!));
}

/** SyncResult plus what could not be programmed: ports that failed to bind, and SCTP ports skipped. */
export interface UserspaceSyncResult extends SyncResult {
  /** Service ports with no listener because binding failed or another Service port holds the port (retried at every sync). */
  failed: number;
  /** SCTP ports, which userspace mode does not support. */
  unsupported: number;
}

/** Where one Service port listens. */
export interface ListenerInfo {
  key: string;
  protocol: string;
  address: string;
  port: number;
}

type Listener = TcpListener | UdpListener;

/**
 * UDP flow defaults: kube-proxy's userspace --udp-timeout (250 ms: a DNS-like exchange is over by then, and a
 * socket per client is not held for long), a cap per Service port on sockets held, and one over all ports: each flow
 * holds an ephemeral port, and Linux's default range (32768-60999) has 28,232 for every UDP socket of the host.
 */
export const udpDefaults = { idleMs: 250, maxFlows: 4096, maxFlowsTotal: 16384 } as const;

/**
 * The userspace proxy backend. `sync` opens listeners for new Service ports, closes those of ports that went away,
 * and updates endpoints in place without touching established connections. A port that cannot be bound is logged
 * with its Service and the reason, counted in `failed`, and retried at the next sync; the other ports keep working.
 */
export class UserspaceBackend implements ProxyBackend {
  readonly mode = 'userspace' as const;
  readonly #log: Logger;
  readonly #host: string;
  readonly #udpIdleMs: number;
  readonly #udpMaxFlows: number;
  readonly #onUdpEviction: (() => void) | undefined;
  readonly #onUdpDrop: ((reason: UdpDropReason) => void) | undefined;
  /** The UDP flows of every listener, against udpMaxFlowsTotal. */
  readonly #udpBudget: FlowBudget;
  readonly #connectTimeoutMs: number;
  readonly #threads: number;
  readonly #nativeRelay: boolean;
  readonly #localAddresses: () => string[];
  readonly #open = new Map<string, Listener>();
  /** TCP listeners of ports that went away whose established connections still run (cut by close()). */
  readonly #draining = new Set<TcpListener>();
  /** Keys that failed to bind, with the reason last logged (logged again only when it changes). */
  readonly #failing = new Map<string, string>();
  readonly #warnedSctp = new Set<string>();
  /** `key|endpoint` of endpoints left out as leading back to their own listener, warned about once while they last. */
  readonly #warnedLoops = new Set<string>();
  #pool?: TcpWorkerPool;
  #wildcardUdpWarned = false;

  constructor(options: UserspaceOptions) {
    this.#log = options.log;
    this.#host = options.bindAddress ?? '127.0.0.1';
    this.#udpIdleMs = options.udpIdleMs ?? udpDefaults.idleMs;
    this.#udpMaxFlows = options.udpMaxFlows ?? udpDefaults.maxFlows;
    this.#onUdpEviction = options.onUdpEviction;
    this.#onUdpDrop = options.onUdpDrop;
    this.#udpBudget = new FlowBudget(options.udpMaxFlowsTotal ?? udpDefaults.maxFlowsTotal);
    // kube-proxy's userspace proxier: 250 ms for the first dial, doubled for each of the next three (deadlines.ts).
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 250;
    this.#threads = Math.max(1, Math.floor(options.threads ?? 1));
    this.#nativeRelay = options.nativeRelay ?? true;
    this.#localAddresses = options.localAddresses ?? interfaceAddresses;
  }

  /** Where each Service port listens now, sorted by key. */
  listeners(): ListenerInfo[] {
    return [...this.#open.values()]
      .map((l) => ({ key: l.spec.key, protocol: l.spec.protocol, address: this.#host, port: l.spec.port }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Makes the listeners match `plan`. `full` changes nothing here: the state lives in this process. */
  async sync(plan: ProxyPlan, _options: { full: boolean }): Promise<UserspaceSyncResult> {
    const { specs, skipped, loops } = listenerSpecs(plan, isIPv6(this.#host) ? 6 : 4, new Set(this.#open.keys()), this.#localAddresses(), this.#host);
    this.#warnLoops(loops);
    const desired = new Map(specs.map((s) => [s.key, s]));
    let operations = 0;
    for (const l of this.#draining) if (l.connections === 0) this.#draining.delete(l);
    // Close first: a port that moves to another Service port, or a changed nodePort, can then be bound again.
    for (const [key, l] of this.#open) {
      const want = desired.get(key);
      if (!want || want.protocol !== l.spec.protocol || want.port !== l.spec.port) {
        await l.close();
        this.#open.delete(key);
        if (l instanceof TcpListener && l.connections > 0) this.#draining.add(l);
        operations++;
        this.#log.info({ key, protocol: l.spec.protocol, port: l.spec.port }, 'stopped listening for a Service port');
      }
    }
    const opened = await Promise.all(specs.filter((s) => !this.#open.has(s.key)).map((s) => this.#openListener(s)));
    operations += opened.filter(Boolean).length;
    for (const spec of specs) this.#open.get(spec.key)?.update(spec);

    let failed = opened.filter((ok) => !ok).length;
    let unsupported = 0;
    const planKeys = new Set(plan.ports.map((p) => p.key));
    for (const key of this.#warnedSctp) if (!planKeys.has(key)) this.#warnedSctp.delete(key);
    for (const s of skipped) {
      if (s.reason === 'sctp-unsupported') {
        unsupported++;
        if (!this.#warnedSctp.has(s.key)) {
          this.#warnedSctp.add(s.key);
          this.#log.warn({ service: s.service, key: s.key, port: s.port }, 'SCTP is not supported in userspace mode; Service port skipped');
        }
      } else {
        failed++;
        this.#noteFailure(s.key, `port ${s.protocol}/${s.port} is taken by ${s.takenBy}`, { service: s.service, protocol: s.protocol, port: s.port });
      }
    }
    const failingNow = new Set([...skipped.map((s) => s.key), ...specs.filter((s) => !this.#open.has(s.key)).map((s) => s.key)]);
    for (const key of this.#failing.keys()) if (!failingNow.has(key)) this.#failing.delete(key);

    if (this.#threads > 1) {
      this.#pool ??= new TcpWorkerPool(this.#threads - 1, { host: this.#host, connectTimeoutMs: this.#connectTimeoutMs, nativeRelay: this.#nativeRelay }, this.#log);
      await this.#pool.apply(this.#sharedSpecs());
    }
    let elements = 0;
    for (const l of this.#open.values()) elements += l.spec.endpoints.length;
    return { rules: this.#open.size, elements, operations, failed, unsupported };
  }

  /** Closes every listener, connection and UDP flow (for userspace, the sockets are all that was programmed). */
  async cleanup(): Promise<void> {
    await this.#pool?.close();
    this.#pool = undefined;
    await Promise.all([...this.#open.values(), ...this.#draining].map((l) => (l instanceof TcpListener ? l.destroy() : l.close())));
    this.#open.clear();
    this.#draining.clear();
  }

  /** Same as cleanup: a userspace proxy's state is its sockets, which cannot outlive the process. */
  async close(): Promise<void> {
    await this.cleanup();
  }

  /** TCP listeners the worker threads share: open in the main thread, without ClientIP affinity. */
  #sharedSpecs(): ListenerSpec[] {
    return [...this.#open.values()].filter((l) => l instanceof TcpListener && l.spec.affinitySeconds === 0).map((l) => l.spec);
  }

  async #openListener(spec: ListenerSpec): Promise<boolean> {
    const onError = (err: Error) => this.#log.warn({ service: spec.service, key: spec.key, err: err.message }, 'a userspace proxy listener reported an error');
    const l: Listener =
      spec.protocol === 'TCP'
        ? new TcpListener(spec, { host: this.#host, reusePort: this.#threads > 1, connectTimeoutMs: this.#connectTimeoutMs, nativeRelay: this.#nativeRelay, onError })
        : new UdpListener(spec, {
            host: this.#host,
            idleMs: this.#udpIdleMs,
            maxFlows: this.#udpMaxFlows,
            budget: this.#udpBudget,
            ...(this.#onUdpEviction ? { onEvict: this.#onUdpEviction } : {}),
            ...(this.#onUdpDrop ? { onDrop: this.#onUdpDrop } : {}),
            onError,
          });
    try {
      await l.listen();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.#noteFailure(spec.key, err.code ?? err.message, { service: spec.service, protocol: spec.protocol, port: spec.port });
      await l.close().catch(() => {});
      return false;
    }
    this.#open.set(spec.key, l);
    if (spec.protocol === 'UDP' && !this.#wildcardUdpWarned && (this.#host === '0.0.0.0' || this.#host === '::')) {
      // Node's dgram has no IP_PKTINFO: a reply leaves from the kernel's preferred source address toward the client.
      this.#wildcardUdpWarned = true;
      this.#log.warn(
        { address: this.#host, key: spec.key },
        `UDP Service ports bound to ${this.#host} answer from the address the kernel prefers toward each client, which is not always the one the client sent to: clients that check the reply's source (connected UDP sockets, most DNS resolvers) then see no answer when they use another of this node's addresses. Give --bind-address one address to avoid it`,
      );
    }
    const wasFailing = this.#failing.delete(spec.key);
    this.#log.info({ service: spec.service, key: spec.key, protocol: spec.protocol, address: this.#host, port: spec.port, endpoints: spec.endpoints.length, retried: wasFailing }, 'listening for a Service port');
    return true;
  }

  /** Warns once about each endpoint left out because it leads back to its own listener; forgets those that went away. */
  #warnLoops(loops: readonly LoopingEndpoint[]): void {
    const now = new Set(loops.map((l) => `${l.key}|${l.endpoint}`));
    for (const id of this.#warnedLoops) if (!now.has(id)) this.#warnedLoops.delete(id);
    for (const l of loops) {
      const id = `${l.key}|${l.endpoint}`;
      if (this.#warnedLoops.has(id)) continue;
      this.#warnedLoops.add(id);
      this.#log.warn(
        { service: l.service, key: l.key, protocol: l.protocol, address: this.#host, port: l.port, endpoint: l.endpoint },
        'an endpoint of this Service port leads back to it through the userspace proxy\'s own listeners (it would forward in a loop); endpoint left out',
      );
    }
  }

  /** Logs a port that got no listener: at warn when it first fails or the reason changes, at debug on retries. */
  #noteFailure(key: string, reason: string, fields: { service: string; protocol: string; port: number }): void {
    const repeat = this.#failing.get(key) === reason;
    this.#failing.set(key, reason);
    const record = { ...fields, key, address: this.#host, reason };
    const msg = 'cannot listen on a Service port; skipped until a later sync';
    if (repeat) this.#log.debug(record, msg);
    else this.#log.warn(record, msg);
  }
}

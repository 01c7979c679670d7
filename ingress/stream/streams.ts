// The TCP and UDP services of ingress-nginx's --tcp-services-configmap and --udp-services-configmap: keeps one
// listener per entry, on the host of the gateway's HTTP listener, current with the ConfigMaps and the Services'
// endpoints. The ConfigMaps are read by reference (the state keeper wants them with the ones routes name); each
// change, and each change of a Service an entry names, is applied at once: a new entry's port is bound, a removed
// one's is closed (its connections under way go on to their end), a changed one serves its new target from the next
// connection. A bad entry is logged with its ConfigMap, key and reason and left out; a port that cannot be bound
// (in use, not permitted) is logged and tried again every 10 s; neither stops the others or the gateway. How
// connections and flows are relayed (idle time, tries, answers per datagram) follows the controller ConfigMap's
// proxy-stream-* keys (configure): new TCP connections and every UDP flow take a change at once.
import { SettleWaiter } from '../../runtime/waiting.ts';
import type { Registry } from 'prom-client';
import type { ServiceMap } from '../../cluster/servicemap/index.ts';
import type { Store } from '../../cluster/store.ts';
import { FlowBudget } from '../../proxy/userspace/flow-budget.ts';
import { listenProblem } from '../../runtime/component.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { AddressSet } from '../limits/client-ip.ts';
import type { ObjectRef } from '../routes/types.ts';
import { parseStreamEntries, targetText, type StreamEntry, type StreamProtocol, type StreamRefusal } from './entries.ts';
import { StreamMetrics } from './metrics.ts';
import { defaultStreamSettings, type StreamSettings } from './settings.ts';
import { streamTarget } from './targets.ts';
import { TcpStream } from './tcp.ts';
import { UdpStream, udpMaxFlowsTotal } from './udp.ts';

/** What the TCP and UDP services need. */
export interface StreamsOptions {
  store: Store;
  serviceMap: ServiceMap;
  log: Logger;
  registry: Registry;
  /** --tcp-services-configmap and --udp-services-configmap. */
  configMaps: Partial<Record<StreamProtocol, ObjectRef>>;
  /** The address every port is bound on: the HTTP listener's, else the HTTPS one's. */
  host: string;
  /** TCP ports the gateway itself listens on, and what listens there (refused as entries). */
  reserved: ReadonlyMap<number, string>;
  reusePort: boolean;
  connectTimeoutMs: number;
  /** How connections and flows are relayed until configure() says otherwise (default: ingress-nginx's). */
  settings?: StreamSettings;
  /** For entries that decode PROXY protocol: the peers allowed (undefined: any) and the time a header has. */
  proxyProtocol: { from?: AddressSet; timeoutMs: number };
  accessLog?: Logger;
  /** How long after a failed bind the port is tried again. */
  retryMs?: number;
}

/** The ConfigMap flag of each protocol, for log lines. */
const flagOf: Record<StreamProtocol, string> = { TCP: '--tcp-services-configmap', UDP: '--udp-services-configmap' };

/** One entry's port: bound, being bound, or waiting to be tried again. */
interface Port {
  entry: StreamEntry;
  stream?: TcpStream | UdpStream;
  /** Why the last bind failed; undefined while bound or binding. */
  bindProblem?: string;
  /** The first bind has succeeded or failed. */
  tried?: boolean;
  retry?: NodeJS.Timeout;
}

/** Keeps the TCP and UDP services' listeners; start() follows the ConfigMaps and endpoints, drain() ends it all. */
export class Streams {
  readonly #o: StreamsOptions;
  readonly #metrics: StreamMetrics;
  readonly #budget = new FlowBudget(udpMaxFlowsTotal);
  /** By `PROTOCOL/port`. */
  readonly #ports = new Map<string, Port>();
  /** The entries last read from each ConfigMap (absent: not read yet; what is served stays as it is). */
  readonly #read = new Map<StreamProtocol, { entries: StreamEntry[]; problems: Array<{ key: string; reason: string; refused?: StreamRefusal }> }>();
  /** TCP ports closed while connections were under way: counted until those end. */
  readonly #retired = new Set<TcpStream>();
  /** Reasons already logged, by subject, so a resync does not repeat them. */
  readonly #logged = new Map<string, string>();
  readonly #cut = new AbortController();
  #unsubscribe: Array<() => void> = [];
  #closing = false;
  readonly #drained = new SettleWaiter();
  #ready = false;
  #settings: Readonly<StreamSettings>;

  constructor(options: StreamsOptions) {
    this.#o = options;
    this.#settings = options.settings ?? defaultStreamSettings;
    this.#metrics = new StreamMetrics(options.registry, () => ({ TCP: this.inFlight, UDP: this.#udpFlows() }));
  }

  /** The ConfigMaps read (`namespace/name`): the store must want them. */
  static configMapKeys(configMaps: StreamsOptions['configMaps']): string[] {
    return Object.values(configMaps).map((r) => `${r.namespace}/${r.name}`);
  }

  /** TCP connections open now, on ports served and on ports closed since. */
  get inFlight(): number {
    let n = 0;
    for (const p of this.#ports.values()) if (p.stream instanceof TcpStream) n += p.stream.open;
    for (const s of this.#retired) n += s.open;
    return n;
  }

  /**
   * Whether every ConfigMap has been read (or found absent) and every entry's port has been tried once, bound or
   * not: a gateway reports ready only then, so a rolling update does not send clients to a port not yet open.
   */
  get ready(): boolean {
    // Once: a port added by a later rewrite does not take the gateway out of service while it is bound.
    if (this.#ready) return true;
    if (Object.keys(this.#o.configMaps).some((p) => !this.#read.has(p as StreamProtocol))) return false;
    for (const p of this.#ports.values()) if (p.tried !== true) return false;
    return (this.#ready = true);
  }

  /** Relays new TCP connections, and every UDP flow, as `settings` say from now on (TCP connections under way keep theirs). */
  configure(settings: Readonly<StreamSettings>): void {
    const now = this.#settings;
    if ((Object.keys({ ...now, ...settings }) as Array<keyof StreamSettings>).every((k) => now[k] === settings[k])) return;
    this.#settings = settings;
    for (const p of this.#ports.values()) if (p.stream instanceof UdpStream) p.stream.configure(settings);
  }

  /** Applies the ConfigMaps as they are now, and every change from here on. */
  start(): void {
    const { store, serviceMap } = this.#o;
    const keys = new Set(Streams.configMapKeys(this.#o.configMaps));
    this.#unsubscribe.push(store.subscribe((changes) => changes.some((c) => c.kind === 'ConfigMap' && keys.has(c.key)) && this.#sync()));
    // A ConfigMap found absent makes no change: its first read is what says so.
    this.#unsubscribe.push(store.onLoaded((kind, key) => kind === 'ConfigMap' && keys.has(key) && this.#sync()));
    const tracker = serviceMap.tracker();
    this.#unsubscribe.push(
      tracker.onChange(() => {
        const changed = tracker.take().services;
        for (const p of this.#ports.values()) if (changed.has(`${p.entry.namespace}/${p.entry.service}`)) return this.#sync();
      }),
    );
    this.#sync();
  }

  /**
   * Stops accepting on every port (UDP ports close with their flows: a datagram has no connection to finish), lets
   * TCP connections under way end on their own for up to `timeoutMs`, then cuts those left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    const closing: Promise<void>[] = [];
    for (const p of this.#ports.values()) {
      clearTimeout(p.retry);
      if (p.stream instanceof TcpStream) this.#retired.add(p.stream);
      if (p.stream) closing.push(p.stream.close());
    }
    this.#ports.clear();
    await Promise.all(closing);
    this.#metrics.listeners.reset();
    await this.#drained.until(() => this.inFlight === 0, timeoutMs);
    if (this.inFlight > 0) this.#o.log.warn({ inFlight: this.inFlight, timeoutMs }, 'drain timeout: closing the TCP services connections still open');
    this.#cut.abort();
    await this.#drained.until(() => this.inFlight === 0, 1000);
  }

  /** Reads both ConfigMaps and the endpoints again, and makes the ports match. */
  #sync(): void {
    if (this.#closing) return;
    const { log } = this.#o;
    const desired = new Map<string, StreamEntry>();
    const now = new Set<string>();
    for (const [protocol, ref] of Object.entries(this.#o.configMaps) as Array<[StreamProtocol, ObjectRef]>) {
      const read = this.#readConfigMap(protocol, ref);
      if (read === undefined) {
        // Not read yet: the ports of its entries stay as they are.
        for (const [key, p] of this.#ports) if (p.entry.protocol === protocol) desired.set(key, p.entry);
        continue;
      }
      const name = `${ref.namespace}/${ref.name}`;
      for (const p of read.problems) {
        const subject = `entry ${protocol} ${name} ${p.key}`;
        now.add(subject);
        this.#logOnce(subject, p.reason, () =>
          log.warn({ configMap: name, key: p.key, reason: p.reason }, `ConfigMap ${name} (${flagOf[protocol]}), key ${JSON.stringify(p.key)}: ${p.reason}${p.refused ? '; the entry is not served' : ''}`),
        );
      }
      for (const e of read.entries) desired.set(`${protocol}/${e.port}`, e);
    }
    for (const [key, p] of this.#ports) {
      if (desired.has(key)) continue;
      this.#ports.delete(key);
      this.#retire(p);
      log.info({ port: p.entry.port, protocol: p.entry.protocol }, `${p.entry.protocol} services port ${p.entry.port} closed: no longer in the ConfigMap`);
    }
    for (const [key, entry] of desired) {
      const target = streamTarget(entry, this.#o.serviceMap);
      if (target.problem !== undefined) {
        const subject = `target ${key}`;
        now.add(subject);
        const what = entry.protocol === 'TCP' ? 'connections are reset' : 'datagrams are dropped';
        this.#logOnce(subject, target.problem, () => log.warn({ port: entry.port, protocol: entry.protocol, target: targetText(entry), reason: target.problem }, `${entry.protocol} services port ${entry.port}: ${target.problem}; ${what} until it has one`));
      }
      const p = this.#ports.get(key);
      if (p === undefined) {
        const fresh: Port = { entry };
        this.#ports.set(key, fresh);
        this.#bind(key, fresh);
        continue;
      }
      p.entry = entry;
      p.stream?.update(entry, target.endpoints);
      if (p.bindProblem !== undefined) now.add(`bind ${key}`);
    }
    for (const subject of this.#logged.keys()) if (!now.has(subject) && !subject.startsWith('configmap ')) this.#logged.delete(subject);
    this.#gauges();
  }

  /** A ConfigMap's entries, or undefined while it is being read; one not in the cluster has none (said once). */
  #readConfigMap(protocol: StreamProtocol, ref: ObjectRef): { entries: StreamEntry[]; problems: Array<{ key: string; reason: string; refused?: StreamRefusal }> } | undefined {
    const { store, log } = this.#o;
    const name = `${ref.namespace}/${ref.name}`;
    const found = store.get('ConfigMap', name);
    if (found === undefined) {
      const wanted = store.wanted('ConfigMap');
      if (wanted !== undefined && (!wanted.has(name) || store.loading('ConfigMap').includes(name))) return this.#read.get(protocol);
      this.#logOnce(`configmap ${name}`, 'absent', () => log.warn({ configMap: name }, `ConfigMap ${name} (${flagOf[protocol]}) is not in the cluster: no ${protocol} services are served until it is`));
    } else this.#logged.delete(`configmap ${name}`);
    const read = parseStreamEntries(found?.data, protocol, this.#o.reserved);
    this.#read.set(protocol, read);
    return read;
  }

  /** Binds an entry's port; a failure is logged and tried again later, as long as the entry stays. */
  #bind(key: string, p: Port): void {
    const { log } = this.#o;
    const o = this.#o;
    const entry = p.entry;
    const endpoints = streamTarget(entry, o.serviceMap).endpoints;
    const settled = () => this.#settled();
    const stream =
      entry.protocol === 'TCP'
        ? new TcpStream(entry, endpoints, { host: o.host, reusePort: o.reusePort, connectTimeoutMs: o.connectTimeoutMs, settings: () => this.#settings, proxyProtocol: o.proxyProtocol, signal: this.#cut.signal, metrics: this.#metrics, log, ...(o.accessLog ? { accessLog: o.accessLog } : {}), settled })
        : new UdpStream(entry, endpoints, { host: o.host, reusePort: o.reusePort, settings: this.#settings, budget: this.#budget, metrics: this.#metrics, log });
    stream.listen().then(
      () => {
        if (this.#ports.get(key) !== p) return void stream.close();
        p.stream = stream;
        p.tried = true;
        const hadProblem = p.bindProblem !== undefined;
        p.bindProblem = undefined;
        this.#logged.delete(`bind ${key}`);
        // The entry, its endpoints or the settings may have changed while the port was bound.
        stream.update(p.entry, streamTarget(p.entry, o.serviceMap).endpoints);
        if (stream instanceof UdpStream) stream.configure(this.#settings);
        log.info({ port: entry.port, protocol: entry.protocol, target: targetText(p.entry), host: o.host }, `${entry.protocol} services port ${entry.port} listening${hadProblem ? ' (bound at last)' : ''}, to ${targetText(p.entry)}`);
        this.#gauges();
      },
      (err: NodeJS.ErrnoException) => {
        if (stream instanceof UdpStream) void stream.close();
        if (this.#ports.get(key) !== p) return;
        p.tried = true;
        p.bindProblem = listenProblem(err);
        const retryMs = o.retryMs ?? 10_000;
        this.#logOnce(`bind ${key}`, p.bindProblem, () =>
          log.warn({ port: entry.port, protocol: entry.protocol, host: o.host, reason: p.bindProblem }, `${entry.protocol} services port ${entry.port} cannot be bound on ${o.host}: ${p.bindProblem}; tried again every ${retryMs / 1000} s`),
        );
        p.retry = setTimeout(() => {
          p.retry = undefined;
          if (this.#ports.get(key) === p && !this.#closing) this.#bind(key, p);
        }, retryMs).unref();
        this.#gauges();
      },
    );
  }

  /** Closes a port no longer asked for: a TCP port's connections under way go on until they end. */
  #retire(p: Port): void {
    clearTimeout(p.retry);
    const s = p.stream;
    if (s === undefined) return;
    if (s instanceof TcpStream && s.open > 0) this.#retired.add(s);
    void s.close();
  }

  /** A TCP connection ended: retired ports without connections are forgotten, and a drain may be over. */
  #settled(): void {
    for (const s of this.#retired) if (s.open === 0) this.#retired.delete(s);
    this.#drained.check();
  }

  #udpFlows(): number {
    let n = 0;
    for (const p of this.#ports.values()) if (p.stream instanceof UdpStream) n += p.stream.flows;
    return n;
  }

  #gauges(): void {
    const refused: Array<{ protocol: StreamProtocol; reason: StreamRefusal }> = [];
    for (const [protocol, read] of this.#read) for (const p of read.problems) if (p.refused) refused.push({ protocol, reason: p.refused });
    const listening = { TCP: 0, UDP: 0 };
    for (const p of this.#ports.values()) {
      if (p.bindProblem !== undefined) refused.push({ protocol: p.entry.protocol, reason: 'cannot-bind' });
      if (p.stream !== undefined) listening[p.entry.protocol]++;
    }
    this.#metrics.setRefused(refused);
    this.#metrics.listeners.set({ protocol: 'TCP' }, listening.TCP);
    this.#metrics.listeners.set({ protocol: 'UDP' }, listening.UDP);
  }


  #logOnce(subject: string, reason: string, write: () => void): void {
    if (this.#logged.get(subject) === reason) return;
    this.#logged.set(subject, reason);
    write();
  }
}

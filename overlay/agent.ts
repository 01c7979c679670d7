// The overlay's node agent: reads the kernel at start and reconciles it with the Nodes, then applies each batch of
// Node changes (one batch per event-loop turn) as a difference against what it last programmed. A failure keeps
// what was programmed, is retried with backoff, and makes the next sync a full one (the kernel is read again);
// a full sync also runs every resync period. A Node change never waits for a retry: it syncs at once. Failures are
// per entry: one node's refused route leaves the others programmed and the agent healthy. A change of this host's
// addresses (announced by the kernel) reads the host again and re-plans after a short debounce, so that a node
// becomes directly reachable, or stops being so, at once rather than at the next resync; with --iface-can-reach a
// route change towards that address (of any table or type) or a routing rule change does the same, so that a new
// underlay moves the device at once. A change of an
// interface the overlay uses (the underlay taken down and up, the VXLAN device deleted) runs a full sync the same
// way, which puts back what the kernel dropped (host-changes.ts). With --ipv6-device it keeps a second device, over
// IPv6, the same way (program.ts programPlan). Talks to the kernel only through an OverlayKernel (and, for the
// announcements, the watches of kernel/watch.ts and kernel/entry-watch.ts).
import type { Store } from '../cluster/store.ts';
import type { HealthCheck } from '../runtime/admin.ts';
import type { Logger } from '../runtime/logger.ts';
import type { OverlayKernel } from './kernel/types.ts';
import type { EntryChange, EntryWatchOptions } from './kernel/entry-watch.ts';
import type { AddressChange, HostWatch, LinkChange } from './kernel/watch.ts';
import { HostChanges, type HostUse } from './host-changes.ts';
import type { MasqueradeHost } from './masquerade.ts';
import type { OverlayMetrics } from './metrics.ts';
import { devicePlans } from './plan/device6.ts';
import { desiredEntries, programmedSet, viewCounts, vxlanMismatch, type DesiredEntries } from './plan/diff.ts';
import { planOverlay } from './plan/plan.ts';
import { remotesFromKernel } from './plan/recover.ts';
import { emptyView, type DeviceView, type HostView, type OverlayOptions, type OverlayPlan, type SelfVtep } from './plan/types.ts';
import { DeviceTakenError, programPlan, readDevice, readHost } from './program.ts';

/** Keeps the masquerade rules in step; Masquerade implements it. */
export interface MasqueradeSync {
  sync(clusterCIDRs: readonly string[], here?: MasqueradeHost, force?: boolean): Promise<boolean>;
}

/** Keeps the forward-accept rules for the pod networks in step; ForwardAccept implements it. */
export interface ForwardSync {
  sync(clusterCIDRs: readonly string[], force?: boolean): Promise<boolean>;
}

/** Options of the agent. */
export interface AgentOptions {
  kernel: OverlayKernel;
  store: Store;
  overlay: OverlayOptions;
  /** --cluster-cidr; empty means the podCIDRs of the nodes in use (the plan's podCIDRs). */
  clusterCIDRs: readonly string[];
  masquerade?: MasqueradeSync;
  /** Accepts forwarded pod traffic where the host's iptables FORWARD could drop it (Docker's policy DROP). */
  forward?: ForwardSync;
  metrics: OverlayMetrics;
  log: Logger;
  /** A full sync (kernel re-read) runs at least this often; the longest retry delay. */
  resyncPeriodMs: number;
  /** First retry delay after a failure, doubled per failure. */
  retryBaseMs?: number;
  /** Announces this host's address changes (kernel/watch.ts watchAddresses); without it they are seen at the resync. */
  watchAddresses?: (onChange: (change: AddressChange) => void) => HostWatch;
  /** Announces this host's interface changes (kernel/watch.ts watchLinks); without it what the kernel drops is put back at the resync. */
  watchLinks?: (onChange: (change: LinkChange) => void) => HostWatch;
  /**
   * Announces neighbour, FDB and route changes (kernel/entry-watch.ts watchEntries; asked for other routes and rules
   * too with --iface-can-reach); without it what others undo is put back at the resync.
   */
  watchEntries?: (onChange: (change: EntryChange) => void, options?: EntryWatchOptions) => HostWatch;
  /** How long host changes are gathered before one sync (default 100 ms: a burst, such as an interface going down and up, is one). */
  hostDebounceMs?: number;
  /** Called with what this node announces after every sync that planned a device. Must not throw. */
  onSelf?: (self: SelfVtep) => void;
  /**
   * What the cluster view lacks because it could never be read (ClusterSource.neverRead): while it lists anything,
   * entries of nodes not in the view are not removed, since they may be the nodes it could not read.
   */
  neverRead?: () => readonly string[];
  /** Called with the plan after every sync that planned a device (subnet.env follows it). Must not throw. */
  onPlan?: (plan: OverlayPlan) => void;
}

/** Programs this node's overlay from the store's Nodes. */
export class OverlayAgent {
  #o: AgentOptions;
  #view: DeviceView | undefined;
  /** The IPv6 device (--ipv6-device) as the kernel holds it; read only when the option names one. Never has direct routes. */
  #view6: DeviceView | undefined;
  #host: HostView | undefined;
  #needFull = true;
  #hostStale = true;
  /** Nodes changed but not yet programmed, with when each change was first seen. */
  #pending = new Map<string, number>();
  #failures = 0;
  /** Since when (performance.now() ms) programming the host has failed; undefined while it succeeds. */
  #failingSince: number | undefined;
  #lastPlan: OverlayPlan | undefined;
  #problems = '';
  /** The never-read list last logged, as text. */
  #unread = '';
  /** Why the device cannot be made (its name taken by another kind of interface), until a sync succeeds. */
  #taken: string | undefined;
  /** The entries #wantOf wants, computed when first asked (host-changes.ts entryMatters). */
  #want: DesiredEntries | undefined;
  #want6: DesiredEntries | undefined;
  #wantOf: OverlayPlan | undefined;
  /** Whether --iface or --iface-regex asks for an interface of this name (absent: neither names one). */
  readonly #named: ((name: string) => boolean) | undefined;
  /** The reasons of the last problems reported, by node. */
  #problemNodes = new Map<string, string[]>();
  #started = false;
  #stopped = false;
  #scheduled: NodeJS.Immediate | undefined;
  /** The retry after a failure; a new request replaces it with a sync at once. */
  #retry: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #interval: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #hostChanges: HostChanges | undefined;
  /**
   * The next full sync was asked for by an interface change: it reads the kernel's devices, entries and routes again
   * and repairs them, leaves nft and iptables (which no interface change touches) to their usual diff, and is
   * logged only when it repairs something.
   */
  #hostFull = false;

  constructor(options: AgentOptions) {
    this.#o = options;
    const { ifaces = [], ifaceRegex = [] } = options.overlay;
    this.#named = ifaces.length + ifaceRegex.length > 0 ? (name) => ifaces.includes(name) || ifaceRegex.some((r) => r.test(name)) : undefined;
  }

  /** The last plan computed (programmed or not). */
  get lastPlan(): OverlayPlan | undefined {
    return this.#lastPlan;
  }

  /** Starts: a full sync now, then one per batch of Node changes and per resync period. Call once the view is loaded. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#o.store.subscribe((changes) => {
      const now = performance.now();
      let any = false;
      for (const c of changes) {
        if (c.kind !== 'Node') continue;
        any = true;
        if (!this.#pending.has(c.key)) this.#pending.set(c.key, now);
        if (c.key === this.#o.overlay.nodeName) this.#hostStale = true;
      }
      if (any) this.requestSync();
    });
    this.#interval = setInterval(() => this.resync(), this.#o.resyncPeriodMs);
    this.#interval.unref();
    this.#followHost();
    this.requestSync();
  }

  /** Asks for a full sync (the kernel read again) soon. */
  resync(): void {
    this.#needFull = true;
    this.#hostFull = false;
    this.requestSync();
  }

  /** Asks for a sync in the next event-loop turn; changes until then are one batch. */
  requestSync(): void {
    if (!this.#started || this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    // A pending retry must not hold back a new change: the sync it would run, runs now.
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#scheduled ??= setImmediate(() => this.#runNow());
  }

  /** Resolves when no sync is running, scheduled or waiting to be retried; for tests and shutdown. */
  async settled(): Promise<void> {
    while (this.#running || this.#scheduled || this.#retry) await (this.#running ?? new Promise((r) => setTimeout(r, 2)));
  }

  /**
   * /healthz: failing when programming has failed for longer than two resync periods: reading the kernel, the
   * device, its address, nft or iptables. Entries of single nodes that the kernel refuses are logged and retried,
   * but a restart would not help them, so they leave the agent healthy.
   */
  readonly health: HealthCheck = () => {
    const since = this.#failingSince;
    if (since === undefined || performance.now() - since <= 2 * this.#o.resyncPeriodMs) return { ok: true };
    return { ok: false, reason: `programming the overlay has failed for ${Math.round((performance.now() - since) / 1000)} s` };
  };

  /** /readyz: failing while the device's name is taken by an interface that is not a VXLAN device. */
  readonly readiness: HealthCheck = () => (this.#taken === undefined ? { ok: true } : { ok: false, reason: this.#taken });

  /** Stops syncing; what is programmed stays. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#hostChanges?.close();
    clearInterval(this.#interval);
    clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    await this.#running;
  }

  /**
   * Follows this host's address and interface changes (host-changes.ts): each burst that matters, within the
   * debounce, is one sync; an address change (with --iface-can-reach, also a route or rule change that can move
   * the route to that address) reads the host again, an interface change or one of the overlay's entries changed
   * reads everything again. A
   * lifetime refresh (DHCP, router advertisements) is announced as a new address: its sync finds nothing to change and
   * stays quiet, as does a full sync after an interface change that finds nothing missing.
   */
  #followHost(): void {
    const o = this.#o;
    if (!o.watchAddresses && !o.watchLinks && !o.watchEntries) return;
    this.#hostChanges = new HostChanges({
      ...(o.watchAddresses ? { watchAddresses: o.watchAddresses } : {}),
      ...(o.watchLinks ? { watchLinks: o.watchLinks } : {}),
      ...(o.watchEntries ? { watchEntries: o.watchEntries } : {}),
      debounceMs: o.hostDebounceMs ?? 100,
      use: () => this.#hostUse(),
      onChange: (full) => {
        if (this.#stopped) return;
        if (full && !this.#needFull) {
          this.#needFull = true;
          this.#hostFull = true;
        }
        this.#hostStale = true;
        this.requestSync();
      },
      log: o.log,
    });
    this.#hostChanges.start();
  }

  /** What the overlay uses of this host, as far as the agent knows. */
  #hostUse(): HostUse {
    // Asked for every announcement, a busy node's neighbour churn included: the interfaces used (a walk over the
    // direct routes) are gathered only when asked for.
    const plan = this.#lastPlan;
    const view = this.#view;
    const links = (): Set<number> => {
      const set = new Set<number>();
      // The underlay as planned and as the device has it (they differ while the device is being moved).
      for (const i of [plan?.device?.underlayIndex, view?.link?.vxlan?.underlayIndex]) if (i !== undefined) set.add(i);
      for (const r of view?.direct.values() ?? []) set.add(r.index);
      return set;
    };
    const named = this.#named;
    if (plan?.device !== undefined && this.#wantOf !== plan) {
      this.#wantOf = plan;
      const parts = devicePlans(plan);
      this.#want = desiredEntries(parts.main);
      this.#want6 = parts.v6 ? desiredEntries(parts.v6) : undefined;
    }
    const want = plan?.device !== undefined ? this.#want : undefined;
    const want6 = plan?.device !== undefined ? this.#want6 : undefined;
    const underlayIndex = plan?.device?.underlayIndex;
    const name6 = this.#o.overlay.ipv6Device?.name;
    const view6 = this.#view6;
    return {
      ...(name6 !== undefined ? { device6: { name: name6, index: view6?.link?.index, up: view6?.link?.up === true, ...(want6 ? { want: want6 } : {}) } } : {}),
      device: this.#o.overlay.device, deviceIndex: view?.link?.index, deviceUp: view?.link?.up === true,
      get links() {
        return links();
      },
      ...(named ? { named } : {}), ...(want ? { want } : {}), ...(underlayIndex !== undefined ? { underlayIndex } : {}),
      ...(this.#o.overlay.ifaceCanReach !== undefined ? { reach: this.#o.overlay.ifaceCanReach } : {}),
    };
  }

  #runNow(): void {
    this.#scheduled = undefined;
    if (this.#stopped) return;
    this.#running = this.#sync().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.requestSync();
      }
    });
  }

  #retryLater(): void {
    const delay = Math.min(this.#o.resyncPeriodMs, (this.#o.retryBaseMs ?? 100) * 2 ** (this.#failures - 1));
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      // The retry reads the kernel again: an entry may have failed because the view was stale.
      this.#needFull = true;
      this.#hostFull = false;
      this.requestSync();
    }, delay);
  }

  async #sync(): Promise<void> {
    const o = this.#o;
    const t0 = performance.now();
    const full = this.#needFull || !this.#view;
    const fromHost = this.#hostFull && !!this.#view;
    this.#hostFull = false;
    const force = full && !fromHost;
    // Taken now, not cleared at the end: a full sync asked for while this one runs (the kernel dropped entries
    // after it read them) must still run.
    this.#needFull = false;
    const taken = this.#pending;
    this.#pending = new Map();
    let plan: OverlayPlan;
    let failed: Failure[] = [];
    let applied = 0;
    let masqueraded = false;
    let forwarded = false;
    try {
      if (full || this.#hostStale || !this.#host) {
        this.#hostStale = false;
        this.#host = await readHost(o.kernel, o.overlay.ifaceCanReach);
      }
      const name6 = o.overlay.ipv6Device?.name;
      if (full) {
        this.#view = await readDevice(o.kernel, o.overlay.device, this.#host.links);
        if (name6 !== undefined) this.#view6 = await readDevice(o.kernel, name6, this.#host.links, false);
      }
      // The first plan of a run takes what the last run programmed from the kernel: a Node broken while the agent
      // was down keeps those entries, as it keeps its last plan's while the agent runs.
      const nodes = o.store.list('Node');
      const history = this.#lastPlan
        ? { remotes: this.#lastPlan.remotes, ...(this.#lastPlan.device ? { device: this.#lastPlan.device } : {}) }
        : { remotes: remotesFromKernel(nodes, o.overlay.nodeName, this.#view!) };
      plan = planOverlay(nodes, { ...o.overlay, clusterCIDRs: o.clusterCIDRs }, this.#host, history);
      this.#lastPlan = plan;
      this.#reportProblems(plan);
      this.#warnRecreate(plan);
      const views = { main: this.#view!, ...(name6 !== undefined && this.#view6 ? { v6: this.#view6 } : {}) };
      const keepStale = this.#reportUnread();
      const done = await programPlan(o.kernel, plan, views, { main: o.overlay.device, ...(name6 !== undefined ? { v6: name6 } : {}) }, keepStale);
      this.#view = done.views.main;
      if (done.views.v6) this.#view6 = done.views.v6;
      applied = done.applied;
      failed = done.failed.map((f) => ({ kind: f.op.kind, text: f.text, error: f.error, entry: isEntry(f.op.kind) }));
      const cidrs = o.clusterCIDRs.length > 0 ? o.clusterCIDRs : plan.podCIDRs;
      if (plan.device && o.masquerade) {
        try {
          const endpoints = [plan.device, ...(plan.device6 ? [plan.device6] : [])].map((d) => ({ local: d.local, port: d.port }));
          masqueraded = await o.masquerade.sync(cidrs, { vxlan: endpoints, podCIDRs: plan.ownPodCIDRs }, force);
        } catch (e) {
          failed.push({ kind: 'nftables', text: 'masquerade tables', error: e as Error });
        }
      }
      if (plan.device && o.forward) {
        try {
          forwarded = await o.forward.sync(cidrs, force);
        } catch (e) {
          failed.push({ kind: 'iptables', text: 'forward-accept rules', error: e as Error });
        }
      }
    } catch (e) {
      // Reading the kernel failed: nothing was changed.
      failed.push({ kind: 'read', text: 'read the kernel', error: e as Error });
      plan = this.#lastPlan ?? { remotes: [], problems: [], podCIDRs: [], ownPodCIDRs: [], nodes: 0 };
    }
    const ms = performance.now() - t0;
    o.metrics.syncDuration.observe({ full: String(full) }, ms / 1000);
    this.#updateGauges(plan);
    if (failed.length > 0) {
      if (full) this.#needFull = true;
      this.#fail(taken, failed, full, applied);
      return;
    }
    const now = performance.now();
    const seenMs = taken.size > 0 ? now - Math.min(...taken.values()) : undefined;
    if (plan.device) for (const since of taken.values()) o.metrics.programmingDuration.observe((now - since) / 1000);
    o.metrics.lastSync.set(Date.now() / 1000);
    this.#failures = 0;
    this.#failingSince = undefined;
    this.#taken = undefined;
    if (force || applied > 0 || masqueraded || forwarded) {
      const counts = { ...viewCounts(this.#view!), ...(this.#view6?.link ? { ipv6Device: viewCounts(this.#view6) } : {}) };
      o.log.info(
        { full, ms: round(ms), ...(seenMs !== undefined ? { seenMs: round(seenMs) } : {}), operations: applied, masquerade: masqueraded, forward: forwarded, remotes: plan.remotes.length, ...counts },
        plan.device ? 'overlay synced' : 'overlay waiting: this node cannot have a VXLAN device yet',
      );
    }
    if (plan.device) {
      if (plan.self) o.onSelf?.(plan.self);
      o.onPlan?.(plan);
    }
  }

  #fail(taken: ReadonlyMap<string, number>, failed: Failure[], full: boolean, applied: number): void {
    const o = this.#o;
    for (const f of failed) o.metrics.programmingErrors.inc({ kind: f.kind });
    // The changes are still unapplied: their programming time keeps counting from when they were seen.
    for (const [k, since] of taken) if (!this.#pending.has(k) || this.#pending.get(k)! > since) this.#pending.set(k, since);
    this.#failures++;
    const blocked = failed.map((f) => f.error).find((e): e is DeviceTakenError => e instanceof DeviceTakenError);
    if (blocked && blocked.message !== this.#taken) o.log.error({ device: blocked.device, kind: blocked.kind }, blocked.message);
    this.#taken = blocked?.message;
    // A failure of the device, its address, nft or iptables: the next sync, whatever starts it, reads everything
    // again. A refused entry (one node's route, say, which may stay refused) leaves Node-event syncs to a plain diff
    // — the view holds what succeeded — and only the retry and the periodic resync read the kernel again.
    if (failed.some((f) => !f.entry)) {
      this.#failingSince ??= performance.now();
      this.#needFull = true;
      this.#hostStale = true;
    } else this.#failingSince = undefined;
    // EPERM from netlink, "Operation not permitted" from nft: the process lacks CAP_NET_ADMIN.
    const unprivileged = failed.some((f) => (f.error as { errno?: string }).errno === 'EPERM' || /Operation not permitted/.test(f.error.message));
    o.log.error(
      {
        full,
        operations: applied,
        failed: failed.length,
        errors: failed.slice(0, 5).map((f) => `${f.text}: ${f.error.message}`),
        retry: this.#failures,
        ...(unprivileged ? { hint: 'the overlay needs root or CAP_NET_ADMIN' } : {}),
      },
      'programming the overlay failed; what works stays, retrying with a full sync',
    );
    this.#retryLater();
  }

  /**
   * Whether entries of nodes not in the view must stay because the source could never read part of the cluster;
   * logs the files when the list changes, and when it empties.
   */
  #reportUnread(): boolean {
    const files = this.#o.neverRead?.() ?? [];
    this.#o.metrics.unread.set(files.length);
    const text = files.join('\n');
    if (text !== this.#unread) {
      if (files.length > 0) this.#o.log.warn({ files }, `the overlay removes no entries of nodes that are not in the view while these manifest files have never been read: ${files.join('; ')}`);
      else this.#o.log.info('every manifest file has been read: entries of nodes that are not in the view are removed again');
      this.#unread = text;
    }
    return files.length > 0;
  }

  /** Warns when a VXLAN device of the overlay's name is to be made again because its settings differ (as Flannel does). */
  #warnRecreate(plan: OverlayPlan): void {
    const pairs = [[this.#view?.link, plan.device], [this.#view6?.link, plan.device6]] as const;
    for (const [link, spec] of pairs) {
      const diff = link && spec ? vxlanMismatch(link, spec) : [];
      if (diff.length > 0) this.#o.log.warn({ device: link!.name, changes: diff }, `${link!.name} already exists with incompatible configuration (${diff.join(', ')}); recreating the device, its entries with it`);
    }
  }

  /** Warns of each node's problems when they change, and says when a node's are gone. */
  #reportProblems(plan: OverlayPlan): void {
    const text = plan.problems.map((p) => `node ${p.node} ${p.reason}`).join('\n');
    if (text === this.#problems) return;
    const before = this.#problemNodes;
    this.#problems = text;
    this.#problemNodes = new Map();
    for (const p of plan.problems) {
      this.#o.log.warn({ node: p.node }, `node ${p.node} ${p.reason}`);
      this.#problemNodes.set(p.node, [...(this.#problemNodes.get(p.node) ?? []), p.reason]);
    }
    for (const [node, reasons] of before) {
      // A node deleted took its problem with it: that is no news of the node.
      if (this.#problemNodes.has(node) || this.#o.store.get('Node', node) === undefined) continue;
      this.#o.log.info({ node, was: reasons }, `node ${node} has no problem any more (it had: ${reasons.join('; ')})`);
    }
  }

  #updateGauges(plan: OverlayPlan): void {
    const m = this.#o.metrics;
    const planned = plan.remotes.length + (plan.device ? 1 : 0);
    // Usable means programmed: this node's device up with its addresses, and each other node's entries in the
    // kernel, as far as the view knows. A node planned but not programmed (a refused entry, no device) is not.
    const usable = this.#usable(plan);
    m.nodes.set({ state: 'usable' }, usable);
    m.nodes.set({ state: 'unprogrammed' }, planned - usable);
    m.nodes.set({ state: 'unusable' }, Math.max(0, plan.nodes - planned));
    if (this.#view) for (const [kind, n] of Object.entries(viewCounts(this.#view))) m.entries.set({ kind }, n);
    if (this.#o.overlay.ipv6Device) {
      const { direct: _, ...counts } = viewCounts(this.#view6?.link ? this.#view6 : emptyView());
      for (const [kind, n] of Object.entries(counts)) m.entries6.set({ kind }, n);
    }
  }

  /**
   * How many of the plan's nodes are programmed: this node when its device (and IPv6 device, when planned) is up with
   * its addresses, and each remote whose entries are all there, on either device.
   */
  #usable(plan: OverlayPlan): number {
    const parts = devicePlans(plan);
    const main = this.#view ? programmedSet(parts.main, this.#view) : undefined;
    if (!main) return 0;
    if (!parts.v6) return main.size + 1;
    const v6 = this.#view6 ? programmedSet(parts.v6, this.#view6) : undefined;
    const on6 = new Set(parts.v6.remotes.map((r) => r.node));
    return (v6 ? 1 : 0) + [...main].filter((n) => !on6.has(n) || v6?.has(n)).length;
  }
}

/** One operation (or step) that failed in a sync; `entry` when it is one node's neighbour, FDB entry, route or direct route. */
interface Failure {
  kind: string;
  text: string;
  error: Error;
  entry?: boolean;
}

function isEntry(kind: string): boolean {
  return kind === 'neighbour' || kind === 'fdb' || kind === 'route' || kind === 'direct';
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

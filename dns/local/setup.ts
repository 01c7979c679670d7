// A node-local DNS server's networking, as NodeLocal DNSCache's node-cache sets it up around CoreDNS: the dummy
// interface holding its addresses (before the server binds them), the rules keeping its DNS out of conntrack (once it
// answers) and accepting it where a host firewall would drop it untracked (accept.ts), all checked again every minute and put back when something removed them, both removed at exit unless
// kept (node-cache's -skipteardown). Failures are logged and counted in node-cache's
// coredns_nodecache_setup_errors_total{errortype}; the next check tries again.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import { ensureLocalInterface, removeLocalInterface, type LocalKernel } from './interface.ts';
import { applyNotrack, removeNotrack, type NotrackSpec } from './notrack.ts';
import { acceptChain, syncAccept } from './accept.ts';

/** node-cache's periodic check: every 60 s. */
export const defaultCheckMs = 60_000;

/** What to set up. */
export interface LocalSetupOptions {
  /** The dummy interface and the addresses it holds; absent: no interface is made. */
  interface?: { name: string; ips: readonly string[] };
  /** What to keep out of conntrack; absent: no rules. */
  notrack?: NotrackSpec;
  /** Leave the interface and the rules in place at exit. */
  keep: boolean;
  kernel: () => LocalKernel & { close(): void };
  runner: CommandRunner;
  log: Logger;
  registry: Registry;
  checkMs?: number;
}

type ErrorType = 'iptables' | 'interface_add' | 'interface_check';

/** The interface and the rules, kept in place until close(). */
export class LocalSetup {
  readonly #o: LocalSetupOptions;
  readonly #errors: Counter<'errortype'>;
  #kernel: (LocalKernel & { close(): void }) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #rules = false;
  /** The iptables tables that hold the accept chain, to log only the first time. */
  readonly #accepting = new Set<string>();
  #checking: Promise<void> | undefined;

  constructor(o: LocalSetupOptions) {
    this.#o = o;
    const name = 'coredns_nodecache_setup_errors_total';
    this.#errors = (o.registry.getSingleMetric(name) as Counter<'errortype'> | undefined) ?? new Counter({ name, help: 'The number of errors during periodic network setup for node-cache.', labelNames: ['errortype'], registers: [o.registry] });
    for (const t of ['iptables', 'interface_add', 'interface_check'] as const) this.#errors.inc({ errortype: t }, 0);
  }

  /**
   * Makes the interface and its addresses, before the server binds them. Throws (after logging and counting) when
   * that fails: the server could not bind the addresses.
   */
  async start(): Promise<void> {
    if (this.#o.interface) await this.#ensureInterface(true);
    this.#timer = setInterval(() => void this.check(), this.#o.checkMs ?? defaultCheckMs);
    this.#timer.unref();
  }

  /** Puts the rules in, once the server answers (as node-cache does, so a server that fails to start leaves none). */
  async serving(): Promise<void> {
    this.#rules = this.#o.notrack !== undefined;
    await this.#ensureRules();
  }

  /** Checks both again now (the timer's work); never throws. */
  check(): Promise<void> {
    this.#checking ??= (async () => {
      try {
        if (this.#o.interface) await this.#ensureInterface(false).catch(() => {});
        await this.#ensureRules();
      } finally {
        this.#checking = undefined;
      }
    })();
    return this.#checking;
  }

  /** Stops checking; removes the interface and the rules unless kept. Never throws: what fails is logged. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
    const o = this.#o;
    try {
      if (o.keep) return;
      if (this.#rules) {
        await removeNotrack(o.runner).catch((e: Error) => o.log.error({ err: e.message }, `could not remove the nftables tables of the node-local DNS rules: ${e.message}`));
        await syncAccept(o.runner, undefined).catch((e: Error) => o.log.error({ err: e.message }, `could not remove ${acceptChain} from iptables: ${e.message}`));
      }
      if (o.interface) {
        const name = o.interface.name;
        await removeLocalInterface(this.#kernelOpen(), name).then(
          (removed) => removed && o.log.info({ interface: name }, `removed the interface ${name}`),
          (e: Error) => o.log.error({ interface: name, err: e.message }, `could not remove the interface ${name}: ${e.message}`),
        );
      }
    } finally {
      this.#kernel?.close();
      this.#kernel = undefined;
    }
  }

  #kernelOpen(): LocalKernel {
    return (this.#kernel ??= this.#o.kernel());
  }

  async #ensureInterface(first: boolean): Promise<void> {
    const { name, ips } = this.#o.interface!;
    try {
      const done = await ensureLocalInterface(this.#kernelOpen(), name, ips);
      if (done.created && done.kind !== 'dummy') this.#o.log.warn({ interface: name, kind: done.kind }, `this kernel has no dummy devices (CONFIG_DUMMY): a ${done.kind} without ports holds the node-local addresses on ${name} instead`);
      if (done.created || done.added.length > 0 || done.broughtUp) {
        const what = [done.created && 'created it', done.added.length > 0 && `added ${done.added.join(', ')}`, !done.created && done.broughtUp && 'brought it up'].filter(Boolean).join(', ');
        this.#o.log[first ? 'info' : 'warn']({ interface: name, ...done }, `the interface ${name}: ${what}`);
      }
    } catch (e) {
      const type: ErrorType = first ? 'interface_add' : 'interface_check';
      this.#errors.inc({ errortype: type });
      this.#o.log.error({ interface: name, err: (e as Error).message }, `the interface ${name} for ${ips.join(', ')}: ${(e as Error).message}`);
      throw e;
    }
  }

  async #ensureRules(): Promise<void> {
    if (!this.#rules) return;
    try {
      await applyNotrack(this.#o.runner, this.#o.notrack!);
      const changed = await syncAccept(this.#o.runner, this.#o.notrack!);
      for (const table of changed.filter((t) => !this.#accepting.has(t))) {
        this.#accepting.add(table);
        this.#o.log.info({ command: table, chain: acceptChain }, `${table} INPUT or OUTPUT may drop untracked packets: node-local DNS is accepted there through ${acceptChain}, as node-cache's ACCEPT rules`);
      }
    } catch (e) {
      this.#errors.inc({ errortype: 'iptables' });
      this.#o.log.error({ err: (e as Error).message }, `could not keep node-local DNS out of conntrack and accepted: ${(e as Error).message}; checked again in a minute`);
    }
  }
}

// The iptables backend of `netplane proxy --mode iptables`, for hosts without nftables: it programs the rules of
// ruleset.ts with iptables-restore (IPv4) and ip6tables-restore (IPv6) through an injected CommandRunner.
import { readFile } from 'node:fs/promises';
import type { ProxyBackend, SyncResult } from '../backend.ts';
import { conntrackFiles } from '../conntrack-tuning.ts';
import type { Family, ProxyPlan } from '../plan/types.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import type { Logger } from '../../runtime/logger.ts';
import { cleanupText, lineCount, parseSave, restoreText, type SavedTables } from './render.ts';
import { driftOf } from './canary.ts';
import { isProxyChain, tableNames } from './names.ts';
import { buildRuleset, ruleCount, tableRuleCount, type Ruleset } from './ruleset.ts';

/**
 * Which iptables binaries to run: the host's `iptables` (on current distributions the nft-based variant), or
 * explicitly `iptables-legacy` / `iptables-nft`. Both variants program the same kernel hooks; they differ only in
 * where the rules live, so the proxy must use the one the rest of the host uses.
 */
export type IptablesVariant = 'default' | 'legacy' | 'nft';

/** Options of the iptables backend. */
export interface IptablesOptions {
  log: Logger;
  variant?: IptablesVariant;
  /**
   * Whether nf_conntrack_tcp_be_liberal is set (then INVALID packets are not dropped), read at every full sync.
   * Default: reads /proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal; unreadable counts as not set.
   */
  tcpBeLiberal?: () => Promise<boolean>;
}

/** Reads nf_conntrack_tcp_be_liberal of this network namespace: true when it is set to a non-zero value. */
export async function readTcpBeLiberal(file: string = conntrackFiles.tcpBeLiberal): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => '0');
  return Number(text.trim()) > 0;
}

/** The save and restore commands of one family and variant, e.g. `ip6tables-legacy-restore`. */
export function iptablesCommands(family: Family, variant: IptablesVariant = 'default'): { save: string; restore: string } {
  const stem = `${family === 6 ? 'ip6tables' : 'iptables'}${variant === 'default' ? '' : `-${variant}`}`;
  return { save: `${stem}-save`, restore: `${stem}-restore` };
}

/** iptables-restore's arguments: wait up to 5 s for the xtables lock (legacy iptables) instead of failing when another tool holds it; keep other chains. */
export const restoreArgs: readonly string[] = ['-w', '5', '--noflush'];
const families: readonly Family[] = [4, 6];

/**
 * Programs a ProxyPlan into iptables' nat and filter tables. Each sync writes whole chains with
 * `iptables-restore --noflush` (atomic per table); a failed restore rejects with the runner's CommandError and
 * leaves what was programmed before.
 */
export class IptablesBackend implements ProxyBackend {
  readonly mode = 'iptables' as const;
  readonly #runner: CommandRunner;
  readonly #log: Logger;
  readonly #variant: IptablesVariant;
  readonly #readTcpBeLiberal: () => Promise<boolean>;
  /** nf_conntrack_tcp_be_liberal as read at the last full sync. */
  #tcpBeLiberal = false;
  #tcpBeLiberalRead = false;
  /** What was last applied per family; absent means unknown (never applied, or a failed restore). */
  readonly #applied = new Map<Family, Ruleset>();
  /** Families whose tables could not be read while they had no ports (no ip6tables, IPv6 off): warned once. */
  readonly #unreadable = new Set<Family>();
  #partialFailures = 0;

  /** Partial restores refused so far (each followed at once by a full one). */
  get partialRestoreFailures(): number {
    return this.#partialFailures;
  }
  #queue: Promise<unknown> = Promise.resolve();

  constructor(runner: CommandRunner, options: IptablesOptions) {
    this.#runner = runner;
    this.#log = options.log;
    this.#variant = options.variant ?? 'default';
    this.#readTcpBeLiberal = options.tcpBeLiberal ?? (() => readTcpBeLiberal());
  }

  /**
   * Makes both families match `plan`. A `full` sync (or the first one) reads back the tables, rewrites every
   * netplane chain, deletes stale NETPLANE-* chains and ensures the jumps from the built-in chains; other syncs
   * write only chains that changed since the last success. Rejects with the first family's error after trying both.
   */
  sync(plan: ProxyPlan, options: { full: boolean }): Promise<SyncResult> {
    return this.#serialize(() => this.#sync(plan, options.full));
  }

  /**
   * The periodic canary: reads nat and filter back (iptables-save) for each family that was applied and checks
   * that every jump from the built-in chains is there once and every netplane chain holds as many rules as were
   * written. Returns what differs (the next sync must be full) or undefined. Rejects when a table cannot be read.
   */
  verify(): Promise<string | undefined> {
    return this.#serialize(async () => {
      for (const family of families) {
        const applied = this.#applied.get(family);
        if (!applied) continue;
        const drift = driftOf(applied, await this.#read(family));
        if (drift) return `IPv${family}: ${drift}`;
      }
      return undefined;
    });
  }

  /**
   * Whether the nat table of either family holds a proxy chain. A family that cannot be read counts as holding none.
   * Table-less saves: `iptables-legacy-save -t nat` makes the table where there was none, and this also reads the
   * variant the host does not use (what a run with it left).
   */
  inherited(): Promise<boolean> {
    return this.#serialize(async () => {
      for (const family of families) {
        const { save } = iptablesCommands(family, this.#variant);
        const tables = await this.#runner.run(save, []).catch(() => undefined);
        if (tables && parseSave(tables.stdout).nat.chains.some(isProxyChain)) return true;
      }
      return false;
    });
  }

  /** Removes netplane's jumps and every NETPLANE-* chain from nat and filter, both families; nothing else. */
  cleanup(): Promise<void> {
    return this.#serialize(() => this.#cleanup());
  }

  /** Nothing to release: the rules stay programmed. */
  async close(): Promise<void> {}

  #serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #sync(plan: ProxyPlan, full: boolean): Promise<SyncResult> {
    const rulesByTable = { nat: 0, filter: 0 };
    const result: SyncResult = { rules: 0, elements: 0, operations: 0, rulesByTable };
    // Read at full syncs only, so that partial syncs compare rulesets built alike (a change shows at the next one).
    if (full || !this.#tcpBeLiberalRead) {
      const liberal = await this.#readTcpBeLiberal().catch(() => false);
      if (liberal !== this.#tcpBeLiberal) this.#log.info({ tcpBeLiberal: liberal }, liberal ? 'nf_conntrack_tcp_be_liberal is set: INVALID packets are not dropped' : 'nf_conntrack_tcp_be_liberal is not set: INVALID forwarded packets are dropped');
      this.#tcpBeLiberal = liberal;
      this.#tcpBeLiberalRead = true;
    }
    let failure: unknown;
    for (const family of families) {
      const next = buildRuleset(plan, family, { tcpBeLiberal: this.#tcpBeLiberal });
      try {
        const lines = await this.#syncFamily(next, full);
        if (lines === undefined) continue;
        result.operations += lines;
        result.rules += ruleCount(next);
        result.elements += next.endpoints;
        for (const table of tableNames) rulesByTable[table] += tableRuleCount(next, table);
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
    return result;
  }

  /** Syncs one family; returns the number of lines sent, or undefined when the family was skipped. */
  async #syncFamily(next: Ruleset, full: boolean): Promise<number | undefined> {
    const family = next.family;
    const previous = full ? undefined : this.#applied.get(family);
    if (previous) {
      const text = restoreText(next, { previous });
      if (text === '') return 0;
      try {
        return await this.#restore(next, text);
      } catch (e) {
        // The kernel is not what we last wrote (a chain deleted by hand, built-in chains flushed by a firewall
        // reload): read it back and write everything.
        this.#partialFailures++;
        this.#log.warn({ err: e, family }, 'iptables-restore of the changes failed; retrying as a full sync');
      }
    }
    let kernel: SavedTables;
    try {
      kernel = await this.#read(family);
    } catch (e) {
      if (next.ports > 0) throw e;
      if (!this.#unreadable.has(family)) this.#log.warn({ err: e, family }, `IPv${family} iptables cannot be read; skipping that family while it has no Services`);
      this.#unreadable.add(family);
      return undefined;
    }
    this.#unreadable.delete(family);
    return this.#restore(next, restoreText(next, { kernel }));
  }

  async #restore(next: Ruleset, text: string): Promise<number> {
    const family = next.family;
    const { restore } = iptablesCommands(family, this.#variant);
    try {
      await this.#runner.run(restore, restoreArgs, text);
    } catch (e) {
      this.#applied.delete(family);
      throw e;
    }
    this.#applied.set(family, next);
    for (const s of next.skipped) this.#log.warn({ family }, s);
    const lines = lineCount(text);
    this.#log.debug({ family, lines, rules: ruleCount(next), endpoints: next.endpoints }, 'iptables rules applied');
    return lines;
  }

  async #read(family: Family): Promise<SavedTables> {
    const { save } = iptablesCommands(family, this.#variant);
    const nat = await this.#runner.run(save, ['-t', 'nat']);
    const filter = await this.#runner.run(save, ['-t', 'filter']);
    return { nat: parseSave(nat.stdout).nat, filter: parseSave(filter.stdout).filter };
  }

  async #cleanup(): Promise<void> {
    let failure: unknown;
    for (const family of families) {
      this.#applied.delete(family);
      let kernel: SavedTables;
      try {
        // Every table at once, never `-t`: legacy's `-t nat` makes the table where there was none, and a clean-up of
        // a variant the host does not use must not leave it (iptables-nft would warn "legacy tables present").
        kernel = parseSave((await this.#runner.run(iptablesCommands(family, this.#variant).save, [])).stdout);
      } catch (e) {
        // Tables that cannot be read hold nothing of ours.
        this.#log.warn({ err: e, family }, `IPv${family} iptables cannot be read; nothing to clean up there`);
        continue;
      }
      const text = cleanupText(kernel);
      if (text === '') continue;
      try {
        await this.#runner.run(iptablesCommands(family, this.#variant).restore, restoreArgs, text);
        this.#log.info({ family, lines: lineCount(text) }, 'iptables rules removed');
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

// The nftables backend of `netplane proxy`: render the plan (render.ts), diff it against what is programmed
// (diff.ts), and send the difference to the kernel as one atomic `nft -f -` transaction through the injected
// runner. See layout.ts for the rules themselves.
import type { CommandRunner } from '../../runtime/exec.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { ProxyBackend, SyncResult } from '../backend.ts';
import type { ProxyPlan } from '../plan/types.ts';
import { affinityIndex, affinityShrank, staleAffinity, type AffinityIndex } from './affinity.ts';
import { readShapes, shapeDifference } from './canary.ts';
import { diff } from './diff.ts';
import { isMissing, parseTable, readTable } from './kernel.ts';
import { affinityMap } from './layout.ts';
import { Ledger } from './ledger.ts';
import { nftRunOptions } from './nft-env.ts';
import { families, tableFamily, tableName, type Family, type TableState } from './model.ts';
import { Transaction } from './transaction.ts';

/** Programs Services into the `ip netplane` and `ip6 netplane` tables. */
export class NftablesBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  #runner: CommandRunner;
  #log: Logger;
  /** What the last successful sync applied; undefined before one (the next sync then reads the kernel). */
  #ledger: Ledger | undefined;
  #affinity: AffinityIndex | undefined;

  constructor(runner: CommandRunner, options: { log: Logger }) {
    this.#runner = runner;
    this.#log = options.log;
  }

  /**
   * Makes both tables match `plan` with one transaction. With `full` (or before any success) it diffs against
   * what the kernel holds, else against the last applied state. Rejects with CommandError when nft refuses (the
   * kernel is then unchanged, as is the last applied state) or TransactionError for text nft would misread.
   */
  async sync(plan: ProxyPlan, options: { full: boolean }): Promise<SyncResult> {
    let ledger = this.#ledger;
    let change = options.full ? undefined : ledger?.change(plan);
    let kernel: Record<Family, TableState> | undefined;
    if (!change) {
      // Full: reconcile with what the kernel holds (nft lists while we render).
      const reading = Promise.all([readTable(this.#runner, 4), readTable(this.#runner, 6)]);
      reading.catch(() => {});
      ledger = new Ledger();
      change = ledger.change(plan)!;
      const [v4, v6] = await reading;
      kernel = { 4: v4, 6: v6 };
    }
    const tx = diff(kernel ?? change.prev, change.next);
    if (tx.error) throw tx.error;
    if (!tx.empty) {
      this.#log.debug({ full: !!kernel, lines: tx.lines }, 'applying nftables transaction');
      await this.#runner.run('nft', ['-f', '-'], tx.text(), nftRunOptions());
    }
    change.commit();
    this.#ledger = ledger;

    let operations = tx.lines;
    const index = affinityIndex(plan);
    if (kernel || affinityShrank(this.#affinity, index)) {
      // A full sync has just read the recorded entries along with the table.
      for (const f of families) operations += await this.#removeStaleAffinity(f, index, kernel ? (kernel[f].sets.get(affinityMap)?.elements ?? new Map()) : undefined);
    }
    this.#affinity = index;
    return { ...ledger!.counts(), operations };
  }

  /**
   * The periodic canary: lists both tables without their elements and compares tables, chains, sets and rule
   * identities with the last applied state. Returns what differs (the next sync must be full), or undefined when
   * they match or nothing was applied yet. Rejects with CommandError when nft cannot list.
   */
  async verify(): Promise<string | undefined> {
    const applied = this.#ledger?.applied;
    if (!applied) return undefined;
    return shapeDifference(await readShapes(this.#runner), applied);
  }

  /** Whether either family's table exists (read without set elements: canary.ts readShapes). */
  async inherited(): Promise<boolean> {
    const shapes = await readShapes(this.#runner);
    return families.some((f) => shapes[f].exists);
  }

  /** Deletes both tables (absent ones are fine). Rejects with CommandError when nft fails otherwise. */
  async cleanup(): Promise<void> {
    for (const f of families) {
      try {
        await this.#runner.run('nft', ['delete', 'table', tableFamily[f], tableName]);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    }
    this.#ledger = undefined;
    this.#affinity = undefined;
  }

  /** Nothing to release: the rules stay programmed, and nft runs per sync. */
  async close(): Promise<void> {}

  /**
   * Deletes recorded affinity entries that point at endpoints no longer in their Service (best effort, after the
   * main transaction: an entry may time out between listing and deleting, which fails the whole deletion, so it
   * is retried once from a fresh listing and otherwise left to expire). Returns the lines sent.
   */
  async #removeStaleAffinity(family: Family, index: AffinityIndex, known: ReadonlyMap<string, string> | undefined): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      let entries = known;
      known = undefined;
      try {
        entries ??= await this.#listAffinity(family);
        const stale = staleAffinity(entries, index);
        if (stale.length === 0) return 0;
        const tx = new Transaction().deleteElements(family, affinityMap, stale);
        await this.#runner.run('nft', ['-f', '-'], tx.text(), nftRunOptions());
        this.#log.debug({ family, entries: stale.length }, 'removed stale ClientIP affinity entries');
        return tx.lines;
      } catch (e) {
        if (attempt >= 1) {
          this.#log.warn({ family, err: (e as Error).message }, 'could not remove stale ClientIP affinity entries; they expire with their timeout');
          return 0;
        }
      }
    }
  }

  async #listAffinity(family: Family): Promise<ReadonlyMap<string, string>> {
    try {
      const { stdout } = await this.#runner.run('nft', ['-j', 'list', 'map', tableFamily[family], tableName, affinityMap]);
      return parseTable(family, stdout).sets.get(affinityMap)?.elements ?? new Map();
    } catch (e) {
      if (isMissing(e)) return new Map();
      throw e;
    }
  }
}

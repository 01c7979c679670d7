// The nftables backend of `netplane proxy`: render the plan (render.ts), diff it against what is programmed
// (diff.ts), and send the difference to the kernel as one atomic transaction: `nft -f -` through the injected
// runner, or, when it changes set elements only and fits one batch, a netlink batch of its own (netlink/). A table
// made from nothing gets its chains, rules and sets from nft and its bulk elements by netlink after them. See
// layout.ts for the rules themselves.
import type { CommandRunner } from '../../runtime/exec.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { ProxyBackend, SyncResult } from '../backend.ts';
import type { ProxyPlan } from '../plan/types.ts';
import { affinityIndex, affinityShrank, staleAffinity, type AffinityIndex } from './affinity.ts';
import { readShapes, shapeDifference } from './canary.ts';
import { diff } from './diff.ts';
import { deleteTables, isMissing, parseTable, readTable } from './kernel.ts';
import { affinityMap, clusterIPsSet, lbUnitOf } from './layout.ts';
import { Ledger } from './ledger.ts';
import { nftRunOptions } from './nft-env.ts';
import { families, tableFamily, tableName, type Family, type TableState } from './model.ts';
import { Transaction, type ElementOp } from './transaction.ts';
import { encodeBatches, type Batch } from './netlink/batch.ts';
import { elementCodec, ElementTextError, type ElementCodec } from './netlink/elements.ts';
import { NftNetlinkError, type ElementChannel } from './netlink/socket.ts';
import { readTablesByNetlink } from './netlink/read.ts';
import type { Desired } from './render.ts';

/** Programs Services into the `ip netplane` and `ip6 netplane` tables. */
export class NftablesBackend implements ProxyBackend {
  readonly mode = 'nftables' as const;
  #runner: CommandRunner;
  #log: Logger;
  /** What the last successful sync applied; undefined before one (the next sync then reads the kernel). */
  #ledger: Ledger | undefined;
  #affinity: AffinityIndex | undefined;
  #openChannel: (() => ElementChannel) | undefined;
  #channel: ElementChannel | undefined;

  /**
   * `elements` opens the netlink socket that set elements may go through (in the network namespace nft runs in);
   * without it every transaction goes to nft.
   */
  constructor(runner: CommandRunner, options: { log: Logger; elements?: () => ElementChannel }) {
    this.#runner = runner;
    this.#log = options.log;
    this.#openChannel = options.elements;
  }

  /**
   * Makes both tables match `plan` with one transaction (two for a table made from nothing, see #apply). With
   * `full` (or before any success) it diffs against what the kernel holds, else against the last applied state.
   * Rejects with CommandError when nft refuses or NftNetlinkError when a netlink batch is refused (the kernel is
   * then unchanged, as is the last applied state), or TransactionError for text nft would misread.
   */
  async sync(plan: ProxyPlan, options: { full: boolean }): Promise<SyncResult> {
    let ledger = this.#ledger;
    let change = options.full ? undefined : ledger?.change(plan);
    let kernel: Record<Family, TableState> | undefined;
    let readAffinity = true;
    if (!change) {
      // Full: reconcile with what the kernel holds. nft lists while we render; by netlink, the desired state says
      // which sets' elements to list, so it is rendered first.
      ledger = new Ledger();
      const channel = this.#elementChannel();
      const readBoth = () => Promise.all([readTable(this.#runner, 4), readTable(this.#runner, 6)]);
      const reading = channel ? undefined : readBoth();
      reading?.catch(() => {});
      const full = ledger.change(plan)!;
      change = full;
      kernel = channel ? await this.#readByNetlink(channel, full.next) : undefined;
      // The kernel-filled affinity map is not read by netlink; #removeStaleAffinity lists it.
      if (kernel) readAffinity = false;
      else {
        const [v4, v6] = await (reading ?? readBoth());
        kernel = { 4: v4, 6: v6 };
      }
    }
    const tx = diff(kernel ?? change.prev, change.next);
    if (tx.error) throw tx.error;
    const via = tx.empty ? undefined : await this.#apply(tx, change.next, kernel);
    change.commit();
    this.#ledger = ledger;

    let operations = tx.lines;
    const index = affinityIndex(plan);
    if (kernel || affinityShrank(this.#affinity, index)) {
      // A full sync has just read the recorded entries along with the table.
      for (const f of families) operations += await this.#removeStaleAffinity(f, index, kernel && readAffinity ? (kernel[f].sets.get(affinityMap)?.elements ?? new Map()) : undefined);
    }
    this.#affinity = index;
    return { ...ledger!.counts(), operations, ...(via ? { via } : {}) };
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
    await deleteTables(this.#runner, tableName);
    this.#ledger = undefined;
    this.#affinity = undefined;
  }

  /** Closes the netlink socket; the rules stay programmed. */
  async close(): Promise<void> {
    this.#dropChannel();
  }

  /**
   * Sends a transaction. Element changes alone go as one netlink batch when every set they touch has a codec and
   * they fit in one (one kernel transaction, as nft's). When a family's table is made from nothing (`kernel`
   * says it is absent), nft makes the table, its chains, rules and sets, and the elements that can be encoded
   * follow by netlink in as many batches as they take: nothing uses that table yet. Everything else goes to nft.
   */
  async #apply(tx: Transaction, next: Desired, kernel: Record<Family, TableState> | undefined): Promise<NonNullable<SyncResult['via']>> {
    const channel = this.#elementChannel();
    if (channel) {
      const codecs = new Map<string, ElementCodec | undefined>();
      const codec = (f: Family, set: string): ElementCodec | undefined => {
        const key = `${f} ${set}`;
        if (!codecs.has(key)) {
          const spec = next[f].sets.get(set);
          codecs.set(key, spec?.elements ? elementCodec(spec.spec) : undefined);
        }
        return codecs.get(key);
      };
      const encodable = (op: ElementOp) => codec(op.family, op.set) !== undefined;
      // Element text a codec cannot read goes to nft, which says what is wrong with it.
      const encode = (ops: readonly ElementOp[]) => {
        try {
          return encodeBatches(ops, (f, s) => codec(f, s)!, channel.maxBatchBytes);
        } catch (e) {
          if (!(e instanceof ElementTextError)) throw e;
          this.#log.debug({ err: e.message }, 'set elements left to nft');
          return undefined;
        }
      };
      const ops = tx.elementOps();
      if (!tx.structural && ops.every(encodable)) {
        const batches = encode(ops);
        if (batches?.length === 1) {
          this.#log.debug({ elements: ops.length }, 'applying set elements by netlink');
          await this.#send(channel, batches, describeOps(ops, batches));
          return 'netlink';
        }
      }
      const fresh = (op: ElementOp) => op.verb === 'add' && kernel !== undefined && !kernel[op.family].exists && encodable(op);
      const deferred = loadOrder(ops.filter(fresh));
      const batches = deferred.length > 0 ? encode(deferred) : undefined;
      if (batches) {
        this.#log.debug({ full: true, lines: tx.lines, netlinkOps: deferred.length }, 'applying nftables transaction, then its elements by netlink');
        await this.#runner.run('nft', ['-f', '-'], tx.text(fresh), nftRunOptions());
        await this.#send(channel, batches, describeOps(deferred, batches));
        return 'nft+netlink';
      }
    }
    this.#log.debug({ full: !!kernel, lines: tx.lines }, 'applying nftables transaction');
    await this.#runner.run('nft', ['-f', '-'], tx.text(), nftRunOptions());
    return 'nft';
  }

  /**
   * The tables read with their elements listed by netlink (netlink/read.ts); undefined, with a warning, when the
   * socket fails, for nft to list them instead.
   */
  async #readByNetlink(channel: ElementChannel, next: Desired): Promise<Record<Family, TableState> | undefined> {
    try {
      return await readTablesByNetlink(this.#runner, channel, next);
    } catch (e) {
      if (!(e instanceof NftNetlinkError)) throw e;
      this.#log.warn({ err: e.message }, 'could not list set elements by netlink; nft lists them');
      this.#dropChannel();
      return undefined;
    }
  }

  /** Applies batches; after a failure the socket is closed, and the next use opens a new one. */
  async #send(channel: ElementChannel, batches: readonly Batch[], describe: (seq: number) => string): Promise<void> {
    try {
      await channel.apply(batches, describe);
    } catch (e) {
      // A refused batch leaves the socket fine, but one that failed on the socket itself may not: a new socket
      // costs less than finding out which.
      if (e instanceof NftNetlinkError) this.#dropChannel();
      throw e;
    }
  }

  #dropChannel(): void {
    this.#channel?.close();
    this.#channel = undefined;
  }

  /** The netlink socket, opened on first use; undefined (nft for everything) when there is none or it cannot open. */
  #elementChannel(): ElementChannel | undefined {
    if (this.#channel || !this.#openChannel) return this.#channel;
    try {
      this.#channel = this.#openChannel();
    } catch (e) {
      this.#log.warn({ err: (e as Error).message }, 'no netlink socket for nftables set elements; nft writes them');
      this.#openChannel = undefined;
    }
    return this.#channel;
  }

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

/**
 * The order a new table's elements are loaded in, across batches that are each their own transaction: first the
 * maps that load-balancing chains look endpoints up in, then the verdict maps that send connections to those
 * chains, then the other sets (affinity IDs, hairpin pairs ...), and the set of cluster IPs (whose connections are
 * refused when no Service port takes them) last. So a connection that comes while the batches are loading is
 * either handled whole or passes as before the table was made, never refused for an element not yet loaded.
 */
function loadOrder(ops: readonly ElementOp[]): ElementOp[] {
  const rank = (op: ElementOp) => {
    if (lbUnitOf(op.set) !== undefined) return 0;
    if (op.set === clusterIPsSet) return 3;
    const v = op.values?.[0];
    return v !== undefined && (v.startsWith('goto ') || v.startsWith('jump ')) ? 1 : 2;
  };
  return [...ops].sort((a, b) => rank(a) - rank(b));
}

/** Names the operation a batch message carried, for errors: `add 1000 elements to cluster-vips (ip)`. */
function describeOps(ops: readonly ElementOp[], batches: readonly Batch[]): (seq: number) => string {
  return (seq) => {
    const batch = batches.find((b) => b.seqs.includes(seq));
    const op = ops[batch ? batch.ops[batch.seqs.indexOf(seq)]! : 0]!;
    return `${op.verb} elements ${op.verb === 'add' ? 'to' : 'of'} ${op.set} (${tableFamily[op.family]} ${tableName})`;
  };
}

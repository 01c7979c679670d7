// The periodic canary of the nftables backend: does the kernel still hold the tables, chains, sets and rules the
// last sync applied? Read with `nft -j -t list ruleset` (terse: no set elements, so it stays cheap at 10,000
// Services; see readShapes) and compared by identity (set declaration digests and rule digests, kept as comments).
// Elements are not compared: a firewall reload or `nft flush ruleset` removes the table, and that is what this
// catches.
import type { CommandRunner } from '../../runtime/exec.ts';
import { nftItems, tableFromItems } from './kernel.ts';
import { sameBase, sameRules } from './diff.ts';
import { families, setId, tableFamily, tableName, type Family, type TableState } from './model.ts';
import type { Desired } from './render.ts';

/**
 * The first difference between what the kernel holds (read tersely) and what was applied, as one sentence, or
 * undefined when the shapes match. Pure. Extra objects nobody applied count as a difference too.
 */
export function shapeDifference(kernel: Record<Family, TableState>, applied: Desired): string | undefined {
  for (const f of families) {
    const k = kernel[f];
    const want = applied[f];
    const table = `${tableFamily[f]} ${tableName}`;
    if (!k.exists) return `table ${table} is missing`;
    for (const [name, s] of want.sets) {
      const got = k.sets.get(name);
      if (!got) return `set ${name} of ${table} is missing`;
      if (got.id !== setId(s)) return `set ${name} of ${table} is declared differently`;
    }
    for (const name of k.sets.keys()) if (!want.sets.has(name)) return `set ${name} of ${table} is not netplane's`;
    for (const [name, c] of want.chains) {
      const got = k.chains.get(name);
      if (!got) return `chain ${name} of ${table} is missing`;
      if (!sameBase(got.base, c.base)) return `chain ${name} of ${table} has another hook`;
      if (!sameRules(got.ruleIds, c)) return `the rules of chain ${name} of ${table} were changed`;
    }
    for (const name of k.chains.keys()) if (!want.chains.has(name)) return `chain ${name} of ${table} is not netplane's`;
  }
  return undefined;
}

/**
 * Reads both families' tables without set elements; an absent table gives an empty state. Rejects with
 * CommandError. nft 1.0.6 fetches every set element for `list table -t` and for `list tables` (2-3 s of CPU at
 * 10,000 Services x 10 endpoints) but not for `list ruleset -t` (0.04 s), so the ruleset is read and the other
 * tables in it left out.
 */
export async function readShapes(runner: CommandRunner): Promise<Record<Family, TableState>> {
  const { stdout } = await runner.run('nft', ['-j', '-t', 'list', 'ruleset']);
  const items = nftItems(stdout, '-t list ruleset');
  return { 4: tableFromItems(4, items), 6: tableFromItems(6, items) };
}

// The periodic canary of the iptables backend: what iptables-save reads back is compared with what was last
// restored, cheaply — the jumps from the built-in chains and, per netplane chain, its presence and rule count (the
// text iptables-save prints differs from the text written, so rules are counted rather than compared).
import { tableNames } from './names.ts';
import { jumpLines, type SavedTables } from './render.ts';
import type { Ruleset } from './ruleset.ts';

/** The first difference between `kernel` and the `applied` ruleset, as one sentence, or undefined. Pure. */
export function driftOf(applied: Ruleset, kernel: SavedTables): string | undefined {
  for (const table of tableNames) {
    const saved = kernel[table];
    const fix = jumpLines(table, saved);
    if (fix.length > 0) return `${table}: the jumps to netplane's chains need ${fix.join('; ')}`;
    const present = new Set(saved.chains);
    const counts = new Map<string, number>();
    for (const r of saved.rules) counts.set(r.chain, (counts.get(r.chain) ?? 0) + 1);
    for (const [chain, rules] of applied.tables[table]) {
      if (!present.has(chain)) return `${table}: chain ${chain} is missing`;
      const n = counts.get(chain) ?? 0;
      if (n !== rules.length) return `${table}: chain ${chain} holds ${n} rules, ${rules.length} were written`;
    }
  }
  return undefined;
}

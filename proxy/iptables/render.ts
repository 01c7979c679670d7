// iptables-restore input for netplane's chains, and reading back iptables-save output. Pure text functions.
//
// With `iptables-restore --noflush`, a line `:NETPLANE-X - [0:0]` creates the chain or flushes it, and the rules
// that follow refill it; each table's part is committed atomically, so a chain is never seen half-written. Stale
// chains are flushed the same way and deleted with `-X` at the end, once nothing refers to them.
import type { Family, ProxyPlan } from '../plan/types.ts';
import { isProxyChain, jumps, tableNames, type Jump, type TableName } from './names.ts';
import { buildRuleset, type Ruleset, type RulesetOptions } from './ruleset.ts';

/** One table as read back with iptables-save. */
export interface SavedTable {
  /** Every chain, in output order. */
  chains: string[];
  /** Chains with a policy (PREROUTING, INPUT, ...), as opposed to user-defined ones. */
  builtins: Set<string>;
  /** Every rule: its chain and the text after `-A <chain>`. */
  rules: { chain: string; spec: string }[];
}

/** What the kernel holds in the tables netplane uses. */
export type SavedTables = Record<TableName, SavedTable>;

const emptyTable = (): SavedTable => ({ chains: [], builtins: new Set(), rules: [] });

/**
 * Parses iptables-save output (legacy or nft-based; comment lines such as nft's "legacy tables present" warning
 * are skipped). Tables that are not in the output come back empty.
 */
export function parseSave(text: string): SavedTables {
  const out: SavedTables = { nat: emptyTable(), filter: emptyTable() };
  let table: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const name = line.slice(1);
      table = name === 'nat' || name === 'filter' ? (out[name] = emptyTable()) : undefined;
    } else if (!table || line === 'COMMIT') {
      continue;
    } else if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(/\s+/);
      table.chains.push(name);
      if (policy !== '-') table.builtins.add(name);
    } else if (line.startsWith('-A ')) {
      const m = /^-A\s+(\S+)\s*(.*)$/.exec(line);
      if (m) table.rules.push({ chain: m[1]!, spec: m[2]! });
    }
  }
  return out;
}

/** The proxy's chain a rule jumps or goes to, if any. */
function netplaneTarget(spec: string): string | undefined {
  const target = /(?:^|\s)-[jg]\s+(NETPLANE-\S+)/.exec(spec)?.[1];
  return target !== undefined && isProxyChain(target) ? target : undefined;
}

// iptables-save of the nft-based variant quotes every comment, the legacy one only those with spaces.
const normalize = (spec: string) => spec.replace(/"/g, '').replace(/\s+/g, ' ').trim();

/**
 * The lines that make a table's built-in chains hold exactly one of each netplane jump: duplicates and jumps to
 * netplane chains that are not current are deleted; a missing jump is inserted where a first install puts it, so a
 * repair (one jump deleted by somebody) restores the order netplane started with. Nothing else in the built-in
 * chains is touched.
 */
export function jumpLines(table: TableName, saved: SavedTable): string[] {
  const deletes: Jump[] = [];
  const wanted = jumps[table];
  const found = new Set<Jump>();
  // Each built-in chain as normalized rule texts, as it will stand when the inserts run.
  const chains = new Map<string, string[]>();
  for (const r of saved.rules) {
    if (!saved.builtins.has(r.chain)) continue;
    const rules = chains.get(r.chain) ?? [];
    chains.set(r.chain, rules);
    rules.push(normalize(r.spec));
    if (netplaneTarget(r.spec) === undefined) continue;
    const match = wanted.find((j) => j.chain === r.chain && !found.has(j) && normalize(j.spec) === normalize(r.spec));
    if (match) found.add(match);
    else deletes.push(r);
  }
  // `-D <chain> <rule>` deletes the first rule equal to it (for a duplicate, the one found above; same text).
  for (const d of deletes) {
    const rules = chains.get(d.chain)!;
    rules.splice(rules.indexOf(normalize(d.spec)), 1);
  }
  const inserts: string[] = [];
  wanted.forEach((j, i) => {
    if (found.has(j)) return;
    const rules = chains.get(j.chain) ?? [];
    chains.set(j.chain, rules);
    // A first install inserts each jump first in its chain in list order, so the jumps listed after j stand ahead
    // of it: j goes right after the one of those present that stands lowest, or first when none is.
    const ahead = wanted.slice(i + 1).filter((k) => k.chain === j.chain).map((k) => rules.indexOf(normalize(k.spec)));
    const at = Math.max(-1, ...ahead) + 1;
    rules.splice(at, 0, normalize(j.spec));
    inserts.push(`-I ${j.chain} ${at + 1} ${j.spec}`);
  });
  return [...deletes.map((d) => `-D ${d.chain} ${d.spec}`), ...inserts];
}

/** Where the restore input starts from. */
export interface RestoreBase {
  /** What was applied last: only chains whose rules changed are written; chains no longer built are deleted. */
  previous?: Ruleset;
  /** What the kernel holds (a full sync): every chain is written, other netplane chains deleted, jumps ensured. */
  kernel?: SavedTables;
}

/**
 * The iptables-restore input (for `--noflush`) that makes netplane's chains equal to `next`. Without a base, it
 * writes every chain and nothing else (no jumps, no deletions). Empty when nothing needs to change.
 */
export function restoreText(next: Ruleset, from: RestoreBase = {}): string {
  const lines: string[] = [];
  for (const table of tableNames) {
    const chains = next.tables[table];
    const prev = from.kernel ? undefined : from.previous?.tables[table];
    const written = [...chains.keys()].filter((name) => !prev || !sameRules(prev.get(name), chains.get(name)!));
    const existing = from.kernel ? from.kernel[table].chains.filter((c) => isProxyChain(c)) : [...(prev?.keys() ?? [])];
    const stale = existing.filter((c) => !chains.has(c));
    const hooks = from.kernel ? jumpLines(table, from.kernel[table]) : [];
    if (written.length + stale.length + hooks.length === 0) continue;
    lines.push(`*${table}`);
    for (const c of [...written, ...stale]) lines.push(`:${c} - [0:0]`);
    for (const c of written) for (const rule of chains.get(c)!) lines.push(`-A ${c} ${rule}`);
    lines.push(...hooks);
    for (const c of stale) lines.push(`-X ${c}`);
    lines.push('COMMIT');
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

const sameRules = (a: readonly string[] | undefined, b: readonly string[]) => a !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);

/** The restore input that removes the proxy's jumps from the built-in chains and every chain of its own (isProxyChain). */
export function cleanupText(kernel: SavedTables): string {
  const lines: string[] = [];
  for (const table of tableNames) {
    const saved = kernel[table];
    const ours = saved.chains.filter((c) => isProxyChain(c));
    const unhook = saved.rules.filter((r) => saved.builtins.has(r.chain) && netplaneTarget(r.spec) !== undefined).map((r) => `-D ${r.chain} ${r.spec}`);
    if (ours.length + unhook.length === 0) continue;
    lines.push(`*${table}`, ...ours.map((c) => `:${c} - [0:0]`), ...unhook, ...ours.map((c) => `-X ${c}`), 'COMMIT');
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The iptables-restore input for netplane's chains in one family of `plan` (every chain, no jumps). Pure. */
export function render(plan: ProxyPlan, family: Family, options: RulesetOptions = {}): string {
  return restoreText(buildRuleset(plan, family, options));
}

/** Number of lines in a restore input (what SyncResult.operations counts). */
export function lineCount(text: string): number {
  return text === '' ? 0 : text.trimEnd().split('\n').length;
}

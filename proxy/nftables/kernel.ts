// Reading a netplane table back from the kernel (`nft -j list table`) into the canonical form diff() compares:
// set identities and rule identities come from their comments, elements are turned into the same text the
// renderer writes (`10.96.0.1 . tcp . 80 . 0` → `10.244.1.2 . 8080`).
import { CommandError, type CommandRunner } from '../../runtime/exec.ts';
import { nftRunOptions } from './nft-env.ts';
import { absent, tableFamily, tableName, type BaseChain, type Family, type TableState } from './model.ts';

/** The kernel answered something that is not the JSON nft prints. */
export class KernelStateError extends Error {
  override readonly name = 'KernelStateError';
  readonly code = 'NETPLANE_NFT_UNREADABLE';
}

/** True when a failed nft command only says that the table (or set) does not exist. */
export function isMissing(e: unknown): boolean {
  return e instanceof CommandError && /No such file or directory/.test(e.stderr);
}

/** Deletes the `ip` and `ip6` tables of that name; absent ones are fine. Rejects with CommandError when nft fails otherwise. */
export async function deleteTables(runner: CommandRunner, name: string): Promise<void> {
  for (const family of ['ip', 'ip6']) {
    try {
      await runner.run('nft', ['delete', 'table', family, name]);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }
}

/** Reads one family's table; an absent table gives an empty state. Rejects with CommandError otherwise. */
export async function readTable(runner: CommandRunner, family: Family): Promise<TableState> {
  try {
    const { stdout } = await runner.run('nft', ['-j', 'list', 'table', tableFamily[family], tableName], undefined, nftRunOptions());
    return parseTable(family, stdout);
  } catch (e) {
    if (isMissing(e)) return absent(family);
    throw e;
  }
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
/** One object of nft's JSON output. */
export type Obj = { [k: string]: Json };

/** The items of `nft -j list ...` output. Throws KernelStateError on anything else. */
export function nftItems(json: string, what: string): Obj[] {
  try {
    return (JSON.parse(json) as { nftables?: Obj[] }).nftables ?? [];
  } catch (e) {
    throw new KernelStateError(`nft -j ${what} printed invalid JSON`, { cause: e });
  }
}

/** Parses `nft -j list table` output. Throws KernelStateError on anything else. */
export function parseTable(family: Family, json: string): TableState {
  return tableFromItems(family, nftItems(json, `list table ${tableFamily[family]} ${tableName}`));
}

/**
 * Of a listing's items, those of one family's netplane table (a ruleset's other tables are left out), as a state.
 */
export function tableFromItems(family: Family, items: readonly Obj[]): TableState {
  const state = absent(family);
  for (const item of items) {
    const [kind] = Object.keys(item);
    const o = item[kind!] as Obj;
    if (o.family !== undefined && (o.family !== tableFamily[family] || (kind === 'table' ? o.name : o.table) !== tableName)) continue;
    if (kind === 'table') state.exists = true;
    else if (kind === 'set' || kind === 'map') {
      const elements = new Map<string, string>();
      for (const e of (o.elem as Json[] | undefined) ?? []) {
        if (kind === 'map' && Array.isArray(e)) elements.set(elemText(e[0]!), elemText(e[1]!));
        else elements.set(elemText(e), '');
      }
      state.sets.set(String(o.name), { kind, id: typeof o.comment === 'string' ? o.comment : undefined, elements });
    } else if (kind === 'chain') {
      const base: BaseChain | undefined = o.hook
        ? { type: o.type as BaseChain['type'], hook: o.hook as BaseChain['hook'], prio: Number(o.prio), policy: o.policy as BaseChain['policy'] }
        : undefined;
      state.chains.set(String(o.name), { ...(base ? { base } : {}), ruleIds: [] });
    } else if (kind === 'rule') {
      const chain = state.chains.get(String(o.chain));
      chain?.ruleIds.push(typeof o.comment === 'string' ? o.comment : undefined);
    }
  }
  return state;
}

/** An element key or value in the renderer's text form. */
export function elemText(v: Json): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (Array.isArray(v) || v === null || typeof v !== 'object') throw new KernelStateError(`unexpected set element ${JSON.stringify(v)}`);
  if ('elem' in v) return elemText((v.elem as Obj).val ?? null);
  if ('concat' in v) return (v.concat as Json[]).map(elemText).join(' . ');
  if ('prefix' in v) {
    const p = v.prefix as Obj;
    return `${String(p.addr)}/${String(p.len)}`;
  }
  if ('range' in v) return (v.range as Json[]).map(elemText).join('-');
  if ('goto' in v) return `goto ${String((v.goto as Obj).target)}`;
  if ('jump' in v) return `jump ${String((v.jump as Obj).target)}`;
  for (const verdict of ['accept', 'drop', 'continue', 'return']) if (verdict in v) return verdict;
  throw new KernelStateError(`unexpected set element ${JSON.stringify(v)}`);
}

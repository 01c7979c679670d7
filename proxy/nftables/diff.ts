// diff(prev, next): the transaction that turns what is programmed (the last applied state, or what was read back
// from the kernel) into the desired tables. Pure. Only differences are written: element additions and deletions
// (a changed value is a deletion and an addition), new and unused chains and sets, and chains whose rules
// differ, which are flushed and refilled inside the same atomic transaction. Nothing that already matches is
// touched, so a resync of an unchanged state is an empty transaction, and the kernel-filled affinity map keeps
// its entries.
import { digest, families, setId, type BaseChain, type Family, type NftChain, type NftTable, type TableState } from './model.ts';
import type { Desired } from './render.ts';
import { Transaction } from './transaction.ts';

/** The transaction from `prev` to `next`, both families. */
export function diff(prev: Record<Family, TableState>, next: Desired): Transaction {
  const tx = new Transaction();
  for (const f of families) diffTable(tx, prev[f], next[f]);
  return tx;
}

/** The same hook (or both none). */
export const sameBase = (a: BaseChain | undefined, b: BaseChain | undefined): boolean =>
  a === b || (!!a && !!b && a.type === b.type && a.hook === b.hook && a.prio === b.prio && a.policy === b.policy);
/** The kernel's rule identities are those of the wanted rules, in order. */
export const sameRules = (ids: ReadonlyArray<string | undefined>, want: NftChain): boolean => ids.length === want.rules.length && want.rules.every((r, i) => ids[i] === digest(r));
const references = (rule: string) => [...rule.matchAll(/@([a-z0-9-]+)/g)].map((m) => m[1]!);

function diffTable(tx: Transaction, prev: TableState, next: NftTable): void {
  const f = next.family;
  if (!prev.exists) tx.addTable(f);

  // Chains: unknown ones (or with another hook) are emptied and deleted; changed ones are emptied and refilled.
  const remove = new Set<string>();
  const create = new Set<string>();
  const rewrite = new Set<string>();
  for (const [name, old] of prev.chains) {
    const want = next.chains.get(name);
    if (!want || !sameBase(old.base, want.base)) {
      remove.add(name);
      if (want) create.add(name);
    } else if (!sameRules(old.ruleIds, want)) rewrite.add(name);
  }
  for (const name of next.chains.keys()) if (!prev.chains.has(name)) create.add(name);

  // Sets: those declared differently are recreated, as are fragile maps whose rules are written now.
  const recreate = new Set<string>();
  for (const [name, old] of prev.sets) {
    const want = next.sets.get(name);
    if (!want || old.id !== setId(want)) recreate.add(name);
  }
  for (const c of [...create, ...rewrite]) {
    for (const s of next.chains.get(c)!.rules.flatMap(references)) if (next.sets.get(s)?.fragile && prev.sets.has(s)) recreate.add(s);
  }
  // A set cannot be deleted while a rule refers to it: kept chains using a recreated set are refilled too.
  for (const [name, want] of next.chains) {
    if (prev.chains.has(name) && !remove.has(name) && want.rules.some((r) => references(r).some((s) => recreate.has(s)))) rewrite.add(name);
  }

  for (const name of recreate) tx.deleteSet(f, name, prev.sets.get(name)!.kind);
  for (const [name, want] of next.sets) {
    const old = prev.sets.get(name);
    if (!old || recreate.has(name)) {
      tx.addSet(f, name, want, setId(want));
      if (want.elements && want.elements.size > 0) tx.addElements(f, name, want.elements);
      continue;
    }
    // The kernel fills this one (affinity); stale entries are removed separately (affinity.ts).
    if (!want.elements) continue;
    const deletions: string[] = [];
    const additions: Array<[string, string]> = [];
    for (const [key, value] of old.elements) if (want.elements.get(key) !== value) deletions.push(key);
    for (const [key, value] of want.elements) if (old.elements.get(key) !== value) additions.push([key, value]);
    if (deletions.length > 0) tx.deleteElements(f, name, deletions);
    if (additions.length > 0) tx.addElements(f, name, additions);
  }

  for (const name of remove) tx.flushChain(f, name).deleteChain(f, name);
  for (const name of create) {
    const want = next.chains.get(name)!;
    tx.addChain(f, name, want.base);
    for (const rule of want.rules) tx.addRule(f, name, rule);
  }
  for (const name of rewrite) {
    tx.flushChain(f, name);
    for (const rule of next.chains.get(name)!.rules) tx.addRule(f, name, rule);
  }
}

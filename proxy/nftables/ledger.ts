// The ledger of what was last applied, kept so that a sync costs in proportion to what changed, not to the number
// of Services: the applied tables, every port's rendered objects, and for every element (and every endpoint group
// of a load-balancing map, render.ts Group) the port that owns it (several ports may want the same hairpin
// element; when two ports want different values for one key, the first in plan order wins, exactly as render()
// decides). change(plan) re-renders only ports that differ and returns
// the two partial tables (what changes, before and after) that diff() turns into a transaction; commit() records
// it once nft succeeded.
import type { PortPlan, ProxyPlan } from '../plan/types.ts';
import { affinityIds, idSignature } from './affinity.ts';
import { lbUnit, lbUnitOf } from './layout.ts';
import { families, setId, stateOf, type Family, type NftTable, type TableState } from './model.ts';
import { addLbUnit, groupKey, renderBase, renderPort, type Desired, type PortObjects } from './render.ts';

/** A port's wish for an element's (or a group's) value; `order` is the port key, which decides between wishes. */
interface Claim<V> {
  order: string;
  value: V;
}
/**
 * Who claims a key: the owning port's key when only one port does (the value is the applied one; this keeps a
 * large ledger small), or every claim sorted by order.
 */
type Owners<V> = string | Claim<V>[];
/** Family → set → key → owners. */
type OwnerBook<V> = Record<Family, Map<string, Map<string, Owners<V>>>>;
/** Family → set → key → the claims after a pending change (copy-on-write of an OwnerBook). */
type Touched<V> = Record<Family, Map<string, Map<string, Claim<V>[]>>>;
type Values = readonly string[];

/** How claims of one kind read, write and remove their elements in a set's element map. */
interface Kind<V> {
  read(elements: ReadonlyMap<string, string>, key: string): V | undefined;
  write(elements: Map<string, string>, key: string, value: V): void;
  remove(elements: Map<string, string>, key: string): void;
}
/** A plain element: one key, one value. */
const single: Kind<string> = {
  read: (e, key) => e.get(key),
  write: (e, key, value) => void e.set(key, value),
  remove: (e, key) => void e.delete(key),
};
/** An endpoint group (render.ts Group): the elements `key . i`. */
const grouped: Kind<Values> = {
  read: (e, key) => {
    const values: string[] = [];
    for (let v = e.get(groupKey(key, 0)); v !== undefined; v = e.get(groupKey(key, values.length))) values.push(v);
    return values.length > 0 ? values : undefined;
  },
  write: (e, key, values) => values.forEach((v, i) => e.set(groupKey(key, i), v)),
  remove: (e, key) => {
    for (let i = 0; e.delete(groupKey(key, i)); i++);
  },
};

/** Claims of one kind: the kind, and its owner book. */
interface Claims<V> {
  kind: Kind<V>;
  book: OwnerBook<V>;
}
const emptyBook = <V>(): OwnerBook<V> => ({ 4: new Map(), 6: new Map() });
const bookOf = <V>(book: OwnerBook<V>, f: Family, set: string): Map<string, Owners<V>> => {
  let b = book[f].get(set);
  if (!b) book[f].set(set, (b = new Map()));
  return b;
};

/** What the ledger keeps of one port. */
interface LedgerPort {
  port: PortPlan;
  objects: PortObjects;
  ids: string;
}

/** A pending change: diff `prev` → `next`, and commit() when the kernel took it. */
export interface LedgerChange {
  prev: Record<Family, TableState>;
  next: Desired;
  commit(): void;
}

const byOrder = <V>(a: Claim<V>, b: Claim<V>) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0);
const chainId = (f: Family, name: string) => `${f} ${name}`;
const own = (set: string) => set === 'pod-cidrs' || set === 'nodeport-addresses';

/**
 * Adds `order`'s claim on `key` to a book whose elements are being built (#build): the first claim by order sets
 * the element. Plan order is port-key order, so a later claim rarely wins.
 */
function claimInto<V>(kind: Kind<V>, book: Map<string, Owners<V>>, elements: Map<string, string>, key: string, order: string, value: V): void {
  const cur = book.get(key);
  if (cur === undefined) {
    book.set(key, order);
    kind.write(elements, key, value);
    return;
  }
  const claims = typeof cur === 'string' ? [{ order: cur, value: kind.read(elements, key)! }] : cur;
  const all = [...claims, { order, value }].sort(byOrder);
  book.set(key, all);
  kind.write(elements, key, all[0]!.value);
}

/** The last applied state, by port. */
export class Ledger {
  #applied: Desired | undefined;
  /** Per port key: the plan rendered, its objects, and the affinity IDs they used (idSignature). */
  #ports = new Map<string, LedgerPort>();
  #entries: Claims<string> = { kind: single, book: emptyBook() };
  #groups: Claims<Values> = { kind: grouped, book: emptyBook() };
  /** `family name` of a load-balancing chain → number of ports using it. */
  #chains = new Map<string, number>();

  /** The tables last applied (both families); undefined before the first commit. */
  get applied(): Desired | undefined {
    return this.#applied;
  }

  /** Rules and elements programmed. */
  counts(): { rules: number; elements: number } {
    let rules = 0;
    let elements = 0;
    for (const f of families) {
      for (const c of this.#applied?.[f].chains.values() ?? []) rules += c.rules.length;
      for (const s of this.#applied?.[f].sets.values() ?? []) elements += s.elements?.size ?? 0;
    }
    return { rules, elements };
  }

  /**
   * The change to `plan`, without touching this ledger. On an empty ledger `next` is the whole desired state
   * (equal to render(plan)). Undefined when the fixed part changed in a way only a full sync can do (a set's
   * declaration).
   */
  change(plan: ProxyPlan): LedgerChange | undefined {
    const bases = { 4: renderBase(plan, 4), 6: renderBase(plan, 6) };
    const applied = this.#applied;
    if (!applied) return this.#build(plan, bases);
    if (families.some((f) => redeclared(applied[f], bases[f]))) return undefined;

    // Copy-on-write: claims of touched elements and groups, by family and set.
    const entries = pending(this.#entries, applied);
    const groups = pending(this.#groups, applied);
    const chainDelta = new Map<string, number>();
    const apply = (f: Family, order: string, objects: PortObjects, add: boolean) => {
      for (const [set, key, value] of objects.entries) entries.claim(f, set, key, order, add ? value : undefined);
      for (const [map, key, values] of objects.groups) groups.claim(f, map, key, order, add ? values : undefined);
      for (const c of objects.chains) chainDelta.set(chainId(f, c), (chainDelta.get(chainId(f, c)) ?? 0) + (add ? 1 : -1));
    };
    // Only the ports that changed are recorded (a new map of every port cost more than the rest of a
    // one-endpoint change at 10,000 Services); commit() applies them to the ledger's own.
    const ids = affinityIds(plan.ports);
    const updated = new Map<string, LedgerPort>();
    let kept = 0;
    for (const p of plan.ports) {
      const old = this.#ports.get(p.key);
      if (old) kept++;
      const signature = idSignature(p, ids);
      if (old && samePort(old.port, p) && old.ids === signature) continue;
      const objects = renderPort(p, ids);
      updated.set(p.key, { port: p, objects, ids: signature });
      if (old) apply(old.port.family, p.key, old.objects, false);
      apply(p.family, p.key, objects, true);
    }
    const removed: string[] = [];
    if (kept < this.#ports.size) {
      const wanted = new Set(plan.ports.map((p) => p.key));
      for (const [key, old] of this.#ports) {
        if (wanted.has(key)) continue;
        removed.push(key);
        apply(old.port.family, key, old.objects, false);
      }
    }

    // Partial tables: the fixed part, plus what changes. A load-balancing chain and its endpoints map are there
    // when they exist on that side and something about them changes.
    const prev = { 4: partial(applied[4]), 6: partial(applied[6]) };
    const next = { 4: partial(bases[4]), 6: partial(bases[6]) };
    const lb = (t: NftTable, chain: string) => {
      if (!t.chains.has(chain)) addLbUnit(t, chain);
    };
    const setIn = (t: NftTable, set: string) => {
      const chain = lbUnitOf(set);
      if (chain && !t.sets.has(set)) {
        const found = lbUnit(t.family, chain).sets.find(([name]) => name === set);
        if (found) t.sets.set(set, found[1]);
      }
      return t.sets.get(set)?.elements;
    };
    const after = new Map<string, number>();
    for (const [k, delta] of chainDelta) {
      const [fText, name = ''] = k.split(' ');
      const f = Number(fText) as Family;
      const before = this.#chains.get(k) ?? 0;
      after.set(k, before + delta);
      if (before > 0) lb(prev[f], name);
      if (before + delta > 0) lb(next[f], name);
    }
    for (const f of families) {
      entries.fill(f, prev[f], next[f], setIn);
      groups.fill(f, prev[f], next[f], setIn);
    }
    return {
      prev: { 4: stateOf(prev[4]), 6: stateOf(prev[6]) },
      next,
      commit: () => {
        for (const f of families) {
          const t = applied[f];
          for (const [k, n] of after) {
            const [fText, name = ''] = k.split(' ');
            if (Number(fText) !== f) continue;
            if (n > 0 && !t.chains.has(name)) lb(t, name);
            if (n <= 0) {
              const unit = lbUnit(f, name);
              for (const [c] of unit.chains) t.chains.delete(c);
              for (const [set] of unit.sets) t.sets.delete(set);
            }
            if (n > 0) this.#chains.set(k, n);
            else this.#chains.delete(k);
          }
          // The fixed part is replaced; sets both sides have keep their (port-filled) elements.
          for (const [name, s] of bases[f].sets) {
            const kept = t.sets.get(name);
            t.sets.set(name, kept && !own(name) ? kept : s);
          }
          for (const name of [...t.sets.keys()]) if (!bases[f].sets.has(name) && !lbUnitOf(name)) t.sets.delete(name);
          for (const name of [...t.chains.keys()]) if (!lbUnitOf(name)) t.chains.delete(name);
          for (const [name, c] of bases[f].chains) t.chains.set(name, c);
          entries.commit(f, t);
          groups.commit(f, t);
        }
        for (const key of removed) this.#ports.delete(key);
        for (const [key, port] of updated) this.#ports.set(key, port);
      },
    };
  }

  /** The first change of an empty ledger: everything, built in one pass (this is the start-up cost). */
  #build(plan: ProxyPlan, bases: Desired): LedgerChange {
    const entries: Claims<string> = { kind: single, book: emptyBook() };
    const groups: Claims<Values> = { kind: grouped, book: emptyBook() };
    const chains = new Map<string, number>();
    const ids = affinityIds(plan.ports);
    const ports = new Map<string, LedgerPort>();
    const next = { 4: partial(bases[4]), 6: partial(bases[6]) };
    for (const p of plan.ports) {
      const objects = renderPort(p, ids);
      ports.set(p.key, { port: p, objects, ids: idSignature(p, ids) });
      const f = p.family;
      const t = next[f];
      for (const c of objects.chains) {
        const k = chainId(f, c);
        chains.set(k, (chains.get(k) ?? 0) + 1);
        if (!t.chains.has(c)) addLbUnit(t, c);
      }
      for (const [set, key, value] of objects.entries) claimInto(single, bookOf(entries.book, f, set), t.sets.get(set)!.elements!, key, p.key, value);
      for (const [map, key, values] of objects.groups) claimInto(grouped, bookOf(groups.book, f, map), t.sets.get(map)!.elements!, key, p.key, values);
    }
    const empty = (f: Family): TableState => ({ family: f, exists: false, sets: new Map(), chains: new Map() });
    return {
      prev: { 4: empty(4), 6: empty(6) },
      next,
      commit: () => {
        this.#applied = next;
        this.#ports = ports;
        this.#entries = entries;
        this.#groups = groups;
        this.#chains = chains;
      },
    };
  }
}

/**
 * A change's claims of one kind, copied on write from `claims`: claim() records a port's claim (or, with no
 * value, its withdrawal), fill() writes what changes into the partial tables, commit() into the applied table and
 * the book.
 */
function pending<V>(claims: Claims<V>, applied: Desired) {
  const { kind, book } = claims;
  const touched: Touched<V> = { 4: new Map(), 6: new Map() };
  const current = (f: Family, set: string, key: string): Claim<V>[] => {
    const t = touched[f].get(set)?.get(key);
    if (t) return t;
    const o = book[f].get(set)?.get(key);
    if (o === undefined) return [];
    return typeof o === 'string' ? [{ order: o, value: kind.read(applied[f].sets.get(set)!.elements!, key)! }] : o;
  };
  return {
    claim(f: Family, set: string, key: string, order: string, value: V | undefined): void {
      const rest = current(f, set, key).filter((c) => c.order !== order);
      if (value !== undefined) rest.push({ order, value });
      rest.sort(byOrder);
      let t = touched[f].get(set);
      if (!t) touched[f].set(set, (t = new Map()));
      t.set(key, rest);
    },
    fill(f: Family, prev: NftTable, next: NftTable, setIn: (t: NftTable, set: string) => Map<string, string> | undefined): void {
      for (const [set, keys] of touched[f]) {
        const appliedElements = applied[f].sets.get(set)?.elements;
        for (const [key, claims] of keys) {
          const before = appliedElements && kind.read(appliedElements, key);
          if (before !== undefined) {
            const e = setIn(prev, set);
            if (e) kind.write(e, key, before);
          }
          if (claims[0]) {
            const e = setIn(next, set);
            if (e) kind.write(e, key, claims[0].value);
          }
        }
      }
    },
    commit(f: Family, t: NftTable): void {
      for (const [set, keys] of touched[f]) {
        const owners = bookOf(book, f, set);
        const elements = t.sets.get(set)?.elements;
        for (const [key, claims] of keys) {
          if (claims.length === 0) {
            owners.delete(key);
            if (elements) kind.remove(elements, key);
          } else {
            owners.set(key, claims.length === 1 ? claims[0]!.order : claims);
            if (elements) kind.write(elements, key, claims[0]!.value);
          }
        }
      }
    },
  };
}

/** A copy of a table's fixed part whose port-filled sets start empty (pod-cidrs and nodeport-addresses stay). */
function partial(base: NftTable): NftTable {
  const t: NftTable = { family: base.family, sets: new Map(), chains: new Map() };
  for (const [name, s] of base.sets) {
    if (lbUnitOf(name)) continue;
    t.sets.set(name, { ...s, elements: s.elements && (own(name) ? new Map(s.elements) : new Map()) });
  }
  for (const [name, c] of base.chains) if (!lbUnitOf(name)) t.chains.set(name, c);
  return t;
}

/** A set present in both with another declaration: elements would have to be re-added from every port. */
function redeclared(a: NftTable, b: NftTable): boolean {
  for (const [name, s] of a.sets) {
    const t = b.sets.get(name);
    if (t && setId(t) !== setId(s)) return true;
  }
  return false;
}

const sameList = <T>(a: readonly T[], b: readonly T[], eq: (x: T, y: T) => boolean) => a.length === b.length && a.every((x, i) => eq(x, b[i]!));
const sameStrings = (a: readonly string[], b: readonly string[]) => sameList(a, b, (x, y) => x === y);
const sameTargets = (a: PortPlan['clusterEndpoints'], b: PortPlan['clusterEndpoints']) =>
  sameList(a, b, (x, y) => x.ip === y.ip && x.port === y.port && (x.local !== false) === (y.local !== false));

/** Whether two plans of a port render the same objects. */
export function samePort(a: PortPlan, b: PortPlan): boolean {
  // The planner hands back the same object for a port whose inputs did not change.
  if (a === b) return true;
  return (
    a.family === b.family &&
    a.protocol === b.protocol &&
    a.port === b.port &&
    a.nodePort === b.nodePort &&
    a.externalLocal === b.externalLocal &&
    a.affinitySeconds === b.affinitySeconds &&
    a.clusterNoEndpoints === b.clusterNoEndpoints &&
    a.externalNoEndpoints === b.externalNoEndpoints &&
    sameStrings(a.clusterIPs, b.clusterIPs) &&
    sameStrings(a.externalIPs, b.externalIPs) &&
    sameStrings(a.loadBalancerIPs, b.loadBalancerIPs) &&
    sameStrings(a.sourceRanges, b.sourceRanges) &&
    sameTargets(a.clusterEndpoints, b.clusterEndpoints) &&
    sameTargets(a.externalEndpoints, b.externalEndpoints) &&
    sameTargets(a.shortcutEndpoints, b.shortcutEndpoints)
  );
}

// A typed builder for one `nft -f -` transaction. Operations are emitted in dependency order whatever the order
// they were added in: nft checks references command by command inside the batch, so a chain can only be deleted
// after the rules and map elements that reference it are gone, and a set only after the rules using it.
import { digest, tableFamily, tableName, type BaseChain, type Family, type NftSet } from './model.ts';

/** An operation the builder refused: a name or text nft would misread. */
export class TransactionError extends Error {
  override readonly name = 'TransactionError';
  readonly code = 'NETPLANE_NFT_INVALID';
}

const phases = ['addTable', 'flushChain', 'deleteElements', 'deleteSet', 'deleteChain', 'addSet', 'addChain', 'addRule', 'addElements'] as const;
type Phase = (typeof phases)[number];

/** Elements per `add element`/`delete element` line: fewer lines parse faster, a line stays a few tens of KB. */
const chunk = 1000;
const namePattern = /^[a-z][a-z0-9-]*$/;
// A line break would end the command, '#' start a comment, a stray quote end the identity comment. The only quotes a
// rule may hold are around an interface name (`iifname "cni0"`, `"cali*"`), so that a name nft reads as a keyword
// (`meta`, `tcp`) is still a name.
const unsafe = /[\n\r#"]/;
const quotedName = /"[A-Za-z0-9_.-]+\*?"/g;
// Element keys and values are addresses, protocols, numbers, prefixes and verdicts: never braces or separators.
const unsafeElement = /[\n\r#{};,"]/;

/**
 * Element additions or deletions on one set, kept as data until the transaction is written: nft reads them as
 * `add element`/`delete element` lines, the netlink path (netlink/batch.ts) encodes them itself.
 */
export interface ElementOp {
  verb: 'add' | 'delete';
  family: Family;
  set: string;
  keys: string[];
  /** Parallel to keys for additions to a map; undefined for a set and for deletions. */
  values: string[] | undefined;
}

type Op = { phase: number; line: string; elements?: undefined } | { phase: number; line?: undefined; elements: ElementOp };

/** One transaction; `text()` is what `nft -f -` reads, `lines` what it counts as operations. */
export class Transaction {
  #ops: Op[] = [];
  #error: TransactionError | undefined;

  /** The first invalid operation, if any; such a transaction must not be run. */
  get error(): TransactionError | undefined {
    return this.#error;
  }

  get empty(): boolean {
    return this.#ops.length === 0;
  }

  /** Number of lines (operations) the transaction sends: elements count a line per 1,000. */
  get lines(): number {
    let n = 0;
    for (const op of this.#ops) n += op.elements ? Math.ceil(op.elements.keys.length / chunk) : 1;
    return n;
  }

  /** The element operations, in the order nft would apply them (deletions before additions). */
  elementOps(): ElementOp[] {
    return this.#ordered().flatMap((op) => (op.elements ? [op.elements] : []));
  }

  /** Whether anything but element operations is in it (tables, chains, sets, rules). */
  get structural(): boolean {
    return this.#ops.some((op) => !op.elements);
  }

  /** The transaction text, in dependency order; element operations for which `skip` says true are left out. */
  text(skip?: (op: ElementOp) => boolean): string {
    const lines: string[] = [];
    for (const op of this.#ordered()) {
      if (!op.elements) lines.push(op.line);
      else if (!skip?.(op.elements)) elementLines(op.elements, lines);
    }
    return lines.length === 0 ? '' : lines.join('\n') + '\n';
  }

  #ordered(): Op[] {
    const byPhase = phases.map((): Op[] => []);
    for (const op of this.#ops) byPhase[op.phase]!.push(op);
    return byPhase.flat();
  }

  addTable(f: Family): this {
    return this.#push('addTable', `add table ${table(f)}`);
  }

  /** Creates a chain; a base chain is hooked with its type, priority and policy. */
  addChain(f: Family, name: string, base?: BaseChain): this {
    if (!this.#name(name)) return this;
    const hook = base ? ` { type ${base.type} hook ${base.hook} priority ${base.prio}; policy ${base.policy}; }` : '';
    return this.#push('addChain', `add chain ${table(f)} ${name}${hook}`);
  }

  flushChain(f: Family, name: string): this {
    return this.#name(name) ? this.#push('flushChain', `flush chain ${table(f)} ${name}`) : this;
  }

  /** Deletes a chain; it must be flushed in the same transaction (or empty) and unreferenced. */
  deleteChain(f: Family, name: string): this {
    return this.#name(name) ? this.#push('deleteChain', `delete chain ${table(f)} ${name}`) : this;
  }

  /** Creates a set or map, its identity stored as its comment. */
  addSet(f: Family, name: string, set: NftSet, id: string): this {
    if (!this.#name(name) || !this.#text(set.spec, `declaration of ${name}`)) return this;
    return this.#push('addSet', `add ${set.kind} ${table(f)} ${name} { ${set.spec} comment "${id}"; }`);
  }

  deleteSet(f: Family, name: string, kind: 'set' | 'map'): this {
    return this.#name(name) ? this.#push('deleteSet', `delete ${kind} ${table(f)} ${name}`) : this;
  }

  /** Appends a rule to a chain, its identity (digest of its text) stored as its comment. */
  addRule(f: Family, chain: string, rule: string): this {
    if (!this.#name(chain) || !this.#text(rule, `rule in ${chain}`)) return this;
    return this.#push('addRule', `add rule ${table(f)} ${chain} ${rule} comment "${digest(rule)}"`);
  }

  /** Adds elements: key → value ('' in a set), as a map or as pairs. */
  addElements(f: Family, set: string, entries: ReadonlyMap<string, string> | ReadonlyArray<readonly [string, string]>): this {
    if (!this.#name(set)) return this;
    const keys: string[] = [];
    const values: string[] = [];
    let isMap = false;
    let bad: string | undefined;
    // Map.forEach: no pair array per element, which counts at 100,000 elements.
    const add = (v: string, k: string) => {
      if (bad !== undefined) return;
      if (unsafeElement.test(k) || (v && unsafeElement.test(v))) bad = v ? `${k} : ${v}` : k;
      keys.push(k);
      values.push(v);
      if (v) isMap = true;
    };
    if (Array.isArray(entries)) entries.forEach(([k, v]) => add(v, k));
    else (entries as ReadonlyMap<string, string>).forEach(add);
    if (bad !== undefined) return this.#badElement(bad, set);
    this.#ops.push({ phase: phases.indexOf('addElements'), elements: { verb: 'add', family: f, set, keys, values: isMap ? values : undefined } });
    return this;
  }

  /** Deletes elements by key. */
  deleteElements(f: Family, set: string, keys: readonly string[]): this {
    if (!this.#name(set)) return this;
    const bad = keys.find((k) => unsafeElement.test(k));
    if (bad !== undefined) return this.#badElement(bad, set);
    this.#ops.push({ phase: phases.indexOf('deleteElements'), elements: { verb: 'delete', family: f, set, keys: [...keys], values: undefined } });
    return this;
  }

  #badElement(element: string, set: string): this {
    this.#fail(`element ${JSON.stringify(element)} of ${set} holds a character nft would misread`);
    return this;
  }

  #push(phase: Phase, line: string): this {
    this.#ops.push({ phase: phases.indexOf(phase), line });
    return this;
  }

  #name(name: string): boolean {
    return namePattern.test(name) || this.#fail(`name ${JSON.stringify(name)} is not a valid netplane object name (lower-case letters, digits and '-')`);
  }

  #text(text: string, what: string): boolean {
    return !unsafe.test(text.replace(quotedName, '')) || this.#fail(`${what} holds a character nft would misread: ${JSON.stringify(text)}`);
  }

  #fail(message: string): false {
    this.#error ??= new TransactionError(message);
    return false;
  }
}

const table = (f: Family) => `${tableFamily[f]} ${tableName}`;

/** The `add element`/`delete element` lines of an operation, 1,000 elements a line, appended to `out`. */
function elementLines(op: ElementOp, out: string[]): void {
  const head = `${op.verb} element ${table(op.family)} ${op.set} { `;
  const { keys, values } = op;
  for (let from = 0; from < keys.length; from += chunk) {
    const to = Math.min(from + chunk, keys.length);
    // A chunk's elements are joined once: appending each to a growing string measured half again as slow at
    // 100,000 elements.
    const parts = new Array<string>(to - from);
    for (let i = from; i < to; i++) parts[i - from] = values?.[i] ? keys[i]! + ' : ' + values[i]! : keys[i]!;
    out.push(head + parts.join(', ') + ' }');
  }
}

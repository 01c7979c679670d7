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

/** One transaction; `text()` is what `nft -f -` reads, `lines` what it counts as operations. */
export class Transaction {
  #ops: Array<{ phase: number; line: string }> = [];
  #error: TransactionError | undefined;

  /** The first invalid operation, if any; such a transaction must not be run. */
  get error(): TransactionError | undefined {
    return this.#error;
  }

  get empty(): boolean {
    return this.#ops.length === 0;
  }

  /** Number of lines (operations) the transaction sends. */
  get lines(): number {
    return this.#ops.length;
  }

  /** The transaction text, in dependency order. */
  text(): string {
    const byPhase = phases.map((): string[] => []);
    for (const op of this.#ops) byPhase[op.phase]!.push(op.line);
    const lines = byPhase.flat();
    return lines.length === 0 ? '' : lines.join('\n') + '\n';
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
    // Map.forEach: no pair array per element, which counts at 100,000 elements.
    const each = (fn: (value: string, key: string) => void) =>
      Array.isArray(entries) ? entries.forEach(([k, v]) => fn(v, k)) : (entries as ReadonlyMap<string, string>).forEach(fn);
    return this.#elements('addElements', 'add', f, set, each);
  }

  /** Deletes elements by key. */
  deleteElements(f: Family, set: string, keys: readonly string[]): this {
    return this.#elements('deleteElements', 'delete', f, set, (fn) => keys.forEach((k) => fn('', k)));
  }

  #elements(phase: Phase, verb: string, f: Family, set: string, each: (fn: (value: string, key: string) => void) => void): this {
    if (!this.#name(set)) return this;
    const head = `${verb} element ${table(f)} ${set} { `;
    // A chunk's elements are joined once: appending each to a growing string measured half again as slow at
    // 100,000 elements.
    let parts: string[] = [];
    let bad: string | undefined;
    each((v, k) => {
      if (bad !== undefined) return;
      // One test of the element's text: the ' : ' between key and value holds no character it looks for.
      const element = v ? k + ' : ' + v : k;
      if (unsafeElement.test(element)) {
        bad = element;
        return;
      }
      parts.push(element);
      if (parts.length === chunk) {
        this.#push(phase, head + parts.join(', ') + ' }');
        parts = [];
      }
    });
    if (bad !== undefined) {
      this.#fail(`element ${JSON.stringify(bad)} of ${set} holds a character nft would misread`);
      return this;
    }
    if (parts.length > 0) this.#push(phase, head + parts.join(', ') + ' }');
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

// A fake `nft` for tests: a CommandRunner that executes the commands the backend sends (the subset netplane
// writes) against an in-memory ruleset, atomically per transaction, refusing what the kernel refuses (a missing
// table, set, chain or element; deleting a chain that still has rules or is referenced; deleting a set a rule
// uses), and lists tables as `nft -j` does. dump() gives a sorted text form for table-style assertions.
import { CommandError, type CommandOutput, type CommandRunner, type RunOptions } from '../../runtime/exec.ts';
import type { BaseChain } from './model.ts';

interface FakeSet {
  kind: 'set' | 'map';
  spec: string;
  comment: string | undefined;
  elements: Map<string, string>;
}
interface FakeChain {
  base?: BaseChain;
  rules: Array<{ text: string; comment: string | undefined }>;
}
interface FakeTable {
  sets: Map<string, FakeSet>;
  chains: Map<string, FakeChain>;
}

/** An in-memory nft. `calls` records every command; `failNext` makes the next `nft -f` fail. */
export class FakeNft implements CommandRunner {
  readonly tables = new Map<string, FakeTable>();
  readonly calls: Array<{ args: string[]; input?: string; env?: Readonly<Record<string, string>> }> = [];
  /** When set, the next transaction fails with this stderr (and changes nothing). */
  failNext: string | undefined;

  async run(command: string, args: readonly string[], input?: string, options?: RunOptions): Promise<CommandOutput> {
    this.calls.push({ args: [...args], ...(input !== undefined ? { input } : {}), ...(options?.env ? { env: options.env } : {}) });
    if (command !== 'nft') throw new CommandError(command, 127, `fake: ${command} not found`);
    const fail = (msg: string): never => {
      throw new CommandError(`nft ${args.join(' ')}`, 1, `Error: ${msg}\n`);
    };
    if (args[0] === '-f' && args[1] === '-') {
      if (this.failNext !== undefined) {
        const msg = this.failNext;
        this.failNext = undefined;
        fail(msg);
      }
      const work = clone(this.tables);
      for (const line of (input ?? '').split('\n')) if (line.trim()) exec(work, line, fail);
      this.tables.clear();
      for (const [k, v] of work) this.tables.set(k, v);
      return { stdout: '', stderr: '' };
    }
    // `-t` (terse) lists sets without their elements.
    const terse = args[0] === '-j' && args[1] === '-t';
    const list = terse ? ['-j', ...args.slice(2)] : args;
    if (list[0] === '-j' && list[1] === 'list' && (list[2] === 'table' || list[2] === 'map' || list[2] === 'set')) {
      const key = `${list[3]} ${list[4]}`;
      const t = this.tables.get(key) ?? fail('Could not process rule: No such file or directory');
      const one = list[2] === 'table' ? undefined : list[5];
      if (one !== undefined && t.sets.get(one)?.kind !== list[2]) fail('Could not process rule: No such file or directory');
      return { stdout: JSON.stringify(toJson(list[3]!, list[4]!, t, one, terse)), stderr: '' };
    }
    if (list.join(' ') === '-j list ruleset') {
      const items = [...this.tables].flatMap(([key, t]) => {
        const [family, name] = key.split(' ') as [string, string];
        return toJson(family, name, t, undefined, terse).nftables.slice(1);
      });
      return { stdout: JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', release_name: 'fake', json_schema_version: 1 } }, ...items] }), stderr: '' };
    }
    if (args[0] === 'delete' && args[1] === 'table') {
      if (!this.tables.delete(`${args[2]} ${args[3]}`)) fail('Could not process rule: No such file or directory');
      return { stdout: '', stderr: '' };
    }
    return fail(`fake nft does not know ${args.join(' ')}`);
  }

  /** Every table, set, element, chain and rule as sorted lines (rules keep their order through an index). */
  dump(): string[] {
    const out: string[] = [];
    for (const [name, t] of this.tables) {
      out.push(`table ${name}`);
      for (const [s, set] of t.sets) {
        out.push(`${set.kind} ${name} ${s} { ${set.spec} }`);
        for (const [k, v] of set.elements) out.push(`element ${name} ${s} ${v ? `${k} : ${v}` : k}`);
      }
      for (const [c, chain] of t.chains) {
        const b = chain.base;
        out.push(`chain ${name} ${c}${b ? ` { type ${b.type} hook ${b.hook} priority ${b.prio}; policy ${b.policy}; }` : ''}`);
        chain.rules.forEach((r, i) => out.push(`rule ${name} ${c} ${String(i).padStart(2, '0')} ${r.text}`));
      }
    }
    return out.sort();
  }
}

function clone(tables: Map<string, FakeTable>): Map<string, FakeTable> {
  const out = new Map<string, FakeTable>();
  for (const [k, t] of tables) {
    const sets = new Map<string, FakeSet>([...t.sets].map(([n, s]) => [n, { ...s, elements: new Map(s.elements) }]));
    const chains = new Map<string, FakeChain>([...t.chains].map(([n, c]) => [n, { ...c, rules: [...c.rules] }]));
    out.set(k, { sets, chains });
  }
  return out;
}

const commentOf = (text: string): [string, string | undefined] => {
  const m = /^(.*?)\s*comment "([^"]*)"\s*;?\s*$/.exec(text);
  return m ? [m[1]!, m[2]] : [text, undefined];
};

function exec(tables: Map<string, FakeTable>, line: string, fail: (msg: string) => never): void {
  const m = /^(add|delete|flush) (table|chain|set|map|rule|element) (ip6?) (\S+)(?: (\S+))?(?: (.*))?$/.exec(line.trim());
  if (!m) fail(`syntax error: ${line}`);
  const [, verb, what, fam, tname, name = '', rest = ''] = m!;
  const key = `${fam} ${tname}`;
  if (what === 'table') {
    if (verb === 'add') tables.set(key, tables.get(key) ?? { sets: new Map(), chains: new Map() });
    else if (!tables.delete(key)) fail(`No such file or directory: table ${key}`);
    return;
  }
  const t = tables.get(key) ?? fail(`No such file or directory: table ${key}`);
  const used = (ref: string) => [...t.chains.values()].some((c) => c.rules.some((r) => new RegExp(`@${ref}(?![a-z0-9-])`).test(r.text)));
  if (what === 'chain') {
    if (verb === 'add') {
      if (t.chains.has(name)) return;
      const b = /type (\w+) hook (\w+) priority (-?\d+); policy (\w+);/.exec(rest);
      t.chains.set(name, { ...(b ? { base: { type: b[1], hook: b[2], prio: Number(b[3]), policy: b[4] } as BaseChain } : {}), rules: [] });
      return;
    }
    const c = t.chains.get(name) ?? fail(`No such file or directory: chain ${name}`);
    if (verb === 'flush') c.rules = [];
    else {
      if (c.rules.length > 0) fail(`Device or resource busy: chain ${name} is not empty`);
      const target = new RegExp(`(goto|jump) ${name}$`);
      const referenced = [...t.sets.values()].some((s) => [...s.elements.values()].some((v) => target.test(v))) ||
        [...t.chains.values()].some((ch) => ch.rules.some((r) => new RegExp(`(goto|jump) ${name}(?![a-z0-9-])`).test(r.text)));
      if (referenced) fail(`Device or resource busy: chain ${name} is referenced`);
      t.chains.delete(name);
    }
    return;
  }
  if (what === 'set' || what === 'map') {
    if (verb === 'add') {
      if (t.sets.has(name)) return;
      const body = /^\{ (.*) \}$/.exec(rest)?.[1] ?? fail(`syntax error: ${line}`);
      const [spec, comment] = commentOf(body);
      t.sets.set(name, { kind: what, spec, comment, elements: new Map() });
      return;
    }
    if (!t.sets.has(name)) fail(`No such file or directory: ${what} ${name}`);
    if (used(name)) fail(`Device or resource busy: ${what} ${name} is in use`);
    t.sets.delete(name);
    return;
  }
  if (what === 'rule') {
    const c = t.chains.get(name) ?? fail(`No such file or directory: chain ${name}`);
    const [text, comment] = commentOf(rest);
    for (const ref of text.matchAll(/@([a-z0-9-]+)/g)) if (!t.sets.has(ref[1]!)) fail(`No such file or directory: set ${ref[1]}`);
    for (const j of text.matchAll(/(?:jump|goto) ([a-z0-9-]+)/g)) if (!t.chains.has(j[1]!)) fail(`No such file or directory: chain ${j[1]}`);
    c.rules.push({ text, comment });
    return;
  }
  // Elements: `{ k : v, k2 : v2 }`.
  const s = t.sets.get(name) ?? fail(`No such file or directory: set ${name}`);
  const items = (/^\{ (.*) \}$/.exec(rest)?.[1] ?? fail(`syntax error: ${line}`)).split(', ');
  for (const item of items) {
    const [k = '', v = ''] = item.split(' : ');
    if (verb === 'add') {
      const target = /^(?:goto|jump) (\S+)$/.exec(v);
      if (target && !t.chains.has(target[1]!)) fail(`No such file or directory: chain ${target[1]}`);
      if (s.kind === 'map' && !v) fail(`map ${name} needs a value for ${k}`);
      if (!s.elements.has(k)) s.elements.set(k, v);
    } else if (!s.elements.delete(k)) fail(`No such file or directory: element ${k} of ${name}`);
  }
}

type Json = string | number | null | Json[] | { [k: string]: Json };

/** An element text in nft's JSON form. */
export function elemJson(text: string): Json {
  const verdict = /^(goto|jump) (\S+)$/.exec(text);
  if (verdict) return { [verdict[1]!]: { target: verdict[2]! } };
  if (['accept', 'drop', 'return', 'continue'].includes(text)) return { [text]: null };
  const part = (p: string): Json => {
    if (/^\d+$/.test(p)) return Number(p);
    const prefix = /^(.+)\/(\d+)$/.exec(p);
    return prefix ? { prefix: { addr: prefix[1]!, len: Number(prefix[2]) } } : p;
  };
  const parts = text.split(' . ');
  return parts.length === 1 ? part(parts[0]!) : { concat: parts.map(part) };
}

function toJson(family: string, name: string, t: FakeTable, only?: string, terse = false): { nftables: Json[] } {
  const out: Json[] = [{ metainfo: { version: '1.0.6', release_name: 'fake', json_schema_version: 1 } }];
  out.push({ table: { family, name, handle: 1 } });
  for (const [s, set] of t.sets) {
    if (only !== undefined && s !== only) continue;
    const elem = [...set.elements].map(([k, v]): Json => (set.kind === 'map' ? [elemJson(k), elemJson(v)] : elemJson(k)));
    out.push({ [set.kind]: { family, name: s, table: name, ...(set.comment !== undefined ? { comment: set.comment } : {}), ...(elem.length && !terse ? { elem } : {}) } });
  }
  if (only !== undefined) return { nftables: out };
  for (const [c, chain] of t.chains) {
    const b = chain.base;
    out.push({ chain: { family, table: name, name: c, ...(b ? { type: b.type, hook: b.hook, prio: b.prio, policy: b.policy } : {}) } });
  }
  for (const [c, chain] of t.chains) {
    for (const r of chain.rules) out.push({ rule: { family, table: name, chain: c, expr: [], ...(r.comment !== undefined ? { comment: r.comment } : {}) } });
  }
  return { nftables: out };
}

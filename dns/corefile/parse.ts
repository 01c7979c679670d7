// A Corefile (CoreDNS's configuration, Caddyfile syntax) read into server blocks and directives, for
// `netplane dns --conf`: tokens separated by spaces, one directive per line, `{ }` blocks, `#` comments,
// "quoted" and `backquoted` tokens, a backslash before a line break joining lines, {$VAR} / {%VAR%} replaced from
// the environment, and `import PATH|GLOB` of other files (server blocks at the top, directives inside a block), as
// k3s's Corefile imports custom/*.server and custom/*.override. Nothing in it is executed: settings.ts maps what it
// says onto flags.

/** A directive line: its name, its arguments, and (for a plugin) the lines of its block. */
export interface Directive {
  name: string;
  args: string[];
  block: Directive[];
  line: number;
  /** The file it was read from, when not the Corefile itself (an import). */
  source?: string;
}

/** A server block: its keys (zones with scheme and port, `.:53`) and its plugins in order. */
export interface ServerBlock {
  keys: string[];
  directives: Directive[];
  line: number;
  source?: string;
}

/** A Corefile that cannot be read, with the line where (and the imported file, when it is one). */
export class CorefileError extends Error {
  readonly line: number;
  constructor(line: number, why: string, source?: string) {
    super(`${source === undefined ? '' : `${source} `}line ${line}: ${why}`);
    this.line = line;
  }
}

/** How the parser reads the files an `import` names: each match of PATH or GLOB, in order (none is no error). */
export type ImportReader = (pattern: string) => Array<{ file: string; text: string }>;

/** Options of parseCorefile. */
export interface ParseOptions {
  env?: NodeJS.ProcessEnv;
  /** Without it, an import is an error. */
  imports?: ImportReader;
}

interface Token {
  text: string;
  line: number;
  /** Whether it was quoted (then `{` and `}` are plain text). */
  quoted: boolean;
}

// Imports nest at most this deep (a file importing itself would go on for ever).
const maxDepth = 10;

/** Splits the text into tokens; a line break is a token of its own ('\n'). */
function tokenize(text: string, env: NodeJS.ProcessEnv, source: string | undefined): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      out.push({ text: '\n', line, quoted: false });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      i += text[i + 1] === '\n' ? 2 : 3;
      line++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === '`') {
      const start = line;
      let s = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (c === '"' && text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++;
        if (text[i] === '\n') line++;
        s += text[i];
        i++;
      }
      if (i >= text.length) throw new CorefileError(start, `a ${c === '"' ? 'quoted' : 'backquoted'} token is not closed`, source);
      i++;
      out.push({ text: substitute(s, env), line: start, quoted: true });
    } else {
      let s = '';
      while (i < text.length && !' \t\r\n'.includes(text[i]!)) {
        if (text[i] === '"' || text[i] === '`') break;
        s += text[i];
        i++;
      }
      out.push({ text: substitute(s, env), line, quoted: false });
    }
  }
  return out;
}

/** {$VAR} and {%VAR%} replaced by the variable's value ('' when unset), as CoreDNS does. */
function substitute(s: string, env: NodeJS.ProcessEnv): string {
  return s.replace(/\{\$([A-Za-z_][A-Za-z0-9_]*)\}|\{%([A-Za-z_][A-Za-z0-9_]*)%\}/g, (_m, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? '');
}

/** Parses a Corefile. Throws CorefileError naming the line (and the imported file). */
export function parseCorefile(text: string, options: ParseOptions = {}): ServerBlock[] {
  return new Reader(text, undefined, options, 0).serverBlocks();
}

/** The tokens of one file, read as server blocks or as the directives of a block. */
class Reader {
  readonly #t: Token[];
  #p = 0;
  readonly #source: string | undefined;
  readonly #o: ParseOptions;
  readonly #depth: number;

  constructor(text: string, source: string | undefined, o: ParseOptions, depth: number) {
    if (depth > maxDepth) throw new CorefileError(1, `imports nest deeper than ${maxDepth}: does a file import itself?`, source);
    this.#t = tokenize(text, o.env ?? {}, source);
    this.#source = source;
    this.#o = o;
    this.#depth = depth;
  }

  #error(line: number, why: string): CorefileError {
    return new CorefileError(line, why, this.#source);
  }

  #open(t: Token | undefined): boolean {
    return t !== undefined && !t.quoted && t.text === '{';
  }

  #close(t: Token | undefined): boolean {
    return t !== undefined && !t.quoted && t.text === '}';
  }

  #breakAt(t: Token | undefined): boolean {
    return t !== undefined && !t.quoted && t.text === '\n';
  }

  #skipBreaks(): void {
    while (this.#breakAt(this.#t[this.#p])) this.#p++;
  }

  /** The tokens of one line, up to a line break, a `{` or a `}` (not taken). */
  #lineTokens(): Token[] {
    const got: Token[] = [];
    const t = this.#t;
    while (this.#p < t.length && !this.#breakAt(t[this.#p]) && !this.#open(t[this.#p]) && !this.#close(t[this.#p])) got.push(t[this.#p++]!);
    return got;
  }

  /** The files an import line names, each read by `read` with the same options one level deeper. */
  #imported<T>(words: Token[], read: (r: Reader) => T[]): T[] {
    const at = words[0]!.line;
    if (words.length < 2) throw this.#error(at, 'import without a file');
    const reader = this.#o.imports;
    if (reader === undefined) throw this.#error(at, `import ${words[1]!.text}: imports are read only from a Corefile file`);
    const out: T[] = [];
    for (const w of words.slice(1)) for (const f of reader(w.text)) out.push(...read(new Reader(f.text, f.file, this.#o, this.#depth + 1)));
    return out;
  }

  serverBlocks(): ServerBlock[] {
    const t = this.#t;
    const blocks: ServerBlock[] = [];
    for (;;) {
      this.#skipBreaks();
      if (this.#p >= t.length) return blocks;
      const first = t[this.#p]!;
      if (this.#close(first)) throw this.#error(first.line, 'a } without its {');
      if (!first.quoted && first.text === 'import') {
        blocks.push(...this.#imported(this.#lineTokens(), (r) => r.serverBlocks()));
        continue;
      }
      if (!first.quoted && first.text.startsWith('(') && first.text.endsWith(')')) throw this.#error(first.line, `the snippet ${first.text}: snippets are not read; write its lines where it is imported`);
      // Keys may run over several lines ("a.com,\nb.com {" in Caddy); here they are the tokens before the {.
      const keys: Token[] = [];
      while (this.#p < t.length && !this.#open(t[this.#p])) {
        if (this.#close(t[this.#p])) throw this.#error(t[this.#p]!.line, 'a } without its {');
        if (!this.#breakAt(t[this.#p])) keys.push(t[this.#p]!);
        this.#p++;
      }
      const named = keys.map((k) => k.text).join(' ');
      if (this.#p >= t.length) throw this.#error(first.line, `the server block ${named} has no { ... }`);
      this.#p++;
      const directives = this.#directives(`the server block ${named}`, first.line);
      blocks.push({ keys: keys.flatMap((k) => k.text.split(',')).filter(Boolean), directives, line: first.line, ...(this.#source ? { source: this.#source } : {}) });
    }
  }

  /** Directive lines up to the `}` that closes `what` (taken), or to the end of the file when `what` is undefined. */
  #directives(what: string | undefined, line: number): Directive[] {
    const t = this.#t;
    const out: Directive[] = [];
    for (;;) {
      this.#skipBreaks();
      if (this.#p >= t.length) {
        if (what === undefined) return out;
        throw this.#error(line, `${what} is not closed with }`);
      }
      if (this.#close(t[this.#p])) {
        if (what === undefined) throw this.#error(t[this.#p]!.line, 'a } without its {');
        this.#p++;
        return out;
      }
      const words = this.#lineTokens();
      if (words.length === 0) throw this.#error(t[this.#p]!.line, 'a { without a plugin name before it');
      if (!words[0]!.quoted && words[0]!.text === 'import' && !this.#open(t[this.#p])) {
        out.push(...this.#imported(words, (r) => r.directiveFile()));
        continue;
      }
      const d: Directive = { name: words[0]!.text, args: words.slice(1).map((w) => w.text), block: [], line: words[0]!.line, ...(this.#source ? { source: this.#source } : {}) };
      if (this.#open(t[this.#p])) {
        this.#p++;
        for (;;) {
          this.#skipBreaks();
          if (this.#p >= t.length) throw this.#error(d.line, `the block of ${d.name} is not closed with }`);
          if (this.#close(t[this.#p])) {
            this.#p++;
            break;
          }
          const sub = this.#lineTokens();
          if (sub.length === 0 || this.#open(t[this.#p])) throw this.#error(t[this.#p]?.line ?? d.line, `a block inside ${d.name}'s block: not a Corefile netplane reads`);
          d.block.push({ name: sub[0]!.text, args: sub.slice(1).map((w) => w.text), block: [], line: sub[0]!.line, ...(this.#source ? { source: this.#source } : {}) });
        }
      }
      out.push(d);
    }
  }

  /** A whole file of directives, as a block's import reads one. */
  directiveFile(): Directive[] {
    return this.#directives(undefined, 1);
  }
}

// A Corefile (CoreDNS's configuration, Caddyfile syntax) read into server blocks and directives, for
// `netplane dns --conf`: tokens separated by spaces, one directive per line, `{ }` blocks, `#` comments,
// "quoted" and `backquoted` tokens, a backslash before a line break joining lines, and {$VAR} / {%VAR%} replaced from
// the environment. Nothing in it is executed: settings.ts maps what it says onto flags.

/** A directive line: its name, its arguments, and (for a plugin) the lines of its block. */
export interface Directive {
  name: string;
  args: string[];
  block: Directive[];
  line: number;
}

/** A server block: its keys (zones with scheme and port, `.:53`) and its plugins in order. */
export interface ServerBlock {
  keys: string[];
  directives: Directive[];
  line: number;
}

/** A Corefile that cannot be read, with the line where. */
export class CorefileError extends Error {
  readonly line: number;
  constructor(line: number, why: string) {
    super(`line ${line}: ${why}`);
    this.line = line;
  }
}

interface Token {
  text: string;
  line: number;
  /** Whether it was quoted (then `{` and `}` are plain text). */
  quoted: boolean;
}

/** Splits the text into tokens; a line break is a token of its own ('\n'). */
function tokenize(text: string, env: NodeJS.ProcessEnv): Token[] {
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
      if (i >= text.length) throw new CorefileError(start, `a ${c === '"' ? 'quoted' : 'backquoted'} token is not closed`);
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

/** Parses a Corefile. Throws CorefileError naming the line. */
export function parseCorefile(text: string, env: NodeJS.ProcessEnv = process.env): ServerBlock[] {
  const tokens = tokenize(text, env);
  let p = 0;
  const open = (t: Token | undefined) => t !== undefined && !t.quoted && t.text === '{';
  const close = (t: Token | undefined) => t !== undefined && !t.quoted && t.text === '}';
  const skipBreaks = () => {
    while (tokens[p]?.text === '\n' && !tokens[p]!.quoted) p++;
  };
  /** The tokens of one line, up to a line break, a `{` or a `}` (not taken). */
  const lineTokens = (): Token[] => {
    const got: Token[] = [];
    while (p < tokens.length && !(tokens[p]!.text === '\n' && !tokens[p]!.quoted) && !open(tokens[p]) && !close(tokens[p])) got.push(tokens[p++]!);
    return got;
  };
  const blocks: ServerBlock[] = [];
  for (;;) {
    skipBreaks();
    if (p >= tokens.length) break;
    const first = tokens[p]!;
    if (close(first)) throw new CorefileError(first.line, 'a } without its {');
    // Keys may run over several lines ("a.com,\nb.com {" in Caddy); here they are the tokens before the {.
    const keys: Token[] = [];
    while (p < tokens.length && !open(tokens[p])) {
      if (close(tokens[p])) throw new CorefileError(tokens[p]!.line, 'a } without its {');
      if (tokens[p]!.text !== '\n' || tokens[p]!.quoted) keys.push(tokens[p]!);
      p++;
    }
    if (p >= tokens.length) throw new CorefileError(first.line, `the server block ${keys.map((k) => k.text).join(' ')} has no { ... }`);
    p++;
    const directives: Directive[] = [];
    for (;;) {
      skipBreaks();
      if (p >= tokens.length) throw new CorefileError(first.line, `the server block ${keys.map((k) => k.text).join(' ')} is not closed with }`);
      if (close(tokens[p])) {
        p++;
        break;
      }
      const words = lineTokens();
      if (words.length === 0) throw new CorefileError(tokens[p]!.line, 'a { without a plugin name before it');
      const d: Directive = { name: words[0]!.text, args: words.slice(1).map((w) => w.text), block: [], line: words[0]!.line };
      if (open(tokens[p])) {
        p++;
        for (;;) {
          skipBreaks();
          if (p >= tokens.length) throw new CorefileError(d.line, `the block of ${d.name} is not closed with }`);
          if (close(tokens[p])) {
            p++;
            break;
          }
          const sub = lineTokens();
          if (sub.length === 0 || open(tokens[p])) throw new CorefileError(tokens[p]?.line ?? d.line, `a block inside ${d.name}'s block: not a Corefile netplane reads`);
          d.block.push({ name: sub[0]!.text, args: sub.slice(1).map((w) => w.text), block: [], line: sub[0]!.line });
        }
      }
      directives.push(d);
    }
    blocks.push({ keys: keys.flatMap((k) => k.text.split(',')).filter(Boolean), directives, line: first.line });
  }
  return blocks;
}

// The command lines of the programs netplane replaces (kube-proxy, flanneld, CoreDNS), taken as their DaemonSets
// write them. A component declares its program's flags in a table — the program's spelling, and what it is here: one
// of netplane's flags (with its value translated), a warning saying why it is ignored, or a refusal for a value that
// cannot be honoured — and the command line is rewritten to netplane's spellings before parseFlags reads it, so that
// every later check (a value's parser, a flag given twice, a configuration file's merge) sees one command line.
// These spellings are read the way Go's flag package and pflag read them: -flag and --flag, -flag=VALUE and
// -flag VALUE (a value may start with "-": --oom-score-adj -999), a boolean bare or as -flag=true|false.
import { UsageError } from './errors.ts';
import type { FlagSpecs } from './flags.ts';

/** What the rest of the command line says, for a flag whose meaning depends on another (a port beside an address). */
export interface AnchorLine {
  /** The value given last to one of the program's flags (named without dashes); a boolean's as "true" or "false". */
  value(name: string): string | undefined;
}

/** What one of the program's flags is here. */
export interface Taken {
  /** netplane's flags it stands for, each `--flag=VALUE`, or `--flag` for a switch. */
  argv?: string[];
  /** Why it is ignored: a warning at start. */
  ignored?: string;
}

/** One of the program's flags. */
export interface AnchorFlag {
  /** A value (-flag=VALUE, -flag VALUE), a Go boolean (bare is true; =true|false), or a boolean whose value may also be the next word (netplane's own --flag true|false). */
  takes: 'value' | 'bool' | 'bool-or-value';
  /** The netplane flag it is, shown by --help; absent for one only ignored or refused. */
  as?: string;
  /** Whether it is always refused (a one-shot netplane does not have), for --help. */
  refused?: true;
  /** Its meaning for this value (a boolean's "true" or "false"); throws, with why, for a value netplane cannot honour. */
  take(value: string, line: AnchorLine): Taken;
}

/** A component's table of the program's flags. */
export interface AnchorFlags {
  /** The program, as messages name it: kube-proxy, flanneld, CoreDNS. */
  program: string;
  /** By name without dashes, written with `-` (an `_` given is read as `-`, as Kubernetes' components read it). */
  flags: Record<string, AnchorFlag>;
  /** How --help writes them: with the one dash of the program's own documentation (CoreDNS's -conf), else two. */
  dashes?: '-';
}

/** The command line in netplane's spellings, and the warnings of what it asks that is ignored. */
export interface Translated {
  argv: string[];
  notes: string[];
}

// Go's strconv.ParseBool, which both Go's flag package and pflag read booleans with.
const goTrue = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const goFalse = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/** A boolean as Go's strconv.ParseBool reads it, as "true" or "false"; undefined for anything else. */
export function goBool(raw: string): 'true' | 'false' | undefined {
  return goTrue.includes(raw) ? 'true' : goFalse.includes(raw) ? 'false' : undefined;
}

/** A port as the programs' flags take one: decimal, from `min` (0 or 1) to 65535. Throws with why. */
export function portNumber(raw: string, min: 0 | 1 = 0): number {
  const n = Number(raw);
  if (!/^\d{1,5}$/.test(raw.trim()) || n < min || n > 65535) throw new Error(`must be a port from ${min} to 65535`);
  return n;
}

/** One of the program's flags as written on the command line. */
interface Given {
  /** As written, dashes included, without the value: `--proxy-mode`, `-v`. */
  written: string;
  name: string;
  flag: AnchorFlag;
  value: string;
  /** Whether the value was written (a bare boolean's is not). */
  shown: boolean;
}

/**
 * Rewrites argv's spellings of the program's flags to netplane's. Every value is checked by the parser of the flag
 * it becomes, and reported under the program's spelling; a flag given in both spellings is given twice. Throws
 * UsageError: a value that cannot be honoured, a missing or wrong value, a flag given twice.
 */
export function translateAnchorFlags(command: string, specs: FlagSpecs, anchor: AnchorFlags, argv: readonly string[]): Translated {
  const words: Array<string | Given> = [];
  const isFlagWord = (w: string) => w === '-h' || w === '--help' || anchorName(w, anchor) !== undefined || (/^--[^=]/.test(w) && Object.hasOwn(specs, w.slice(2).split('=')[0]!));
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      words.push(...argv.slice(i));
      break;
    }
    const m = /^(--?[^-=][^=]*)(?:=([\s\S]*))?$/.exec(word);
    const name = anchorName(word, anchor);
    if (m === null || name === undefined) {
      words.push(word);
      // A value of netplane's own flag is copied as it is: it is never one of the program's flags.
      const own = m?.[1]!.startsWith('--') ? m[1]!.slice(2) : undefined;
      const spec = own !== undefined && Object.hasOwn(specs, own) ? specs[own] : undefined;
      if (m !== null && m[2] === undefined && spec !== undefined && spec.kind !== 'switch' && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) words.push(argv[++i]!);
      continue;
    }
    const written = m[1]!;
    const flag = anchor.flags[name]!;
    let value = m[2];
    if (flag.takes === 'value') {
      if (value === undefined) {
        // As Go reads it, the next word is the value whatever it starts with, unless it is one of this command's flags.
        const next = argv[i + 1];
        if (next === undefined || isFlagWord(next)) throw new UsageError(`${command}: ${written} needs a value (see ${command} --help)`);
        value = next;
        i++;
      }
      words.push({ written, name, flag, value, shown: true });
      continue;
    }
    if (value === undefined && flag.takes === 'bool-or-value' && goBool(argv[i + 1] ?? '') !== undefined) value = argv[++i];
    const bool = value === undefined ? 'true' : goBool(value);
    if (bool === undefined) throw new UsageError(`${command}: ${written} ${JSON.stringify(value)}: must be true or false`);
    words.push({ written, name, flag, value: bool, shown: value !== undefined });
  }

  const line: AnchorLine = {
    value: (name) => words.findLast((w): w is Given => typeof w !== 'string' && w.name === name)?.value,
  };
  const out: string[] = [];
  const notes: string[] = [];
  // Which of the words in `out` stand for which netplane flag, and how they were written: for the twice check.
  const spelled: Array<{ flag: string; as: string }> = [];
  for (const w of words) {
    if (typeof w === 'string') {
      out.push(w);
      const own = /^--([^=]+)/.exec(w)?.[1];
      if (own !== undefined && Object.hasOwn(specs, own)) spelled.push({ flag: own, as: `--${own}` });
      continue;
    }
    const shown = w.shown ? `${w.written} ${JSON.stringify(w.value)}` : w.written;
    let taken: Taken;
    try {
      taken = w.flag.take(w.value, line);
    } catch (e) {
      throw new UsageError(`${command}: ${shown}: ${(e as Error).message}`, { cause: e });
    }
    if (taken.ignored !== undefined) notes.push(`${anchor.program}'s ${shown}: ${taken.ignored}`);
    for (const word of taken.argv ?? []) {
      checkValue(command, specs, word, shown);
      out.push(word);
      const flag = /^--([^=]+)/.exec(word)![1]!;
      // One of netplane's own flags written so counts as netplane's: parseFlags says it is given twice.
      spelled.push({ flag, as: flag === w.name ? `--${flag}` : `${anchor.program}'s ${w.written}` });
    }
  }
  checkTwice(command, specs, spelled);
  return { argv: out, notes };
}

/** The table's name of a word that is one of the program's flags (`-flag`, `--flag`, `=VALUE` or not), else undefined. */
function anchorName(word: string, anchor: AnchorFlags): string | undefined {
  const m = /^--?([^-=][^=]*)/.exec(word);
  const name = m?.[1]!.replaceAll('_', '-');
  return name !== undefined && Object.hasOwn(anchor.flags, name) ? name : undefined;
}

/** Checks a translated `--flag=VALUE` with its flag's parser, naming the program's spelling as written. */
function checkValue(command: string, specs: FlagSpecs, word: string, shown: string): void {
  const [, flag, value] = /^--([^=]+)(?:=([\s\S]*))?$/.exec(word) ?? [];
  const spec = flag === undefined ? undefined : specs[flag];
  if (spec === undefined || (spec.kind === 'switch') !== (value === undefined)) throw new Error(`${shown} is translated to ${word}, which is not one of ${command}'s flags`);
  if (spec.kind === 'switch') return;
  try {
    spec.parse(value!);
  } catch (e) {
    throw new UsageError(`${command}: ${shown}: ${(e as Error).message}`, { cause: e });
  }
}

/** Refuses a single-value flag that the program's spelling gives again (parseFlags says the same of netplane's). */
function checkTwice(command: string, specs: FlagSpecs, spelled: ReadonlyArray<{ flag: string; as: string }>): void {
  for (const [flag, spec] of Object.entries(specs)) {
    if (spec.kind !== 'value') continue;
    const all = spelled.filter((s) => s.flag === flag);
    if (all.length < 2 || all.every((s) => s.as === `--${flag}`)) continue;
    throw new UsageError(`${command}: --${flag} is given ${all.length === 2 ? 'twice' : `${all.length} times`} (${all.map((s) => s.as).join(', ')}); give it once`);
  }
}

/** The --help lines of a table: the program's spellings of netplane's flags, and those it ignores or refuses. */
export function anchorHelp(anchor: AnchorFlags): string {
  const entries = Object.entries(anchor.flags);
  const dashes = anchor.dashes ?? '--';
  const dashed = (names: string[]) => names.map((n) => `${dashes}${n}`).join(', ');
  const renamed = entries.filter(([name, f]) => f.as !== undefined && f.as !== name);
  const ignored = entries.filter(([, f]) => f.as === undefined && !f.refused).map(([n]) => n);
  const refused = entries.filter(([, f]) => f.refused).map(([n]) => n);
  return [
    `${anchor.program}'s flags, also taken (-flag or --flag, =VALUE or VALUE, a boolean bare or =true|false):`,
    ...renamed.map(([name, f]) => `${`  ${dashes}${name}`.padEnd(34)} as --${f.as}`),
    ...(ignored.length > 0 ? wrap(`ignored with a warning at start (or refused, for a value that cannot be honoured): ${dashed(ignored)}`) : []),
    ...(refused.length > 0 ? wrap(`refused: ${dashed(refused)}`) : []),
    '',
  ].join('\n');
}

/** A long help line as lines of at most about 120 characters, indented. */
function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = ' ';
  for (const word of text.split(' ')) {
    if (line.length + word.length > 118 && line.trim() !== '') {
      lines.push(line);
      line = '   ';
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

/** A flag of the same name and meaning as netplane's: only Go's forms are read (a value, or a switch given =true). */
export function same(takes: 'value' | 'bool', name: string, off?: string): AnchorFlag {
  return {
    takes,
    as: name,
    take(value) {
      if (takes === 'value') return { argv: [`--${name}=${value}`] };
      if (value === 'true') return { argv: [`--${name}`] };
      // A switch given false asks for what netplane does without it, unless `off` says why it cannot.
      if (off !== undefined) throw new Error(off);
      return {};
    },
  };
}

/** A flag that is one of netplane's under another name, its value translated by `convert` (which throws with why). */
export function renamed(as: string, convert: (value: string, line: AnchorLine) => string = (v) => v): AnchorFlag {
  return { takes: 'value', as, take: (value, line) => ({ argv: [`--${as}=${convert(value, line)}`] }) };
}

/**
 * A flag netplane does not do: a warning with `why` at start. A boolean is ignored only when true (false asks for
 * nothing) unless `always`; `why` may look at the value and say nothing (undefined) for one that asks for nothing.
 */
export function ignored(takes: 'value' | 'bool', why: string | ((value: string) => string | undefined), always = false): AnchorFlag {
  return {
    takes,
    take(value) {
      if (takes === 'bool' && value === 'false' && !always) return {};
      const said = typeof why === 'string' ? why : why(value);
      return said === undefined ? {} : { ignored: said };
    },
  };
}

/** A flag asking for what netplane does not do (a one-shot it does not have): refused with `why` (a boolean only when true). */
export function refused(takes: 'value' | 'bool', why: string): AnchorFlag {
  return {
    takes,
    refused: true,
    take(value) {
      if (takes === 'bool' && value === 'false') return {};
      throw new Error(why);
    },
  };
}

/** klog's -v verbosity (kube-proxy's and flanneld's logs) as --log-level: 4 and 5 are klog's debug levels, 6 and up its trace. */
export function klogLevel(raw: string): string {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error('must be a whole number, the log verbosity');
  const v = Number(raw.trim());
  return v >= 6 ? 'trace' : v >= 4 ? 'debug' : 'info';
}

/** The klog flags that say where and how log lines are written; netplane writes JSON lines on stdout. */
export const klogOutput = {
  why: 'netplane writes its logs as JSON lines on stdout (--log-level says how many)',
  values: ['vmodule', 'log-backtrace-at', 'log-dir', 'log-file', 'log-file-max-size', 'stderrthreshold', 'log-flush-frequency'],
  bools: ['logtostderr', 'alsologtostderr', 'add-dir-header', 'one-output', 'skip-headers', 'skip-log-headers'],
} as const;

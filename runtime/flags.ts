// Typed command-line flags on top of node:util parseArgs: every value is checked, and a wrong flag or value
// becomes one UsageError sentence naming the flag, the value and what is allowed.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

/** A flag without a value: present means true. */
export interface SwitchFlag {
  kind: 'switch';
  help: string;
}

/** A flag with one value, parsed by `parse` (which throws with what is allowed); D says whether it has a default. */
export interface ValueFlag<T, D extends boolean> {
  kind: 'value';
  help: string;
  /** Placeholder shown in help, e.g. "ADDR:PORT". */
  value: string;
  parse: (raw: string) => T;
  default: D extends true ? T : undefined;
  /** How help shows the default, when not as the value itself (a duration's "30s" rather than 30000). */
  shown?: string;
  /** Whether the value (a HostPort, or a word such as `off`) is an address this process listens on (checkListenAddresses). */
  listens?: true;
}

/** A repeatable flag; every occurrence is parsed; `default` applies when it is never given. */
export interface ListFlag<T> {
  kind: 'list';
  help: string;
  value: string;
  parse: (raw: string) => T;
  default: T[];
  /** Whether every value (a HostPort) is an address this process listens on (checkListenAddresses). */
  listens?: true;
}

/** Any flag. */
export type Flag = SwitchFlag | ValueFlag<any, boolean> | ListFlag<any>;
/** A set of flags by name (without the leading dashes). */
export type FlagSpecs = Record<string, Flag>;

/** The parsed values of a set of flags. */
export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends SwitchFlag
    ? boolean
    : S[K] extends ListFlag<infer T>
      ? T[]
      : S[K] extends ValueFlag<infer T, infer D>
        ? D extends true
          ? T
          : T | undefined
        : never;
};

/** Declares a switch. */
export function switchFlag(help: string): SwitchFlag {
  return { kind: 'switch', help };
}

const identity = (raw: string) => raw;

/**
 * Declares a flag with one value; with a default its value is never undefined (`shown` is how help writes it).
 * `listens: true` marks an address the process listens on: no two such flags may ask for the same one.
 */
export function valueFlag<T = string>(spec: { help: string; value: string; parse?: (raw: string) => T; listens?: true }): ValueFlag<T, false>;
export function valueFlag<T = string>(spec: { help: string; value: string; parse?: (raw: string) => T; default: T; shown?: string; listens?: true }): ValueFlag<T, true>;
export function valueFlag<T>(spec: { help: string; value: string; parse?: (raw: string) => T; default?: T; shown?: string; listens?: true }): ValueFlag<T, boolean> {
  const flag: ValueFlag<T, boolean> = { kind: 'value', parse: (spec.parse ?? identity) as (raw: string) => T, default: spec.default, help: spec.help, value: spec.value };
  if (spec.shown !== undefined) flag.shown = spec.shown;
  if (spec.listens) flag.listens = true;
  return flag;
}

/**
 * Declares a duration flag (500ms, 1s, 2m, 1h), in milliseconds; the default is written the same way. `min` and `max`
 * (written the same way) bound it; without `max`, 24 days is the most (Node's timers cannot wait longer).
 */
export function durationFlag(spec: { help: string; default: string; min?: string; max?: string }): ValueFlag<number, true> {
  const min = spec.min === undefined ? 0 : parseDuration(spec.min);
  const max = parseDuration(spec.max ?? '576h');
  const parse = (raw: string): number => {
    const ms = parseDuration(raw);
    if (ms < min || ms > max) throw new Error(`must be from ${spec.min ?? '0s'} to ${spec.max ?? '576h'}`);
    return ms;
  };
  return { kind: 'value', parse, default: parseDuration(spec.default), shown: spec.default, help: spec.help, value: 'DURATION' };
}

/** Declares a repeatable flag (`listens: true`: every value is an address the process listens on, as valueFlag's). */
export function listFlag<T = string>(spec: { help: string; value: string; parse?: (raw: string) => T; default?: T[]; listens?: true }): ListFlag<T> {
  const flag: ListFlag<T> = { kind: 'list', parse: (spec.parse ?? identity) as (raw: string) => T, default: spec.default ?? [], help: spec.help, value: spec.value };
  if (spec.listens) flag.listens = true;
  return flag;
}

/**
 * Refuses, as a UsageError, two listen addresses (flags declared `listens`, defaults included) that the kernel would
 * not let this process bind both of: the same address and port, or a port on an address that a wildcard takes too.
 * Port 0 (any free port) never clashes; values that are not addresses (`off`) are skipped.
 */
export function checkListenAddresses(command: string, specs: FlagSpecs, values: Record<string, unknown>): void {
  const seen: Array<{ flag: string; at: HostPort }> = [];
  for (const [flag, spec] of Object.entries(specs)) {
    if (spec.kind === 'switch' || !spec.listens) continue;
    const raw = values[flag];
    for (const at of (Array.isArray(raw) ? raw : [raw]).filter(isHostPort)) {
      const other = seen.find((s) => listenOverlap(s.at, at));
      if (other) throw new UsageError(`${command}: ${describeClash(other, { flag, at })}`);
      seen.push({ flag, at });
    }
  }
}

function isHostPort(v: unknown): v is HostPort {
  return typeof v === 'object' && v !== null && typeof (v as HostPort).host === 'string' && typeof (v as HostPort).port === 'number';
}

/** Node listens on `::` for both families (dual stack) and on 0.0.0.0 for every IPv4 address: Linux refuses a second socket on an address either takes. */
function wildcardTakes(wildcard: string, host: string): boolean {
  return wildcard === '::' || (wildcard === '0.0.0.0' && isIP(host) === 4);
}

function listenOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  return a.host === b.host || wildcardTakes(a.host, b.host) || wildcardTakes(b.host, a.host);
}

function describeClash(a: { flag: string; at: HostPort }, b: { flag: string; at: HostPort }): string {
  if (a.at.host === b.at.host) {
    const where = `${a.at.host.includes(':') ? `[${a.at.host}]` : a.at.host}:${a.at.port}`;
    return a.flag === b.flag
      ? `--${a.flag} gives ${where} twice; give each address once`
      : `--${a.flag} and --${b.flag} both listen on ${where}; give each its own address`;
  }
  const [wide, narrow] = wildcardTakes(a.at.host, b.at.host) ? [a, b] : [b, a];
  const scope = wide.at.host === '::' ? 'every address, IPv4 included' : 'every IPv4 address';
  return `--${wide.flag} ${wide.at.text} listens on port ${wide.at.port} of ${scope}, so --${narrow.flag} ${narrow.at.text} cannot have it too; give each its own port`;
}

/** The flags written on each command line parseFlags read (a defaulted flag is not), by its result. */
const givenByResult = new WeakMap<object, ReadonlySet<string>>();

/** Whether `--name` was written on the command line that gave `values` (parseFlags' result), not defaulted. */
export function flagGiven(values: object, name: string): boolean {
  return givenByResult.get(values)?.has(name) ?? false;
}

/** Parses argv against specs; `--help` returns null. Throws UsageError for unknown flags, positionals or bad values. */
export function parseFlags<S extends FlagSpecs>(command: string, specs: S, argv: readonly string[]): FlagValues<S> | null {
  const options: Record<string, { type: 'string' | 'boolean'; multiple: boolean; short?: string }> = { help: { type: 'boolean', multiple: false, short: 'h' } };
  // Every value flag is collected as a list, so that a single-value flag given twice is refused rather than the last
  // one winning unchecked.
  for (const [name, f] of Object.entries(specs)) options[name] = { type: f.kind === 'switch' ? 'boolean' : 'string', multiple: f.kind !== 'switch' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError(`${command}: ${explainParseError(e as Error & { code?: string }, specs, argv, command)}`, { cause: e });
  }
  if (parsed.values.help) return null;
  const out: Record<string, unknown> = {};
  givenByResult.set(out, new Set(Object.keys(parsed.values).filter((k) => parsed.values[k] !== undefined)));
  for (const [name, f] of Object.entries(specs)) {
    const raw = parsed.values[name] as string | string[] | boolean | undefined;
    if (f.kind === 'switch') {
      out[name] = raw === true;
      continue;
    }
    if (raw === undefined) {
      out[name] = f.default;
      continue;
    }
    if (f.kind === 'value' && Array.isArray(raw) && raw.length > 1) {
      throw new UsageError(`${command}: --${name} is given ${raw.length === 2 ? 'twice' : `${raw.length} times`}; give it once`);
    }
    const one = (v: string) => {
      try {
        return f.parse(v);
      } catch (e) {
        throw new UsageError(`${command}: --${name} ${JSON.stringify(v)}: ${(e as Error).message}`, { cause: e });
      }
    };
    out[name] = f.kind === 'list' ? (raw as string[]).map(one) : one((raw as string[])[0]!);
  }
  return out as FlagValues<S>;
}

/** The sentence for a parseArgs error, ending with where to look (but for --help itself). */
function explainParseError(e: Error & { code?: string }, specs: FlagSpecs, argv: readonly string[], command: string): string {
  const see = ` (see ${command} --help)`;
  // Node quotes the option as written in its table: '--name', '--name <value>', or '-h, --help' for one with a short form.
  const quoted = /'(-[^']*)'/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      // Go's flag package takes one dash as well as two (CoreDNS's `-conf`, kube-proxy's `-v`): a known flag
      // written so is named with its two dashes.
      const single = argv.find((w) => /^-[^-]/.test(w) && quoted !== undefined && w.startsWith(quoted) && Object.hasOwn(specs, w.slice(1).split('=')[0]!));
      if (single !== undefined) return `${single.split('=')[0]} is written --${single.slice(1).split('=')[0]}, with two dashes${see}`;
      return `unknown flag ${quoted ?? e.message}${see}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(e.message)?.[1] ?? ''}; every setting is a --flag${see}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = /--([^\s',<]+)/.exec(quoted ?? '')?.[1] ?? '';
      if (name === 'help') return '--help takes no value';
      const spec = specs[name];
      if (!spec || spec.kind === 'switch') return `--${name} takes no value${see}`;
      // parseArgs calls a value starting with "-" ambiguous: when it is another flag, the value was left out.
      if (/ambiguous/.test(e.message) && !isFlagWord(nextWord(argv, name), specs)) return `--${name}: a value that starts with "-" is written --${name}=VALUE${see}`;
      return `--${name} needs a value ${spec.value}${see}`;
    }
    default:
      return e.message;
  }
}

/** The word after the first `--name` that parseArgs would find ambiguous (one starting with "-"). */
function nextWord(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length - 1; i++) if (argv[i] === `--${name}` && argv[i + 1]!.startsWith('-')) return argv[i + 1];
  return undefined;
}

/** Whether a word is one of the command's flags (--help and -h included), with or without `=VALUE`. */
function isFlagWord(word: string | undefined, specs: FlagSpecs): boolean {
  if (word === undefined) return false;
  if (word === '-h') return true;
  const m = /^--([^=]+)/.exec(word);
  return m !== null && (m[1] === 'help' || Object.hasOwn(specs, m[1]!));
}

/** Help text for a command: usage line, summary, and one line per flag. */
export function formatHelp(command: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, f]) => {
    if (f.kind === 'switch') return `${`  --${name}`.padEnd(34)} ${f.help}`;
    const shown = f.kind === 'value' ? f.shown : undefined;
    const def = f.default !== undefined && !(Array.isArray(f.default) && f.default.length === 0) ? ` (default ${shown ?? formatDefault(f.default)})` : '';
    return `${`  --${name} ${f.value}`.padEnd(34)} ${f.help}${f.kind === 'list' ? ' (repeatable)' : ''}${def}`;
  });
  return [`Usage: ${command} [flags]`, '', summary, '', 'Flags:', ...rows, `${'  --help'.padEnd(34)} show this help`, ''].join('\n');
}

function formatDefault(v: unknown): string {
  if (Array.isArray(v)) return v.map(formatDefault).join(', ');
  if (v !== null && typeof v === 'object' && 'text' in v) return String((v as { text: unknown }).text);
  return String(v);
}

/** An address and port to listen on or connect to. */
export interface HostPort {
  host: string;
  port: number;
  /** As written, for logs and help. */
  text: string;
}

/** HOST:PORT as parseHostPort reads it: an IPv6 address in brackets. */
export function hostPortText(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses ADDR:PORT or [IPv6]:PORT, ADDR an IP address or `localhost` (empty: 0.0.0.0); a port of 0 asks the system
 * for a free one. Throws with what is allowed.
 */
export function parseHostPort(raw: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : NaN;
  const host = m?.[1] ?? m?.[2] ?? '';
  // A name other than localhost would be looked up only when a socket binds or connects, failing there.
  const hostOk = host === '' || host === 'localhost' || (m?.[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4);
  if (!m || port > 65535 || !hostOk) throw new Error('must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153');
  return { host: host === '' ? '0.0.0.0' : host, port, text: raw };
}

/** A parser accepting one of a fixed set of words. */
export function oneOf<const T extends string>(allowed: readonly T[]): (raw: string) => T {
  return (raw) => {
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    throw new Error(`must be one of ${allowed.join(', ')}`);
  };
}

/** A parser for a non-empty string. */
export function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('must not be empty');
  return raw;
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as 500ms, 1s, 2m or 1h into milliseconds; also Go's compound form (1m30s, and 24h0m0s,
 * 1m0s as kube-proxy's configuration files hold them; a bare 0). Throws with what is allowed.
 */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  if (text === '0') return 0;
  if (!/^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(text)) throw new Error('must be a duration such as 500ms, 1s, 2m or 1h');
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * durationUnits[unit!]!;
  return ms;
}

/** Parses a comma-separated list of IPv4/IPv6 CIDRs (a bare address counts as a /32 or /128). Throws naming the bad one. */
export function parseCIDRList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((c) => {
      const [addr = '', len, extra] = c.split('/');
      const family = isIP(addr);
      const max = family === 6 ? 128 : 32;
      const bits = len === undefined ? max : Number(len);
      if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > max || (len !== undefined && !/^\d+$/.test(len))) {
        throw new Error(`${JSON.stringify(c)} is not a CIDR such as 10.244.0.0/16 or fd00::/64`);
      }
      return `${addr}/${bits}`;
    });
}

/** Parses a whole number of at least 1. */
export function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1) throw new Error('must be a whole number of at least 1');
  return n;
}

/** A parser for a whole number from `min` to `max` (written with a minus sign when `min` allows one). */
export function intInRange(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!(min < 0 ? /^-?\d+$/ : /^\d+$/).test(raw) || n < min || n > max) throw new Error(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** Parses ADDR:PORT to connect to: as parseHostPort, with a port from 1 to 65535. */
export function parseDestination(raw: string): HostPort {
  const hp = parseHostPort(raw);
  if (hp.port === 0) throw new Error('must name a port from 1 to 65535');
  return hp;
}

/** Parses an IPv4 or IPv6 address (no brackets, no port). */
export function parseIPAddress(raw: string): string {
  if (isIP(raw) === 0) throw new Error('must be an IPv4 or IPv6 address, e.g. 127.0.0.1 or ::1');
  return raw;
}

// Settings from a configuration file (kube-proxy's, CoreDNS's, Flannel's for proxy, dns and overlay), merged into the
// command line as the flags they stand for: a flag written on the command line wins over the file's setting of it,
// and a setting whose value its flag's parser refuses is a usage error that names the file's field. Also what the
// readers of those files share: reading the file, and typed reads of its parsed values.
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';
import type { FlagSpecs } from './flags.ts';

/** One setting, as the flag it stands for. */
export interface Setting {
  flag: string;
  /** The value as it would be written after the flag; true for a switch that is on. */
  value: string | true;
  /** Where it was read, for messages: `FILE: field.path`. */
  from: string;
  /** Flags that, written on the command line, override this setting too (--manifests for a kubeconfig path). */
  yieldsTo?: readonly string[];
}

/** What a configuration file says: its settings, and notes on what it asks that is not done (logged at start). */
export interface FileSettings {
  settings: Setting[];
  notes: string[];
  /** A hash of what was read (the file and what it imports), to tell whether a later read found something new. */
  fingerprint?: string;
}

/** The command line merged again with its configuration file as it is now (a component that reloads it). */
export interface Reread {
  flags: Record<string, unknown>;
  notes: string[];
  fingerprint: string | undefined;
}

/**
 * The command line with the settings written before it, as flags; a setting of a flag the command line gives (or
 * one of its `yieldsTo`) is left out, with a note. Each value goes through its flag's parser here, so that a bad
 * one is reported as the file's, in one sentence. Throws UsageError.
 */
export function withSettings(command: string, specs: FlagSpecs, argv: readonly string[], given: (flag: string) => boolean, settings: readonly Setting[]): { argv: string[]; notes: string[] } {
  const front: string[] = [];
  const notes: string[] = [];
  const taken = new Set<string>();
  for (const s of settings) {
    const spec = specs[s.flag];
    if (spec === undefined) throw new Error(`${s.from}: no flag --${s.flag}`);
    const over = [s.flag, ...(s.yieldsTo ?? [])].find(given);
    if (over !== undefined) {
      notes.push(`${s.from} is overridden by --${over} on the command line`);
      continue;
    }
    if (spec.kind !== 'list' && taken.has(s.flag)) continue;
    taken.add(s.flag);
    if (spec.kind === 'switch') {
      if (s.value !== true) throw new Error(`${s.from}: --${s.flag} is a switch`);
      front.push(`--${s.flag}`);
      continue;
    }
    if (s.value === true) throw new Error(`${s.from}: --${s.flag} takes a value`);
    try {
      spec.parse(s.value);
    } catch (e) {
      throw new UsageError(`${command}: ${s.from} ${JSON.stringify(s.value)}: ${(e as Error).message}`, { cause: e });
    }
    front.push(`--${s.flag}=${s.value}`);
  }
  return { argv: [...front, ...argv], notes };
}

/** A configuration file's text; one that cannot be read is a UsageError naming the flag, the file and the error code. */
export async function readSettingsFile(command: string, flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${command}: --${flag} ${JSON.stringify(file)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/** Whether a parsed YAML or JSON value is a mapping. */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Typed reads of a parsed configuration file's values, each found by `get` (null and absent are undefined, Go's zero
 * values); a value of the wrong type throws what `fail` makes of its key.
 */
export function typedReader(get: (key: string) => unknown, fail: (key: string, why: string) => Error) {
  return {
    string(key: string): string | undefined {
      const v = get(key) ?? undefined;
      if (v !== undefined && typeof v !== 'string') throw fail(key, 'must be a string');
      return v;
    },
    strings(key: string): string[] | undefined {
      const v = get(key) ?? undefined;
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw fail(key, 'must be a list of strings');
      return v as string[];
    },
    bool(key: string): boolean | undefined {
      const v = get(key) ?? undefined;
      if (v !== undefined && typeof v !== 'boolean') throw fail(key, 'must be true or false');
      return v;
    },
    int(key: string): number | undefined {
      const v = get(key) ?? undefined;
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw fail(key, 'must be a whole number');
      return v;
    },
  };
}

// Settings from a configuration file (kube-proxy's KubeProxyConfiguration for `netplane proxy --config`), merged
// into the command line as the flags they stand for: a flag written on the command line wins over the file's
// setting of it, and a setting whose value its flag's parser refuses is a usage error that names the file's field.
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

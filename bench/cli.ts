// What the benchmark scripts share on their command line: `--name value` options and switches, `--json` (then
// no progress lines on stderr), and finding the peer programs they run beside netplane.
import { spawnSync } from 'node:child_process';

/** This process's arguments as a benchmark reads them. */
export function benchArgs(args: readonly string[] = process.argv.slice(2)) {
  const asJSON = args.includes('--json');
  return {
    args,
    asJSON,
    /** The value after `--name`, or `def`. */
    opt: (name: string, def: string): string => {
      const i = args.indexOf(`--${name}`);
      return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
    },
    /** Whether the switch `--name` is given. */
    has: (name: string): boolean => args.includes(`--${name}`),
    /** A progress line on stderr, unless the report is JSON. */
    log: (line: string): void => {
      if (!asJSON) process.stderr.write(`${line}\n`);
    },
  };
}

/** The path of a program on PATH or in /usr/sbin, or '' when it is in neither. */
export function which(name: string): string {
  const found = spawnSync('/bin/sh', ['-c', `command -v ${name} || { test -x /usr/sbin/${name} && echo /usr/sbin/${name}; }`]);
  return found.stdout?.toString().trim() ?? '';
}

/** Exits with code 2, naming the Debian packages to install, when one of the programs ([name, package]) is missing. */
export function requireTools(tools: ReadonlyArray<readonly [string, string]>): void {
  const missing = tools.filter(([name]) => which(name) === '');
  if (missing.length === 0) return;
  process.stderr.write(`missing: ${missing.map(([n]) => n).join(', ')}. Install with: apt-get update && apt-get install -y ${missing.map(([, p]) => p).join(' ')}\n`);
  process.exit(2);
}

// `netplane up`: runs components as separate child processes, prefixes their log lines with their names, and
// stops them all on Ctrl-C (or when one of them dies).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { UsageError } from './errors.ts';
import type { Component } from './component.ts';

/** Environment variable that tells a child it is supervised: it stops when its stdin (a pipe from `up`) closes. */
export const supervisedEnv = 'NETPLANE_SUPERVISED';

/** Options of one `up` run. */
export interface UpOptions {
  /** Path of bin/netplane.ts, started once per component with the running Node. */
  bin: string;
  components: readonly Component[];
  /** Flags passed to every child (source, node name, log level), already checked. */
  childArgs: readonly string[];
  /** Further flags for one component, by name. */
  extraArgs?: Readonly<Record<string, readonly string[]>>;
  out?: NodeJS.WritableStream;
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number>;
}

/** Starts the components and resolves with the exit code once they have all stopped. */
export async function supervise(options: UpOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  if (options.components.length === 0) throw new UsageError('netplane up: no components to start');
  const width = Math.max(...options.components.map((c) => c.name.length));
  const say = (line: string) => out.write(`${'up'.padEnd(width)} | ${line}\n`);
  let stopping = false;
  const children: Child[] = options.components.map((c) => {
    const proc = spawn(process.execPath, [options.bin, c.name, ...options.childArgs, ...(options.extraArgs?.[c.name] ?? [])], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // A process group of its own: Ctrl-C reaches only `up`, which then stops each child exactly once.
      detached: true,
      env: { ...process.env, [supervisedEnv]: '1' },
    });
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => out.write(`${c.name.padEnd(width)} | ${line}\n`));
    }
    const exited = new Promise<number>((resolve) => {
      proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      proc.on('error', (e) => {
        say(`cannot start ${c.name}: ${e.message}`);
        resolve(1);
      });
    });
    say(`started ${c.name} (pid ${proc.pid}), admin on http://${c.defaultAdmin}`);
    return { name: c.name, proc, exited };
  });

  const stopAll = (signal: NodeJS.Signals) => {
    for (const ch of children) if (ch.proc.exitCode === null && ch.proc.signalCode === null) ch.proc.kill(signal);
  };
  let failed = false;
  for (const ch of children) {
    void ch.exited.then((code) => {
      if (stopping) return;
      failed = true;
      stopping = true;
      say(`${ch.name} exited with code ${code}; stopping the others`);
      stopAll('SIGTERM');
    });
  }
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      say('stopping now');
      stopAll('SIGKILL');
      return;
    }
    stopping = true;
    say(`${signal}: stopping every component`);
    stopAll('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const codes = await Promise.all(children.map((c) => c.exited));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  say('every component has stopped');
  return failed ? Math.max(1, ...codes) : 0;
}

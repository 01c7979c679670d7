// `netplane up`: runs components (and any further processes, such as the quick start's example backends) as
// separate child processes, prefixes their log lines with their names, says where everything listens once it all
// answers, and stops them all on Ctrl-C (or when one of them dies).
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { constants } from 'node:os';
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
  /** Further processes started beside the components and stopped with them. */
  processes?: readonly ExtraProcess[];
  /** Lines printed once every probe accepts a TCP connection (or after timeoutMs, naming those that do not). */
  ready?: { lines: readonly string[]; probes: readonly ReadyProbe[]; timeoutMs?: number };
  out?: NodeJS.WritableStream;
}

/** A process started beside the components: a Node script with its arguments. */
export interface ExtraProcess {
  name: string;
  script: string;
  args: readonly string[];
  /** What it is, for the start line, e.g. `example backend on http://127.0.0.1:8081`. */
  what: string;
}

/** A TCP address that must accept a connection before `up` says everything listens; `what` names its owner. */
export interface ReadyProbe {
  what: string;
  host: string;
  port: number;
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number>;
}

/** `up`'s own Node flags as its children take them: all but the inspector's (one port cannot serve every process). */
export function childNodeFlags(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (!/^--(inspect|debug)(-brk|-port|-wait|-publish-uid)?(=|$)/.test(a)) out.push(a);
    // `--inspect-port 9230`: the value is the next word.
    else if (/^--(inspect|debug)-port$|^--inspect-publish-uid$/.test(a)) i++;
  }
  return out;
}

/** Starts the processes and components; resolves once all have stopped: 0 after a signal, else the code of the one that died. */
export async function supervise(options: UpOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  if (options.components.length === 0) throw new UsageError('netplane up: no components to start');
  const extra = options.processes ?? [];
  const width = Math.max(...options.components.map((c) => c.name.length), ...extra.map((p) => p.name.length));
  const say = (line: string) => out.write(`${'up'.padEnd(width)} | ${line}\n`);
  let stopping = false;
  const start = (name: string, argv: readonly string[], what: string): Child => {
    const proc = spawn(process.execPath, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      // A process group of its own: Ctrl-C reaches only `up`, which then stops each child exactly once.
      detached: true,
      env: { ...process.env, [supervisedEnv]: '1' },
    });
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => out.write(`${name.padEnd(width)} | ${line}\n`));
    }
    const exited = new Promise<number>((resolve) => {
      // Killed by a signal: 128 + its number, as a shell reports it.
      proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
      proc.on('error', (e) => {
        say(`cannot start ${name}: ${e.message}`);
        resolve(1);
      });
    });
    say(`started ${name} (pid ${proc.pid}), ${what}`);
    return { name, proc, exited };
  };
  const children: Child[] = [
    ...extra.map((p) => start(p.name, [p.script, ...p.args], p.what)),
    // The components run with `up`'s own Node flags (node --expose-gc netplane up: each child collects its start's
    // garbage as the image's processes do; --max-old-space-size and the like apply to every component).
    ...options.components.map((c) => start(c.name, [...childNodeFlags(process.execArgv), options.bin, c.name, ...options.childArgs, ...(options.extraArgs?.[c.name] ?? [])], `admin on http://${c.defaultAdmin}`)),
  ];

  const stopAll = (signal: NodeJS.Signals) => {
    for (const ch of children) if (ch.proc.exitCode === null && ch.proc.signalCode === null) ch.proc.kill(signal);
  };
  // The exit code of the child whose death stopped the rest (the others then die of our SIGTERM, some mid-start).
  let failed: number | undefined;
  for (const ch of children) {
    void ch.exited.then((code) => {
      if (stopping) return;
      failed = Math.max(1, code);
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
  if (options.ready) {
    const { lines, probes, timeoutMs = 15_000 } = options.ready;
    const deadline = performance.now() + timeoutMs;
    void untilListening(probes, deadline, () => stopping).then(async (silent) => {
      // Listening is not answering: each component also says on /readyz that it has loaded the view (and, for dns
      // and the ingress, that its answers come from it).
      const unready = await untilReady(options.components.map((c) => ({ name: c.name, admin: c.defaultAdmin })), deadline, () => stopping);
      if (stopping) return;
      if (silent.length > 0) say(`not answering after ${timeoutMs / 1000} s: ${silent.map((p) => `${p.what} ${p.host}:${p.port}`).join(', ')}`);
      if (unready.length > 0) say(`not ready after ${timeoutMs / 1000} s: ${unready.join(', ')}`);
      say('listening (Ctrl-C stops everything):');
      for (const line of lines) say(line);
    });
  }
  await Promise.all(children.map((c) => c.exited));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  say('every component has stopped');
  return failed ?? 0;
}

/** Waits, in order, for each probe to accept a connection; resolves with those that did not by the deadline. */
async function untilListening(probes: readonly ReadyProbe[], deadline: number, stopped: () => boolean): Promise<ReadyProbe[]> {
  for (const [i, p] of probes.entries()) {
    while (!(await accepts(p))) {
      if (stopped()) return [];
      if (performance.now() >= deadline) return probes.slice(i);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return [];
}

/** Waits for each component's /readyz to answer 200; resolves with the names of those that did not by the deadline. */
async function untilReady(components: ReadonlyArray<{ name: string; admin: string }>, deadline: number, stopped: () => boolean): Promise<string[]> {
  const waiting: string[] = [];
  for (const c of components) {
    while (!(await readyz(c.admin))) {
      if (stopped()) return [];
      if (performance.now() >= deadline) {
        waiting.push(c.name);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return waiting;
}

async function readyz(admin: string): Promise<boolean> {
  try {
    const r = await fetch(`http://${admin}/readyz`, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.status === 200;
  } catch {
    return false;
  }
}

function accepts(p: ReadyProbe): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: p.host, port: p.port, timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true)).once('error', () => done(false)).once('timeout', () => done(false));
  });
}

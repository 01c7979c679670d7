// The record of a running lab, kept in a state directory (default /run/netplane-lab): what `lab status`,
// `lab restart` and `lab down` act on, and what makes a second `lab up` refuse.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabComponent, LabPlan } from './plan.ts';

/** Where the state lives unless --state-dir says otherwise. */
export const defaultStateDir = '/run/netplane-lab';

/** One process of the lab: a component on a node or a pod's backend. */
export interface LabProcess {
  /** `node1/proxy` or `pod/web-11`. */
  name: string;
  ns: string;
  pid: number;
  /** The command and its arguments, as run inside `ns`. */
  argv: string[];
  log: string;
  /** Where this run's output starts in `log` (a restarted process appends to the same file). */
  logOffset: number;
  /** The log message (`msg`) the process prints once it serves. */
  readyMessage: string;
  node: string;
  component?: LabComponent;
  /** The admin server's base URL, for components. */
  admin?: string;
}

/** Everything a lab made and runs. */
export interface LabState {
  version: 1;
  /** `starting` until every component is ready; a lab left `starting` by a process that died is stale. */
  phase: 'starting' | 'running';
  /** The process that ran (or is running) `lab up`. */
  upPid: number;
  startedAt: string;
  stateDir: string;
  manifests: string;
  logs: string;
  plan?: LabPlan;
  namespaces: string[];
  hostLinks: string[];
  processes: LabProcess[];
}

/** `lab up` found a lab already recorded in the state directory. */
export class LabExistsError extends Error {
  override readonly name = 'LabExistsError';
  readonly code = 'NETPLANE_LAB_EXISTS';
  readonly state: LabState | undefined;
  constructor(message: string, state: LabState | undefined, options?: ErrorOptions) {
    super(message, options);
    this.state = state;
  }
}

/** No lab is recorded in the state directory. */
export class NoLabError extends Error {
  override readonly name = 'NoLabError';
  readonly code = 'NETPLANE_LAB_NONE';
}

/** The path of the state file in a state directory. */
export function stateFile(stateDir: string): string {
  return join(stateDir, 'state.json');
}

/**
 * Records a new lab in `stateDir`, atomically: rejects with LabExistsError when one is recorded there already
 * (whether it runs, is starting, or was left behind by a process that died).
 */
export async function claimState(stateDir: string): Promise<LabState> {
  await mkdir(stateDir, { recursive: true });
  const state: LabState = {
    version: 1,
    phase: 'starting',
    upPid: process.pid,
    startedAt: new Date().toISOString(),
    stateDir,
    manifests: join(stateDir, 'manifests'),
    logs: join(stateDir, 'logs'),
    namespaces: [],
    hostLinks: [],
    processes: [],
  };
  try {
    await writeFile(stateFile(stateDir), `${JSON.stringify(state, null, 2)}\n`, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const existing = await readState(stateDir).catch(() => undefined);
    throw new LabExistsError(describeExisting(stateDir, existing), existing, { cause: e });
  }
  return state;
}

function describeExisting(stateDir: string, s: LabState | undefined): string {
  if (!s) return `a lab is already recorded in ${stateDir} (its state file cannot be read); run "netplane lab down" first`;
  const nodes = s.plan ? `${s.plan.nodes.length} nodes` : 'no nodes yet';
  if (s.phase === 'starting' && pidAlive(s.upPid)) return `a lab is being started in ${stateDir} by pid ${s.upPid} (${nodes}); wait for it, or run "netplane lab down"`;
  if (s.phase === 'starting') return `a lab that did not finish starting is recorded in ${stateDir} (${nodes}); run "netplane lab down" to remove it`;
  return `a lab is already running (${nodes}, up since ${s.startedAt}, state in ${stateDir}); see "netplane lab status", or run "netplane lab down" first`;
}

/** Reads the state of the lab in `stateDir`; rejects with NoLabError when there is none. */
export async function readState(stateDir: string): Promise<LabState> {
  let text: string;
  try {
    text = await readFile(stateFile(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NoLabError(`no lab is running (nothing recorded in ${stateDir})`, { cause: e });
    throw e;
  }
  return JSON.parse(text) as LabState;
}

/** Writes the state (to a temporary file renamed over the old one, so readers never see half of it). */
export async function saveState(state: LabState): Promise<void> {
  const tmp = join(state.stateDir, `.state.${randomBytes(4).toString('hex')}.json`);
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, stateFile(state.stateDir));
}

/** Removes the state file, manifests and logs, and the state directory when nothing else is left in it. */
export async function removeState(stateDir: string): Promise<void> {
  for (const entry of ['manifests', 'logs', 'state.json']) await rm(join(stateDir, entry), { recursive: true, force: true });
  await rmdir(stateDir).catch(() => undefined);
}

/** Whether a process runs (a zombie, exited but not yet reaped, does not count). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // The state is the field after the parenthesised command name in /proc/PID/stat.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

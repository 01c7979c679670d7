// `netplane lab down`: removes every namespace (with the processes in them), the host's link, the pods'
// /etc/netns entries, the manifests, logs and state of the lab recorded in a state directory.
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NetnsLab } from './netns.ts';
import { isRecordedProcess } from './processes.ts';
import { pidAlive, readState, removeState } from './state.ts';

/** What `lab down` removed. */
export interface DownResult {
  namespaces: string[];
  hostLinks: string[];
  processes: number;
}

/** Removes the lab recorded in `stateDir`; rejects with NoLabError when there is none. Idempotent for partial labs. */
export async function labDown(stateDir: string): Promise<DownResult> {
  const state = await readState(stateDir);
  const alive = state.processes.filter(isRecordedProcess);
  // Everything the lab started runs inside its namespaces: destroy() kills what is in them, then deletes them.
  // A process recorded but somehow outside them is stopped here first.
  for (const p of alive) process.kill(p.pid, 'SIGKILL');
  let namespaces: string[] = [];
  if (state.plan) {
    const lab = await NetnsLab.adopt(state.plan.id, state.hostLinks);
    namespaces = [...lab.namespaces];
    await lab.destroy();
    await removeEtcNetns(lab.prefix);
  }
  const deadline = performance.now() + 5000;
  while (alive.some((p) => pidAlive(p.pid)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await removeState(stateDir);
  return { namespaces, hostLinks: state.hostLinks, processes: alive.length };
}

async function removeEtcNetns(prefix: string): Promise<void> {
  const names = await readdir('/etc/netns').catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(prefix))) await rm(join('/etc/netns', name), { recursive: true, force: true });
  // The lab made /etc/netns if it was missing; it goes when nothing else is left in it.
  await rmdir('/etc/netns').catch(() => undefined);
}

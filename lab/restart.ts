// `netplane lab restart`: stops one component on one node (if it still runs) and starts it again with the same
// command line, waiting until it is ready; the lab's state records the new pid.
import { NetnsLab } from './netns.ts';
import type { LabComponent } from './plan.ts';
import { isRecordedProcess, startProcess, stopProcess, waitProcessesReady } from './processes.ts';
import { readState, saveState, type LabProcess } from './state.ts';

/** The lab has no such component on that node. */
export class NoSuchComponentError extends Error {
  override readonly name = 'NoSuchComponentError';
  readonly code = 'NETPLANE_LAB_NO_COMPONENT';
}

/** What a restart did: whether the old process still ran, and the new process. */
export interface RestartResult {
  wasRunning: boolean;
  process: LabProcess;
  ms: number;
}

/** Restarts `component` on `node` of the lab in `stateDir`; resolves once the new process is ready. */
export async function labRestart(stateDir: string, node: string, component: LabComponent, timeoutMs = 30_000): Promise<RestartResult> {
  const t0 = performance.now();
  const state = await readState(stateDir);
  const i = state.processes.findIndex((p) => p.node === node && p.component === component);
  if (i < 0 || !state.plan) {
    const names = state.processes.filter((p) => p.component).map((p) => p.name);
    throw new NoSuchComponentError(`the lab runs no ${component} on ${node}; it runs ${names.join(', ')}`);
  }
  const old = state.processes[i]!;
  const wasRunning = isRecordedProcess(old);
  await stopProcess(old);
  const { pid: _, logOffset: __, ...spec } = old;
  const started = startProcess(NetnsLab.create({ id: state.plan.id }), spec);
  // Read again: another restart may have recorded its pid meanwhile.
  const fresh = await readState(stateDir);
  fresh.processes = fresh.processes.map((p) => (p.name === started.name ? started : p));
  await saveState(fresh);
  await waitProcessesReady([started], timeoutMs);
  return { wasRunning, process: started, ms: Math.round(performance.now() - t0) };
}

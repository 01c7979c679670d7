// Shared by the lab's tests: running the CLI, listing whatever a lab left behind, and removing a lab whatever
// state it is in (used in afterAll, so a failed test leaves nothing either).
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { labDown } from '../../lab/down.ts';
import { NetnsLab } from '../../lab/netns.ts';
import type { LabPlan } from '../../lab/plan.ts';
import { pidAlive } from '../../lab/state.ts';
import { HostRunner } from '../../runtime/exec.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const host = new HostRunner();

/** What a CLI run printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `netplane ARGS` with this Node; never rejects for a non-zero exit. */
export function netplane(args: readonly string[], timeoutMs = 90_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Whatever of a lab still exists: its namespaces, its host link, /etc/netns entries and live processes. */
export async function leftovers(plan: LabPlan, pids: readonly number[]): Promise<string[]> {
  const prefix = `np${plan.id}-`;
  const namespaces = (await host.run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
  const link = await host.run('ip', ['link', 'show', plan.hostLink]).then(() => [`link ${plan.hostLink}`], () => []);
  const etc = (await readdir('/etc/netns').catch(() => [] as string[])).filter((n) => n.startsWith(prefix)).map((n) => `/etc/netns/${n}`);
  const live = pids.filter(pidAlive).map((p) => `pid ${p}`);
  return [...namespaces.map((n) => `netns ${n}`), ...link, ...etc, ...live];
}

/** Removes the lab in stateDir if there is one, and anything named for `plan` even without a state. Never throws. */
export async function removeLab(stateDir: string, plan?: LabPlan): Promise<void> {
  await labDown(stateDir).catch(() => undefined);
  if (plan) await (await NetnsLab.adopt(plan.id, [plan.hostLink])).destroy();
}

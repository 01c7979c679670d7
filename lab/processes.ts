// The lab's processes: what each one runs, starting them detached inside their namespaces, asking the components'
// admin servers how they are, waiting until everything is ready, and stopping or restarting one.
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from './netns.ts';
import { adminPorts, componentArgs, ingressNode, labCluster, servingMessages, type LabComponent, type LabNode, type LabPlan, type LabPod } from './plan.ts';
import { pidAlive, type LabProcess, type LabState } from './state.ts';

const bin = fileURLToPath(new URL('../bin/netplane.ts', import.meta.url));
const backendScript = fileURLToPath(new URL('./backend.ts', import.meta.url));

/** A component or backend that did not become ready in time, or exited; the message names it and its log. */
export class LabNotReadyError extends Error {
  override readonly name = 'LabNotReadyError';
  readonly code = 'NETPLANE_LAB_NOT_READY';
}

/** What one component on one node runs (not started). */
export function componentProcess(state: LabState, plan: LabPlan, node: LabNode, component: LabComponent): Omit<LabProcess, 'pid' | 'logOffset'> {
  return {
    name: `${node.name}/${component}`,
    ns: `np${plan.id}-${node.name}`,
    // --expose-gc as the image's entry point gives it: each component collects its start's garbage before it is
    // ready (runtime/startup-gc.ts), so the lab's readiness waits include that step.
    argv: [process.execPath, '--expose-gc', bin, ...componentArgs(plan, node, component, state.manifests)],
    log: join(state.logs, `${node.name}-${component}.log`),
    readyMessage: servingMessages[component],
    node: node.name,
    component,
    admin: `http://${node.ip}:${adminPorts[component]}`,
  };
}

/** What a pod's backend runs (not started). */
export function backendProcess(state: LabState, plan: LabPlan, pod: LabPod): Omit<LabProcess, 'pid' | 'logOffset'> {
  return {
    name: `pod/${pod.name}`,
    ns: `np${plan.id}-${pod.name}`,
    argv: [process.execPath, backendScript, pod.name, pod.node, String(labCluster.backendPort)],
    log: join(state.logs, `pod-${pod.name}.log`),
    readyMessage: 'backend listening',
    node: pod.node,
  };
}

/** Starts a process detached inside its namespace; returns it with its pid and where its output starts. */
export function startProcess(lab: NetnsLab, p: Omit<LabProcess, 'pid' | 'logOffset'>): LabProcess {
  const [command, ...args] = p.argv as [string, ...string[]];
  let logOffset = 0;
  try {
    logOffset = statSync(p.log).size;
  } catch {
    // A first start: no log yet.
  }
  return { ...p, logOffset, pid: lab.spawnDetached(p.ns, command, args, p.log) };
}

/** Whether `pid` is still the recorded process (a reused pid runs something else). */
export function isRecordedProcess(p: LabProcess): boolean {
  if (!pidAlive(p.pid)) return false;
  try {
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // `ip netns exec NS CMD...` execs CMD, so the cmdline is ours once it has started, `ip ...` just before.
    return p.argv.every((a) => cmdline.includes(a));
  } catch {
    return false;
  }
}

/** One admin endpoint's answer: the HTTP status (null when unreachable) and the first line of the body. */
export interface AdminCheck {
  status: number | null;
  detail: string;
}

/** GETs an admin endpoint with a short timeout; never throws. */
export async function adminCheck(base: string, path: string, timeoutMs = 1500): Promise<AdminCheck> {
  try {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim().split('\n')[0] ?? '';
    return { status: res.status, detail: body.slice(0, 200) };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { status: null, detail: err.cause?.code ?? err.name };
  }
}

/** How a process is: running, and for a component its /readyz and /healthz. */
export interface ProcessHealth {
  running: boolean;
  readyz?: AdminCheck;
  healthz?: AdminCheck;
}

/** Checks one process. */
export async function processHealth(p: LabProcess): Promise<ProcessHealth> {
  const running = isRecordedProcess(p);
  if (!p.admin) return { running };
  const [readyz, healthz] = await Promise.all([adminCheck(p.admin, '/readyz'), adminCheck(p.admin, '/healthz')]);
  return { running, readyz, healthz };
}

/** Whether a checked process counts as ready. */
export function isHealthy(h: ProcessHealth): boolean {
  return h.running && (h.readyz === undefined || (h.readyz.status === 200 && h.healthz?.status === 200));
}

/** Whether the process printed its ready message since it started. */
async function saidReady(p: LabProcess): Promise<boolean> {
  const text = await readFile(p.log).catch(() => Buffer.alloc(0));
  return text.subarray(p.logOffset).toString('utf8').includes(`"msg":${JSON.stringify(p.readyMessage)}`);
}

/** The last lines of a process's log, for error messages. */
export async function logTail(p: LabProcess, lines = 5): Promise<string> {
  const text = await readFile(p.log, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Waits until every given process is ready: it printed its ready message (backends listening, components serving)
 * and, for components, answers 200 on /readyz and /healthz. Rejects with LabNotReadyError when one exits or the time is up, naming it and quoting its log.
 */
export async function waitProcessesReady(processes: readonly LabProcess[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let pending = [...processes];
  for (;;) {
    signal?.throwIfAborted();
    const checked = await Promise.all(
      pending.map(async (p) => {
        const h = p.admin ? await processHealth(p) : { running: isRecordedProcess(p) };
        const ready = isHealthy(h) && (await saidReady(p));
        return { p, h, ready };
      }),
    );
    const dead = checked.find((c) => !c.h.running && pidAlive(c.p.pid) === false);
    if (dead) throw new LabNotReadyError(`${dead.p.name} exited while starting; the end of ${dead.p.log}:\n${await logTail(dead.p)}`);
    pending = checked.filter((c) => !c.ready).map((c) => c.p);
    if (pending.length === 0) return;
    if (performance.now() > deadline) {
      const p = pending[0]!;
      const h = checked.find((c) => c.p === p)!.h;
      const why = h.readyz ? ` (/readyz ${h.readyz.status ?? h.readyz.detail}, /healthz ${h.healthz?.status ?? h.healthz?.detail})` : '';
      throw new LabNotReadyError(`${pending.map((q) => q.name).join(', ')} not ready after ${timeoutMs} ms${why}; the end of ${p.log}:\n${await logTail(p)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A GET with an explicit Host header (fetch() always sends the URL's); resolves with status, headers and body. */
export function httpGet(url: string, hostHeader: string, timeoutMs = 1500): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host: hostHeader }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** GETs `/` of web through the ingress from this (the host's) namespace; resolves with the answering pod or undefined. */
export async function ingressAnswer(plan: LabPlan, timeoutMs = 1500): Promise<string | undefined> {
  try {
    const res = await httpGet(`http://${ingressNode(plan).ip}/`, labCluster.ingressHost, timeoutMs);
    return res.status === 200 ? String(res.headers['x-pod'] ?? res.body.trim()) : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to a recorded process and waits until it is gone (SIGKILL after `timeoutMs`). */
export async function stopProcess(p: LabProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  if (!isRecordedProcess(p)) return;
  process.kill(p.pid, signal);
  const deadline = performance.now() + timeoutMs;
  while (pidAlive(p.pid)) {
    if (performance.now() > deadline) {
      process.kill(p.pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  while (pidAlive(p.pid)) await new Promise((r) => setTimeout(r, 20));
}

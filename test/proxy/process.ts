// netplane proxy as users run it, for the kernel tests: the CLI in the node namespace of a lab (topology.ts),
// reading a manifest directory; one process at a time, with the JSON log records of the current one.
import type { ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { onLogLines, type LogRecord } from '../../lab/log-lines.ts';
import { waitFor } from '../helpers/wait.ts';
import type { ProxyTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

/** The flags of one start: the kernel mode, --cluster-cidr (default: both families' pod ranges) and flags added at the end. */
export interface ProxyFlags {
  mode: 'nftables' | 'iptables';
  clusterCIDR?: string;
  extra?: string[];
}

/** Runs `netplane proxy --manifests <dir> --node-name node1` in the node namespace of a topology, one process at a time. */
export class ProxyProcess {
  #logs: LogRecord[] = [];
  #t: ProxyTopology;
  #manifests: string;
  #child: ChildProcess | undefined;

  constructor(t: ProxyTopology, manifests: string) {
    this.#t = t;
    this.#manifests = manifests;
  }

  /** The running process; undefined before the first start and after stop(). */
  get child(): ChildProcess | undefined {
    return this.#child;
  }

  /** The log records of the process started last. */
  get logs(): readonly LogRecord[] {
    return this.#logs;
  }

  /** How many times the process started last logged "rules synced". */
  syncs(): number {
    return this.logs.filter((l) => l.msg === 'rules synced').length;
  }

  /** Starts the proxy and waits up to 15 s for `ready` (default: its first sync); fails if the process exits first. */
  async start(flags: ProxyFlags, ready: () => boolean = () => this.syncs() > 0, waitingFor = 'the first sync'): Promise<void> {
    const logs: LogRecord[] = [];
    this.#logs = logs;
    const p = this.#t.lab.spawn(this.#t.node, process.execPath, [bin, 'proxy', '--manifests', this.#manifests, '--node-name', 'node1', '--mode', flags.mode,
      '--cluster-cidr', flags.clusterCIDR ?? '10.244.0.0/16,fd00:244::/32', '--admin', '127.0.0.1:0', '--min-sync-period', '50ms', ...(flags.extra ?? [])]);
    onLogLines(p.stdout!, (r) => logs.push(r));
    this.#child = p;
    await waitFor(waitingFor, () => ready() || p.exitCode !== null, 15_000);
    expect(p.exitCode).toBeNull();
  }

  /** Stops the running process with SIGTERM and waits for it to exit (its rules stay); nothing when none runs. */
  async stop(): Promise<void> {
    const p = this.#child;
    this.#child = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  /** Kills the running process, if any, with SIGKILL (for afterAll). */
  kill(): void {
    this.#child?.kill('SIGKILL');
  }
}

/** After a suite: its proxy killed, its namespaces deleted, its manifests directory removed (each only if made). */
export async function releaseSuite(proxy: ProxyProcess | undefined, lab: { destroy(): Promise<void> } | undefined, dir: string | undefined): Promise<void> {
  proxy?.kill();
  await lab?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
}

// CoreDNS's reload plugin for netplane dns: with `reload` in the Corefile (--reload), the Corefile and the files it
// imports are read again every INTERVAL (± half the JITTER), and when what they say changed it is applied without a
// restart: the queries are served from then on by a pipeline built from the new settings, on the same listeners. A
// Corefile that cannot be used is logged with its line and counted (coredns_reload_failed_total); what runs stays.
// Settings bound to the process (its addresses, the cluster zone and the cluster it reads) are logged as waiting
// for a restart and keep their running values.
import { parseDuration } from '../runtime/flags.ts';
import { changedFlags, type ReloadEvery } from '../runtime/reloader.ts';

const minIntervalMs = 2000;
const minJitterMs = 1000;

/**
 * `off`, or `INTERVAL[,JITTER]` as CoreDNS's reload takes them: INTERVAL at least 2s (default 30s), JITTER at least 1s
 * (default 15s) and at most half the INTERVAL (cut to that, as CoreDNS does).
 */
export function parseReload(raw: string): ReloadEvery | false {
  if (raw === 'off') return false;
  const parts = raw.split(',');
  if (parts.length > 2) throw new Error('must be off or INTERVAL[,JITTER], e.g. 30s,15s');
  const intervalMs = parseDuration(parts[0]!);
  if (intervalMs < minIntervalMs) throw new Error('must have an INTERVAL of at least 2s');
  const jitterMs = parts[1] === undefined ? 15_000 : parseDuration(parts[1]);
  if (jitterMs < minJitterMs) throw new Error('must have a JITTER of at least 1s');
  return { intervalMs, jitterMs: Math.min(jitterMs, intervalMs / 2) };
}

/**
 * Flags a reload does not change: the process's own addresses, the cluster it reads and the kinds it watches, the
 * zone and naming the record index is built on. Pod records only need a restart to start or stop reading Pods.
 */
const boundToProcess = ['listen', 'reuse-port', 'health', 'ready', 'admin', 'manifests', 'kubeconfig', 'node-name', 'log-level', 'zone', 'forward-only', 'endpoint-pod-names', 'namespaces', 'conf', 'local-interface', 'local-ip', 'notrack', 'keep-local-setup'];

/** What a reload applies: the flags to run with, which of them changed, and which changes wait for a restart. */
export interface ReloadPlan {
  flags: Record<string, unknown>;
  changed: string[];
  waiting: string[];
}

/** Compares the running flags with the ones read again (pure). */
export function planReload(running: Record<string, unknown>, next: Record<string, unknown>): ReloadPlan {
  const flags = { ...next };
  const changed: string[] = [];
  const waiting: string[] = [];
  for (const key of changedFlags(running, next)) {
    const podsWatch = key === 'pods' && (running[key] === 'verified' || next[key] === 'verified');
    if (boundToProcess.includes(key) || podsWatch) {
      waiting.push(key);
      flags[key] = running[key];
    } else changed.push(key);
  }
  return { flags, changed, waiting };
}

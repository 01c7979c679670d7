// The interface every proxy backend implements. Event handling, planning, rate limiting, metrics and retries
// live once, in shared code (sync.ts); a backend only turns a plan into kernel state (or sockets).
import type { ProxyPlan } from './plan/types.ts';

/** What one sync did, for metrics and logs. */
export interface SyncResult {
  /** Rules (or listeners, for userspace) the backend has programmed after this sync. */
  rules: number;
  /** Map or set elements programmed after this sync (nftables), or endpoints (userspace). */
  elements: number;
  /** Lines or operations sent to the kernel in this sync (0 when nothing changed). */
  operations: number;
  /**
   * nftables: how the changes went to the kernel: `nft`, `netlink` (set elements only, one batch), or
   * `nft+netlink` (a table made from nothing: its objects by nft, its elements by netlink); absent when nothing
   * was sent.
   */
  via?: 'nft' | 'netlink' | 'nft+netlink';
  /** iptables: the rules in netplane's chains per table, both families together (kube-proxy's iptables_total). */
  rulesByTable?: Record<'nat' | 'filter', number>;
}

/** A proxy backend: nftables, iptables or userspace. */
export interface ProxyBackend {
  readonly mode: 'nftables' | 'iptables' | 'userspace';
  /** iptables: partial restores refused so far (each replaced at once by a full one inside the same sync). */
  readonly partialRestoreFailures?: number;
  /**
   * Makes the host match `plan`. With `full`, it first reads back what is programmed (start-up, or after a failed
   * sync) and reconciles; otherwise it may apply only the difference from the last successful sync. Never flushes
   * what works before the new state is in place. Rejects when the kernel refuses; the previous state then stays.
   */
  sync(plan: ProxyPlan, options: { full: boolean }): Promise<SyncResult>;
  /**
   * Optional canary, run by the sync loop once per sync period (never on change-driven syncs): checks cheaply that
   * the kernel still holds what the last sync applied. Returns one sentence naming what was removed or altered
   * (the loop then runs a full sync, which reconciles), or undefined when it matches. Rejects when it cannot read.
   */
  verify?(): Promise<string | undefined>;
  /**
   * Whether the kernel holds rules this backend programmed in an earlier run (its table or chains exist), read
   * before the first sync. Absent: never (userspace state ends with the process).
   */
  inherited?(): Promise<boolean>;
  /** Removes everything this backend made, and nothing else. */
  cleanup(): Promise<void>;
  /** Releases sockets or handles; the programmed state stays (a restart must not cut traffic). */
  close(): Promise<void>;
}

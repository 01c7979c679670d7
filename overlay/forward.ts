// Forwarding of pod traffic on hosts whose firewall drops forwarded packets (Docker sets the iptables FORWARD
// policy to DROP): Flannel's FLANNEL-FWD, as netplane's chain NETPLANE-OVERLAY-FWD — accept what comes from or goes
// to the cluster's pod networks — jumped to from the end of FORWARD (after DOCKER-USER and the host's own rules,
// as Flannel appends its jump), in the filter table of each iptables variant (nft, legacy) whose FORWARD could drop.
// It has to be iptables: an accept in netplane's own nftables table ends only that table's chain, and the packet
// still meets the policy of `ip filter FORWARD` (test/overlay/firewall.test.ts shows both). Each change is one
// `iptables-restore --noflush` per variant and family, through the injected CommandRunner.
import { isIPv6 } from 'node:net';
import { iptablesCommands, restoreArgs } from '../proxy/iptables/backend.ts';
import { normalizeCIDRs } from '../proxy/nftables/model.ts';
import { CommandError, type CommandRunner } from '../runtime/exec.ts';
import type { Logger } from '../runtime/logger.ts';

/** netplane's chain in the filter table (Flannel's is FLANNEL-FWD). */
export const forwardChain = 'NETPLANE-OVERLAY-FWD';

/** The comment on every rule netplane adds: how its rules are told from everyone else's. */
export const forwardComment = 'netplane overlay: forward pod traffic';

/** The iptables variants a host may use; a packet must pass the FORWARD chains of both. */
export type ForwardVariant = 'nft' | 'legacy';

const variants: readonly ForwardVariant[] = ['nft', 'legacy'];
const families = [4, 6] as const;
const jumpRule = `-A FORWARD -m comment --comment "${forwardComment}" -j ${forwardChain}`;

/** What iptables-save says about FORWARD and netplane's chain in one variant's filter table. */
export interface ForwardState {
  /** FORWARD's policy ('ACCEPT', 'DROP'), undefined when the save has no filter table. */
  policy?: string;
  /** Rules in FORWARD other than netplane's jump. */
  others: number;
  /** How many jumps to netplane's chain FORWARD holds. */
  jumps: number;
  /** netplane's chain's rules as saved (`-A NETPLANE-OVERLAY-FWD ...`); undefined when the chain does not exist. */
  chain?: string[];
}

/** Reads the filter table out of `iptables-save` output (either variant; other tables are skipped). */
export function parseFilter(save: string): ForwardState {
  const state: ForwardState = { others: 0, jumps: 0 };
  let inFilter = false;
  for (const raw of save.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) inFilter = line === '*filter';
    if (!inFilter) continue;
    const policy = /^:FORWARD (\S+)/.exec(line);
    if (policy) state.policy = policy[1];
    else if (line.startsWith(`:${forwardChain} `)) state.chain ??= [];
    else if (line === jumpRule) state.jumps++;
    else if (line.startsWith('-A FORWARD ')) state.others++;
    else if (line.startsWith(`-A ${forwardChain} `)) (state.chain ??= []).push(line);
  }
  return state;
}

/**
 * Whether a variant's FORWARD could drop pod traffic, so that it gets the accept rules: its policy is not ACCEPT,
 * or it holds rules of others (a DOCKER-USER jump, a REJECT). Where netplane's chain is already, it is kept.
 */
export function needsForward(state: ForwardState): boolean {
  if (state.policy === undefined) return false;
  return state.policy !== 'ACCEPT' || state.others > 0 || state.jumps > 0 || state.chain !== undefined;
}

/** netplane's chain's rules for `cidrs` (one family), as iptables-save prints them: accept from, accept to, per CIDR. */
export function forwardRules(cidrs: readonly string[]): string[] {
  return cidrs.flatMap((c) => ['-s', '-d'].map((dir) => `-A ${forwardChain} ${dir} ${c} -m comment --comment "${forwardComment}" -j ACCEPT`));
}

/**
 * The `iptables-restore --noflush` input that makes FORWARD end in exactly one jump to netplane's chain and the
 * chain hold `forwardRules(cidrs)` — or, with no CIDRs, removes the jumps and the chain — or '' when the state is
 * that already.
 */
export function renderForward(state: ForwardState, cidrs: readonly string[]): string {
  const want = forwardRules(cidrs);
  const lines = ['*filter'];
  if (want.length === 0) {
    if (state.jumps === 0 && state.chain === undefined) return '';
    for (let i = 0; i < state.jumps; i++) lines.push(jumpRule.replace('-A ', '-D '));
    if (state.chain !== undefined) lines.push(`:${forwardChain} - [0:0]`, `-X ${forwardChain}`);
  } else {
    if (state.jumps === 1 && JSON.stringify(state.chain) === JSON.stringify(want)) return '';
    // Declaring the chain flushes it (and creates it when missing); the rules follow in the same transaction.
    lines.push(`:${forwardChain} - [0:0]`, ...want);
    if (state.jumps === 0) lines.push(jumpRule);
    for (let i = 1; i < state.jumps; i++) lines.push(jumpRule.replace('-A ', '-D '));
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** Keeps netplane's forward-accept chain in step with the cluster CIDRs in every iptables variant that needs it. */
export class ForwardAccept {
  #runner: CommandRunner;
  #log: Logger | undefined;
  #applied: string | undefined;
  /** `variant/family` where the rules are, to log only changes. */
  #installed = new Set<string>();

  constructor(runner: CommandRunner, log?: Logger) {
    this.#runner = runner;
    this.#log = log;
  }

  /**
   * Reads both variants' filter tables and changes what differs, when the CIDRs differ from the last ones applied
   * or always with `force` (a full resync: a firewall that came up later, a chain someone flushed). Returns whether
   * iptables changed anything. Rejects with CommandError; a variant whose tools are not installed is skipped.
   */
  async sync(clusterCIDRs: readonly string[], force = false): Promise<boolean> {
    const cidrs = normalizeCIDRs(clusterCIDRs);
    const key = cidrs.join(',');
    if (!force && key === this.#applied) return false;
    this.#applied = undefined;
    let changed = false;
    for (const family of families) {
      const mine = cidrs.filter((c) => isIPv6(c.split('/')[0]!) === (family === 6));
      for (const variant of variants) {
        const state = await this.#read(family, variant);
        if (!state || !needsForward(state)) continue;
        const script = renderForward(state, mine);
        if (script === '') continue;
        await this.#runner.run(iptablesCommands(family, variant).restore, restoreArgs, script);
        changed = true;
        this.#note(family, variant, state, mine.length > 0);
      }
    }
    this.#applied = key;
    return changed;
  }

  /** Removes the jump and the chain from both variants and families; absent ones are fine. Resolves with how many tables held them; rejects with CommandError. */
  async cleanup(): Promise<number> {
    let removed = 0;
    for (const family of families) {
      for (const variant of variants) {
        const state = await this.#read(family, variant);
        const script = state ? renderForward(state, []) : '';
        if (script === '') continue;
        await this.#runner.run(iptablesCommands(family, variant).restore, restoreArgs, script);
        removed++;
      }
    }
    this.#applied = undefined;
    this.#installed.clear();
    return removed;
  }

  /** The variant's filter table, or undefined when that variant is not installed or has no filter table. */
  async #read(family: 4 | 6, variant: ForwardVariant): Promise<ForwardState | undefined> {
    const save = await iptablesSave(this.#runner, family, variant);
    return save === undefined ? undefined : parseFilter(save);
  }

  #note(family: 4 | 6, variant: ForwardVariant, state: ForwardState, installed: boolean): void {
    const where = `${variant}/${family}`;
    if (installed === this.#installed.has(where)) return;
    if (installed) this.#installed.add(where);
    else this.#installed.delete(where);
    const command = `${family === 6 ? 'ip6tables' : 'iptables'}-${variant}`;
    if (installed) {
      this.#log?.info({ command, policy: state.policy, others: state.others, chain: forwardChain }, `${command} FORWARD may drop forwarded packets: pod traffic is accepted there through ${forwardChain}, as Flannel's FLANNEL-FWD`);
    } else this.#log?.info({ command, chain: forwardChain }, `removed ${forwardChain} from ${command}: no pod network of this family`);
  }
}

/**
 * What `iptables-save` of one variant and family prints, or undefined when that variant is not installed (or legacy
 * has no tables): then nothing there can drop. Rejects with CommandError for any other failure.
 */
export async function iptablesSave(runner: CommandRunner, family: 4 | 6, variant: ForwardVariant): Promise<string | undefined> {
  try {
    // Every table at once, never `-t filter`: legacy's `-t` makes the table where there was none (its hooks
    // registered), and on a host that uses iptables-nft every iptables command then warns "legacy tables present".
    return (await runner.run(iptablesCommands(family, variant).save, [])).stdout;
  } catch (e) {
    // Not installed (the command did not start), or legacy without its kernel module: nothing there can drop. Any
    // other failure to open the table stops the sync: without CAP_NET_RAW legacy says "Permission denied" (the save
    // "Cannot initialize: ...", iptables itself "can't initialize iptables table `filter': ..."), and then a drop
    // there is still in place, unseen.
    if (e instanceof CommandError && (e.exitCode === null || /Table does not exist/i.test(e.stderr))) return undefined;
    throw e;
  }
}

// The ACCEPT rules node-cache adds beside its NOTRACK ones: DNS kept out of conntrack is UNTRACKED, and a host
// firewall that accepts only ESTABLISHED traffic before dropping the rest (an INPUT or OUTPUT policy of DROP) drops
// it. As netplane's chain NETPLANE-DNS-LOCAL — accept DNS to and from the node-local addresses (and the health port)
// — jumped to from the top of INPUT and OUTPUT (node-cache prepends its rules too: a host's catch-all drop is last),
// in the filter table of each iptables variant (nft, legacy) whose INPUT or OUTPUT could drop. It has to be iptables:
// an accept in netplane's own nftables table ends only that table's chain (overlay/forward.ts says the same of
// FORWARD). Each change is one `iptables-restore --noflush` per variant and family.
import { isIPv6 } from 'node:net';
import { iptablesSave, type ForwardVariant } from '../../overlay/forward.ts';
import { iptablesCommands, restoreArgs } from '../../proxy/iptables/backend.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import type { NotrackSpec } from './notrack.ts';

/** netplane's chain in the filter table. */
export const acceptChain = 'NETPLANE-DNS-LOCAL';
const comment = 'netplane dns: node-local DNS';
const hooks = ['INPUT', 'OUTPUT'] as const;
const variants: readonly ForwardVariant[] = ['nft', 'legacy'];
const jump = (hook: string) => `-A ${hook} -m comment --comment "${comment}" -j ${acceptChain}`;

/** What iptables-save says of INPUT, OUTPUT and netplane's chain in one variant's filter table. */
export interface AcceptState {
  /** The hooks' policies; none when the save has no filter table. */
  policies: Partial<Record<(typeof hooks)[number], string>>;
  /** Rules of others in INPUT and OUTPUT. */
  others: number;
  /** netplane's jumps in each hook. */
  jumps: Record<(typeof hooks)[number], number>;
  /** Whether netplane's chain exists. */
  chain: boolean;
}

/** Reads the filter table out of iptables-save output (other tables are skipped). Pure. */
export function parseAccept(save: string): AcceptState {
  const state: AcceptState = { policies: {}, others: 0, jumps: { INPUT: 0, OUTPUT: 0 }, chain: false };
  let inFilter = false;
  for (const raw of save.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) inFilter = line === '*filter';
    if (!inFilter) continue;
    const policy = /^:(INPUT|OUTPUT) (\S+)/.exec(line);
    if (policy) state.policies[policy[1] as 'INPUT' | 'OUTPUT'] = policy[2];
    else if (line.startsWith(`:${acceptChain} `)) state.chain = true;
    else {
      const hook = hooks.find((h) => line === jump(h));
      if (hook) state.jumps[hook]++;
      else if (/^-A (INPUT|OUTPUT) /.test(line)) state.others++;
    }
  }
  return state;
}

/** Whether a variant's INPUT or OUTPUT could drop the untracked DNS: a policy other than ACCEPT, or rules of others. Where netplane's chain is already, it is kept. */
export function needsAccept(state: AcceptState): boolean {
  if (Object.keys(state.policies).length === 0) return false;
  return Object.values(state.policies).some((p) => p !== 'ACCEPT') || state.others > 0 || state.chain;
}

/** The chain's rules for one family: DNS to and from each address, over UDP and TCP, and the health port over TCP. */
export function acceptRules(spec: NotrackSpec, family: 4 | 6): string[] {
  const ips = [...new Set(spec.ips.filter((ip) => isIPv6(ip) === (family === 6)))].sort();
  const ports = [...new Set(spec.dnsPorts)].sort((a, b) => a - b);
  const tcp = [...new Set(spec.tcpPorts ?? [])].sort((a, b) => a - b);
  const rule = (dir: '-d' | '-s', ip: string, proto: string, port: number) => `-A ${acceptChain} ${dir} ${ip} -p ${proto} -m ${proto} --${dir === '-d' ? 'dport' : 'sport'} ${port} -m comment --comment "${comment}" -j ACCEPT`;
  return ips.flatMap((ip) => [
    ...ports.flatMap((port) => (['udp', 'tcp'] as const).flatMap((proto) => [rule('-d', ip, proto, port), rule('-s', ip, proto, port)])),
    ...tcp.flatMap((port) => [rule('-d', ip, 'tcp', port), rule('-s', ip, 'tcp', port)]),
  ]);
}

/**
 * The `iptables-restore --noflush` input that makes the chain hold `rules` and INPUT and OUTPUT each begin with one
 * jump to it — or, with no rules, removes the jumps and the chain; '' when there is nothing to remove.
 */
export function renderAccept(state: AcceptState, rules: readonly string[]): string {
  const lines = ['*filter'];
  if (rules.length === 0) {
    if (!state.chain && state.jumps.INPUT === 0 && state.jumps.OUTPUT === 0) return '';
    for (const h of hooks) for (let i = 0; i < state.jumps[h]; i++) lines.push(jump(h).replace('-A ', '-D '));
    if (state.chain) lines.push(`:${acceptChain} - [0:0]`, `-X ${acceptChain}`);
  } else {
    // Declaring the chain flushes it (and makes it when missing); its rules follow in the same transaction.
    lines.push(`:${acceptChain} - [0:0]`, ...rules);
    for (const h of hooks) {
      if (state.jumps[h] === 0) lines.push(jump(h).replace(`-A ${h} `, `-I ${h} 1 `));
      for (let i = 1; i < state.jumps[h]; i++) lines.push(jump(h).replace('-A ', '-D '));
    }
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** Puts the chain in (or, with `spec` undefined, takes it out of) every variant and family that needs it. Rejects with CommandError. Resolves with the tables changed. */
export async function syncAccept(runner: CommandRunner, spec: NotrackSpec | undefined): Promise<string[]> {
  const changed: string[] = [];
  for (const family of [4, 6] as const) {
    for (const variant of variants) {
      const save = await iptablesSave(runner, family, variant);
      if (save === undefined) continue;
      const state = parseAccept(save);
      const rules = spec === undefined ? [] : acceptRules(spec, family);
      if (rules.length > 0 && !needsAccept(state)) continue;
      const script = renderAccept(state, rules);
      if (script === '') continue;
      await runner.run(iptablesCommands(family, variant).restore, restoreArgs, script);
      changed.push(`${family === 6 ? 'ip6tables' : 'iptables'}-${variant}`);
    }
  }
  return changed;
}

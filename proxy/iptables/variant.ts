// Which iptables variant the host uses, for --iptables-variant auto. Both variants hook the same packets, but a
// rule in one does not see the other's: an accept in iptables-nft does not get a packet past iptables-legacy's DROP
// policy. kube-proxy's images decide with kubernetes-sigs/iptables-wrappers: kubelet's chains (KUBE-IPTABLES-HINT or
// KUBE-KUBELET-CANARY in the mangle table) in iptables-nft mean nft, in iptables-legacy legacy, and nft otherwise.
// netplane asks the same first; without kubelet's chains (netplane on a host without kubelet, a kubelet that makes
// none) it goes by which variant the host's own rules are in: other software's rules and built-in chains whose
// policy is not ACCEPT (Docker's FORWARD DROP), netplane's own chains left out.
import type { CommandRunner } from '../../runtime/exec.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { VariantChoice } from '../backends.ts';
import { IptablesBackend, iptablesCommands, type IptablesVariant } from './backend.ts';

/** What was read of one variant: its saved tables of both families, as text; undefined when it cannot be run. */
export interface VariantFacts {
  /** `iptables-nft-save` and `ip6tables-nft-save`, every table (kubelet's mangle chains included), joined. */
  nft?: string;
  /** `iptables-legacy-save` and its IPv6 twin, every table (never `-t mangle`, which would make the table), joined. */
  legacy?: string;
}

/** The variant chosen and one sentence saying why. */
export interface VariantChoiceResult {
  variant: Exclude<IptablesVariant, 'default'>;
  why: string;
}

const kubeletChains = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) /m;

/**
 * How much a variant is in use by the host: the rules of others (not netplane's `NETPLANE-` chains, not jumps to
 * them) and built-in chains with a policy other than ACCEPT.
 */
export function hostUse(save: string | undefined): number {
  if (save === undefined) return 0;
  let n = 0;
  for (const line of save.split('\n')) {
    if (line.startsWith('-A ')) {
      if (!/NETPLANE-/.test(line)) n++;
    } else if (/^:[A-Z]+ (DROP|REJECT) /.test(line)) n++;
  }
  return n;
}

/** Picks the variant (pure): kubelet's chains first, as iptables-wrappers does, then the host's own use; nft by default. */
export function pickVariant(f: VariantFacts): VariantChoiceResult {
  if (f.nft !== undefined && kubeletChains.test(f.nft)) return { variant: 'nft', why: "kubelet's chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) are in iptables-nft" };
  if (f.legacy !== undefined && kubeletChains.test(f.legacy)) return { variant: 'legacy', why: "kubelet's chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) are in iptables-legacy" };
  const legacy = hostUse(f.legacy);
  const nft = hostUse(f.nft);
  if (legacy > nft) return { variant: 'legacy', why: `no kubelet chains; the host's rules and DROP policies are in iptables-legacy (${legacy} against ${nft} in iptables-nft)` };
  if (f.nft === undefined && f.legacy !== undefined) return { variant: 'legacy', why: 'iptables-nft cannot be run here' };
  return { variant: 'nft', why: nft > 0 ? `no kubelet chains; the host's rules are in iptables-nft (${nft} against ${legacy} in iptables-legacy)` : 'no kubelet chains and no rules of the host in either variant: nft, as iptables-wrappers defaults' };
}

/** The saved text of `args` in both families of a variant; undefined when that variant's commands cannot be run. */
async function saveBoth(runner: CommandRunner, variant: 'nft' | 'legacy', args: string[]): Promise<string | undefined> {
  const out: string[] = [];
  let ran = false;
  for (const family of [4, 6] as const) {
    try {
      out.push((await runner.run(iptablesCommands(family, variant).save, args)).stdout);
      ran = true;
    } catch {
      // This family of this variant is not here (no ip6tables, no kernel module): it holds nothing.
    }
  }
  return ran ? out.join('\n') : undefined;
}

/** Reads what pickVariant needs through `runner`; a variant whose commands fail is absent. */
export async function readVariantFacts(runner: CommandRunner): Promise<VariantFacts> {
  // Whole tables, read once: kubelet's chains are looked for in them, and the host's own rules counted.
  const nft = await saveBoth(runner, 'nft', []);
  const legacy = await saveBoth(runner, 'legacy', []);
  return { ...(nft !== undefined ? { nft } : {}), ...(legacy !== undefined ? { legacy } : {}) };
}

/**
 * The variant to program: the one asked for, or with `auto` the one the host uses. When neither `iptables-nft` nor
 * `iptables-legacy` can be run (a host with only `iptables`), `default`, the host's own `iptables`.
 */
export async function resolveVariant(choice: VariantChoice, runner: CommandRunner): Promise<{ variant: IptablesVariant; why: string }> {
  if (choice !== 'auto') return { variant: choice, why: `--iptables-variant ${choice}` };
  const facts = await readVariantFacts(runner);
  if (facts.nft === undefined && facts.legacy === undefined) return { variant: 'default', why: 'neither iptables-nft nor iptables-legacy can be run: the host\'s iptables' };
  return pickVariant(facts);
}

/** The variants whose commands can be run here (for a clean-up of both); `default` when neither can. */
export async function installedVariants(runner: CommandRunner): Promise<IptablesVariant[]> {
  const found: IptablesVariant[] = [];
  for (const variant of ['nft', 'legacy'] as const) {
    const ok = await runner.run(iptablesCommands(4, variant).save, ['--version']).then(() => true, () => false);
    if (ok) found.push(variant);
  }
  return found.length > 0 ? found : ['default'];
}

/**
 * The installed variants other than `chosen` whose nat tables hold netplane's chains: what a run with another variant
 * left, which cleanOtherVariants removes after the first sync (none when `chosen` is `default`, as it removes none).
 * A variant that cannot be read holds none. Never rejects.
 */
export async function otherVariantsWithRules(chosen: IptablesVariant, runner: CommandRunner, log: Logger): Promise<IptablesVariant[]> {
  if (chosen === 'default') return [];
  const found: IptablesVariant[] = [];
  for (const variant of await installedVariants(runner)) {
    if (variant === chosen || variant === 'default') continue;
    if (await new IptablesBackend(runner, { log, variant }).inherited().catch(() => false)) found.push(variant);
  }
  return found;
}

/**
 * Removes netplane's chains and jumps from every installed variant but `chosen` (what a run with another variant
 * left): both variants' nat tables see every packet and the first DNAT wins, so such rules would keep deleted
 * Services reachable and send traffic to endpoints that are gone. Call it once `chosen`'s rules are in place.
 * Never rejects: a variant that cannot be cleaned is logged (warn) and named in the result.
 */
export async function cleanOtherVariants(chosen: IptablesVariant, runner: CommandRunner, log: Logger): Promise<{ cleaned: IptablesVariant[]; failed: IptablesVariant[] }> {
  const out = { cleaned: [] as IptablesVariant[], failed: [] as IptablesVariant[] };
  // `default` is one of the two, which one unknown: nothing is known to be "other".
  if (chosen === 'default') return out;
  for (const variant of await installedVariants(runner)) {
    if (variant === chosen || variant === 'default') continue;
    try {
      await new IptablesBackend(runner, { log, variant }).cleanup();
      out.cleaned.push(variant);
    } catch (e) {
      out.failed.push(variant);
      log.warn({ variant, err: (e as Error).message }, `could not remove netplane's rules from iptables-${variant}; they may keep removed Services reachable`);
    }
  }
  return out;
}

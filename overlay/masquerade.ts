// Masquerading of pod traffic that leaves the cluster: nftables tables `ip netplane-overlay` and
// `ip6 netplane-overlay`, each replaced whole in one `nft -f -` transaction, so a reader never sees half a table.
// Pod-to-pod traffic (source and destination both in the pod networks) keeps its addresses, and so does anything
// headed to this node's own pods. Traffic from outside the pod networks (this host, or a client this node routes)
// headed to another node's pods is masqueraded, as Flannel's "masquerade anything headed towards flannel from the
// host" rule does: the other node then answers through the overlay, back to this node, instead of straight to the
// source, a way back this node's conntrack never sees (its firewall drops the rest of such a flow as INVALID, and a
// strict rp_filter drops the answer).
// The table of each underlay family also keeps the VXLAN packets themselves (this node's underlay address, the VXLAN port) out of
// conntrack: they are never NATed, and tracking them costs an entry per inner flow (the source port is a hash of
// the inner flow) and per-packet work on top of the inner packets' own tracking. A host firewall must then accept
// the VXLAN port without matching `ct state`.
import { isIPv6 } from 'node:net';
import type { CommandRunner } from '../runtime/exec.ts';
import { normalizeCIDRs } from '../proxy/nftables/model.ts';
import { deleteTables } from '../proxy/nftables/kernel.ts';

/** The name of the overlay's nftables tables (one per family). */
export const masqueradeTable = 'netplane-overlay';

/** Multicast destinations are never masqueraded (Flannel leaves them alone too). */
const multicast = { 4: '224.0.0.0/4', 6: 'ff00::/8' } as const;

/** A VXLAN endpoint of this node (one per device), whose packets are not tracked. */
export interface VxlanEndpoint {
  /** The device's underlay address (IPv4, or IPv6 for an IPv6 underlay or the second device). */
  local: string;
  port: number;
}

/** What the masquerade tables need of this node besides the cluster CIDRs. */
export interface MasqueradeHost {
  /** The VXLAN endpoints (one per device), whose packets are not tracked. */
  vxlan?: readonly VxlanEndpoint[];
  /** This node's own podCIDRs: traffic to them keeps its source, wherever it comes from. */
  podCIDRs?: readonly string[];
}

/**
 * The nft script that makes both tables hold exactly the rules for `clusterCIDRs` (a family without CIDRs gets no
 * table), this node's podCIDRs and its VXLAN endpoints. Each table is declared, deleted and declared again, which nft
 * accepts whether or not it existed.
 */
export function renderMasquerade(clusterCIDRs: readonly string[], here: MasqueradeHost = {}): string {
  const cidrs = normalizeCIDRs(clusterCIDRs);
  const vxlan = here.vxlan ?? [];
  const ownCIDRs = normalizeCIDRs(here.podCIDRs ?? []);
  const lines: string[] = [];
  for (const family of [4, 6] as const) {
    const nftFamily = family === 4 ? 'ip' : 'ip6';
    const ofFamily = (c: string) => isIPv6(c.split('/')[0]!) === (family === 6);
    const mine = cidrs.filter(ofFamily);
    const own = ownCIDRs.filter(ofFamily);
    lines.push(`table ${nftFamily} ${masqueradeTable}`, `delete table ${nftFamily} ${masqueradeTable}`);
    // The VXLAN packets are kept out of conntrack in the table of their underlay's family.
    const notrack = vxlan.filter((v) => isIPv6(v.local) === (family === 6));
    if (mine.length === 0 && notrack.length === 0) continue;
    const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    const ip = family === 4 ? 'ip' : 'ip6';
    lines.push(`table ${nftFamily} ${masqueradeTable} {`, `  comment "netplane overlay: masquerade pod traffic leaving the cluster"`);
    if (mine.length > 0) {
      lines.push(
        `  set cluster {`,
        `    type ${type}; flags interval;`,
        `    elements = { ${mine.join(', ')} }`,
        `  }`,
        `  chain postrouting {`,
        `    type nat hook postrouting priority srcnat; policy accept;`,
        // Flannel's rules in its order: to this node's pods, pod to pod, from elsewhere to the other nodes' pods
        // (masqueraded to the overlay device's address, so the answer comes back through this node), out of the
        // cluster but multicast.
        ...(own.length > 0 ? [`    ${ip} daddr ${own.length === 1 ? own[0] : `{ ${own.join(', ')} }`} return`] : []),
        `    ${ip} saddr @cluster ${ip} daddr @cluster return`,
        `    ${ip} daddr @cluster masquerade fully-random`,
        `    ${ip} saddr != @cluster return`,
        `    ${ip} daddr ${multicast[family]} return`,
        `    masquerade fully-random`,
        `  }`,
      );
    }
    if (notrack.length > 0) {
      lines.push(`  chain vxlan-in {`, `    type filter hook prerouting priority raw; policy accept;`);
      for (const v of notrack) lines.push(`    ${ip} daddr ${v.local} udp dport ${v.port} notrack`);
      lines.push(`  }`, `  chain vxlan-out {`, `    type filter hook output priority raw; policy accept;`);
      for (const v of notrack) lines.push(`    ${ip} saddr ${v.local} udp dport ${v.port} notrack`);
      lines.push(`  }`);
    }
    lines.push(`}`);
  }
  return lines.join('\n') + '\n';
}

/** Keeps the masquerade tables in the kernel equal to the last CIDRs given. */
export class Masquerade {
  #runner: CommandRunner;
  #applied: string | undefined;

  constructor(runner: CommandRunner) {
    this.#runner = runner;
  }

  /**
   * Replaces the tables when the rules differ from the last ones applied, or always with `force` (a full resync,
   * which also repairs a table someone removed). Returns whether nft ran. Rejects with CommandError.
   */
  async sync(clusterCIDRs: readonly string[], here: MasqueradeHost = {}, force = false): Promise<boolean> {
    const script = renderMasquerade(clusterCIDRs, here);
    if (!force && script === this.#applied) return false;
    this.#applied = undefined;
    await this.#runner.run('nft', ['-f', '-'], script);
    this.#applied = script;
    return true;
  }

  /** Deletes both tables; absent ones are fine. Rejects with CommandError when nft fails otherwise. */
  async cleanup(): Promise<void> {
    await deleteTables(this.#runner, masqueradeTable);
    this.#applied = undefined;
  }
}

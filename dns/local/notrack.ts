// DNS to and from a node-local server's addresses kept out of conntrack, as NodeLocal DNSCache's NOTRACK rules keep
// it: every pod's queries would otherwise each take a conntrack entry (UDP ones held 30 s and more), which fills the
// table on busy nodes and races on insert (the lost-query bug of DNS over UDP through conntrack). nftables tables
// `ip netplane-dns` and `ip6 netplane-dns`, raw-priority chains, each table replaced whole in one `nft -f -`
// transaction. node-cache's ACCEPT rules, for a host firewall that drops untracked packets, are in accept.ts.
import { isIPv6 } from 'node:net';
import type { CommandRunner } from '../../runtime/exec.ts';
import { deleteTables } from '../../proxy/nftables/kernel.ts';

/** The name of the tables (one per family). */
export const notrackTable = 'netplane-dns';

/** What is kept out of conntrack: traffic to and from these addresses on these ports. */
export interface NotrackSpec {
  ips: readonly string[];
  /** DNS ports, UDP and TCP. */
  dnsPorts: readonly number[];
  /** TCP ports of the health endpoint a liveness probe asks (node-cache's -health-port). */
  tcpPorts?: readonly number[];
}

/**
 * The nft script that makes both tables hold exactly the rules for `spec` (a family without addresses gets no
 * table). Pure. For each address: queries arriving and leaving (prerouting; output, for a host-network client on the
 * node) and answers leaving (output), as node-cache's raw-table rules.
 */
export function renderNotrack(spec: NotrackSpec): string {
  const lines: string[] = [];
  const dns = [...new Set(spec.dnsPorts)].sort((a, b) => a - b);
  const tcp = [...new Set(spec.tcpPorts ?? [])].sort((a, b) => a - b);
  const set = (ports: readonly number[]) => (ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`);
  for (const family of [4, 6] as const) {
    const nftFamily = family === 4 ? 'ip' : 'ip6';
    const ips = [...new Set(spec.ips.filter((ip) => isIPv6(ip) === (family === 6)))].sort();
    lines.push(`table ${nftFamily} ${notrackTable}`, `delete table ${nftFamily} ${notrackTable}`);
    if (ips.length === 0 || dns.length === 0) continue;
    const addr = ips.length === 1 ? ips[0]! : `{ ${ips.join(', ')} }`;
    lines.push(`table ${nftFamily} ${notrackTable} {`, `  comment "netplane dns: node-local DNS kept out of conntrack"`);
    lines.push(`  chain prerouting {`, `    type filter hook prerouting priority raw; policy accept;`);
    for (const proto of ['udp', 'tcp']) lines.push(`    ${nftFamily} daddr ${addr} ${proto} dport ${set(dns)} notrack`);
    lines.push(`  }`, `  chain output {`, `    type filter hook output priority raw; policy accept;`);
    for (const proto of ['udp', 'tcp']) {
      lines.push(`    ${nftFamily} saddr ${addr} ${proto} sport ${set(dns)} notrack`);
      lines.push(`    ${nftFamily} daddr ${addr} ${proto} dport ${set(dns)} notrack`);
    }
    if (tcp.length > 0) {
      lines.push(`    ${nftFamily} daddr ${addr} tcp dport ${set(tcp)} notrack`);
      lines.push(`    ${nftFamily} saddr ${addr} tcp sport ${set(tcp)} notrack`);
    }
    lines.push(`  }`, `}`);
  }
  return lines.join('\n') + '\n';
}

/** Replaces both tables with the rules of `spec`. Rejects with CommandError. */
export async function applyNotrack(runner: CommandRunner, spec: NotrackSpec): Promise<void> {
  await runner.run('nft', ['-f', '-'], renderNotrack(spec));
}

/** Deletes both tables; absent ones are fine. Rejects with CommandError when nft fails otherwise. */
export function removeNotrack(runner: CommandRunner): Promise<void> {
  return deleteTables(runner, notrackTable);
}

// Names of netplane's iptables chains and the jump rules that hook them into the built-in chains. Per-Service
// chains are named after a hash of the port key, as kube-proxy names KUBE-SVC-*, because iptables chain names are
// limited to 28 characters and Service names are not.
import { createHash } from 'node:crypto';

/** Every chain the proxy owns starts with this, but for the other components' (below); nothing else on the host may use it. */
const chainPrefix = 'NETPLANE-';

/**
 * Chains of other netplane components under the same prefix, which the proxy never deletes, empties or unhooks:
 * the overlay's forward-accept chain NETPLANE-OVERLAY-FWD (overlay/forward.ts), which a node running both keeps in
 * the same filter table.
 */
const otherComponents = 'NETPLANE-OVERLAY-';

/** Whether the chain `name` is the proxy's. */
export function isProxyChain(name: string): boolean {
  return name.startsWith(chainPrefix) && !name.startsWith(otherComponents);
}

/** The two iptables tables netplane programs. */
export type TableName = 'nat' | 'filter';
/** The tables in the order they are written to iptables-restore. */
export const tableNames: readonly TableName[] = ['nat', 'filter'];

/** The fixed chains, present in every sync (also with no Services) so that clean-up is uniform. */
export const base = {
  /** nat: entry from PREROUTING and OUTPUT; filter: entry from INPUT, FORWARD and OUTPUT for new connections. */
  services: 'NETPLANE-SERVICES',
  /** NodePort rules (both tables), jumped to for packets to the node-port addresses. */
  nodePorts: 'NETPLANE-NODEPORTS',
  /** nat: entry from POSTROUTING; masquerades marked packets. */
  postrouting: 'NETPLANE-POSTROUTING',
  /** nat: sets the masquerade mark. */
  markMasq: 'NETPLANE-MARK-MASQ',
  /** nat: sets the masquerade mark unless the packet is local traffic (plan.localTraffic, by default the pod network). */
  markNonPod: 'NETPLANE-MARK-NONPOD',
  /** filter: entry from FORWARD for every packet (kube-proxy's KUBE-FORWARD): Service traffic passes a DROP policy. */
  forward: 'NETPLANE-FORWARD',
  /** filter: entry from INPUT for every packet (kube-proxy's filter KUBE-NODEPORTS): health-check node ports. */
  healthChecks: 'NETPLANE-HEALTH-CHECKS',
} as const;

/** The fixed chains of each table, in the order they are written. */
export const baseChains: Record<TableName, readonly string[]> = {
  nat: [base.services, base.nodePorts, base.postrouting, base.markMasq, base.markNonPod],
  filter: [base.services, base.nodePorts, base.forward, base.healthChecks],
};

/** The packet mark that asks NETPLANE-POSTROUTING to masquerade (kube-proxy's 0x4000, so both never disagree). */
export const masqueradeMark = '0x4000';

/** A rule in a built-in chain that hooks one of netplane's chains: `-A <chain> <spec>` / `-I <chain> 1 <spec>`. */
export interface Jump {
  chain: string;
  spec: string;
}

const portals = '-m comment --comment "netplane service portals"';

/** The jump rules netplane keeps in the built-in chains, by table. */
export const jumps: Record<TableName, readonly Jump[]> = {
  nat: [
    { chain: 'PREROUTING', spec: `${portals} -j ${base.services}` },
    { chain: 'OUTPUT', spec: `${portals} -j ${base.services}` },
    { chain: 'POSTROUTING', spec: `-m comment --comment "netplane postrouting rules" -j ${base.postrouting}` },
  ],
  // NETPLANE-SERVICES sees only new connections: verdicts for Services without endpoints and the load-balancer
  // firewall are decided once. NETPLANE-FORWARD and NETPLANE-HEALTH-CHECKS see every packet, so that the rest of a
  // connection they accept passes a DROP policy too (Docker sets FORWARD to DROP). A first install inserts each jump
  // first in its chain in this order, so NETPLANE-SERVICES ends up before NETPLANE-FORWARD: no accept overrides its
  // drops. A jump deleted later is put back in that place, not first (render.ts jumpLines).
  filter: [
    { chain: 'INPUT', spec: `-m comment --comment "netplane health check service ports" -j ${base.healthChecks}` },
    { chain: 'INPUT', spec: `-m conntrack --ctstate NEW ${portals} -j ${base.services}` },
    { chain: 'FORWARD', spec: `-m comment --comment "netplane forwarding rules" -j ${base.forward}` },
    { chain: 'FORWARD', spec: `-m conntrack --ctstate NEW ${portals} -j ${base.services}` },
    { chain: 'OUTPUT', spec: `-m conntrack --ctstate NEW ${portals} -j ${base.services}` },
  ],
};

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 15 base32 characters (75 bits) of SHA-256: `NETPLANE-SVC-` (13) plus the hash is exactly 28 characters. */
export function hash(text: string): string {
  const bytes = createHash('sha256').update(text).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 15) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === 15) break;
  }
  return out;
}

/** The per-port chains of one PortPlan (by its `key`, which includes the family). */
export interface PortChains {
  /** Cluster endpoints: traffic to the cluster IPs, and external traffic that uses the cluster endpoints. */
  svc: string;
  /** External endpoints, when they differ from the cluster endpoints (a Local traffic policy). */
  svx: string;
  /** Short-cut endpoints (pods and the node to Local-policy external destinations), when they differ from the cluster endpoints. */
  sca: string;
  /** External destinations (external IPs, load-balancer IPs, NodePort): masquerade and policy. */
  ext: string;
  /** Load-balancer IPs with source ranges: sources in range go on to `ext`. */
  fw: string;
}

/** Chain names for one port key. */
export function portChains(key: string): PortChains {
  const h = hash(key);
  return { svc: `NETPLANE-SVC-${h}`, svx: `NETPLANE-SVX-${h}`, sca: `NETPLANE-SCA-${h}`, ext: `NETPLANE-EXT-${h}`, fw: `NETPLANE-FW-${h}` };
}

/** The chain that DNATs to one endpoint of one port (shared by the port's SVC, SVX and SCA chains). */
export function endpointChain(key: string, endpoint: string): string {
  return `NETPLANE-SEP-${hash(`${key}|${endpoint}`)}`;
}

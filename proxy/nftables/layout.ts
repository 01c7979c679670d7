// The rule layout of the `ip netplane` and `ip6 netplane` tables. Its size does not grow with the number of
// Services: Services are elements of shared maps, and the only objects that vary are the load-balancing chains,
// one per endpoint pool and distinct endpoint count N (`cluster-lb-3` picks one of 3 endpoints), each with its
// endpoints map (`cluster-lb-3-endpoints`: Service address . protocol . port . index → endpoint address . port).
//
// A new connection to a Service address (key: daddr . l4proto . dport) or NodePort (key: l4proto . dport) goes:
//   filter-prerouting / filter-output (priority dstnat - 10, new connections):
//     drop what loadBalancerSourceRanges exclude; reject or drop Services without usable endpoints (the
//     *-no-endpoints verdict maps), before DNAT so that it happens at once.
//   nat-prerouting / nat-output (priority dstnat) → services → nodeports:
//     set the masquerade mark, look up ClientIP affinity, then dispatch through a verdict map to
//     <pool>-lb-N, which DNATs with `... . numgen random mod N map @<pool>-lb-N-endpoints`.
//   affinity-prerouting / affinity-output (priority dstnat + 1): record ClientIP affinity.
//   nat-postrouting: mark hairpin connections, masquerade marked connections.
//   filter-forward / filter-output-post-dnat (after DNAT): a new connection still headed for a cluster IP (in
//     `cluster-ips`) matched no Service port: reject it at once, as kube-proxy's cluster-ips-check does.
//
// Traffic classes (PortPlan semantics), by verdict map:
//   cluster-vips        cluster IPs, any source                 → cluster-lb-N  (clusterEndpoints)
//   fallback-vips       external/LB IPs of Local-policy ports,  → cluster-lb-N  (shortcutEndpoints, keyed by that IP)
//                       from a pod (LocalMatch) or this node
//   external-vips       external/LB IPs of Cluster-policy ports → external-lb-N (externalEndpoints)
//   local-vips          external/LB IPs of Local-policy ports   → external-lb-N (externalEndpoints), never masqueraded
//   nodeports, local-nodeports, fallback-nodeports: the same three classes for NodePorts, with the pools
//                       nodeport (externalEndpoints) and fallback-nodeport (shortcutEndpoints).
//
// ClientIP affinity is kept per Service port, as kube-proxy keeps it ("without regard to which service IP was used
// to reach the service"): a client has one endpoint whether it comes to the cluster IP, an external or LB IP or a
// NodePort on any node address. Every endpoint list of an affinity port (its Cluster-policy list, and this node's
// under a Local policy) has a 32-bit ID (affinity.ts), and the `affinity-*ids` maps give the ID of each address
// and NodePort, by traffic class as the dispatch maps. The affinity map is keyed by client and ID. nft 1.0.6 puts
// no map lookup inside a concatenation, so the ID travels in the packet mark, for the first packet only and only
// between priority dstnat and dstnat + 1, where no other hook reads it: in nat-prerouting/nat-output the mark is
// saved (`affinity-saved`, keyed by conntrack id; `affinity-pending` says a mark is out), replaced by the ID,
// looked up (`client . ID` → endpoint: DNAT, done) or left for the dispatch; at dstnat + 1 the connection, now
// DNATed, is recorded under its client and ID with the port's timeout, and the saved mark is put back before the
// routing decision (a route chain on output, so that the route is looked up again with the original mark).
//
// Two nft 1.0.6 limits shape this (both verified on this machine):
//   - A map declared with `typeof ... : <addr> . th dport` is misread when nft loads it back from the kernel: a
//     DNAT rule added in a later transaction fails ("conflicting protocols specified: ip vs. th"), and with
//     `tcp dport` it silently becomes TCP-only. So each endpoints map is created in the same transaction as the
//     rule that uses it (hence a map per load-balancing chain), and every other map is declared with `type`.
//   - A dynamic map update gets 16 bytes of key and 16 of data: the IPv4 affinity key (4+4) and endpoint (4+4)
//     fit, IPv6's cannot. So the IPv6 `affinity` map is keyed by a 32-bit hash of client and ID (`jhash ip6 saddr
//     . meta mark`) and the ID, and holds the endpoint's address only; the port comes from `affinity-ports` (ID →
//     the port all its endpoints listen on). A client-hash collision within one ID can only cost a client its
//     stickiness. An IPv6 list whose endpoints differ in port (a named targetPort mid-rollout) has chains of its
//     own instead, `sticky-N-T` (N endpoints, T seconds), shared by every pool as they are keyed by ID: a
//     connection whose (client, ID) hash is in the timed set of index i goes to pick chain i, which refreshes that
//     entry and DNATs to the list's i-th endpoint (a map per index: nft cannot put a constant into a lookup key); a
//     new client picks i at random, and a change of the endpoint count balances its clients anew.
import type { Family } from './model.ts';
import type { BaseChain, NftSet } from './model.ts';

/** kube-proxy's masquerade bit, so that both never disagree on a node running both during a migration. */
export const masqueradeMark = '0x4000';
/** Seed of the IPv6 affinity hash of client and ID: fixed, so that rewriting a rule does not forget clients. */
export const hashSeed = '0x6e70';
/** The modulus of that hash: the whole 32-bit range but one value (nft needs one). */
export const hashModulus = 4294967295;

/** Endpoint pools: each has load-balancing chains (with their endpoints maps) per endpoint count. */
export const pools = ['cluster', 'external', 'nodeport', 'fallback-nodeport'] as const;
/** An endpoint pool: which endpoints (cluster or external) and which key (address or NodePort). */
export type Pool = (typeof pools)[number];
/** Pools keyed by a Service address; the others by protocol and port only. */
export const addressPools: ReadonlySet<Pool> = new Set(['cluster', 'external']);

/** The verdict maps that dispatch new connections to Service addresses, by class. */
export const vipMaps = ['cluster-vips', 'fallback-vips', 'external-vips', 'local-vips'] as const;
/** The verdict maps that dispatch new connections to NodePorts, by class. */
export const nodePortMaps = ['nodeports', 'fallback-nodeports', 'local-nodeports'] as const;
/** The verdict maps of the no-endpoints check for Service addresses, by class (keys as in the dispatch maps). */
export const noEndpointMaps = ['no-endpoints', 'fallback-no-endpoints', 'local-no-endpoints'] as const;
/** The verdict maps of the no-endpoints check for NodePorts, by class. */
export const noEndpointNodePortMaps = ['nodeport-no-endpoints', 'fallback-nodeport-no-endpoints', 'local-nodeport-no-endpoints'] as const;

/**
 * Name of a load-balancing chain: `<pool>-lb-N`; with `stickySeconds` > 0 an IPv6 ClientIP affinity chain keyed by
 * ID, `sticky-N-T`, which every pool shares.
 */
export const lbChain = (pool: Pool, n: number, stickySeconds = 0): string => (stickySeconds > 0 ? `sticky-${n}-${stickySeconds}` : `${pool}-lb-${n}`);
const lbPattern = /^(?:(cluster|external|nodeport|fallback-nodeport)-lb-(\d+)|sticky-(\d+)-(\d+))$/;
/** A load-balancing chain: its pool (none for a sticky chain), endpoint count, and affinity timeout (0: none). */
export interface LbChain {
  pool: Pool | undefined;
  n: number;
  stickySeconds: number;
}
/** Parses a load-balancing chain name; undefined for any other chain. */
export function parseLbChain(name: string): LbChain | undefined {
  const m = lbPattern.exec(name);
  if (!m) return undefined;
  return m[2] !== undefined ? { pool: m[1] as Pool, n: Number(m[2]), stickySeconds: 0 } : { pool: undefined, n: Number(m[3]), stickySeconds: Number(m[4]) };
}
/** The endpoints map of a load-balancing chain without affinity: `<key> . index` → endpoint. */
export const lbMap = (chain: string): string => `${chain}-endpoints`;
/** Of a sticky chain, for endpoint index i: the chain that picks it. */
export const stickyPick = (chain: string, i: number): string => `${chain}-pick-${i}`;
/** Of a sticky chain, for endpoint index i: its map, ID → the list's endpoint i. */
export const stickyMap = (chain: string, i: number): string => `${chain}-endpoints-${i}`;
/** Of a sticky chain, for endpoint index i: the timed set of (client, ID) hashes sent to endpoint i. */
export const stickySet = (chain: string, i: number): string => `${chain}-affinity-${i}`;
const unitPart = /^(.*?)-(?:endpoints|(?:pick|endpoints|affinity)-\d+)$/;
/**
 * The load-balancing chain a chain or set belongs to (itself, its endpoints map, a sticky chain's pick chains,
 * maps and sets); undefined for anything else. Such a unit is created and deleted whole.
 */
export function lbUnitOf(name: string): string | undefined {
  if (parseLbChain(name)) return name;
  const m = unitPart.exec(name);
  return m && parseLbChain(m[1]!) ? m[1] : undefined;
}
/** Per distinct affinity timeout T: the IDs recorded in the affinity map with that timeout. */
export const affinitySet = (seconds: number): string => `affinity-${seconds}`;
/** The maps from Service address to affinity ID, by traffic class (any source; Local-policy from outside; from a pod or the node). */
export const idMaps = { any: 'affinity-ids', local: 'affinity-local-ids', fallback: 'affinity-fallback-ids' } as const;
/** The same for NodePorts. */
export const nodePortIdMaps = { any: 'affinity-nodeport-ids', local: 'affinity-local-nodeport-ids', fallback: 'affinity-fallback-nodeport-ids' } as const;
/**
 * The dynamic map of ClientIP affinity entries. IPv4: client . ID → endpoint address . port. IPv6: hash of client
 * and ID . ID → endpoint address (see the header).
 */
export const affinityMap = 'affinity';
/** IPv6: the port of the endpoints of each affinity ID (ID → port). */
export const affinityPorts = 'affinity-ports';
/** The mark a first packet had before the affinity ID replaced it, by conntrack id (filled by the kernel). */
export const savedMarks = 'affinity-saved';
/** The conntrack ids whose packet carries an affinity ID in its mark right now (filled by the kernel). */
export const pendingMarks = 'affinity-pending';
/** The chain recording affinity entries and putting the saved mark back. */
export const recordChain = 'affinity-record';
/** The chain refusing new connections: TCP reset, else ICMP(v6) port unreachable. */
export const rejectChain = 'service-reject';
/** Every cluster IP: a new connection still headed for one after DNAT matched no Service port, and is refused. */
export const clusterIPsSet = 'cluster-ips';

/** nft spellings of one IP family. */
export interface Dialect {
  /** Payload protocol: `ip` or `ip6`. */
  ip: 'ip' | 'ip6';
  addrType: 'ipv4_addr' | 'ipv6_addr';
  loopback: string;
}
/** The spellings of each family. */
export const dialects: Record<Family, Dialect> = {
  4: { ip: 'ip', addrType: 'ipv4_addr', loopback: '127.0.0.0/8' },
  6: { ip: 'ip6', addrType: 'ipv6_addr', loopback: '::1' },
};

/**
 * How a packet from this node's pods ("local", --detect-local-mode) is matched in one family: by source address in
 * the `pod-cidrs` set (ClusterCIDR, NodeCIDR; `empty` when the family has none, so that nothing is local), or by the
 * name of the interface it came in on, exactly or (`prefix`) by its start (BridgeInterface, InterfaceNamePrefix).
 */
export type LocalMatch = { by: 'pod-cidrs'; empty: boolean } | { by: 'iifname'; name: string; prefix: boolean };

/**
 * The nft expressions matching local and not-local packets. `iifname` is read from the packet's input device,
 * empty for the node's own packets (output hook), which are so never local and always not-local, as with
 * iptables' `-i`. The name is quoted, so that one nft reads as a keyword (`meta`) stays a name; plan/local.ts allows
 * only characters that need no escape, and `"name*"` is nft's prefix match.
 */
export function localMatches(m: LocalMatch, ip: Dialect['ip']): { local: string; notLocal: string } {
  if (m.by === 'pod-cidrs') return { local: `${ip} saddr @pod-cidrs`, notLocal: `${ip} saddr != @pod-cidrs` };
  const name = `"${m.name}${m.prefix ? '*' : ''}"`;
  return { local: `iifname ${name}`, notLocal: `iifname != ${name}` };
}

/** The configuration the fixed rules depend on (everything else is map elements). */
export interface LayoutConfig {
  family: Family;
  masqueradeAll: boolean;
  /** How local traffic is matched: traffic that is not local to cluster IPs is masqueraded (never when nothing is local). */
  local: LocalMatch;
  /** NodePorts on every local address, or on those in the `nodeport-addresses` set. */
  nodePortsOnAll: boolean;
  /** Distinct ClientIP affinity timeouts in seconds, sorted. */
  affinityTimeouts: number[];
}

const vmapSpec = (d: Dialect, keyed: 'addr' | 'port') => `type ${keyed === 'addr' ? `${d.addrType} . ` : ''}inet_proto . inet_service : verdict;`;

/** Every set and map of a table, empty. */
export function layoutSets(c: LayoutConfig): Map<string, NftSet> {
  const d = dialects[c.family];
  const sets = new Map<string, NftSet>();
  const add = (name: string, kind: 'set' | 'map', spec: string, managed = true) =>
    sets.set(name, { kind, spec, elements: managed ? new Map() : undefined });
  add('pod-cidrs', 'set', `type ${d.addrType}; flags interval;`);
  add('nodeport-addresses', 'set', `type ${d.addrType}; flags interval;`);
  for (const m of [...vipMaps, ...noEndpointMaps]) add(m, 'map', vmapSpec(d, 'addr'));
  for (const m of [...nodePortMaps, ...noEndpointNodePortMaps]) add(m, 'map', vmapSpec(d, 'port'));
  add('source-ranged-vips', 'set', `type ${d.addrType} . inet_proto . inet_service;`);
  add('source-ranges', 'set', `type ${d.addrType} . inet_proto . inet_service . ${d.addrType}; flags interval;`);
  add('hairpin', 'set', `type ${d.addrType} . ${d.addrType};`);
  add(clusterIPsSet, 'set', `type ${d.addrType};`);
  for (const m of Object.values(idMaps)) add(m, 'map', `type ${d.addrType} . inet_proto . inet_service : mark;`);
  for (const m of Object.values(nodePortIdMaps)) add(m, 'map', 'type inet_proto . inet_service : mark;');
  // Filled by the kernel, read at sync time only to remove entries of removed endpoints. The IPv6 key: `typeof`,
  // as `jhash` has no type name usable in a `type` declaration.
  if (c.family === 4) {
    add(affinityMap, 'map', 'type ipv4_addr . mark : ipv4_addr . inet_service; size 1048576; flags dynamic,timeout; timeout 3h;', false);
  } else {
    add(affinityMap, 'map', 'typeof numgen random mod 2 . meta mark : ip6 daddr; size 1048576; flags dynamic,timeout; timeout 3h;', false);
    add(affinityPorts, 'map', 'type mark : inet_service;');
  }
  // An entry lives from priority dstnat to dstnat + 1 of one packet; the timeout only clears what a packet dropped
  // in between left behind.
  add(savedMarks, 'map', 'typeof ct id : meta mark; size 65536; flags dynamic,timeout; timeout 1s;', false);
  add(pendingMarks, 'set', 'typeof ct id; size 65536; flags dynamic,timeout; timeout 1s;', false);
  for (const t of c.affinityTimeouts) add(affinitySet(t), 'set', 'type mark;');
  return sets;
}

const base = (type: BaseChain['type'], hook: BaseChain['hook'], prio: number): BaseChain => ({ type, hook, prio, policy: 'accept' });
/** The hooked chains. Symbolic priorities are not accepted on every hook by nft 1.0.6, so numbers (dstnat = -100). */
export const baseChains: Record<string, BaseChain> = {
  'filter-prerouting': base('filter', 'prerouting', -110),
  'filter-output': base('filter', 'output', -110),
  'nat-prerouting': base('nat', 'prerouting', -100),
  'nat-output': base('nat', 'output', -100),
  // Right after DNAT and before routing; on output a route chain, which looks the route up again when the mark
  // it puts back differs.
  'affinity-prerouting': base('filter', 'prerouting', -99),
  'affinity-output': base('route', 'output', -99),
  'nat-postrouting': base('nat', 'postrouting', 100),
  // After DNAT: forwarded packets, and the node's own after nat-output and affinity-output.
  'filter-forward': base('filter', 'forward', -110),
  'filter-output-post-dnat': base('filter', 'output', -90),
};

/** The fixed chains and their rules. */
export function layoutChains(c: LayoutConfig): Map<string, string[]> {
  const d = dialects[c.family];
  const ip = d.ip;
  const key = `${ip} daddr . meta l4proto . th dport`;
  const pkey = 'meta l4proto . th dport';
  const mark = `meta mark set meta mark | ${masqueradeMark}`;
  const { local: fromPod, notLocal } = localMatches(c.local, ip);
  const localKnown = c.local.by !== 'pod-cidrs' || !c.local.empty;
  const fromNode = 'fib saddr type local';
  const fromOutside = `${notLocal} ${fromNode.replace('local', '!= local')}`;
  const toNodePort = c.nodePortsOnAll ? `fib daddr type local ${ip} daddr != ${d.loopback}` : `fib daddr type local ${ip} daddr @nodeport-addresses`;
  const affinity = c.affinityTimeouts;
  const chains = new Map<string, string[]>();

  chains.set('filter-prerouting', ['ct state new jump filter-services']);
  chains.set('filter-output', ['ct state new jump filter-services']);
  chains.set('filter-services', [
    `${key} @source-ranged-vips ${key} . ${ip} saddr != @source-ranges drop`,
    `${key} vmap @no-endpoints`,
    `${fromPod} ${key} vmap @fallback-no-endpoints`,
    `${fromNode} ${key} vmap @fallback-no-endpoints`,
    `${fromOutside} ${key} vmap @local-no-endpoints`,
    `${toNodePort} jump filter-nodeports`,
  ]);
  chains.set('filter-nodeports', [
    `${pkey} vmap @nodeport-no-endpoints`,
    `${fromPod} ${pkey} vmap @fallback-nodeport-no-endpoints`,
    `${fromNode} ${pkey} vmap @fallback-nodeport-no-endpoints`,
    `${fromOutside} ${pkey} vmap @local-nodeport-no-endpoints`,
  ]);
  // TCP gets a reset, everything else ICMP port unreachable (the family's default reject).
  chains.set(rejectChain, ['meta l4proto tcp reject with tcp reset', 'reject']);
  // A Service port is DNATed by now (or refused or dropped above): what still goes to a cluster IP asked for a port
  // it does not have, such as the old port of a Service whose port changed. kube-proxy rejects it (cluster-ips-check).
  const invalidPort = `ct state new ${ip} daddr @${clusterIPsSet} goto ${rejectChain}`;
  chains.set('filter-forward', [invalidPort]);
  chains.set('filter-output-post-dnat', [invalidPort]);

  chains.set('nat-prerouting', ['jump services']);
  chains.set('nat-output', ['jump services']);
  // Marks come first: they must be decided before an affinity hit DNATs, and each matches exactly the keys its
  // dispatch rule below takes (the maps are used as sets).
  // Cluster IPs: from outside the pod network (never when nothing is local). Cluster-policy external traffic:
  // always (its endpoint may be on a third node, whose reply must come back through this one). Local-policy
  // traffic: from this node (it takes the cluster endpoints), never from outside. masqueradeAll adds cluster-IP
  // traffic from pods and Local-policy traffic from pods; the client address under the Local policy stays.
  const marks = (k: string, cluster: string | undefined, external: string, fallback: string) => [
    ...(cluster && (c.masqueradeAll || localKnown) ? [`${c.masqueradeAll ? '' : `${notLocal} `}${k} @${cluster} ${mark}`] : []),
    `${k} @${external} ${mark}`,
    ...(c.masqueradeAll ? [`${fromPod} ${k} @${fallback} ${mark}`] : []),
    `${fromNode} ${k} @${fallback} ${mark}`,
  ];
  // ClientIP affinity (see the header): the ID of the address or NodePort, by traffic class, replaces the saved mark,
  // and a recorded client goes to its endpoint; a new one goes on to the dispatch below with the ID still set.
  const clientHash = `jhash ${ip} saddr . meta mark mod ${hashModulus} seed ${hashSeed}`;
  const recorded = c.family === 4 ? `ip saddr . meta mark map @${affinityMap}` : `${clientHash} . meta mark map @${affinityMap} : meta mark map @${affinityPorts}`;
  const assign = (k: string, ids: { any: string; local: string; fallback: string }) =>
    c.affinityTimeouts.length === 0
      ? []
      : ([['', ids.any], [fromPod, ids.fallback], [fromNode, ids.fallback], [fromOutside, ids.local]] as const).map(
          ([from, m]) =>
            `meta l4proto { tcp, udp, sctp } ${from ? `${from} ` : ''}${k} @${m} update @${savedMarks} { ct id : meta mark } update @${pendingMarks} { ct id } ` +
            `meta mark set ${k} map @${m} dnat ${ip} to ${recorded}`,
        );
  chains.set('services', [
    ...marks(key, 'cluster-vips', 'external-vips', 'fallback-vips'),
    ...assign(key, idMaps),
    `${key} vmap @cluster-vips`,
    `${fromPod} ${key} vmap @fallback-vips`,
    `${fromNode} ${key} vmap @fallback-vips`,
    `${key} vmap @external-vips`,
    `${key} vmap @local-vips`,
    `${toNodePort} jump nodeports`,
  ]);
  chains.set('nodeports', [
    ...marks(pkey, undefined, 'nodeports', 'fallback-nodeports'),
    ...assign(pkey, nodePortIdMaps),
    `${fromPod} ${pkey} vmap @fallback-nodeports`,
    `${fromNode} ${pkey} vmap @fallback-nodeports`,
    `${pkey} vmap @nodeports`,
    `${pkey} vmap @local-nodeports`,
  ]);

  if (c.affinityTimeouts.length > 0) {
    // The packet is DNATed: `daddr . th dport` is the endpoint. Sticky lists' IDs are in no timed set.
    const entry = c.family === 4 ? 'ip saddr . meta mark' : `${clientHash} . meta mark`;
    const endpoint = c.family === 4 ? 'ip daddr . th dport' : 'ip6 daddr';
    chains.set('affinity-prerouting', [`ct state new ct id @${pendingMarks} jump ${recordChain}`]);
    chains.set('affinity-output', [`ct state new ct id @${pendingMarks} jump ${recordChain}`]);
    chains.set(recordChain, [
      ...c.affinityTimeouts.map((t) => `ct status dnat meta mark @${affinitySet(t)} update @${affinityMap} { ${entry} timeout ${t}s : ${endpoint} }`),
      `meta mark set ct id map @${savedMarks} delete @${pendingMarks} { ct id }`,
    ]);
  }
  chains.set('nat-postrouting', [
    `ct status dnat ${ip} saddr . ${ip} daddr @hairpin ${mark}`,
    `meta mark & ${masqueradeMark} == ${masqueradeMark} meta mark set meta mark ^ ${masqueradeMark} masquerade fully-random`,
  ]);
  return chains;
}

/** The key of a pool's dispatch maps, as packet expressions. */
const poolKey = (family: Family, pool: Pool) => (addressPools.has(pool) ? `${dialects[family].ip} daddr . meta l4proto . th dport` : 'meta l4proto . th dport');

/**
 * The chains and sets of a load-balancing chain, from its name alone (sets empty). Without affinity: one rule,
 * `<key> . numgen random mod N` looked up in its endpoints map. With affinity (sticky-N-T), see the header.
 */
export function lbUnit(family: Family, chain: string): { chains: Array<[string, string[]]>; sets: Array<[string, NftSet]> } {
  const lb = parseLbChain(chain);
  if (!lb) throw new Error(`${chain} is not a load-balancing chain`);
  const ip = dialects[family].ip;
  if (lb.pool !== undefined) {
    const key = poolKey(family, lb.pool);
    // typeof: numgen has no type name usable in a `type` declaration. The modulus is any. Only this chain's rule uses
    // the map (see the header).
    const spec = `typeof ${key} . numgen random mod 2 : ${ip} daddr . th dport;`;
    return { chains: [[chain, [`dnat ${ip} to ${key} . numgen random mod ${lb.n} map @${lbMap(chain)}`]]], sets: [[lbMap(chain), { kind: 'map', spec, elements: new Map(), fragile: true }]] };
  }
  // The client and the list's ID (in the mark, see the header), hashed to 32 bits: the affinity sets' key.
  const hash = `jhash ${ip} saddr . meta mark mod ${hashModulus} seed ${hashSeed}`;
  const indexes = [...Array(lb.n).keys()];
  const lookups = indexes.map((i) => `${hash} @${stickySet(chain, i)} goto ${stickyPick(chain, i)}`);
  const pickNew = `numgen random mod ${lb.n} vmap { ${indexes.map((i) => `${i} : goto ${stickyPick(chain, i)}`).join(', ')} }`;
  const chains: Array<[string, string[]]> = [[chain, [...lookups, pickNew]]];
  const sets: Array<[string, NftSet]> = [];
  for (const i of indexes) {
    chains.push([stickyPick(chain, i), [`update @${stickySet(chain, i)} { ${hash} timeout ${lb.stickySeconds}s }`, `meta l4proto { tcp, udp, sctp } dnat ${ip} to meta mark map @${stickyMap(chain, i)}`]]);
    sets.push([stickyMap(chain, i), { kind: 'map', spec: `typeof meta mark : ${ip} daddr . th dport;`, elements: new Map(), fragile: true }]);
    // Filled by the kernel; `typeof numgen` gives the 32-bit integer key that `jhash` yields.
    sets.push([stickySet(chain, i), { kind: 'set', spec: `typeof numgen random mod 2; size 1048576; flags dynamic,timeout; timeout ${lb.stickySeconds}s;`, elements: undefined }]);
  }
  return { chains, sets };
}

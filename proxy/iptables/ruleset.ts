// The iptables rules for one IP family of a ProxyPlan, laid out as kube-proxy's iptables mode lays them out (with
// the prefix NETPLANE-): a pure function of the plan. Rendering them as iptables-restore input is render.ts.
//
// nat   PREROUTING, OUTPUT -> NETPLANE-SERVICES: cluster IP -> SVC, external IP -> EXT, load-balancer IP -> FW or
//       EXT, last: node-port addresses -> NETPLANE-NODEPORTS: nodePort -> EXT.
//       SVC (cluster endpoints) / SVX (external endpoints, when they differ) / SCA (short-cut endpoints, when they
//       differ from the cluster endpoints): random choice -> SEP -> DNAT.
//       EXT: masquerade and the Local-policy short cuts; FW: source ranges. POSTROUTING -> NETPLANE-POSTROUTING.
// filter INPUT, FORWARD, OUTPUT (new connections) -> NETPLANE-SERVICES: what the nat table did not DNAT and must not
//       pass: load-balancer traffic from outside the source ranges (DROP), destinations without endpoints (REJECT
//       or DROP); the same for node ports in NETPLANE-NODEPORTS.
//       FORWARD (every packet) -> NETPLANE-FORWARD: conntrack INVALID dropped, masquerade-marked and established
//       traffic accepted (kube-proxy's KUBE-FORWARD); INPUT (every packet) -> NETPLANE-HEALTH-CHECKS: accepted.
import { isIP } from 'node:net';
import { localTrafficOf } from '../plan/local.ts';
import type { Family, NoEndpoints, PortPlan, ProxyPlan, Target } from '../plan/types.ts';
import { base, baseChains, endpointChain, masqueradeMark, portChains, type TableName } from './names.ts';

/** The rules of netplane's chains in one table: chain name → rules (the text after `-A <chain>`), in write order. */
export type Chains = Map<string, string[]>;

/** Everything netplane programs in one IP family. */
export interface Ruleset {
  family: Family;
  tables: Record<TableName, Chains>;
  /** Service ports of this family in the plan (including any left out). */
  ports: number;
  /** Endpoint (SEP) chains: one per endpoint of each port. */
  endpoints: number;
  /** Ports and plan addresses left out because they are not valid for the family: one sentence each. */
  skipped: string[];
}

/** Number of rules in all of netplane's chains of a ruleset. */
export function ruleCount(r: Ruleset): number {
  let n = 0;
  for (const chains of Object.values(r.tables)) for (const rules of chains.values()) n += rules.length;
  return n;
}

/** Whether `ip` is an address of `family`. */
export function validIP(ip: string, family: Family): boolean {
  return isIP(ip) === family;
}

/** Whether `cidr` is `address/length` of `family` (a bare address counts as a host route). */
export function validCIDR(cidr: string, family: Family): boolean {
  const [addr = '', len, ...rest] = cidr.split('/');
  if (rest.length > 0 || !validIP(addr, family)) return false;
  return len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= (family === 4 ? 32 : 128));
}

const validPort = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 1 && n <= 65535);

/** `-m comment`, quoted for iptables-restore; quotes and line breaks can never reach the restore input. */
const comment = (text: string) => `-m comment --comment "${text.replace(/["\\\n\r]/g, '').slice(0, 250)}"`;

/** `ip:port`, with brackets for IPv6 as DNAT wants it. */
export const ipPort = (t: Target, family: Family) => (family === 6 ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`);

const sameTargets = (a: readonly Target[], b: readonly Target[]) =>
  a.length === b.length && a.every((t, i) => t.ip === b[i]!.ip && t.port === b[i]!.port);

class Builder {
  readonly tables: Record<TableName, Chains> = { nat: new Map(), filter: new Map() };
  constructor() {
    for (const t of ['nat', 'filter'] as const) for (const c of baseChains[t]) this.tables[t].set(c, []);
  }
  has(table: TableName, chain: string): boolean {
    return this.tables[table].has(chain);
  }
  add(table: TableName, chain: string, rule: string): void {
    const rules = this.tables[table].get(chain);
    if (rules) rules.push(rule);
    else this.tables[table].set(chain, [rule]);
  }
}

/** What one port needs from the shared state while it is built. */
interface Context {
  b: Builder;
  plan: ProxyPlan;
  family: Family;
  /** The matches of local traffic (--detect-local-mode), any of which makes a packet local; none: nothing is. */
  local: string[];
  /** filter NETPLANE-SERVICES rules that go before all others (the load-balancer firewall). */
  firewall: string[];
}

/** Why a port cannot be programmed, or undefined when every address and number in it is valid. */
function invalid(p: PortPlan): string | undefined {
  const targets = [...p.clusterEndpoints, ...p.externalEndpoints, ...p.shortcutEndpoints];
  const badIP = [...p.clusterIPs, ...p.externalIPs, ...p.loadBalancerIPs, ...targets.map((t) => t.ip)].find((ip) => !validIP(ip, p.family));
  const badRange = p.sourceRanges.find((c) => !validCIDR(c, p.family));
  const why =
    badIP !== undefined ? `${JSON.stringify(badIP)} is not an IPv${p.family} address`
    : badRange !== undefined ? `source range ${JSON.stringify(badRange)} is not an IPv${p.family} CIDR`
    : ![p.port, p.nodePort, ...targets.map((t) => t.port)].every(validPort) ? 'a port number is not between 1 and 65535'
    : !(Number.isInteger(p.affinitySeconds) && p.affinitySeconds >= 0 && p.affinitySeconds < 2 ** 31) ? `affinity timeout ${p.affinitySeconds} is not a whole number of seconds`
    : !['TCP', 'UDP', 'SCTP'].includes(p.protocol) ? `protocol ${JSON.stringify(p.protocol)} is not TCP, UDP or SCTP`
    : undefined;
  return why && `Service port ${p.key} is left out: ${why}.`;
}

/** The CIDRs of `list` valid for `family`; each other one adds a sentence to `skipped`. */
function validCIDRs(list: readonly string[], family: Family, what: string, skipped: string[]): string[] {
  const ok = list.filter((c) => validCIDR(c, family));
  for (const c of list) if (!ok.includes(c)) skipped.push(`${what} ${JSON.stringify(c)} is ignored: it is not an IPv${family} CIDR.`);
  return ok;
}

/**
 * The iptables matches of local traffic in a family, any of which makes a packet local: `-s CIDR` for each valid
 * local CIDR (a bad one adds a sentence to `skipped`), or `-i NAME` / `-i PREFIX+` for the incoming interface (empty
 * for the node's own packets, so never local, as in kube-proxy).
 */
export function localMatches(plan: ProxyPlan, family: Family, skipped: string[]): string[] {
  const local = localTrafficOf(plan);
  if (local.by === 'interface') return [`-i ${local.name}${local.prefix ? '+' : ''}`];
  return validCIDRs(local.cidrs[family], family, 'Pod CIDR', skipped).map((c) => `-s ${c}`);
}

/** Host facts the rules depend on beside the plan. */
export interface RulesetOptions {
  /**
   * nf_conntrack_tcp_be_liberal is set: conntrack then marks only out-of-window resets INVALID, so netplane does not
   * drop INVALID packets (kube-proxy's conntrackTCPLiberal). Default false.
   */
  tcpBeLiberal?: boolean;
}

/** Number of rules in netplane's chains of one table of a ruleset (kube-proxy's iptables_total per table). */
export function tableRuleCount(r: Ruleset, table: TableName): number {
  let n = 0;
  for (const rules of r.tables[table].values()) n += rules.length;
  return n;
}

/** Builds netplane's rules for the ports of `family` in `plan`. Pure; never throws (bad input is left out, see `skipped`). */
export function buildRuleset(plan: ProxyPlan, family: Family, options: RulesetOptions = {}): Ruleset {
  const b = new Builder();
  const skipped: string[] = [];
  const local = localMatches(plan, family, skipped);
  const ctx: Context = { b, plan, family, local, firewall: [] };

  // Masquerade marked packets once; clear the mark so a packet that traverses the stack again is not re-masqueraded.
  b.add('nat', base.postrouting, `-m mark ! --mark ${masqueradeMark}/${masqueradeMark} -j RETURN`);
  b.add('nat', base.postrouting, `-j MARK --xor-mark ${masqueradeMark}`);
  b.add('nat', base.postrouting, `${comment('netplane service traffic requiring SNAT')} -j MASQUERADE --random-fully`);
  b.add('nat', base.markMasq, `-j MARK --or-mark ${masqueradeMark}`);
  for (const m of local) b.add('nat', base.markNonPod, `${comment('pod traffic is not masqueraded')} ${m} -j RETURN`);
  b.add('nat', base.markNonPod, `-j ${base.markMasq}`);

  let ports = 0;
  for (const p of plan.ports) {
    if (p.family !== family) continue;
    ports++;
    const why = invalid(p);
    if (why) skipped.push(why);
    else addPort(ctx, p);
  }

  // Health-check node ports are accepted for hosts whose INPUT policy drops; the chain sees every packet of the
  // connection, not only the first (kube-proxy's filter KUBE-NODEPORTS).
  for (const hc of plan.healthChecks) {
    if (!validPort(hc.port)) continue;
    b.add('filter', base.healthChecks, `${comment(`${hc.namespace}/${hc.name} health check node port`)} -p tcp -m tcp --dport ${hc.port} -j ACCEPT`);
  }

  // kube-proxy's KUBE-FORWARD. Without tcp_be_liberal, conntrack marks out-of-window TCP packets INVALID and does
  // not translate them; forwarded with a pod's own address, they draw a reset that kills the connection (kubernetes#74839).
  if (!options.tcpBeLiberal) b.add('filter', base.forward, '-m conntrack --ctstate INVALID -j DROP');
  // Marked packets are Service traffic (NodePort, external and cluster-IP traffic from outside the pod network):
  // forwarded even when the FORWARD policy drops; the rest of their connection then passes as established.
  b.add('filter', base.forward, `${comment('netplane forwarding rules')} -m mark --mark ${masqueradeMark}/${masqueradeMark} -j ACCEPT`);
  b.add('filter', base.forward, `${comment('netplane forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);

  // Node ports last, so that a load-balancer or external IP that is also a local address keeps its own rules.
  const np = plan.nodePortAddresses[family];
  const matches =
    np === 'all'
      ? [`-m addrtype --dst-type LOCAL ! -d ${family === 6 ? '::1/128' : '127.0.0.0/8'}`]
      : validCIDRs(np, family, 'Node-port address', skipped).map((c) => `-d ${c} -m addrtype --dst-type LOCAL`);
  const last = comment('netplane service nodeports; must be the last rule in this chain');
  for (const table of ['nat', 'filter'] as const) for (const m of matches) b.add(table, base.services, `${last} ${m} -j ${base.nodePorts}`);
  b.tables.filter.set(base.services, [...ctx.firewall, ...b.tables.filter.get(base.services)!]);

  let endpoints = 0;
  for (const name of b.tables.nat.keys()) if (name.startsWith('NETPLANE-SEP-')) endpoints++;
  return { family, tables: b.tables, ports, endpoints, skipped };
}

/** Adds the rules of one valid port. */
function addPort(ctx: Context, p: PortPlan): void {
  const { b, plan, family, local } = ctx;
  const name = p.portName ? `${p.namespace}/${p.name}:${p.portName}` : `${p.namespace}/${p.name}`;
  const ch = portChains(p.key);
  const proto = p.protocol.toLowerCase();
  const dst = (ip: string) => `-d ${ip} -p ${proto} -m ${proto} --dport ${p.port}`;
  const reject = p.protocol === 'TCP' ? 'REJECT --reject-with tcp-reset' : `REJECT --reject-with ${family === 6 ? 'icmp6' : 'icmp'}-port-unreachable`;
  const verdict = (v: NoEndpoints) => (v === 'drop' ? 'DROP' : reject);
  const noEndpoints = (v: NoEndpoints) => comment(`${name} has no ${v === 'drop' ? 'local ' : ''}endpoints`);

  const hasCluster = p.clusterEndpoints.length > 0;
  const hasExternal = p.externalEndpoints.length > 0;
  const externalChain = sameTargets(p.clusterEndpoints, p.externalEndpoints) ? ch.svc : ch.svx;
  const externalDestinations = p.externalIPs.length > 0 || p.loadBalancerIPs.length > 0 || p.nodePort !== undefined;
  // Under the Local policy, pods and this node reach external destinations through the short-cut endpoints: the
  // cluster endpoints, or all of them in a chain of their own when internalTrafficPolicy Local narrows those.
  const shortCut = p.externalLocal && p.shortcutEndpoints.length > 0;
  const shortCutChain = sameTargets(p.clusterEndpoints, p.shortcutEndpoints) ? ch.svc : ch.sca;
  const usesExt = externalDestinations && (hasExternal || shortCut);
  const usesFw = usesExt && p.loadBalancerIPs.length > 0 && p.sourceRanges.length > 0;

  for (const ip of p.clusterIPs) {
    if (hasCluster) b.add('nat', base.services, `${comment(`${name} cluster IP`)} ${dst(ip)} -j ${ch.svc}`);
    else b.add('filter', base.services, `${noEndpoints(p.clusterNoEndpoints)} ${dst(ip)} -j ${verdict(p.clusterNoEndpoints)}`);
  }
  for (const ip of p.externalIPs) {
    if (usesExt) b.add('nat', base.services, `${comment(`${name} external IP`)} ${dst(ip)} -j ${ch.ext}`);
    // What the EXT chain did not DNAT (everything, or what came from outside under the Local policy) ends here.
    if (!hasExternal) b.add('filter', base.services, `${noEndpoints(p.externalNoEndpoints)} ${dst(ip)} -j ${verdict(p.externalNoEndpoints)}`);
  }
  for (const ip of p.loadBalancerIPs) {
    if (usesExt) b.add('nat', base.services, `${comment(`${name} loadbalancer IP`)} ${dst(ip)} -j ${usesFw ? ch.fw : ch.ext}`);
    // A packet that leaves the FW chain without DNAT still has the load-balancer IP as destination in filter.
    if (usesFw) ctx.firewall.push(`${comment(`${name} traffic not accepted by ${ch.fw}`)} ${dst(ip)} -j DROP`);
    if (!hasExternal) b.add('filter', base.services, `${noEndpoints(p.externalNoEndpoints)} ${dst(ip)} -j ${verdict(p.externalNoEndpoints)}`);
  }
  if (p.nodePort !== undefined) {
    const np = `-p ${proto} -m ${proto} --dport ${p.nodePort}`;
    if (usesExt) b.add('nat', base.nodePorts, `${comment(`${name} node port`)} ${np} -j ${ch.ext}`);
    if (!hasExternal) b.add('filter', base.nodePorts, `${noEndpoints(p.externalNoEndpoints)} ${np} -j ${verdict(p.externalNoEndpoints)}`);
  }

  if (hasCluster) {
    // Cluster-IP traffic that is not local (or all of it, with --masquerade-all) is masqueraded, so that replies
    // come back through this node; when nothing is local (no pod CIDR) it never is.
    const mark = plan.masqueradeAll ? base.markMasq : local.length > 0 ? base.markNonPod : undefined;
    if (mark) for (const ip of p.clusterIPs) b.add('nat', ch.svc, `${comment(`${name} cluster IP`)} ${dst(ip)} -j ${mark}`);
    addEndpoints(ctx, p, name, ch.svc, p.clusterEndpoints);
  }
  // Only a port with external destinations has external traffic (the planner fills externalEndpoints regardless).
  if (usesExt && hasExternal && externalChain === ch.svx) addEndpoints(ctx, p, name, ch.svx, p.externalEndpoints);
  if (usesExt && shortCut && shortCutChain === ch.sca) addEndpoints(ctx, p, name, ch.sca, p.shortcutEndpoints);

  if (usesExt && !p.externalLocal) {
    // Cluster policy: the endpoint may be on a third node, whose reply must come back through this one (a pod
    // that called this node's address expects the answer from it), so everything is masqueraded, as kube-proxy does.
    b.add('nat', ch.ext, `${comment(`masquerade traffic for ${name} external destinations`)} -j ${base.markMasq}`);
    b.add('nat', ch.ext, `-j ${externalChain}`);
  } else if (usesExt) {
    // Local policy: the client address is kept for traffic from outside; pods and this node use the cluster
    // endpoints (as if they went out to a load balancer and came back), and the node's own traffic is masqueraded.
    if (shortCut) {
      for (const m of local) {
        if (plan.masqueradeAll) b.add('nat', ch.ext, `${comment(`masquerade pod traffic for ${name} external destinations`)} ${m} -j ${base.markMasq}`);
        b.add('nat', ch.ext, `${comment(`pod traffic for ${name} external destinations`)} ${m} -j ${shortCutChain}`);
      }
      b.add('nat', ch.ext, `${comment(`masquerade LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${base.markMasq}`);
      b.add('nat', ch.ext, `${comment(`route LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${shortCutChain}`);
    }
    if (hasExternal) b.add('nat', ch.ext, `-j ${externalChain}`);
  }
  if (usesFw) {
    // The planner adds the load-balancer IPs to the ranges when one holds this node's address (kube-proxy's
    // allowFromNode): the node reaches a VIP bound on itself with the VIP as source.
    for (const r of p.sourceRanges) b.add('nat', ch.fw, `${comment(`${name} loadbalancer IP`)} -s ${r} -j ${ch.ext}`);
    b.add('nat', ch.fw, comment(`other traffic to ${name} will be dropped by the filter table`));
  }
}

/** The random choice over `endpoints` in `chain` (with ClientIP affinity first), and one SEP chain per endpoint. */
function addEndpoints(ctx: Context, p: PortPlan, name: string, chain: string, endpoints: readonly Target[]): void {
  const { b, family } = ctx;
  const proto = p.protocol.toLowerCase();
  const seps = endpoints.map((t) => ({ t, addr: ipPort(t, family), sep: endpointChain(p.key, ipPort(t, family)) }));
  if (p.affinitySeconds > 0) {
    for (const { addr, sep } of seps) {
      b.add('nat', chain, `${comment(`${name} -> ${addr}`)} -m recent --name ${sep} --rcheck --seconds ${p.affinitySeconds} --reap -j ${sep}`);
    }
  }
  // Rule i of n matches with probability 1/(n-i), so each endpoint gets 1/n of new connections; the last always.
  seps.forEach(({ addr, sep }, i) => {
    const left = seps.length - i;
    const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
    b.add('nat', chain, `${comment(`${name} -> ${addr}`)}${stat} -j ${sep}`);
  });
  for (const { t, addr, sep } of seps) {
    if (b.has('nat', sep)) continue;
    // Hairpin: an endpoint that reaches itself through the Service must see the node, not itself, as the source.
    b.add('nat', sep, `${comment(name)} -s ${t.ip} -j ${base.markMasq}`);
    const recent = p.affinitySeconds > 0 ? ` -m recent --name ${sep} --set` : '';
    b.add('nat', sep, `${comment(name)}${recent} -p ${proto} -m ${proto} -j DNAT --to-destination ${addr}`);
  }
}

// Hand-built ProxyPlans for the iptables tests, and a dump of a ruleset with readable chain names.
import { endpointChain, portChains } from '../../../proxy/iptables/names.ts';
import { ipPort, type Ruleset } from '../../../proxy/iptables/ruleset.ts';
import type { Family, PortPlan, ProxyPlan, Target } from '../../../proxy/plan/types.ts';
import { portPlan } from '../../fixtures/plans.ts';

/** Endpoints `ip:port` from short strings. */
export const eps = (...list: string[]): Target[] =>
  list.map((s) => {
    const i = s.lastIndexOf(':');
    return { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
  });

/** A ClusterIP Service port `default/<name>:http` (TCP, IPv4 unless `family` says otherwise); `fields` override. */
export function port(name: string, fields: Partial<PortPlan> = {}): PortPlan {
  return portPlan(name, 'http', { externalEndpoints: fields.clusterEndpoints ?? [], ...fields });
}

/** A plan with the pod network 10.244.0.0/16 and fd00:244::/48, node ports on every local address. */
export function plan(ports: PortPlan[], fields: Partial<ProxyPlan> = {}): ProxyPlan {
  return {
    ports: [...ports].sort((a, b) => (a.key < b.key ? -1 : 1)),
    clusterCIDRs: { 4: ['10.244.0.0/16'], 6: ['fd00:244::/48'] },
    masqueradeAll: false,
    nodePortAddresses: { 4: 'all', 6: 'all' },
    healthChecks: [],
    ...fields,
  };
}

/** Replaces hashed chain names of `p`'s ports with readable ones: NETPLANE-SVC-<name>, NETPLANE-SEP-<name>/<ip:port>. */
export function readable(text: string, p: ProxyPlan): string {
  const names = new Map<string, string>();
  for (const x of p.ports) {
    const ch = portChains(x.key);
    for (const [kind, chain] of Object.entries(ch)) names.set(chain, `NETPLANE-${kind.toUpperCase()}-${x.name}`);
    for (const t of [...x.clusterEndpoints, ...x.externalEndpoints, ...x.shortcutEndpoints]) names.set(endpointChain(x.key, ipPort(t, x.family)), `NETPLANE-SEP-${x.name}/${ipPort(t, x.family)}`);
  }
  return text.replace(/NETPLANE-(SVC|SVX|SCA|EXT|FW|SEP)-[A-Z2-7]{15}/g, (n) => names.get(n) ?? n);
}

/** The rules of the given chains (all chains when none given) as `-A` lines with readable names. */
export function chainDump(rs: Ruleset, p: ProxyPlan, table: 'nat' | 'filter', only?: (name: string) => boolean): string {
  const lines: string[] = [];
  for (const [chain, rules] of rs.tables[table]) {
    const shown = readable(chain, p);
    if (only && !only(shown)) continue;
    for (const r of rules) lines.push(readable(`-A ${chain} ${r}`, p));
  }
  return lines.join('\n');
}

export type { Family };

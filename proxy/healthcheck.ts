// Health-check node ports of LoadBalancer Services with externalTrafficPolicy Local: a load balancer asks each
// node whether it has endpoints of the Service and sends traffic only to nodes that answer 200.
import { createServer, type Server } from 'node:http';
import { BlockList, isIP, type ListenOptions } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { Logger } from '../runtime/logger.ts';
import type { HealthCheckPlan } from './plan/types.ts';

/** What listenDualStack needs of a server (node:http and node:net servers have it). */
export interface Listenable {
  listen(options: ListenOptions, listening: () => void): unknown;
  once(event: 'error', listener: (e: Error) => void): unknown;
  off(event: 'error', listener: (e: Error) => void): unknown;
}

// Errors of a `::` bind on a host without IPv6 (booted with ipv6.disable=1: no AF_INET6 sockets).
const noIPv6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

/**
 * Listens on host:port as kube-proxy's Go listeners do: the IPv4 wildcard 0.0.0.0 is a dual-stack `::` socket
 * (ipv6Only false), so IPv6 load-balancer health checks reach the node too, and IPv4 only on a host without IPv6;
 * any other host as given. Rejects with the bind error (EADDRINUSE, ...).
 */
export async function listenDualStack(server: Listenable, port: number, host: string): Promise<void> {
  if (host === '0.0.0.0') {
    try {
      return await bind(server, { port, host: '::', ipv6Only: false });
    } catch (e) {
      if (!noIPv6.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  }
  return bind(server, { port, host });
}

function bind(server: Listenable, options: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (e: Error) => reject(e);
    server.once('error', failed);
    server.listen(options, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/**
 * The status and body, as kube-proxy answers them: 200 only with ready local endpoints and a healthy proxy (its
 * rules current), so that a load balancer also leaves a node whose rules are stale; else 503.
 */
export function healthBody(hc: HealthCheckPlan, proxyHealthy: boolean): { status: number; body: string } {
  const body = JSON.stringify({ service: { namespace: hc.namespace, name: hc.name }, localEndpoints: hc.localEndpoints, serviceProxyHealthy: proxyHealthy });
  return { status: hc.localEndpoints > 0 && proxyHealthy ? 200 : 503, body };
}

/**
 * The addresses health-check node ports listen on under `--nodeport-addresses` CIDRs, as kube-proxy's service
 * health server takes its node IPs from them: for each family the flag names CIDRs of, this host's addresses of
 * that family inside them (IPv6 link-local ones left out); for a family it names none, that family's wildcard
 * (`0.0.0.0` IPv4 only, `::` IPv6 only). Undefined without CIDRs: the default listener (`--health-check-address`).
 */
export function healthCheckHosts(cidrs: readonly string[], interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string[] | undefined {
  if (cidrs.length === 0) return undefined;
  const out = new Set<string>();
  for (const family of [4, 6] as const) {
    const mine = cidrs.filter((c) => isIP(c.split('/')[0] ?? '') === family);
    if (mine.length === 0) {
      out.add(family === 4 ? '0.0.0.0' : '::');
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const within = new BlockList();
    for (const c of mine) {
      const [net = '', len = family === 4 ? '32' : '128'] = c.split('/');
      within.addSubnet(net, Number(len), type);
    }
    for (const list of Object.values(interfaces)) {
      for (const a of list ?? []) {
        if (a.family !== (family === 4 ? 'IPv4' : 'IPv6') || (family === 6 && /^fe[89ab]/i.test(a.address))) continue;
        if (within.check(a.address, type)) out.add(a.address);
      }
    }
  }
  return [...out].sort();
}

/**
 * Serves one HTTP listener per health-check node port and listen address, and keeps them in line with the plan and
 * the addresses: `host` 0.0.0.0 also takes IPv6 (listenDualStack); `hosts`, when it gives a list (healthCheckHosts,
 * read at every update, so addresses that come and go are followed), puts a listener on each instead.
 */
export class HealthCheckServers {
  #ports = new Map<number, { plan: HealthCheckPlan; servers: Map<string, Server> }>();
  #host: string;
  #hosts: (() => readonly string[] | undefined) | undefined;
  #log: Logger;
  #healthy: () => boolean;

  constructor(options: { host: string; hosts?: () => readonly string[] | undefined; log: Logger; proxyHealthy: () => boolean }) {
    this.#host = options.host;
    this.#hosts = options.hosts;
    this.#log = options.log;
    this.#healthy = options.proxyHealthy;
  }

  /** Opens listeners for new ports and addresses, closes those no longer wanted, and updates the counts of the rest. */
  async update(plans: readonly HealthCheckPlan[]): Promise<void> {
    const listed = this.#hosts?.();
    const hosts = listed ?? [this.#host];
    const wanted = new Map(plans.map((p) => [p.port, p]));
    for (const [port, entry] of this.#ports) {
      for (const [host, server] of entry.servers) {
        if (wanted.has(port) && hosts.includes(host)) continue;
        entry.servers.delete(host);
        server.close();
        server.closeAllConnections();
      }
      if (!wanted.has(port)) this.#ports.delete(port);
    }
    for (const plan of plans) {
      let entry = this.#ports.get(plan.port);
      if (entry) entry.plan = plan;
      else this.#ports.set(plan.port, (entry = { plan, servers: new Map() }));
      for (const host of hosts) {
        if (entry.servers.has(host)) continue;
        const e = entry;
        const server = createServer((req, res) => {
          const { status, body } = healthBody(e.plan, this.#healthy());
          res.writeHead(status, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
          res.end(body);
        });
        try {
          if (listed === undefined) await listenDualStack(server, plan.port, host);
          else await bind(server, { port: plan.port, host, ...(host === '::' ? { ipv6Only: true } : {}) });
          entry.servers.set(host, server);
        } catch (e) {
          // An IPv6 wildcard on a host without IPv6 has nothing to serve; anything else is tried at the next update.
          if (host === '::' && noIPv6.has((e as NodeJS.ErrnoException).code ?? '')) continue;
          this.#log.warn({ port: plan.port, address: host, service: `${plan.namespace}/${plan.name}`, err: (e as Error).message }, 'cannot serve the health-check node port');
        }
      }
    }
  }

  /** The ports being served (on at least one address). */
  ports(): number[] {
    return [...this.#ports].filter(([, e]) => e.servers.size > 0).map(([port]) => port).sort((a, b) => a - b);
  }

  /** Closes every listener. */
  async close(): Promise<void> {
    const all = [...this.#ports.values()].flatMap((e) => [...e.servers.values()]);
    await Promise.all(all.map((server) => new Promise((r) => {
      server.close(r);
      server.closeAllConnections();
    })));
    this.#ports.clear();
  }
}

// Health-check node ports of LoadBalancer Services with externalTrafficPolicy Local: a load balancer asks each
// node whether it has endpoints of the Service and sends traffic only to nodes that answer 200.
import { createServer, type Server } from 'node:http';
import type { ListenOptions } from 'node:net';
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
 * Serves one HTTP listener per health-check node port and keeps them in line with the plan; host 0.0.0.0 also
 * takes IPv6 (listenDualStack).
 */
export class HealthCheckServers {
  #servers = new Map<number, { server: Server; plan: HealthCheckPlan }>();
  #host: string;
  #log: Logger;
  #healthy: () => boolean;

  constructor(options: { host: string; log: Logger; proxyHealthy: () => boolean }) {
    this.#host = options.host;
    this.#log = options.log;
    this.#healthy = options.proxyHealthy;
  }

  /** Opens listeners for new ports, closes those no longer planned, and updates the counts of the rest. */
  async update(plans: readonly HealthCheckPlan[]): Promise<void> {
    const wanted = new Map(plans.map((p) => [p.port, p]));
    for (const [port, s] of this.#servers) {
      if (!wanted.has(port)) {
        this.#servers.delete(port);
        s.server.close();
      }
    }
    for (const plan of plans) {
      const existing = this.#servers.get(plan.port);
      if (existing) {
        existing.plan = plan;
        continue;
      }
      const entry = { server: createServer((req, res) => {
        const { status, body } = healthBody(entry.plan, this.#healthy());
        res.writeHead(status, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
        res.end(body);
      }), plan };
      try {
        await listenDualStack(entry.server, plan.port, this.#host);
        this.#servers.set(plan.port, entry);
      } catch (e) {
        // Not recorded: the next update tries again.
        this.#log.warn({ port: plan.port, service: `${plan.namespace}/${plan.name}`, err: (e as Error).message }, 'cannot serve the health-check node port');
      }
    }
  }

  /** The ports being served. */
  ports(): number[] {
    return [...this.#servers.keys()].sort((a, b) => a - b);
  }

  /** Closes every listener. */
  async close(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((s) => new Promise((r) => {
      s.server.close(r);
      s.server.closeAllConnections();
    })));
    this.#servers.clear();
  }
}

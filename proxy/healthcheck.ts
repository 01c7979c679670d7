// Health-check node ports of LoadBalancer Services with externalTrafficPolicy Local: a load balancer asks each
// node whether it has endpoints of the Service and sends traffic only to nodes that answer 200.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../runtime/logger.ts';
import type { HealthCheckPlan } from './plan/types.ts';

/**
 * The status and body, as kube-proxy answers them: 200 only with ready local endpoints and a healthy proxy (its
 * rules current), so that a load balancer also leaves a node whose rules are stale; else 503.
 */
export function healthBody(hc: HealthCheckPlan, proxyHealthy: boolean): { status: number; body: string } {
  const body = JSON.stringify({ service: { namespace: hc.namespace, name: hc.name }, localEndpoints: hc.localEndpoints, serviceProxyHealthy: proxyHealthy });
  return { status: hc.localEndpoints > 0 && proxyHealthy ? 200 : 503, body };
}

/** Serves one HTTP listener per health-check node port and keeps them in line with the plan. */
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
        await new Promise<void>((resolve, reject) => {
          entry.server.once('error', reject);
          entry.server.listen(plan.port, this.#host, () => resolve());
        });
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

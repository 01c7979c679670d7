// kube-proxy's health server (`--healthz-bind-address`, port 10256): what cloud load balancers probe on every node
// for Services of externalTrafficPolicy Cluster. /healthz is 200 while the rules are current and the node may take
// load-balanced traffic, else 503; /livez leaves the node's eligibility out. The body is kube-proxy's JSON.
import { createServer, type Server } from 'node:http';
import type { Node } from '../cluster/model/index.ts';
import type { HostPort } from '../runtime/flags.ts';
import type { HealthCheck } from '../runtime/admin.ts';
import { listenDualStack } from './healthcheck.ts';

/** The taint the cluster autoscaler puts on a node it is about to remove. */
export const toBeDeletedTaint = 'ToBeDeletedByClusterAutoscaler';

/** Whether a node should take load-balanced traffic: not being deleted, not about to be removed by the autoscaler. */
export function nodeEligible(node: Node | undefined): boolean {
  if (node === undefined) return true;
  return node.metadata.deletionTimestamp === undefined && !node.spec.taints.includes(toBeDeletedTaint);
}

/** What the health server reads. */
export interface HealthzSource {
  /** The rules are current (ProxySyncer.health). */
  health: HealthCheck;
  /** When the last sync succeeded, ms since the epoch. */
  lastSyncedAt: () => number | undefined;
  /** This node's object, if the view has it. */
  node: () => Node | undefined;
}

/** The status and body of one probe of `path`. Pure but for the clock it is given. */
export function healthzAnswer(path: string, source: HealthzSource, now: number): { status: number; body: string } {
  if (path !== '/healthz' && path !== '/livez') return { status: 404, body: '404 page not found\n' };
  const healthy = source.health().ok;
  const eligible = nodeEligible(source.node());
  const last = source.lastSyncedAt();
  const body: Record<string, unknown> = {
    lastUpdated: new Date(last ?? 0).toISOString(),
    currentTime: new Date(now).toISOString(),
  };
  if (path === '/healthz') body.nodeEligible = eligible;
  const ok = healthy && last !== undefined && (path === '/livez' || eligible);
  return { status: ok ? 200 : 503, body: JSON.stringify(body) };
}

/** The health server. */
export class ProxyHealthz {
  #server: Server;

  constructor(source: HealthzSource) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const { status, body } = healthzAnswer(path, source, Date.now());
      res.writeHead(status, { 'content-type': status === 404 ? 'text/plain; charset=utf-8' : 'application/json', 'x-content-type-options': 'nosniff' });
      res.end(body);
    });
  }

  /** Listens (0.0.0.0 also on IPv6, as kube-proxy's Go listener); resolves with the bound port, rejects with the bind error. */
  async listen(addr: HostPort): Promise<number> {
    await listenDualStack(this.#server, addr.port, addr.host);
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : addr.port;
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    await new Promise((r) => {
      this.#server.close(r);
      this.#server.closeAllConnections();
    });
  }
}

// The admin HTTP server of every process: /metrics, /healthz, /livez and /readyz.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Store } from '../cluster/store.ts';
import type { HostPort } from './flags.ts';

/** A health check: ok, or a reason it is not. Must not throw or block. */
export type HealthCheck = () => { ok: true } | { ok: false; reason: string };

/** Serves the admin endpoints. Health checks can be added at any time by the component. */
export class AdminServer {
  readonly #registry: Registry;
  readonly #store: Store;
  readonly #health = new Map<string, HealthCheck>();
  readonly #readiness = new Map<string, HealthCheck>();
  #server?: Server;

  constructor(registry: Registry, store: Store) {
    this.#registry = registry;
    this.#store = store;
  }

  /** Adds a named check to /healthz; /healthz is 503 while any check fails. */
  addHealthCheck(name: string, check: HealthCheck): void {
    this.#health.set(name, check);
  }

  /** Adds a named check to /readyz, beside the cluster view being loaded: /readyz is 503 while any check fails. */
  addReadinessCheck(name: string, check: HealthCheck): void {
    this.#readiness.set(name, check);
  }

  /** Listens on addr; resolves with the bound address (useful with port 0). Rejects when it cannot bind. */
  listen(addr: HostPort): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => void this.#handle(req, res));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: addr.host, port: addr.port });
      });
    });
  }

  /** Stops accepting and closes open connections. */
  close(): Promise<void> {
    const server = this.#server;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET and HEAD\n');
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/metrics':
          return send(res, 200, this.#registry.contentType, await this.#registry.metrics());
        case '/livez':
          return send(res, 200, 'text/plain', 'ok\n');
        case '/healthz': {
          const failing = [...this.#health].flatMap(([name, check]) => {
            const r = check();
            return r.ok ? [] : [{ check: name, reason: r.reason }];
          });
          return failing.length === 0
            ? send(res, 200, 'text/plain', 'ok\n')
            : send(res, 503, 'application/json', JSON.stringify({ healthy: false, failing }) + '\n');
        }
        case '/readyz': {
          const st = this.#store.status;
          const waiting = [...this.#readiness].flatMap(([name, check]) => {
            const r = check();
            return r.ok ? [] : [{ check: name, reason: r.reason }];
          });
          const ready = st.synced && waiting.length === 0;
          const body = {
            ready,
            synced: st.synced,
            stale: st.stale,
            ...(st.staleReason ? { staleReason: st.staleReason } : {}),
            lastCurrentAt: st.lastCurrentAt ? new Date(st.lastCurrentAt).toISOString() : null,
            ...(waiting.length > 0 ? { waiting } : {}),
          };
          return send(res, ready ? 200 : 503, 'application/json', JSON.stringify(body) + '\n');
        }
        default:
          return send(res, 404, 'text/plain', 'not found; try /metrics, /healthz, /livez or /readyz\n');
      }
    } catch (e) {
      return send(res, 500, 'text/plain', `${(e as Error).message}\n`);
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

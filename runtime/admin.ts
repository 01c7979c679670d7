// The admin HTTP server of every process: /metrics, /healthz, /livez and /readyz, and CoreDNS's /health and /ready
// (its health and ready plugins), which probes copied from CoreDNS's manifests ask for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Store } from '../cluster/store.ts';
import type { HostPort } from './flags.ts';

/** A health check: ok, or a reason it is not. Must not throw or block. */
export type HealthCheck = () => { ok: true } | { ok: false; reason: string };

const fixedPaths = ['/metrics', '/healthz', '/livez', '/readyz', '/health', '/ready'];

/** Serves the admin endpoints. Health checks can be added at any time by the component. */
export class AdminServer {
  readonly #registry: Registry;
  readonly #store: Store;
  readonly #health = new Map<string, HealthCheck>();
  readonly #readiness = new Map<string, HealthCheck>();
  readonly #pages = new Map<string, () => string>();
  readonly #servers: Server[] = [];

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

  /** Serves `path` as plain text from `body` (kube-proxy's /proxyMode); the fixed paths cannot be replaced (throws). */
  addPage(path: string, body: () => string): void {
    if (fixedPaths.includes(path)) throw new Error(`the admin server's ${path} cannot be replaced`);
    this.#pages.set(path, body);
  }

  /**
   * Listens on addr (again for each call: every address serves the same state); resolves with the bound address
   * (useful with port 0). With `only`, this address serves just that path, as CoreDNS's health (`:8080`) and ready
   * (`:8181`) listeners do. Rejects when it cannot bind.
   */
  listen(addr: HostPort, only?: '/health' | '/ready'): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => void this.#handle(req, res, only));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        this.#servers.push(server);
        const a = server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: addr.host, port: addr.port });
      });
    });
  }

  /** Stops accepting on every address and closes open connections. */
  async close(): Promise<void> {
    await Promise.all(
      this.#servers.splice(0).map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  /** Whether /readyz would pass if the check named `except` did: the view loaded once and every other check passing. */
  readyExcept(except: string): boolean {
    return this.#readyState(except).ready;
  }

  /** Readiness: the cluster view loaded once and every readiness check passing (but `except`); the checks that fail. */
  #readyState(except?: string): { ready: boolean; waiting: Array<{ check: string; reason: string }> } {
    const waiting = [...this.#readiness.entries()].flatMap(([name, check]) => {
      if (name === except) return [];
      const r = check();
      return r.ok ? [] : [{ check: name, reason: r.reason }];
    });
    return { ready: this.#store.status.synced && waiting.length === 0, waiting };
  }

  async #handle(req: IncomingMessage, res: ServerResponse, only: string | undefined): Promise<void> {
    // RFC 9110 15.5.6: a 405 names the methods the resource supports in Allow.
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET and HEAD\n', { allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?')[0];
    if (only !== undefined && path !== only) return send(res, 404, 'text/plain', `not found; this address serves only ${only}\n`);
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
        // CoreDNS's health plugin: 200 "OK" while the process serves, the lame-duck period included.
        case '/health':
          return send(res, 200, 'text/plain', 'OK');
        // CoreDNS's ready plugin: 200 "OK" when ready, else 503 with what is not ready, names joined by commas.
        case '/ready': {
          const { ready, waiting } = this.#readyState();
          if (ready) return send(res, 200, 'text/plain', 'OK');
          const names = [...(this.#store.status.synced ? [] : ['cluster']), ...waiting.map((w) => w.check)].sort();
          return send(res, 503, 'text/plain', names.join(','));
        }
        case '/readyz': {
          const st = this.#store.status;
          const { ready, waiting } = this.#readyState();
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
        default: {
          const page = this.#pages.get(path ?? '');
          if (page) return send(res, 200, 'text/plain', page());
          const paths = [...fixedPaths, ...this.#pages.keys()];
          return send(res, 404, 'text/plain', `not found; try ${paths.slice(0, -1).join(', ')} or ${paths.at(-1)}\n`);
        }
      }
    } catch (e) {
      return send(res, 500, 'text/plain', `${(e as Error).message}\n`);
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

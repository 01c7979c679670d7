// What the tests of clients that go away mid-response share: a backend whose body never ends, counting its open
// connections (a freed upstream request shows as a closed one), and the gateway's access-log records of a path.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { listenLoopback, type GatewayProcess } from './harness.ts';

/** A backend whose `/endless` body never ends and whose `/late` answers after 10 s; counts its open connections. */
export class EndlessBackend {
  readonly sockets = new Set<Socket>();
  readonly server: Server;
  port = 0;
  constructor() {
    this.server = createServer((req, res) => {
      if (req.url === '/late') {
        const t = setTimeout(() => res.end('late'), 10_000);
        res.on('close', () => clearTimeout(t));
        return;
      }
      // Connection: close, so that the only connections open are those of unfinished requests.
      if (req.url !== '/endless') return res.writeHead(200, { connection: 'close' }).end('small');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 108);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** Listens on a free port of 127.0.0.1. */
  async start(): Promise<this> {
    this.port = await listenLoopback(this.server);
    return this;
  }

  /** Destroys the connections still open and closes the server. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** Access-log records of the gateway for `path`. */
export function accessLines(gw: GatewayProcess, path: string): Array<Record<string, unknown>> {
  return gw.output
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"access":true'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.path === path);
}

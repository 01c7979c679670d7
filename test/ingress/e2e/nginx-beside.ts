// Real nginx beside `netplane ingress` in an e2e test that compares the two: nginx's life bound to a describe block,
// a server block proxying to a test backend as ingress-nginx's locations do, and one request asked of either.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll } from 'vitest';
import { startNginx, type TestNginx } from '../../helpers/nginx.ts';
import { freePort } from '../../helpers/ports.ts';

/** nginx for the describe block it is made in; `port` is 0 until `start`. */
export interface NginxBeside {
  readonly port: number;
  /** Starts nginx with `servers(port)` (server blocks listening on 127.0.0.1:`port`) and waits until it answers; throws as startNginx does. */
  start(servers: (port: number) => string): Promise<void>;
}

/** Makes nginx's directory (named after `name`) and stops nginx and removes the directory after the block's tests. */
export function nginxBeside(name: string): NginxBeside {
  const dir = mkdtempSync(join(tmpdir(), `netplane-${name}-`));
  let nginx: TestNginx | undefined;
  let port = 0;
  afterAll(() => {
    nginx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get port() {
      return port;
    },
    async start(servers) {
      port = await freePort();
      const answers = () => request(`http://127.0.0.1:${port}/`).then((r) => r.body.text().then(() => true)).catch(() => false);
      nginx = await startNginx(dir, servers(port), answers);
    },
  };
}

/**
 * A server block on 127.0.0.1:`port` whose `location /` proxies to 127.0.0.1:`backend` over HTTP/1.1 with WebSocket
 * upgrades passed on (Upgrade and Connection set, as ingress-nginx's locations do), then `extra` directives.
 */
export function proxyServer(port: number, backend: number, extra: string[] = []): string {
  const directives = [`proxy_pass http://127.0.0.1:${backend};`, 'proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection "upgrade";', ...extra];
  return `  server {\n    listen 127.0.0.1:${port};\n    location / {\n${directives.map((d) => `      ${d}\n`).join('')}    }\n  }\n`;
}

/** The status and headers of a GET of `path` with Host `host` at 127.0.0.1:`port` (the body read and dropped). */
export async function headOf(port: number, host: string, path: string): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers: { host } });
  await r.body.text();
  return { statusCode: r.statusCode, headers: r.headers };
}

#!/usr/bin/env node
// An example backend for the quick start: a plain HTTP server that answers every request with one line naming
// itself and the request, so a curl through the proxy or the ingress shows which endpoint it reached.
//   node examples/backend.ts --name web-1 --listen 127.0.0.1:8081
import { createServer, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { parseHostPort, type HostPort } from '../runtime/flags.ts';
import { supervisedEnv } from '../runtime/supervisor.ts';

/** The one-line answer to a request, e.g. `hello from web-1 (127.0.0.1:8081): GET / host web.localhost`. */
export function greeting(name: string, listen: string, req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>): string {
  return `hello from ${name} (${listen}): ${req.method} ${req.url} host ${req.headers.host ?? '-'}\n`;
}

function main(): void {
  let name: string;
  let listen: string;
  let addr: HostPort;
  try {
    const { values } = parseArgs({ options: { name: { type: 'string', default: 'backend' }, listen: { type: 'string', default: '127.0.0.1:8081' } } });
    name = values.name;
    listen = values.listen;
    try {
      addr = parseHostPort(listen);
    } catch (e) {
      throw new Error(`--listen ${JSON.stringify(listen)}: ${(e as Error).message}`, { cause: e });
    }
  } catch (e) {
    process.stderr.write(`examples/backend.ts: ${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const server = createServer((req, res) => {
    process.stdout.write(`${req.method} ${req.url} host ${req.headers.host ?? '-'} from ${req.socket.remoteAddress}:${req.socket.remotePort}\n`);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(greeting(name, listen, req));
  });
  server.on('error', (e) => {
    process.stderr.write(`cannot listen on ${listen}: ${e.message}\n`);
    process.exitCode = 1;
    process.stdin.destroy();
  });
  server.listen(addr.port, addr.host, () => process.stdout.write(`example backend ${name} listening on http://${listen}\n`));
  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.stdin.destroy();
  };
  process.once('SIGTERM', stop).once('SIGINT', stop);
  if (process.env[supervisedEnv] === '1') {
    // Under `netplane up`, stdin is a pipe from the supervisor: when it closes, the supervisor is gone.
    process.stdin.on('end', stop).on('error', stop);
    process.stdin.resume();
  }
}

if (import.meta.main) main();

// The http-proxy baseline of bench/ingress/ingress.ts: the npm package `http-proxy` in a node:http server, with a
// keep-alive agent to the backend. Prints `ready` on stdout once listening.
// Usage: node bench/ingress/http-proxy-server.ts LISTEN_PORT BACKEND_PORT
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!listenPort || !backendPort) {
  process.stderr.write('usage: node bench/ingress/http-proxy-server.ts LISTEN_PORT BACKEND_PORT\n');
  process.exit(2);
}

const agent = new Agent({ keepAlive: true, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${backendPort}`, agent });
proxy.on('error', (_err, _req, res) => {
  // `res` is a ServerResponse for web requests (a Socket only for websocket upgrades, which the benchmark never sends).
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
createServer((req, res) => proxy.web(req, res)).listen(listenPort, '127.0.0.1', 4096, () => process.stdout.write('ready\n'));

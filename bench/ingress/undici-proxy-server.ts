// The plain Node proxy of bench/ingress/ingress.ts (target undici-proxy): a node:http server forwarding every request
// through one undici Pool.request (keep-alive) to the backend, hop-by-hop headers dropped, nothing else (no routing,
// no limits, no metrics). A reference for what Node and undici cost before any gateway logic; not a lower bound
// (undici's dispatch API, without Pool.request's promise and body stream, costs less).
// Prints `ready` on stdout once listening.
// Usage: node bench/ingress/undici-proxy-server.ts LISTEN_PORT BACKEND_PORT
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!listenPort || !backendPort) {
  process.stderr.write('usage: node bench/ingress/undici-proxy-server.ts LISTEN_PORT BACKEND_PORT\n');
  process.exit(2);
}

// RFC 9110 §7.6.1: connection-specific fields are not forwarded.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHop.has(k)) out[k] = v;
  return out;
}

const pool = new Pool(`http://127.0.0.1:${backendPort}`, { connections: 64 });
createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .request({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: forwardable(req.headers), body: hasBody ? req : null })
    .then(async ({ statusCode, headers, body }) => {
      res.writeHead(statusCode, forwardable(headers));
      // A plain loop: stream.pipeline's per-call setup costs more than this whole proxy on small bodies. No
      // backpressure wait: the benchmark's bodies are 3 bytes.
      for await (const chunk of body) res.write(chunk);
      res.end();
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
}).listen(listenPort, '127.0.0.1', 4096, () => process.stdout.write('ready\n'));

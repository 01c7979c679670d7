// The HTTP backend of a lab pod: answers every request with the pod's name, and tells in headers which node it
// runs on and as which address the client reached it (to see whether a hop masqueraded).
// Usage: node backend.ts POD NODE PORT   (listens on every IPv4 and IPv6 address)
import { createServer } from 'node:http';

const [pod, node, portText] = process.argv.slice(2);
const port = Number(portText);
if (!pod || !node || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: backend.ts POD NODE PORT\n');
  process.exit(2);
}

const server = createServer((req, res) => {
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const body = `${pod}\n`;
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-pod': pod,
    'x-node': node,
    'x-client-address': client,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
});
server.keepAliveTimeout = 5000;
server.listen({ port, host: '::', ipv6Only: false }, () => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg: 'backend listening', pod, node, port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

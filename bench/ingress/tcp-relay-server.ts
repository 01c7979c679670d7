// A reference of bench/ingress/ingress.ts (target tcp-relay): no HTTP at all, bytes relayed between each client
// connection and an upstream connection of its own, on net.Socket. What Node costs to move a request and its response
// through a process, before any parsing: the ceiling of every Node proxy on this traffic.
// Prints `ready` on stdout once listening.
// Usage: node bench/ingress/tcp-relay-server.ts LISTEN_PORT BACKEND_PORT
import { connect, createServer } from 'node:net';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!listenPort || !backendPort) {
  process.stderr.write('usage: node bench/ingress/tcp-relay-server.ts LISTEN_PORT BACKEND_PORT\n');
  process.exit(2);
}

createServer({ noDelay: true }, (client) => {
  const upstream = connect({ port: backendPort, host: '127.0.0.1', noDelay: true });
  client.on('data', (d) => upstream.write(d));
  upstream.on('data', (d) => client.write(d));
  for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
    a.on('error', () => b.destroy());
    a.on('close', () => b.destroy());
  }
}).listen(listenPort, '127.0.0.1', 4096, () => process.stdout.write('ready\n'));

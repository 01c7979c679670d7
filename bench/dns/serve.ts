// Child process of the DNS benchmark: a DnsServer with the Map handler for N names on 127.0.0.1:PORT.
// Prints "ready <port>" when serving. Usage: node bench/dns/serve.ts PORT NAMES [--reuse-port] [--metrics]
import { Registry } from 'prom-client';
import { DnsServer } from '../../dns/server/server.ts';
import { createLogger } from '../../runtime/logger.ts';
import { MapZoneHandler, serviceNames } from './handler.ts';

const [port = '0', names = '10000'] = process.argv.slice(2);
const registry = process.argv.includes('--metrics') ? new Registry() : undefined;
const server = new DnsServer({
  listen: [{ host: '127.0.0.1', port: Number(port), text: `127.0.0.1:${port}` }],
  handlers: [new MapZoneHandler(serviceNames(Number(names)))],
  log: createLogger('dns-bench', 'warn'),
  registry,
  zoneOf: (lname) => (lname.endsWith('cluster.local') ? 'cluster.local.' : '.'),
  reusePort: process.argv.includes('--reuse-port'),
});
const bound = await server.start();
process.stdout.write(`ready ${bound[0]!.port}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

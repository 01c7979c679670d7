// Run under `prlimit --nofile=N`: a UDP Service port of the userspace backend whose process has no descriptor left
// when a new client's datagram arrives, so the flow socket's implicit bind fails (EMFILE) before its connect while
// the datagram waits for it. Prints the dropped-datagram counters as the metrics endpoint shows them, and whether the
// next datagram, once descriptors are free, is answered, as JSON.
import { createSocket } from 'node:dgram';
import { Registry } from 'prom-client';
import { registerProxyMetrics } from '../../../proxy/metrics.ts';
import { UserspaceBackend } from '../../../proxy/userspace/backend.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { exhaustDescriptors, release } from './descriptors.ts';
import { plan, portPlan } from './plans.ts';
import { freePort, udpAsk, udpEndpoint } from './servers.ts';

const registry = new Registry();
const metrics = registerProxyMetrics(registry, 'userspace');
const ep = await udpEndpoint('a');
const port = await freePort();
const backend = new UserspaceBackend({ log: silentLogger(), onUdpDrop: (reason) => metrics.udpDatagramsDropped.inc({ reason }) });
await backend.sync(plan(portPlan({ name: 'dns', protocol: 'UDP', port, clusterEndpoints: [ep.target] })), { full: true });
const client = createSocket('udp4');
await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
const filler = exhaustDescriptors();
const lost = await udpAsk(client, port, 'lost', 300).catch((e: Error) => e.message);
release(filler);
const after = await udpAsk(client, port, 'after').catch((e: Error) => e.message);
const dropped = (await registry.metrics()).split('\n').filter((l) => l.startsWith('netplane_proxy_udp_datagrams_dropped_total{'));
process.stdout.write(JSON.stringify({ lost, after, dropped }) + '\n');
await backend.close();
client.close();
await ep.close();

// Helper of bench/proxy/userspace.ts: runs netplane's userspace backend in its own process (so its CPU time can be
// read from /proc like haproxy's), forwarding the given ports, until SIGTERM.
// Usage: node bench/proxy/userspace-proxy.ts THREADS LISTEN_PORT:TARGET_PORT [...]   (all on 127.0.0.1)
import type { PortPlan, ProxyPlan } from '../../proxy/plan/types.ts';
import { UserspaceBackend } from '../../proxy/userspace/backend.ts';
import { createLogger } from '../../runtime/logger.ts';

const [threadsText, ...pairs] = process.argv.slice(2);
const threads = Number(threadsText);
if (!Number.isInteger(threads) || threads < 1 || pairs.length === 0) {
  process.stderr.write('usage: userspace-proxy.ts THREADS LISTEN_PORT:TARGET_PORT [...]\n');
  process.exit(2);
}

const ports: PortPlan[] = pairs.map((pair, i) => {
  const [listen, target] = pair.split(':').map(Number) as [number, number];
  const name = `bench-${i}`;
  return {
    key: `bench/${name}:p/TCP/v4`, portKey: `bench/${name}:p/TCP`, namespace: 'bench', name, portName: 'p', family: 4, protocol: 'TCP',
    port: listen, clusterIPs: [], externalIPs: [], loadBalancerIPs: [], sourceRanges: [],
    clusterEndpoints: [{ ip: '127.0.0.1', port: target }], clusterNoEndpoints: 'reject',
    externalEndpoints: [{ ip: '127.0.0.1', port: target }], externalNoEndpoints: 'reject',
    shortcutEndpoints: [{ ip: '127.0.0.1', port: target }], servingEndpoints: [{ ip: '127.0.0.1', port: target }],
    externalLocal: false, affinitySeconds: 0, localEndpoints: 1,
  };
});
const plan: ProxyPlan = { ports, clusterCIDRs: { 4: [], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] };

const backend = new UserspaceBackend({ log: createLogger('proxy', 'warn', process.stderr), threads });
const result = await backend.sync(plan, { full: true });
if (result.failed > 0) {
  process.stderr.write(`could not listen: ${JSON.stringify(result)}\n`);
  process.exit(1);
}
process.stdout.write(JSON.stringify({ ready: true, listeners: backend.listeners() }) + '\n');
process.on('SIGTERM', () => {
  void backend.close().then(() => process.exit(0));
});

// Run under `prlimit --nofile=N`: a TcpListener whose process has exactly two descriptors left when a client
// connects (one for the client's own socket, one for the accepted one), so the dial to the endpoint fails with EMFILE.
// Prints what the listener reported and how the client ended, as JSON. argv: native|sockets.
import { closeSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { TcpListener } from '../../../proxy/userspace/tcp.ts';
import { listenerSpecs } from '../../../proxy/userspace/listeners.ts';
import { exhaustDescriptors, release } from './descriptors.ts';
import { plan, portPlan } from './plans.ts';

const backend = createServer((s) => s.end('hi\n'));
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
const target = { ip: '127.0.0.1', port: (backend.address() as AddressInfo).port };
const probe = createServer();
await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
const port = (probe.address() as AddressInfo).port;
await new Promise((r) => probe.close(r));
const spec = listenerSpecs(plan(portPlan({ name: 'web', port, clusterEndpoints: [target] })), 4).specs[0]!;
const reported: string[] = [];
const l = new TcpListener(spec, { host: '127.0.0.1', reusePort: false, connectTimeoutMs: 250, nativeRelay: process.argv[2] === 'native', onError: (e) => reported.push(e.message) });
await l.listen();
const filler = exhaustDescriptors();
closeSync(filler.pop()!);
closeSync(filler.pop()!);
const ended = await new Promise<string>((resolve) => {
  const c = connect({ host: '127.0.0.1', port });
  let got = '';
  c.on('data', (d) => (got += d));
  c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  c.on('close', () => resolve(got === '' ? 'closed' : got.trim()));
});
release(filler);
// Descriptors free again: the next client is served.
const after = await new Promise<string>((resolve) => {
  const c = connect({ host: '127.0.0.1', port });
  c.on('data', (d) => resolve(String(d).trim()));
  c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
});
process.stdout.write(JSON.stringify({ reported, ended, after }) + '\n');
await l.destroy();
backend.close();

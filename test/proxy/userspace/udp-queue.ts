// Run inside a network namespace whose way out to the client is slow: a userspace proxy on ADDR:63730 for a UDP
// endpoint on loopback (another process) that answers each datagram with ten of 8,000 bytes, so the proxy's replies to the client come
// faster than they can leave. Prints `ready`, then, 3 s later, the memory its buffers still hold, as JSON. Needs
// --expose-gc. argv: ADDR.
import { spawn } from 'node:child_process';
import { UserspaceBackend } from '../../../proxy/userspace/backend.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { plan, portPlan } from './plans.ts';

const host = process.argv[2]!;
// The endpoint is a process of its own, so that what its sends hold (on a slow machine, datagrams loopback has not
// taken yet wait in its socket) is not counted as the proxy's.
const endpointCode = `const s = require('node:dgram').createSocket('udp4');
const reply = Buffer.alloc(8000, 'r');
s.on('message', (_m, r) => { for (let i = 0; i < 10; i++) s.send(reply, r.port, r.address); });
s.bind(63731, '127.0.0.1', () => process.stdout.write('bound\\n'));`;
const endpoint = spawn(process.execPath, ['-e', endpointCode], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((r) => endpoint.stdout!.once('data', () => r()));
const backend = new UserspaceBackend({ log: silentLogger(), bindAddress: host, udpIdleMs: 30_000 });
await backend.sync(plan(portPlan({ name: 'amp', protocol: 'UDP', port: 63730, clusterEndpoints: [{ ip: '127.0.0.1', port: 63731 }] })), { full: true });
const gc = (globalThis as { gc?: () => void }).gc!;
gc();
const before = process.memoryUsage().arrayBuffers;
process.stdout.write('ready\n');
// The client sends for 1.5 s; what is still held 1.5 s later (garbage collected) is what waits to be sent.
await new Promise((r) => setTimeout(r, 3000));
gc();
process.stdout.write(JSON.stringify({ heldBytes: process.memoryUsage().arrayBuffers - before }) + '\n');
await backend.close();
endpoint.kill();

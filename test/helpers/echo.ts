// A tiny TCP+UDP server for kernel tests: answers every connection or datagram with its name and the address
// the client appears to come from, so a test sees which endpoint answered and whether it was masqueraded.
// Usage: node echo.ts NAME PORT [PORT...]   (listens on every address, IPv4 and IPv6)
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name, ...ports] = process.argv.slice(2);
if (!name || ports.length === 0) {
  process.stderr.write('usage: echo.ts NAME PORT [PORT...]\n');
  process.exit(2);
}
const strip = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '');
let pending = ports.length * 2;
const ready = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};
for (const p of ports.map(Number)) {
  createServer((sock) => {
    sock.on('error', () => {});
    // Keep the connection open until the client ends it, so established connections can be tested.
    sock.write(`${name} ${strip(sock.remoteAddress)}\n`);
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end());
  }).listen({ port: p, host: '::', ipv6Only: false }, ready);
  const udp = createSocket({ type: 'udp6', ipv6Only: false });
  udp.on('message', (_msg, rinfo) => udp.send(`${name} ${strip(rinfo.address)}\n`, rinfo.port, rinfo.address));
  udp.bind(p, '::', ready);
}

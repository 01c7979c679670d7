// A long-lived TCP connection for kernel tests: connects, reads the echo server's greeting, waits DELAY_MS (while
// the test changes rules), then sends a line and expects it back. Prints one JSON line: who answered and whether
// the connection still carried data after the wait.
// Usage: node session.ts HOST PORT DELAY_MS
import { connect } from 'node:net';

const [host, portText, delayText] = process.argv.slice(2);
const sock = connect({ host: host!, port: Number(portText), timeout: 5000 });
let buf = '';
let name = '';
const done = (r: object) => {
  process.stdout.write(`${JSON.stringify(r)}\n`);
  sock.destroy();
};
sock.on('data', (d) => {
  buf += d;
  if (!name && buf.includes('\n')) {
    name = buf.split(' ')[0]!;
    buf = '';
    process.stdout.write('connected\n');
    setTimeout(() => sock.write('after-sync\n'), Number(delayText));
  } else if (name && buf.includes('after-sync\n')) {
    done({ ok: true, name });
  }
});
sock.on('timeout', () => done({ ok: false, error: 'timeout', name }));
sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message, name }));

// A continuous reachability check for kernel tests, like `ping -i`: sends a UDP datagram to an echo server every
// INTERVAL_MS for DURATION_MS and prints one JSON line: sent, received, lost, and the longest time without an answer.
// Usage: node pinger.ts HOST PORT DURATION_MS [INTERVAL_MS]
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

const [host = '', portText = '', durationText = '', intervalText = '20'] = process.argv.slice(2);
const port = Number(portText);
const duration = Number(durationText);
const interval = Number(intervalText);
const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
const t0 = performance.now();
let sent = 0;
let received = 0;
let lastAnswer = t0;
let maxGapMs = 0;
sock.on('message', () => {
  const now = performance.now();
  maxGapMs = Math.max(maxGapMs, now - lastAnswer);
  lastAnswer = now;
  received++;
});
// ICMP errors (unreachable while a route is missing) are losses, not failures of the checker.
sock.on('error', () => {});
sock.connect(port, host, () => {
  const timer = setInterval(() => {
    if (performance.now() - t0 >= duration) {
      clearInterval(timer);
      // The last answers may still be on their way.
      setTimeout(() => {
        maxGapMs = Math.max(maxGapMs, performance.now() - 500 - lastAnswer);
        process.stdout.write(JSON.stringify({ sent, received, lost: sent - received, maxGapMs: Math.round(maxGapMs) }) + '\n');
        sock.close();
      }, 500);
      return;
    }
    sent++;
    sock.send(`ping ${sent}`);
  }, interval);
});

// The floor of the DNS benchmark: a UDP server on the same I/O path as DnsServer (UdpEndpoint, the native handle
// used directly) that parses nothing and answers every message with one fixed A record after the question as it
// came. What it costs per query is Node's and the kernel's share; DnsServer's own work is the difference.
// Usage: node bench/dns/floor.ts PORT — prints "ready <port>".
import { UdpEndpoint } from '../../dns/server/udp.ts';

const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 1]);
const port = Number(process.argv[2] ?? '0');
const ep = await UdpEndpoint.bind(
  { host: '127.0.0.1', port, reusePort: false, recvBufferSize: 4 << 20 },
  (msg, out, client) => {
    if (msg.length < 12) return;
    // The question ends 4 bytes after the name's root label; any OPT record after it is left out.
    let end = 12;
    while (end < msg.length && msg[end] !== 0) end += msg[end]! + 1;
    end += 5;
    if (end > msg.length) return;
    const buf = out.alloc(end + answer.length);
    msg.copy(buf, 0, 0, end);
    buf[2] = 0x85;
    buf[3] = 0x80;
    buf[6] = 0;
    buf[7] = 1;
    buf[10] = 0;
    buf[11] = 0;
    answer.copy(buf, end);
    out.send(buf, client);
  },
  (e) => process.stderr.write(`${e.message}\n`),
);
process.stdout.write(`ready ${ep.address().port} direct=${ep.direct}\n`);
process.on('SIGTERM', () => void ep.close().then(() => process.exit(0)));

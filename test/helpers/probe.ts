// A test client for kernel tests: makes COUNT TCP connections or UDP exchanges to a target, one after another,
// and prints one JSON line per attempt: who answered and as whom we were seen, or the error and how long it took.
// Usage: node probe.ts tcp|udp HOST PORT [COUNT] [TIMEOUT_MS] [--hold MS] [--source-port P]
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { connect } from 'node:net';

const [proto, host, portText, countText = '1', timeoutText = '2000', ...rest] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const timeout = Number(timeoutText);
const opt = (flag: string) => {
  const i = rest.indexOf(flag);
  return i >= 0 ? Number(rest[i + 1]) : undefined;
};
const hold = opt('--hold') ?? 0;
const sourcePort = opt('--source-port');

type Result = { ok: true; name: string; seenAs: string; ms: number } | { ok: false; error: string; ms: number };

function tcp(): Promise<Result> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout, ...(sourcePort ? { localPort: sourcePort } : {}) });
    let buf = '';
    const done = (r: Result) => {
      sock.destroy();
      resolve(r);
    };
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) {
        const [name = '', seenAs = ''] = buf.trim().split(' ');
        // Holding an established connection open is not an idle time-out.
        sock.setTimeout(0);
        if (hold > 0) setTimeout(() => done({ ok: true, name, seenAs, ms: performance.now() - t0 }), hold);
        else done({ ok: true, name, seenAs, ms: performance.now() - t0 });
      }
    });
    sock.on('timeout', () => done({ ok: false, error: 'timeout', ms: performance.now() - t0 }));
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message, ms: performance.now() - t0 }));
  });
}

function udp(): Promise<Result> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(host!) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done({ ok: false, error: 'timeout', ms: performance.now() - t0 }), timeout);
    const done = (r: Result) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    sock.on('message', (m) => {
      const [name = '', seenAs = ''] = m.toString().trim().split(' ');
      done({ ok: true, name, seenAs, ms: performance.now() - t0 });
    });
    // A connected UDP socket reports ICMP port unreachable as ECONNREFUSED.
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message, ms: performance.now() - t0 }));
    sock.bind(sourcePort ?? 0, () => sock.connect(port, host, () => sock.send('ping')));
  });
}

for (let i = 0; i < count; i++) {
  const r = proto === 'udp' ? await udp() : await tcp();
  process.stdout.write(JSON.stringify(r) + '\n');
}

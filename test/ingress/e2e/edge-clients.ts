// Raw clients for the gateway's edge (PROXY protocol and TLS passthrough) tests: real ClientHellos, rude clients
// that reset or close at a chosen stage of a connection, idle connections, a ClientHello dripped in one-byte
// records, and a process's CPU time.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** The first bytes a real TLS client (Node's OpenSSL) sends for `servername`: its ClientHello, in one record. */
export async function captureHello(servername: string): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
  const c = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ALPNProtocols: ['h2', 'http/1.1'] });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  await new Promise((r) => server.close(r));
  return hello;
}

/** A v1 PROXY header naming `client` (IPv4). */
export const proxyV1 = (client: string) => Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 40000 443\r\n`);

/** Where in a connection a rude client goes away. */
export type Stage = 'proxy-header' | 'client-hello' | 'backend-connect' | 'splice';
/** How it goes away: a TCP reset, a close, or a half-close followed by a close. */
export type Leaving = 'reset' | 'close' | 'end';

/** A small seeded random source (mulberry32), so a failing run can be repeated. */
export function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/**
 * One connection that sends `header` (if any) and `hello` and goes away at `stage`: inside the header, inside the
 * ClientHello (cut at a random length, in random pieces), right after the whole ClientHello (while the gateway
 * connects to the backend), or once the backend's first bytes came back. Resolves when the socket has closed.
 */
export async function rude(port: number, o: { header?: Buffer; hello: Buffer; stage: Stage; leaving: Leaving; localAddress: string; random: (n: number) => number }): Promise<void> {
  const { random } = o;
  const s = tcpConnect({ host: '127.0.0.1', port, localAddress: o.localAddress, noDelay: true });
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  const safety = setTimeout(() => s.destroy(), 3000);
  const firstData = new Promise<void>((r) => s.once('data', () => r()));
  s.on('data', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
  const header = o.header ?? Buffer.alloc(0);
  const bytes =
    o.stage === 'proxy-header' ? header.subarray(0, 1 + random(Math.max(1, header.length - 1)))
    : o.stage === 'client-hello' ? Buffer.concat([header, o.hello.subarray(0, 1 + random(o.hello.length - 1))])
    : Buffer.concat([header, o.hello]);
  for (let at = 0; at < bytes.length && !s.destroyed; ) {
    const n = o.stage === 'backend-connect' ? bytes.length : 1 + random(bytes.length - at);
    s.write(bytes.subarray(at, at + n));
    at += n;
    if (at < bytes.length && random(3) === 0) await new Promise((r) => setTimeout(r, 1));
  }
  if (o.stage === 'splice') await Promise.race([firstData, new Promise((r) => setTimeout(r, 300))]);
  else if (o.stage !== 'backend-connect' && random(2) === 0) await new Promise((r) => setTimeout(r, random(5)));
  if (o.leaving === 'reset') s.resetAndDestroy();
  else if (o.leaving === 'close') s.destroy();
  else {
    s.end();
    setTimeout(() => s.destroy(), 50);
  }
  await closed;
  clearTimeout(safety);
}

/**
 * Opens `n` connections from `localAddress`, each sending `send` (or nothing), and waits `ms`; how many the
 * gateway closed by then. The rest are closed before it resolves.
 */
export async function closedOf(port: number, n: number, o: { localAddress: string; send?: Buffer; ms: number }): Promise<number> {
  const sockets: Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const s = tcpConnect({ host: '127.0.0.1', port, localAddress: o.localAddress });
    s.on('error', () => {});
    s.on('data', () => {});
    s.once('close', () => closed++);
    if (o.send) s.once('connect', () => s.write(o.send!));
    sockets.push(s);
    // In order: the first ones are those the gateway counts first.
    await new Promise<void>((r) => (s.connecting ? s.once('connect', () => r()).once('close', () => r()) : r()));
  }
  await new Promise((r) => setTimeout(r, o.ms));
  const result = closed;
  for (const s of sockets) s.destroy();
  return result;
}

/**
 * Sends a ClientHello that declares the largest size read (16,384 bytes) in one-byte handshake records: its first
 * four bytes, then `front` records in one write, then `drip` more one by one, 1 ms apart (each its own read at the
 * gateway, which then holds some 100 KB of records); closes when they are sent or the gateway closes first.
 */
export async function dripHello(port: number, o: { front: number; drip: number }): Promise<void> {
  const s = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r) => s.once('connect', () => r()));
  const record = Buffer.from([0x16, 0x03, 0x01, 0, 1, 0]);
  s.write(Buffer.from([0x16, 0x03, 0x01, 0, 4, 0x01, 0, 0x40, 0]));
  if (!s.write(Buffer.concat(new Array<Buffer>(o.front).fill(record)))) await new Promise((r) => s.once('drain', r));
  for (let i = 0; i < o.drip && !s.destroyed; i++) {
    s.write(record);
    await new Promise((r) => setTimeout(r, 1));
  }
  s.destroy();
  await closed;
}

const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The CPU time (user and system, seconds) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state is field 3; utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

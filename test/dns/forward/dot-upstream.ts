// A real DNS-over-TLS upstream for the tests: Unbound serving a fixed table over TLS on 127.0.0.1, with test
// certificates (or plain DNS over UDP and TCP, without them); and a TCP relay in front of it that counts the
// connections it accepts (TLS still ends in Unbound).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { makeCert, type Pems } from '../../ingress/tls/pki.ts';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';

/** A test CA. */
export function testCa(name = 'netplane test CA'): Promise<Pems> {
  return makeCert(name, ['ca.test'], { isCa: true });
}

/** A server certificate signed by `ca`, with these DNS and IP subject alternative names. */
export async function serverCert(ca: Pems, dnsNames: string[], ips: string[] = []): Promise<Pems> {
  const pems = await generate([{ name: 'commonName', value: dnsNames[0] ?? ips[0] ?? 'server' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [...dnsNames.map((value) => ({ type: 2 as const, value })), ...ips.map((ip) => ({ type: 7 as const, ip }))] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A running Unbound answering DNS over TLS only, or plain DNS. */
export interface DotServer {
  port: number;
  /** Stops it (SIGTERM) and waits for its exit; `keepFiles` keeps its directory for start() again. */
  stop(keepFiles?: boolean): Promise<void>;
  /** Starts it again on the same port, with the same table. */
  start(): Promise<void>;
}

/**
 * Starts Unbound on 127.0.0.1 with DNS over TLS on a free port and `server`'s certificate (without one: plain DNS
 * over UDP and TCP there). Every name under `test.` is answered `A address` (TTL 300) from its local data: no
 * recursion, no network.
 */
export async function startUnbound(server: Pems | undefined, address: string): Promise<DotServer> {
  const dir = await mkdtemp(join(tmpdir(), 'netplane-unbound-'));
  const port = await freePort();
  if (server) {
    await writeFile(join(dir, 'cert.pem'), server.cert);
    await writeFile(join(dir, 'key.pem'), server.key);
  }
  const conf = [
    'server:',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  do-daemonize: no',
    '  num-threads: 1',
    '  do-ip6: no',
    `  interface: 127.0.0.1@${port}`,
    ...(server ? [`  tls-port: ${port}`, `  tls-service-key: "${join(dir, 'key.pem')}"`, `  tls-service-pem: "${join(dir, 'cert.pem')}"`] : []),
    '  module-config: "iterator"',
    '  access-control: 127.0.0.0/8 allow',
    '  local-zone: "test." redirect',
    `  local-data: "test. 300 IN A ${address}"`,
    'remote-control:',
    '  control-enable: no',
    '',
  ].join('\n');
  await writeFile(join(dir, 'unbound.conf'), conf);
  let proc: ChildProcess | undefined;
  let out = '';
  const start = async () => {
    out = '';
    const p = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    await waitFor(`unbound on port ${port}`, () => {
      if (p.exitCode !== null) throw new Error(`unbound exited with ${p.exitCode}: ${out}`);
      return accepts(port);
    }, 10_000);
  };
  const stop = async (keepFiles = false) => {
    const p = proc;
    proc = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
    if (!keepFiles) await rm(dir, { recursive: true, force: true });
  };
  await start();
  return { port, stop, start };
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A TCP relay to an upstream that counts connections; who closed each first is kept. */
export interface Relay {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Connections still open. */
  open(): number;
  /**
   * For each closed connection, the side that began its closing: the one that spoke first after the connection's last
   * quiet spell (500 ms or more without a byte or an end either way). Which end of stream the relay sees first is a
   * race (the other side answers a TLS close_notify with its own close, which can overtake the first side's FIN
   * here), but the side that broke the silence came first.
   */
  closedBy(): Array<'client' | 'upstream'>;
  close(): Promise<void>;
}

/** A pause this long, or longer, in a relayed connection is a quiet spell (see Relay.closedBy). */
const quietMs = 500;

/** Relays 127.0.0.1:<port> (a free one unless given) to 127.0.0.1:target byte for byte. */
export async function relay(target: number, port = 0): Promise<Relay> {
  const sockets = new Set<Socket>();
  const closed: Array<'client' | 'upstream'> = [];
  let accepted = 0;
  let open = 0;
  const server = createServer((client) => {
    accepted++;
    open++;
    const up = connect(target, '127.0.0.1');
    sockets.add(client).add(up);
    let last = performance.now();
    let brokeSilence: 'client' | 'upstream' | undefined;
    // Without a quiet spell, the side whose end of stream came first.
    let first: 'client' | 'upstream' | undefined;
    const heard = (side: 'client' | 'upstream') => {
      const now = performance.now();
      if (now - last >= quietMs) brokeSilence = side;
      last = now;
    };
    client.on('data', (d) => {
      heard('client');
      up.write(d);
    });
    up.on('data', (d) => {
      heard('upstream');
      client.write(d);
    });
    client.on('end', () => {
      heard('client');
      first ??= 'client';
      up.end();
    });
    up.on('end', () => {
      heard('upstream');
      first ??= 'upstream';
      client.end();
    });
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    up.on('close', () => client.destroy());
    client.on('close', () => {
      up.destroy();
      open--;
      closed.push(brokeSilence ?? first ?? 'client');
      sockets.delete(client);
      sockets.delete(up);
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    open: () => open,
    closedBy: () => [...closed],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

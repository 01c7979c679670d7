// Helpers of the TCP and UDP services end-to-end tests: echo backends on 127.0.0.x that say which one answered and
// keep every byte they received, a Service and EndpointSlice for them, and clients that report how the gateway ended
// their connection (data, a close, a reset, a refusal).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { waitFor } from '../../helpers/wait.ts';

/** A TCP backend on `host`:`port`: each connection's bytes are kept, and every chunk is answered `NAME:chunk`. */
export class TcpEcho {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly server: Server;
  /** The bytes each connection received, in accept order. */
  readonly received: Buffer[][] = [];
  /** The peers of the connections, in accept order. */
  readonly peers: string[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(name: string, host: string, port: number) {
    this.name = name;
    this.host = host;
    this.port = port;
    this.server = createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      this.received.push(got);
      this.peers.push(`${s.remoteAddress}:${s.remotePort}`);
      this.#sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.#sockets.delete(s));
      s.on('data', (d: Buffer) => {
        got.push(d);
        s.write(`${name}:${d.toString('latin1')}`);
      });
      s.on('end', () => s.end());
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(this.port, this.host, r));
    return this;
  }

  /** What the `i`-th connection received, as latin1 text. */
  text(i: number): string {
    return Buffer.concat(this.received[i] ?? []).toString('latin1');
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** A UDP backend on `host`:`port` answering each datagram `NAME:datagram`. */
export class UdpEcho {
  readonly name: string;
  readonly socket: UdpSocket;
  readonly host: string;
  readonly port: number;
  /** The source of each datagram received. */
  readonly peers: string[] = [];

  constructor(name: string, host: string, port: number) {
    this.name = name;
    this.host = host;
    this.port = port;
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => {
      this.peers.push(`${rinfo.address}:${rinfo.port}`);
      this.socket.send(`${name}:${msg.toString('latin1')}`, rinfo.port, rinfo.address);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.socket.bind(this.port, this.host, r));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}

/**
 * A Service `name` in namespace default with the given ports (name, port, protocol; targetPort the port's name) and one
 * EndpointSlice per protocol whose ready endpoints are `ips`, each at `backendPort` for every port.
 */
export function streamServiceYaml(name: string, ports: Array<{ name: string; port: number; protocol: 'TCP' | 'UDP' }>, ips: readonly string[], backendPort: number): string {
  const spec = ports.map((p) => `{ name: ${p.name}, port: ${p.port}, targetPort: ${p.name}, protocol: ${p.protocol} }`).join(', ');
  const slice = `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-a, namespace: default, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [${ports.map((p) => `{ name: ${p.name}, port: ${backendPort}, protocol: ${p.protocol} }`).join(', ')}]
endpoints: [${ips.map((ip) => `{ addresses: ["${ip}"], conditions: { ready: true } }`).join(', ')}]
`;
  return `---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec: { ports: [${spec}] }
${ips.length > 0 ? slice : ''}`;
}

/** How a TCP exchange through the gateway went: what came back, and how the connection ended. */
export interface Exchange {
  data: string;
  /** 'end' (the gateway closed after answering, or the test did), 'reset', 'refused', or another error code. */
  ended: string;
  ms: number;
}

/**
 * Connects to 127.0.0.1:`port` (from `localAddress`, another loopback address, when given), sends `send` (nothing
 * when empty), and waits until `until` holds for the bytes received (then closes) or the connection ends.
 */
export function exchange(port: number, send: string | Buffer, until: (data: string) => boolean = () => false, timeoutMs = 5000, localAddress?: string): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    const s = connect({ host: '127.0.0.1', port, ...(localAddress !== undefined ? { localAddress } : {}) });
    const done = (ended: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data, ended, ms: performance.now() - started });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('connect', () => {
      if (send.length > 0) s.write(send);
    });
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (until(data)) done('end');
    });
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNRESET' ? 'reset' : e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message)));
    s.on('close', () => done('end'));
  });
}

/** Sends one datagram to 127.0.0.1:`port` from a socket of its own and resolves with the answer, or undefined after `timeoutMs`. */
export async function udpAsk(port: number, text: string, timeoutMs = 1000, from?: UdpSocket): Promise<string | undefined> {
  const s = from ?? createSocket('udp4');
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => (s.off('message', got), resolve(undefined)), timeoutMs);
      const got = (msg: Buffer) => {
        clearTimeout(timer);
        s.off('message', got);
        resolve(msg.toString('latin1'));
      };
      s.on('message', got);
      s.on('error', () => {});
      s.send(text, port, '127.0.0.1');
    });
  } finally {
    if (!from) s.close();
  }
}

/** The value of a metric series in a /metrics text whose labels include all of `labels`; 0 when there is none. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Waits until the gateway has logged a line containing every one of `parts`. */
export function logged(output: () => string, ...parts: string[]): Promise<string> {
  return waitFor(`a log line with ${parts.join(', ')}`, () => output().split('\n').find((l) => parts.every((p) => l.includes(p))) ?? '', 10_000, 50);
}

// Small in-process endpoints and clients for the userspace proxy tests, all on 127.0.0.1.
import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Target } from '../../../proxy/plan/types.ts';

export { freePort } from '../../helpers/ports.ts';

/** A TCP endpoint: greets every connection with `NAME\n`, echoes what it gets, and ends when the client ends. */
export interface TcpEndpoint {
  name: string;
  target: Target;
  server: Server;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** Starts a TcpEndpoint on a free port (`greet: false`: a plain echo, for byte-exact transfers). */
export async function tcpEndpoint(name: string, options: { greet?: boolean; host?: string } = {}): Promise<TcpEndpoint> {
  const sockets = new Set<Socket>();
  const host = options.host ?? '127.0.0.1';
  const ep: TcpEndpoint = {
    name,
    target: { ip: host, port: 0 },
    accepted: 0,
    server: createServer({ allowHalfOpen: true }, (s) => {
      ep.accepted++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      if (options.greet !== false) s.write(`${name}\n`);
      s.pipe(s);
    }),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => ep.server.close(r));
    },
  };
  await new Promise<void>((r) => ep.server.listen(0, host, r));
  ep.target.port = (ep.server.address() as AddressInfo).port;
  return ep;
}

/** A TCP endpoint that reads until the client half-closes, then answers with the sha256 of what it got and ends. */
export async function hashEndpoint(): Promise<{ target: Target; close(): Promise<void> }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => setTimeout(() => s.end(h.digest('hex')), 50));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { target: { ip: '127.0.0.1', port: (server.address() as AddressInfo).port }, close: () => new Promise((r) => server.close(() => r())) };
}

/** A UDP endpoint answering every datagram with `NAME MESSAGE`. */
export async function udpEndpoint(name: string): Promise<{ target: Target; socket: UdpSocket; close(): Promise<void> }> {
  const socket = createSocket('udp4');
  socket.on('message', (m, r) => socket.send(`${name} ${m}`, r.port, r.address));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { target: { ip: '127.0.0.1', port: socket.address().port }, socket, close: () => new Promise((r) => socket.close(() => r())) };
}

/** A client connection that collects what it reads. */
export interface Client {
  socket: Socket;
  received(): string;
  /** Resolves with the first line (an endpoint's name). */
  firstLine: Promise<string>;
  /** Resolves when the connection is closed, with the error code if it failed. */
  closed: Promise<string | undefined>;
}

/** Connects to `port` (half-open allowed, so the test sees each direction end separately). */
export function client(port: number): Client {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let buf = '';
  let error: string | undefined;
  let lineDone: (l: string) => void = () => {};
  let lineFail: (e: Error) => void = () => {};
  const firstLine = new Promise<string>((resolve, reject) => {
    lineDone = resolve;
    lineFail = reject;
  });
  firstLine.catch(() => {});
  socket.on('data', (d) => {
    buf += d;
    const nl = buf.indexOf('\n');
    if (nl >= 0) lineDone(buf.slice(0, nl));
  });
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const closed = new Promise<string | undefined>((resolve) =>
    socket.on('close', () => {
      lineFail(new Error(`closed before a line (${error ?? 'no error'})`));
      resolve(error);
    }),
  );
  return { socket, received: () => buf, firstLine, closed };
}

/** Which endpoint answers one new connection to `port`; the connection is then closed. */
export async function whoAnswers(port: number): Promise<string> {
  const c = client(port);
  try {
    return await c.firstLine;
  } finally {
    c.socket.destroy();
  }
}

/** Sends one datagram to `port` from `socket` and resolves with the reply (or rejects after `timeoutMs`). */
export function udpAsk(socket: UdpSocket, port: number, text: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error('no UDP reply'));
    }, timeoutMs);
    const onMessage = (m: Buffer) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(m.toString());
    };
    socket.on('message', onMessage);
    socket.send(text, port, '127.0.0.1');
  });
}

// A reference of bench/ingress/ingress.ts (target llhttp-proxy): an HTTP/1.1 proxy with the least work a gateway
// must do, on the cheapest path Node offers. Node's own parser (llhttp, the HTTPParser of node:http, from
// `_http_common`) reads requests and responses; the connections are libuv TCP handles driven directly (the
// tcp_wrap/stream_wrap bindings lib/net.js uses), without net.Socket or node:http. Per request: the head parsed,
// hop-by-hop headers dropped, X-Forwarded-*, X-Real-IP and a new X-Request-ID added, the head and body written
// upstream in one writev on an idle keep-alive connection; the response parsed and written back in one writev.
// Nothing else: no routing, limits, timeouts, retries, metrics, body streaming limits or error answers. Benchmark
// traffic only (small GETs); not a server to put in front of anything.
// Prints `ready` on stdout once listening.
// Usage: node bench/ingress/llhttp-proxy-server.ts LISTEN_PORT BACKEND_PORT
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!listenPort || !backendPort) {
  process.stderr.write('usage: node bench/ingress/llhttp-proxy-server.ts LISTEN_PORT BACKEND_PORT\n');
  process.exit(2);
}

type Chunk = string | Uint8Array;
interface Handle {
  readStart(): number;
  setNoDelay(on: boolean): number;
  getpeername(out: { address?: string }): number;
  connect(req: object, address: string, port: number): number;
  writeBuffer(req: object, data: Uint8Array): number;
  writev(req: object, chunks: Chunk[], allBuffers: boolean): number;
  close(cb?: () => void): void;
  onread: ((buffer: ArrayBuffer | undefined) => void) | null;
}
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Uint8Array): number | Error;
  [callback: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}

const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass; methods: string[] };
const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
const tcp = binding('tcp_wrap') as { TCP: new (type: number) => Handle; TCPConnectWrap: new () => { oncomplete?: () => void }; constants: { SOCKET: number } };
const stream = binding('stream_wrap') as { WriteWrap: new () => Record<string, unknown>; streamBaseState: Int32Array; kReadBytesOrError: number; kArrayBufferOffset: number };
const state = stream.streamBaseState;

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const noop = () => {};

/** Writes the chunks gathered while one read was parsed, in one system call. */
function flush(handle: Handle, out: Chunk[]): void {
  if (out.length === 0) return;
  const req = new stream.WriteWrap();
  req.handle = handle;
  req.oncomplete = noop;
  req.async = false;
  const chunks: Chunk[] = [];
  for (const c of out) chunks.push(c, typeof c === 'string' ? 'latin1' : '');
  handle.writev(req, chunks, false);
  out.length = 0;
}

/** Calls `onData` with each chunk read from `handle`; `onEnd` at end of stream or error. */
function reading(handle: Handle, onData: (data: Uint8Array) => void, onEnd: () => void): void {
  handle.onread = (buffer) => {
    const n = state[stream.kReadBytesOrError]!;
    if (n > 0) onData(new Uint8Array(buffer!, state[stream.kArrayBufferOffset]!, n));
    else if (n < 0) onEnd();
  };
  handle.readStart();
}

interface Client {
  handle: Handle;
  ip: string;
  upstream: Upstream | undefined;
  closed: boolean;
}
interface Upstream {
  handle: Handle;
  parser: Parser;
  client: Client | undefined;
  out: Chunk[];
}
const idle: Upstream[] = [];

function dial(): Upstream {
  const handle = new tcp.TCP(tcp.constants.SOCKET);
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  const up: Upstream = { handle, parser, client: undefined, out: [] };
  parser[HTTPParser.kOnHeaders] = noop;
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[], _method: number, _url: string, status: number, message: string) => {
    let head = `HTTP/1.1 ${status} ${message}\r\n`;
    for (let i = 0; i < headers.length; i += 2) if (!hopByHop.has(headers[i]!.toLowerCase())) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    up.out.push(`${head}Connection: keep-alive\r\n\r\n`);
  };
  parser[HTTPParser.kOnBody] = (b: Uint8Array) => up.out.push(b);
  parser[HTTPParser.kOnMessageComplete] = () => {
    const c = up.client!;
    if (!c.closed) flush(c.handle, up.out);
    up.out.length = 0;
    up.client = undefined;
    c.upstream = undefined;
    idle.push(up);
  };
  const req = new tcp.TCPConnectWrap();
  req.oncomplete = () => reading(handle, (data) => {
    const c = up.client;
    parser.execute(data);
    if (c && !c.closed) flush(c.handle, up.out);
  }, () => handle.close());
  handle.setNoDelay(true);
  handle.connect(req, '127.0.0.1', backendPort!);
  return up;
}

function accept(handle: Handle): void {
  handle.setNoDelay(true);
  const peer: { address?: string } = {};
  handle.getpeername(peer);
  const client: Client = { handle, ip: peer.address ?? '', upstream: undefined, closed: false };
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 0, 0);
  let out: Chunk[] = [];
  parser[HTTPParser.kOnHeaders] = noop;
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[], method: number, url: string) => {
    let host = '';
    let head = `${methods[method]} ${url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'host') host = headers[i + 1]!;
      if (hopByHop.has(name) || name.startsWith('x-forwarded-') || name === 'x-real-ip' || name === 'x-request-id') continue;
      head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    const ip = client.ip;
    out.push(`${head}X-Forwarded-For: ${ip}\r\nX-Real-IP: ${ip}\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ${host}\r\nX-Forwarded-Port: ${listenPort}\r\nX-Request-ID: ${randomUUID()}\r\n\r\n`);
    const up = idle.pop() ?? dial();
    up.client = client;
    client.upstream = up;
  };
  parser[HTTPParser.kOnBody] = (b: Uint8Array) => out.push(Buffer.from(b));
  parser[HTTPParser.kOnMessageComplete] = noop;
  reading(handle, (data) => {
    parser.execute(data);
    if (client.upstream) flush(client.upstream.handle, out);
    out = [];
  }, () => {
    client.closed = true;
    handle.close();
  });
}

const server = createServer();
server.listen(listenPort, '127.0.0.1', 4096, () => {
  (server as unknown as { _handle: { onconnection: (err: number, handle: Handle) => void } })._handle.onconnection = (err, handle) => {
    if (err === 0) accept(handle);
  };
  process.stdout.write('ready\n');
});

// A gRPC test service on @grpc/grpc-js, defined by hand over raw Buffers (no .proto): a server on 127.0.0.1 (clear
// or TLS) and a client, for the gateway's gRPC tests. Messages are UTF-8 text.
import * as grpc from '@grpc/grpc-js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/netplane.test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  };
}

/** The service: every kind of call, a failing one (no message: a Trailers-Only answer) and one that never answers. */
export const echoService = {
  Unary: method('Unary', false, false),
  Fail: method('Fail', false, false),
  Slow: method('Slow', false, false),
  Count: method('Count', false, true),
  Collect: method('Collect', true, false),
  Chat: method('Chat', true, true),
} as const satisfies grpc.ServiceDefinition;

/** The status and message Fail answers with (non-ASCII and `%`, which grpc-message carries percent-encoded). */
export const failure = { code: grpc.status.NOT_FOUND, details: 'no such thing: ünïcode 100% — here' };

/** Initial metadata the server sends back: the client's `x-client` as `x-server-saw`, and its name. */
function replyMetadata(name: string, incoming: grpc.Metadata): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-server', name);
  const saw = incoming.get('x-client')[0];
  if (saw !== undefined) md.set('x-server-saw', String(saw));
  const bin = incoming.get('x-blob-bin')[0];
  if (bin !== undefined) md.set('x-blob-bin', Buffer.concat([bin as Buffer, Buffer.from([0xff])]));
  return md;
}

/** Trailing metadata of every successful call. */
function trailer(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-trailer', 'done');
  return md;
}

const text = (b: Buffer) => b.toString('utf8');
const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** The handlers; `name` tells which server answered. */
function handlers(name: string, calls: string[], cancelled: string[]): grpc.UntypedServiceImplementation {
  return {
    Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) {
      calls.push('Unary');
      call.sendMetadata(replyMetadata(name, call.metadata));
      done(null, utf8(`${name}: ${text(call.request)}`), trailer());
    },
    Fail(_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) {
      calls.push('Fail');
      const md = new grpc.Metadata();
      md.set('x-why', 'testing');
      done({ code: failure.code, details: failure.details, metadata: md });
    },
    Slow(call: grpc.ServerUnaryCall<Buffer, Buffer>) {
      calls.push('Slow');
      // Never answers; tells when the client's side went away.
      call.on('cancelled', () => cancelled.push('Slow'));
    },
    Count(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      calls.push('Count');
      call.sendMetadata(replyMetadata(name, call.metadata));
      const n = Number(text(call.request));
      for (let i = 1; i <= n; i++) call.write(utf8(String(i)));
      // More than asked for ends with an error after the messages: a status in real trailers.
      if (n > 3) call.emit('error', { code: grpc.status.OUT_OF_RANGE, details: `stopped after ${n}` });
      else call.end(trailer());
    },
    Collect(call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) {
      calls.push('Collect');
      const parts: string[] = [];
      call.on('data', (b: Buffer) => parts.push(text(b)));
      call.on('end', () => done(null, utf8(parts.join('+')), trailer()));
    },
    Chat(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      calls.push('Chat');
      call.on('data', (b: Buffer) => call.write(utf8(`re: ${text(b)}`)));
      call.on('end', () => call.end(trailer()));
    },
  };
}

/** A running gRPC server: its port, the methods called and those cancelled, and stop(). */
export interface EchoServer {
  port: number;
  calls: string[];
  cancelled: string[];
  stop(): Promise<void>;
}

/** Starts the echo service on 127.0.0.1; with `tls`, over TLS (ALPN h2) with that certificate. */
export async function startEchoServer(name: string, tls?: { cert: string; key: string }): Promise<EchoServer> {
  const server = new grpc.Server();
  const calls: string[] = [];
  const cancelled: string[] = [];
  server.addService(echoService, handlers(name, calls, cancelled));
  const creds = tls === undefined ? grpc.ServerCredentials.createInsecure() : grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }]);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return { port, calls, cancelled, stop: () => new Promise<void>((r) => server.tryShutdown(() => r())).then(() => server.forceShutdown()) };
}

/** A client of the echo service. */
export type EchoClient = grpc.Client & Record<keyof typeof echoService, (...args: unknown[]) => unknown>;

const EchoClientClass = grpc.makeGenericClientConstructor(echoService, 'Echo');

/** A client to `address` (`host:port`) in clear (h2c), or over TLS trusting `ca` and naming `host` in SNI and :authority. */
export function echoClient(address: string, tls?: { ca: string; host: string }, authority?: string): grpc.Client {
  const options: grpc.ClientOptions = {};
  if (authority !== undefined) options['grpc.default_authority'] = authority;
  if (tls === undefined) return new EchoClientClass(address, grpc.credentials.createInsecure(), options);
  options['grpc.ssl_target_name_override'] = tls.host;
  options['grpc.default_authority'] = authority ?? tls.host;
  return new EchoClientClass(address, grpc.credentials.createSsl(Buffer.from(tls.ca)), options);
}

/** What a finished call gave: its messages, status, and both kinds of metadata. */
export interface CallResult {
  messages: string[];
  code: grpc.status;
  details: string;
  headers: Record<string, string>;
  trailers: Record<string, string>;
}

function flat(md: grpc.Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md?.getMap() ?? {})) out[k] = Buffer.isBuffer(v) ? `bin:${v.toString('hex')}` : String(v);
  return out;
}

/**
 * Makes one call of any kind: `send` messages (a unary or server-streaming call takes the first), collects what
 * comes back. For a bidi call each message is sent after the answer to the one before (`turns`), so the call only
 * completes when both directions stream at once.
 */
export function call(client: grpc.Client, name: keyof typeof echoService, send: string[], options: { metadata?: Record<string, string | Buffer>; deadlineMs?: number; turns?: boolean } = {}): Promise<CallResult> {
  const def = echoService[name];
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
  const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return new Promise((resolve) => {
    const result: CallResult = { messages: [], code: grpc.status.UNKNOWN, details: '', headers: {}, trailers: {} };
    const onStatus = (s: grpc.StatusObject) => {
      result.code = s.code;
      result.details = s.details;
      result.trailers = flat(s.metadata);
      resolve(result);
    };
    let stream: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer> | grpc.ClientWritableStream<Buffer> | grpc.ClientUnaryCall;
    if (!def.requestStream && !def.responseStream) {
      stream = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, utf8(send[0] ?? ''), md, callOptions, (_err, value) => {
        if (value !== undefined) result.messages.push(text(value));
      });
    } else if (!def.requestStream) {
      stream = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, utf8(send[0] ?? ''), md, callOptions);
    } else if (!def.responseStream) {
      const w = client.makeClientStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, md, callOptions, (_err, value) => {
        if (value !== undefined) result.messages.push(text(value));
      });
      for (const m of send) w.write(utf8(m));
      w.end();
      stream = w;
    } else {
      const d = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, md, callOptions);
      const queue = [...send];
      const next = () => {
        const m = queue.shift();
        if (m === undefined) d.end();
        else d.write(utf8(m));
      };
      if (options.turns === true) {
        d.on('data', () => next());
        next();
      } else {
        for (const m of send) d.write(utf8(m));
        d.end();
      }
      stream = d;
    }
    stream.on('metadata', (m: grpc.Metadata) => (result.headers = flat(m)));
    stream.on('status', onStatus);
    if ('read' in stream) stream.on('data', (b: Buffer) => result.messages.push(text(b)));
    // Errors also arrive as a status; the listener keeps an 'error' event from throwing.
    (stream as unknown as NodeJS.EventEmitter).on('error', () => {});
  });
}

// An HTTP/2 client (node:http2) behind a TCP relay that stops reading from the gateway while a large body flows, so
// that the gateway's socket write stalls, and then goes away: the gateway must free the stream, the upstream request
// (the backend sees its connection closed) and the client connection at once, not after proxy-read-timeout (30 s
// here). A client that is only slow, and reads again, must get the rest of the body on the same connection.
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { accessLines, EndlessBackend } from './endless-backend.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';

/** How the client behind the relay goes away once it has stopped reading. */
type Leaving = 'reset' | 'close';

/** A relay's hold on its two connections. */
interface Stalled {
  /** Resolves once the relay has stopped reading from the gateway (its socket write then stalls). */
  stopped: Promise<void>;
  /** Bytes of the body the client has received. */
  received: () => number;
  /** The relay reads from the gateway again. */
  resume: () => void;
  /** The client goes away: a TCP reset, or a close with data unread (which the kernel answers with a reset too). */
  leave: (how: Leaving) => void;
  session: ClientHttp2Session;
  relay: TcpServer;
}

/**
 * An HTTP/2 request for /endless through a TCP relay that stops reading from the gateway after 256 KiB (the client
 * itself has a window of 2 GiB, so it is the gateway's socket write that stalls, not HTTP/2 flow control).
 */
async function stalledRequest(port: number): Promise<Stalled> {
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  let gwSide!: Socket;
  let clientSide!: Socket;
  const relay = createTcpServer((client) => {
    clientSide = client;
    gwSide = tcpConnect(port, '127.0.0.1');
    client.pipe(gwSide);
    let bytes = 0;
    gwSide.on('data', (d: Buffer) => {
      bytes += d.length;
      client.write(d);
      if (bytes > 256 * 1024 && bytes - d.length <= 256 * 1024) (gwSide.pause(), setTimeout(stop, 300));
    });
    gwSide.on('error', () => {});
    client.on('error', () => {});
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const session = h2Connect(`https://127.0.0.1:${(relay.address() as AddressInfo).port}`, { servername: 'big.test', rejectUnauthorized: false, settings: { initialWindowSize: 2 ** 31 - 1 } });
  session.on('error', () => {});
  session.on('connect', () => session.setLocalWindowSize(2 ** 31 - 1));
  const req = session.request({ ':authority': 'big.test', ':path': '/endless' });
  req.on('error', () => {});
  let received = 0;
  req.on('data', (d: Buffer) => (received += d.length));
  req.end();
  return {
    stopped,
    received: () => received,
    resume: () => gwSide.resume(),
    leave: (how) => {
      if (how === 'reset') gwSide.resetAndDestroy();
      else gwSide.destroy();
      clientSide.destroy();
    },
    session,
    relay,
  };
}

/** The gateway's client connections gauge. */
async function activeConnections(gw: GatewayProcess): Promise<number> {
  const m = /nginx_ingress_controller_nginx_process_connections\{state="active"\} (\d+)/.exec(await gw.metrics());
  return Number(m?.[1] ?? 0);
}

describe('netplane ingress: an HTTP/2 client gone while the write to it is stalled', () => {
  const big = new EndlessBackend();
  const gw = new GatewayProcess();
  const open: Stalled[] = [];

  beforeAll(async () => {
    await big.start();
    const cert = await makeCert('big.test');
    const ingress = ingressYaml({ name: 'big', host: 'big.test', paths: [['Prefix', '/', 'big']], tlsSecret: 'big-tls', annotations: { 'nginx.ingress.kubernetes.io/proxy-read-timeout': '30' } });
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('big', [big as unknown as EchoBackend]), tlsSecretYaml('big-tls', cert), ingress].join('---\n'));
    await gw.start([], { host: 'big.test', path: '/small' });
  }, 30_000);

  afterEach(async () => {
    for (const s of open.splice(0)) {
      s.session.destroy();
      s.leave('close');
      await new Promise((r) => s.relay.close(r));
    }
    await waitFor('the upstream connections to close', () => big.sockets.size === 0, 5000, 20);
  });

  afterAll(async () => {
    await gw.stop();
    await big.stop();
  });

  it.each<[Leaving]>([['reset'], ['close']])('a client that leaves (%s) is freed at once: upstream request, stream and connection', async (how) => {
    const baseline = await activeConnections(gw);
    const lines = accessLines(gw, '/endless').length;
    const s = await stalledRequest(gw.https);
    open.push(s);
    await s.stopped;
    expect(big.sockets.size).toBe(1);
    expect(await activeConnections(gw)).toBe(baseline + 1);
    const t0 = performance.now();
    s.leave(how);
    await waitFor('the backend to see its connection closed', () => big.sockets.size === 0, 3000, 10);
    expect(performance.now() - t0).toBeLessThan(2000);
    await waitFor('the client connection to be counted out', async () => (await activeConnections(gw)) === baseline, 3000, 50);
    await waitFor('the access-log line', () => accessLines(gw, '/endless').length === lines + 1, 3000, 20);
    expect(accessLines(gw, '/endless').at(-1)).toMatchObject({ status: 200, error: 'CLIENT_ABORTED', http: '2.0' });
  });

  it('a client that is only slow keeps its stream: after 1.5 s without reading it gets the rest of the body', async () => {
    const s = await stalledRequest(gw.https);
    open.push(s);
    await s.stopped;
    await new Promise((r) => setTimeout(r, 1500));
    expect(big.sockets.size).toBe(1);
    const before = s.received();
    s.resume();
    await waitFor('more of the body', () => s.received() > before + 4 * 1024 * 1024, 5000, 20);
    expect(s.session.destroyed).toBe(false);
    expect(accessLines(gw, '/endless').filter((l) => l.error !== undefined && (l.ms as number) > 1000)).toEqual([]);
  });
});

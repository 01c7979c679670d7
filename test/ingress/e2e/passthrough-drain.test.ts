// SIGTERM and `netplane ingress --enable-ssl-passthrough`: the HTTPS listener stops accepting at once, while a
// connection already passed through to its TLS backend keeps carrying data both ways until its client closes it
// (then the gateway exits 0, long before --drain-timeout) or until --drain-timeout (then the gateway closes it and
// exits). The gateway runs as a child process; the client is Node's TLS client, the backend a TLS echo server.
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, listenLoopback, serviceYaml, tlsSecretYaml } from './harness.ts';

const pass = { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' };

/** A TLS connection to echo.test through the gateway, verified against the backend's CA; every byte read is kept. */
interface Client {
  socket: TLSSocket;
  received: () => string;
  closed: Promise<number>;
}

/** Every client opened, destroyed after the tests (a failed test may leave one open, holding its gateway's drain). */
const opened: TLSSocket[] = [];

function open(port: number, ca: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'echo.test', ca }, () => resolve({ socket, received: () => got, closed }));
    opened.push(socket);
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    socket.once('error', reject);
  });
}

/** Sends `text` and waits for the echo backend to send it back. */
async function roundTrip(c: Client, text: string): Promise<void> {
  c.socket.write(text);
  await waitFor(`the echo of ${text}`, () => c.received().includes(text), 3000, 10);
}

/** The gateway's passthrough access-log lines for echo.test (one per connection, written when it has closed). */
const passedLines = (gw: GatewayProcess) => gw.output.split('\n').filter((l) => l.includes('"sni":"echo.test","passthrough":true'));

/** The record of a log line with message `msg`, once the gateway has written it. */
async function logRecord(gw: GatewayProcess, msg: string): Promise<Record<string, unknown>> {
  const line = await waitFor(`the "${msg}" log line`, () => gw.output.split('\n').find((l) => l.includes(`"msg":"${msg}"`)) ?? '', 5000, 10);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Whether a TCP connection to the port is refused. */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });

describe('netplane ingress: SIGTERM drains passed-through TLS connections', () => {
  let pems: Pems;
  let ca = '';
  let backend: TlsServer;
  let backendPort = 0;
  const gateways: GatewayProcess[] = [];
  // A terminated host beside the passed-through one: its /slow answers after 1.5 s.
  const web = new EchoBackend('web');
  let slowStarted = 0;
  web.handler = (req, res) => {
    if (req.url !== '/slow') return false;
    slowStarted++;
    setTimeout(() => res.end('slow answer'), 1500);
    return true;
  };
  let webPems: Pems;

  beforeAll(async () => {
    const backendCa = await makeCert('backend CA', ['backend-ca.invalid'], { isCa: true });
    ca = backendCa.cert;
    pems = await makeCert('echo.test', ['echo.test'], { ca: backendCa });
    // Echoes every byte; closes when its client does.
    backend = createTlsServer({ cert: pems.cert, key: pems.key }, (s) => (s.on('error', () => {}), s.pipe(s)));
    backendPort = await listenLoopback(backend);
    await web.start();
    webPems = await makeCert('web.test', ['web.test']);
  });

  afterAll(async () => {
    for (const s of opened) s.destroy();
    for (const gw of gateways) await gw.stop();
    await new Promise((r) => backend.close(r));
    await web.stop();
  });

  /** A gateway passing echo.test through to the backend, with `--drain-timeout`, once a connection goes through. */
  async function gateway(drainTimeout: string): Promise<GatewayProcess> {
    const gw = new GatewayProcess();
    gateways.push(gw);
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('echo', [{ port: backendPort } as EchoBackend]),
        ingressYaml({ name: 'echo', host: 'echo.test', paths: [['Prefix', '/', 'echo']], annotations: pass }),
        serviceYaml('web', [web]),
        tlsSecretYaml('web-tls', webPems),
        ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'web-tls' }),
      ].join('---\n'),
    );
    await gw.start(['--enable-ssl-passthrough', '--drain-timeout', drainTimeout]);
    let probes = 0;
    await waitFor('echo.test passed through', async () => {
      const c = await open(gw.https, ca).catch(() => undefined);
      if (!c) return false;
      probes++;
      await roundTrip(c, 'probe').catch(() => undefined);
      c.socket.destroy();
      return c.received() === 'probe';
    }, 10_000, 100);
    // The probes are logged as they close: none may still be open at SIGTERM.
    await waitFor('the probes closed', () => passedLines(gw).length === probes, 5000, 20);
    return gw;
  }

  it('a connection open at SIGTERM carries data both ways until its client closes it; nothing new is accepted; the gateway then exits 0 at once', async () => {
    const gw = await gateway('20s');
    const c = await open(gw.https, ca);
    await roundTrip(c, 'before SIGTERM|');
    gw.child!.kill('SIGTERM');
    // The drain counts it as work in flight, as it counts HTTP requests.
    expect(await logRecord(gw, 'draining')).toMatchObject({ inFlight: 1 });
    await waitFor('the HTTPS listener closed', () => refused(gw.https), 3000, 20);
    // Terminated hosts too: the HTTP listener is closed as well.
    expect(await refused(gw.http)).toBe(true);
    await roundTrip(c, 'after SIGTERM|');
    await new Promise((r) => setTimeout(r, 1000));
    expect(gw.child!.exitCode).toBeNull();
    await roundTrip(c, 'a second later|');
    const closing = performance.now();
    c.socket.end();
    expect(await gw.exited).toBe(0);
    expect(performance.now() - closing).toBeLessThan(3000);
    expect(c.received()).toBe('before SIGTERM|after SIGTERM|a second later|');
    // Its access-log line is written when it closes, before the exit.
    expect(passedLines(gw).at(-1)).toMatch(/"endpoint":"127\.0\.0\.1:\d+".*"sent":\d+/);
  }, 30_000);

  it('five passed-through connections and a terminated HTTPS request in flight: each finishes, and the gateway exits after the last', async () => {
    const gw = await gateway('20s');
    const clients = await Promise.all(Array.from({ length: 5 }, () => open(gw.https, ca)));
    for (const [i, c] of clients.entries()) await roundTrip(c, `before ${i}|`);
    const answer = new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: gw.https, servername: 'web.test', headers: { host: 'web.test' }, path: '/slow', rejectUnauthorized: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      });
      req.on('error', reject);
      req.end();
    });
    const started = slowStarted;
    await waitFor('the request in flight', () => slowStarted > started, 3000, 10);
    gw.child!.kill('SIGTERM');
    expect(await logRecord(gw, 'draining')).toMatchObject({ inFlight: 6 });
    expect(await answer).toBe('200 slow answer');
    // One by one: the gateway stays up while any is open, and each still carries data.
    for (const [i, c] of clients.entries()) {
      await roundTrip(c, `after ${i}|`);
      expect(gw.child!.exitCode).toBeNull();
      c.socket.end();
      await c.closed;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await gw.exited).toBe(0);
    for (const [i, c] of clients.entries()) expect(c.received()).toBe(`before ${i}|after ${i}|`);
  }, 30_000);

  it('a connection its client keeps open is closed at --drain-timeout, and the gateway exits 0', async () => {
    const gw = await gateway('1500ms');
    const c = await open(gw.https, ca);
    await roundTrip(c, 'before|');
    const term = performance.now();
    gw.child!.kill('SIGTERM');
    expect(await logRecord(gw, 'draining')).toMatchObject({ inFlight: 1 });
    await new Promise((r) => setTimeout(r, 700));
    await roundTrip(c, 'still open|');
    const [closedAt, code] = await Promise.all([c.closed, gw.exited]);
    expect(code).toBe(0);
    const exitedAt = performance.now();
    expect(closedAt - term).toBeGreaterThanOrEqual(1400);
    expect(exitedAt - term).toBeLessThan(4500);
    expect(await logRecord(gw, 'drain timeout: closing what is still in flight')).toMatchObject({ inFlight: 1, passthrough: 1 });
    expect(passedLines(gw).at(-1)).toContain('"error":"closed at shutdown (--drain-timeout)"');
  }, 30_000);
});

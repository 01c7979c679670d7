// Clients that go away mid-request, over real sockets to the gateway process: an HTTP/2 client that drops its TCP
// connection while the response waits on flow control (what curl -m does), one that resets its stream, and an
// HTTP/1.1 client that closes its socket. Each must free the upstream connection at once and be logged; more of them
// than the per-endpoint pool holds must not take the route down.
import { connect as h2Connect, constants as h2c, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { accessLines, EndlessBackend } from './endless-backend.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';
import { stalledDropsInWorker } from './stalled-drop.ts';

/** How an HTTP/2 client gives up on its request. */
type Abandon =
  /** Destroys its TCP connection without a frame (curl -m): the raw socket under the session. */
  | 'drop'
  /** Destroys its session (GOAWAY, then the connection closes). */
  | 'destroy'
  /** Resets the stream with NO_ERROR (Node keeps such a stream open until its writes drain, i.e. forever). */
  | 'reset-no-error'
  /** Resets the stream with CANCEL (a browser cancelling), keeping the session. */
  | 'cancel';

const openSessions: ClientHttp2Session[] = [];

/**
 * An HTTP/2 request for `path` given up `how`, after its first body chunk (`afterHeaders`: 200 ms after sending,
 * before any response). The client stops reading first, so the gateway's stream stalls on flow control.
 */
function h2Abandon(port: number, path: string, how: Abandon, before = false): Promise<void> {
  return new Promise((resolve) => {
    let raw: TLSSocket | undefined;
    const session = h2Connect(`https://127.0.0.1:${port}`, {
      createConnection: () => (raw = tlsConnect({ host: '127.0.0.1', port, servername: 'big.test', ALPNProtocols: ['h2'], rejectUnauthorized: false })),
    });
    session.on('error', () => {});
    const req = session.request({ ':authority': 'big.test', ':path': path });
    req.on('error', () => {});
    const act = () => {
      if (how === 'drop') raw!.destroy();
      else if (how === 'destroy') session.destroy();
      else req.close(how === 'cancel' ? h2c.NGHTTP2_CANCEL : h2c.NGHTTP2_NO_ERROR);
      // A reset leaves the session open, so only the reset can end the request; it is destroyed after the tests.
      if (how === 'drop' || how === 'destroy') raw!.once('close', () => resolve());
      else (openSessions.push(session), setTimeout(resolve, 100));
    };
    if (before) setTimeout(act, 200);
    else req.once('data', () => (req.pause(), setTimeout(act, 100)));
    req.end();
  });
}

describe('netplane ingress: clients that go away', () => {
  const big = new EndlessBackend();
  const gw = new GatewayProcess();
  let small: EchoBackend;

  beforeAll(async () => {
    await big.start();
    small = await new EchoBackend('small').start();
    const cert = await makeCert('big.test');
    // proxy-read-timeout 5 s bounds a cut a reset did not make (CLIENT_TIMEOUT) inside the waits below. At 2 s, this
    // test's own backend, slowed by 130 TLS clients at once on a loaded 2-core machine, answered some requests later
    // than that, and the gateway rightly gave them 504 instead of the endless body the clients waited for.
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('big', [big as unknown as EchoBackend]), tlsSecretYaml('big-tls', cert), ingressYaml({ name: 'big', host: 'big.test', paths: [['Prefix', '/', 'big']], tlsSecret: 'big-tls', annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false', 'nginx.ingress.kubernetes.io/proxy-read-timeout': '5' } })].join('---\n'));
    await gw.start([], { host: 'big.test', path: '/small' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    for (const s of openSessions) s.destroy();
    await big.stop();
    await small.stop();
  });

  const idle = () => waitFor('the upstream connections to close', () => big.sockets.size === 0, 5000, 20);

  it.each<[Abandon]>([['drop'], ['destroy'], ['reset-no-error'], ['cancel']])('an HTTP/2 client that gives up mid-body (%s) frees the upstream connection and is logged', async (how) => {
    const before = accessLines(gw, '/endless').length;
    await idle();
    await h2Abandon(gw.https, '/endless', how);
    await idle();
    await waitFor('the access-log line', () => accessLines(gw, '/endless').length === before + 1, 3000, 20);
    // The client got the status and part of the body: nginx logs the status sent, and 499 only when nothing was
    // (ngx_http_terminate_request); the error says why the response is short.
    expect(accessLines(gw, '/endless').at(-1)).toMatchObject({ status: 200, error: 'CLIENT_ABORTED', http: '2.0' });
  });

  it.each<[Abandon]>([['drop'], ['reset-no-error']])('an HTTP/2 client that gives up before the response (%s) is logged 499 at once', async (how) => {
    const before = accessLines(gw, '/late').length;
    await h2Abandon(gw.https, '/late', how, true);
    await idle();
    await waitFor('the access-log line', () => accessLines(gw, '/late').length === before + 1, 3000, 20);
    const line = accessLines(gw, '/late').at(-1)!;
    expect(line).toMatchObject({ status: 499, error: 'CLIENT_ABORTED' });
    expect(line.ms as number).toBeLessThan(2000);
  });

  it('an HTTP/1.1 client that closes its socket mid-body frees the upstream connection', async () => {
    const before = accessLines(gw, '/endless').length;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.http, path: '/endless', headers: { host: 'big.test' }, agent: false }, (res) => {
        res.once('data', () => (res.pause(), setTimeout(() => req.destroy(), 100)));
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
    });
    await idle();
    await waitFor('the access-log line', () => accessLines(gw, '/endless').length === before + 1, 3000, 20);
    expect(accessLines(gw, '/endless').at(-1)).toMatchObject({ status: 200, error: 'CLIENT_ABORTED', http: '1.1' });
  });

  it('more clients than the pool holds (128) dropping their connections leave the route answering', async () => {
    const before = accessLines(gw, '/endless').length;
    const ways: Abandon[] = ['drop', 'reset-no-error'];
    for (let round = 0; round < 7; round++) await Promise.all(Array.from({ length: 20 }, (_, i) => h2Abandon(gw.https, '/endless', ways[i % 2]!)));
    await idle();
    await waitFor('140 access-log lines', () => accessLines(gw, '/endless').length === before + 140, 5000, 20);
    const r = await gw.get('big.test', '/small');
    expect(r.status).toBe(200);
    expect(r.text).toBe('small');
    // Counted as logged: the two clients that left before any response as 499.
    expect(await gw.metrics()).toMatch(/nginx_ingress_controller_requests\{[^}]*service="big"[^}]*status="499"[^}]*\} 2\n/);
  }, 30_000);

  it('a client gone while a write to it is pending is cut (once its reset is seen, at the latest after proxy-read-timeout), even 130 of them at once', async () => {
    const before = accessLines(gw, '/endless').length;
    // The clients run in a worker thread, so that their TLS and relays do not hold up the backend on this one.
    await stalledDropsInWorker(gw.https, 'big.test', '/endless', 130);
    await waitFor('the upstream connections to close', () => big.sockets.size === 0, 8000, 50);
    await waitFor('130 access-log lines', () => accessLines(gw, '/endless').length === before + 130, 3000, 20);
    for (const line of accessLines(gw, '/endless').slice(before)) expect(line).toMatchObject({ status: 200, error: expect.stringMatching(/^CLIENT_(ABORTED|TIMEOUT)$/) });
    expect((await gw.get('big.test', '/small')).status).toBe(200);
  }, 30_000);

  it('SIGTERM does not wait for a request whose client is gone', async () => {
    await h2Abandon(gw.https, '/endless', 'reset-no-error');
    const t0 = performance.now();
    expect(await gw.stop()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});

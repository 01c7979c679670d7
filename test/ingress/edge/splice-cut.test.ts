// splice() cut by its signal (the gateway's drain timing out) between real sockets on 127.0.0.1: whatever the
// stage, the client's and the endpoint's connections are both closed at once (not after the 10 s a half-closed
// side gets to take what is left), and the result says the splice was cut at shutdown.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cutByShutdown, splice } from '../../../ingress/edge/splice.ts';
import { waitFor } from '../../helpers/wait.ts';

/** A listening socket on 127.0.0.1 and the sockets it accepted. */
async function listening(options: { pauseOnConnect?: boolean; allowHalfOpen?: boolean } = {}): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer(options, (s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

/** When a socket's peer closed the connection (performance.now()): its end, or its close (after a reset). */
const closedAt = (s: Socket) =>
  new Promise<number>((r) => {
    const now = () => r(performance.now());
    if (s.destroyed || s.readableEnded) return now();
    s.once('end', now).once('close', now).resume();
  });

// [stage, what the client does before the cut]
const stages: Array<[string, 'nothing' | 'half-close']> = [
  ['while bytes flow both ways', 'nothing'],
  ['after the client half-closed (the endpoint keeps its side open)', 'half-close'],
];

describe('splice cut by its signal', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.close();
      (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
  });

  it.each(stages)('%s: both connections closed at once', async (_stage, before) => {
    // The endpoint answers each chunk and never closes its side on its own; its ticks make it see a closed
    // connection (a write fails) even after the client's half-close reached it.
    const up = await listening({ allowHalfOpen: true });
    const front = await listening({ pauseOnConnect: true, allowHalfOpen: true });
    servers.push(up.server, front.server);
    up.server.on('connection', (s: Socket) => {
      s.on('data', (d: Buffer) => s.write(`echo:${d}`));
      const tick = setInterval(() => s.write('.'), 20);
      s.once('close', () => clearInterval(tick));
    });
    const client = connect({ host: '127.0.0.1', port: front.port, allowHalfOpen: true });
    client.on('error', () => {});
    const gatewaySide = (await waitFor('the accepted connection', () => front.accepted[0]))!;
    const cut = new AbortController();
    const done = splice(gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 1, signal: cut.signal });
    let got = '';
    client.on('data', (d: Buffer) => (got += d));
    await waitFor('the echo', () => got.includes('echo:hello'));
    if (before === 'half-close') client.end();
    const endpointSide = up.accepted[0]!;
    await new Promise((r) => setTimeout(r, 100));
    expect(endpointSide.destroyed).toBe(false);
    const t0 = performance.now();
    cut.abort();
    const endpointClosed = new Promise<number>((r) => endpointSide.once('close', () => r(performance.now())));
    const [clientClosed, endpointClosedAt, result] = await Promise.all([closedAt(client), endpointClosed, done]);
    expect(clientClosed - t0).toBeLessThan(1000);
    expect(endpointClosedAt - t0).toBeLessThan(1000);
    expect(result).toMatchObject({ endpoint: `127.0.0.1:${up.port}`, error: cutByShutdown, sent: 5 });
  });

  it('a signal already aborted: the client is closed and no endpoint is connected', async () => {
    const up = await listening();
    const front = await listening({ pauseOnConnect: true, allowHalfOpen: true });
    servers.push(up.server, front.server);
    const client = connect({ host: '127.0.0.1', port: front.port });
    client.on('error', () => {});
    const gatewaySide = (await waitFor('the accepted connection', () => front.accepted[0]))!;
    const result = await splice(gatewaySide, Buffer.from('hello'), [{ ip: '127.0.0.1', port: up.port }], { connectTimeoutMs: 1000, tries: 1, signal: AbortSignal.abort() });
    expect(result).toMatchObject({ error: cutByShutdown, sent: 0 });
    await closedAt(client);
    await new Promise((r) => setTimeout(r, 100));
    expect(up.accepted).toEqual([]);
  });
});

// SIGTERM as a client on a kept-alive HTTP/1.1 connection sees it: a request in flight when the drain starts is
// answered with `Connection: close` and its connection closed after it, as nginx's header filter answers while it
// exits (ngx_exiting clears keepalive), so the client never sends another request on a connection about to close.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';

/** What a raw client read on its connection, and whether the gateway closed it. */
interface RawConnection {
  socket: Socket;
  text: () => string;
  closed: Promise<void>;
}

function rawConnection(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, text: () => text, closed }));
  });
}

describe('netplane ingress: drain on SIGTERM', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('answers the requests in flight with Connection: close, then closes their connections', async () => {
    const slow = new EchoBackend('slow');
    slow.handler = (req, res) => {
      if (req.url !== '/slow') return false;
      setTimeout(() => res.end('done slowly'), 1000);
      return true;
    };
    await slow.start();
    cleanups.push(() => slow.stop());
    const gw = new GatewayProcess();
    cleanups.push(() => gw.stop());
    gw.write('all.yaml', `${ingressClassYaml}---\n${serviceYaml('slow', [slow])}${ingressYaml({ name: 'slow', host: 'slow.test', paths: [['Prefix', '/', 'slow']] })}`);
    await gw.start(['--access-log', 'off'], { host: 'slow.test' });

    const c = await rawConnection(gw.http);
    c.socket.write('GET /slow HTTP/1.1\r\nHost: slow.test\r\n\r\n');
    await new Promise((r) => setTimeout(r, 300));
    gw.child!.kill('SIGTERM');
    await c.closed;
    const head = c.text().split('\r\n\r\n')[0]!;
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head.toLowerCase()).toContain('\r\nconnection: close');
    expect(head.toLowerCase()).not.toContain('keep-alive');
    expect(c.text().endsWith('done slowly')).toBe(true);
    expect(await gw.exited).toBe(0);
  });
});

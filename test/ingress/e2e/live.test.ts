// What happens while `netplane ingress` serves: WebSocket upgrades relayed, routes and endpoints changed under load
// without a failed request, and a graceful drain on SIGTERM.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, serviceYaml } from './harness.ts';

function ingressYaml(name: string, host: string | undefined, service: string): string {
  return `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: ${name}, namespace: default }
spec:
  rules:
    - ${host ? `host: ${host}\n      ` : ''}http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: ${service}, port: { name: http } } } }] }
`;
}

/** Makes `backend` a WebSocket server that echoes text frames back in upper case; `seen` gets each upgrade's headers. */
function serveWebSocket(backend: EchoBackend, seen: Array<Record<string, unknown>>): void {
  backend.server.on('upgrade', (req, socket: Socket) => {
    seen.push(req.headers);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (frame: Buffer) => {
      // Client frames are masked, short text frames here (RFC 6455 §5.2); answer unmasked.
      const opcode = frame[0]! & 0x0f;
      if (opcode !== 1) return void socket.end();
      const len = frame[1]! & 0x7f;
      const mask = frame.subarray(2, 6);
      const text = Buffer.from(frame.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!)).toString().toUpperCase();
      socket.write(Buffer.concat([Buffer.from([0x81, text.length]), Buffer.from(text)]));
    });
    socket.on('error', () => {});
  });
}

describe('netplane ingress while serving', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(backends: EchoBackend[]): Promise<GatewayProcess> {
    await Promise.all(backends.map((b) => b.start()));
    cleanups.push(() => Promise.all(backends.map((b) => b.stop())));
    const gw = new GatewayProcess();
    cleanups.push(() => gw.stop());
    return gw;
  }

  it('relays WebSocket upgrades both ways, with the route and the forwarded headers', async () => {
    const ws = new EchoBackend('ws');
    const upgrades: Array<Record<string, unknown>> = [];
    serveWebSocket(ws, upgrades);
    const gw = await setup([ws]);
    // A rule without host: Node's WebSocket client (undici) takes the Host header from the URL, 127.0.0.1 here.
    gw.write('all.yaml', `${ingressClassYaml}---\n${serviceYaml('ws', [ws])}${ingressYaml('ws', undefined, 'ws')}`);
    await gw.start(['--access-log', 'off'], { host: '127.0.0.1' });
    const client = new WebSocket(`ws://127.0.0.1:${gw.http}/chat`);
    const got = await new Promise<string>((resolve, reject) => {
      client.onopen = () => client.send('hello through the gateway');
      client.onmessage = (m) => resolve(String(m.data));
      client.onerror = () => reject(new Error('websocket failed'));
    });
    client.close();
    expect(got).toBe('HELLO THROUGH THE GATEWAY');
    expect(upgrades).toHaveLength(1);
    expect(upgrades[0]).toMatchObject({ upgrade: 'websocket', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http' });
  });

  it('applies route and endpoint changes under load without failing a request', async () => {
    const [one, two, three] = [new EchoBackend('one'), new EchoBackend('two'), new EchoBackend('three')];
    const gw = await setup([one, two, three]);
    gw.write('class.yaml', ingressClassYaml);
    gw.write('web.yaml', serviceYaml('web', [one]));
    gw.write('ingress.yaml', ingressYaml('web', 'web.test', 'web'));
    await gw.start(['--access-log', 'off'], { host: 'web.test' });

    const agent = new Agent({ connections: 8 });
    cleanups.push(() => agent.close());
    const statuses = new Map<number, number>();
    const seen = new Set<string>();
    let running = true;
    const worker = async () => {
      while (running) {
        const r = await request(`http://127.0.0.1:${gw.http}/`, { headers: { host: 'web.test' }, dispatcher: agent }).then(
          async (r) => ({ status: r.statusCode, text: await r.body.text() }),
          (e: Error) => ({ status: -1, text: e.message }),
        );
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) seen.add(echoOf({ status: 200, headers: {}, text: r.text }).backend);
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await pause(300);
    // Scale out, move every endpoint, add an unrelated Ingress, change this one's annotations, then scale in.
    gw.write('web.yaml', serviceYaml('web', [one, two]));
    await waitFor('the second endpoint', () => seen.has('two'), 5000, 20);
    gw.write('other.yaml', ingressYaml('other', 'other.test', 'web'));
    gw.write('web.yaml', serviceYaml('web', [two, three]));
    await waitFor('the third endpoint', () => seen.has('three'), 5000, 20);
    gw.write('ingress.yaml', ingressYaml('web', 'web.test', 'web').replace('namespace: default }', 'namespace: default, annotations: { nginx.ingress.kubernetes.io/proxy-read-timeout: "30" } }'));
    await pause(1500);
    gw.write('web.yaml', serviceYaml('web', [three]));
    await pause(1500);
    running = false;
    await Promise.all(workers);

    expect(Object.fromEntries(statuses)).toEqual({ 200: expect.any(Number) });
    expect(statuses.get(200)).toBeGreaterThan(200);
    expect(seen).toEqual(new Set(['one', 'two', 'three']));
    expect((await gw.get('other.test', '/')).status).toBe(200);
  }, 30_000);

  it('drains on SIGTERM: stops accepting, finishes the request in flight, exits 0', async () => {
    const slow = new EchoBackend('slow');
    slow.handler = (req, res) => {
      if (req.url !== '/slow') return false;
      setTimeout(() => res.end('done slowly'), 1500);
      return true;
    };
    const gw = await setup([slow]);
    gw.write('all.yaml', `${ingressClassYaml}---\n${serviceYaml('slow', [slow])}${ingressYaml('slow', 'slow.test', 'slow')}`);
    await gw.start(['--access-log', 'off'], { host: 'slow.test' });
    const inFlight = gw.get('slow.test', '/slow');
    await new Promise((r) => setTimeout(r, 300));
    gw.child!.kill('SIGTERM');
    await waitFor('the listener to close', async () => {
      try {
        await request(`http://127.0.0.1:${gw.http}/`, { headers: { host: 'slow.test', connection: 'close' } });
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      }
    }, 1000, 20);
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.text).toBe('done slowly');
    expect(await gw.exited).toBe(0);
    expect(gw.output).toMatch(/"msg":"draining"/);
  });
});

// The UDP listener's optional `responses` (nginx's proxy_responses, for ingress-nginx's proxy-stream-responses) over
// real sockets on loopback: without it a flow lives until idle, as the userspace proxy has it; with it a flow ends
// once every datagram of the client has had that many answers (0: once they are sent), so the client's next datagram
// opens a new flow, round robin; answers past the count are lost with the flow; configure() changes it in place.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { ListenerSpec } from '../../../proxy/userspace/listeners.ts';
import { UdpListener, type UdpOptions } from '../../../proxy/userspace/udp.ts';
import { freePort, udpEndpoint } from './servers.ts';
import { waitFor } from '../../helpers/wait.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A UDP endpoint answering every datagram `times` times, `NAME MESSAGE #i`. */
async function chatty(name: string, times: number): Promise<{ target: { ip: string; port: number } }> {
  const socket = createSocket('udp4');
  socket.on('message', (m, r) => {
    for (let i = 1; i <= times; i++) socket.send(`${name} ${m} #${i}`, r.port, r.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { target: { ip: '127.0.0.1', port: socket.address().port } };
}

/** A listener on a free port of 127.0.0.1 to `targets`, counting the flows it opens. */
async function listener(targets: Array<{ ip: string; port: number }>, options: Partial<UdpOptions> = {}): Promise<{ port: number; udp: UdpListener; flows: () => number }> {
  const port = await freePort();
  let flows = 0;
  const spec: ListenerSpec = { key: `UDP/${port}`, service: 'default/dns', protocol: 'UDP', port, nodePort: false, endpoints: targets, affinitySeconds: 0 };
  const udp = new UdpListener(spec, { host: '127.0.0.1', idleMs: 30_000, maxFlows: 64, onError: () => {}, onFlow: () => flows++, ...options });
  await udp.listen();
  cleanups.push(() => udp.close());
  return { port, udp, flows: () => flows };
}

/** A client socket on 127.0.0.1 collecting every datagram it gets. */
async function client(): Promise<{ socket: Socket; got: string[]; send: (port: number, text: string) => void }> {
  const socket = createSocket('udp4');
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, got, send: (port, text) => socket.send(text, port, '127.0.0.1') };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('UDP listener, responses per datagram', () => {
  it('without it, a client keeps one flow and one endpoint until idle', async () => {
    const eps = await Promise.all(['a', 'b'].map((n) => udpEndpoint(n)));
    cleanups.push(() => Promise.all(eps.map((e) => e.close())));
    const l = await listener(eps.map((e) => e.target));
    const c = await client();
    for (let i = 0; i < 4; i++) {
      c.send(l.port, `q${i}`);
      await waitFor(`answer ${i}`, () => c.got.length === i + 1);
    }
    expect(new Set(c.got.map((g) => g[0])).size).toBe(1);
    expect([l.flows(), l.udp.flows]).toEqual([1, 1]);
  });

  it('1: the flow ends at the answer, and the same client\'s next datagram opens a new flow, to the next endpoint', async () => {
    const eps = await Promise.all(['a', 'b'].map((n) => udpEndpoint(n)));
    cleanups.push(() => Promise.all(eps.map((e) => e.close())));
    const l = await listener(eps.map((e) => e.target), { responses: 1 });
    const c = await client();
    for (let i = 0; i < 4; i++) {
      c.send(l.port, `q${i}`);
      await waitFor(`answer ${i}`, () => c.got.length === i + 1);
      await waitFor('the flow to end', () => l.udp.flows === 0);
    }
    expect(l.flows()).toBe(4);
    expect(new Set(c.got.map((g) => g[0]))).toEqual(new Set(['a', 'b']));
  });

  it('2: an endpoint answering twice gets both answers through, then the flow ends; with 1 the second is lost', async () => {
    const twice = await chatty('t', 2);
    const two = await listener([twice.target], { responses: 2 });
    const c = await client();
    c.send(two.port, 'q');
    await waitFor('both answers', () => c.got.length === 2);
    await waitFor('the flow to end', () => two.udp.flows === 0);
    expect(c.got).toEqual(['t q #1', 't q #2']);

    const one = await listener([twice.target], { responses: 1 });
    const d = await client();
    d.send(one.port, 'q');
    await waitFor('the first answer', () => d.got.length === 1);
    await pause(200);
    expect(d.got).toEqual(['t q #1']);
  });

  it('0: the flow ends once the datagram is sent, and no answer comes back', async () => {
    const ep = await udpEndpoint('a');
    cleanups.push(() => ep.close());
    let reached = 0;
    ep.socket.on('message', () => reached++);
    const l = await listener([ep.target], { responses: 0 });
    const c = await client();
    c.send(l.port, 'fire');
    c.send(l.port, 'forget');
    await waitFor('both datagrams at the endpoint', () => reached === 2);
    await waitFor('the flows to end', () => l.udp.flows === 0);
    await pause(200);
    expect(c.got).toEqual([]);
  });

  it('configure(): an open flow ends by the new count at its next answer; the idle time changes too', async () => {
    const eps = await Promise.all(['a'].map((n) => udpEndpoint(n)));
    cleanups.push(() => Promise.all(eps.map((e) => e.close())));
    const l = await listener(eps.map((e) => e.target));
    const c = await client();
    c.send(l.port, 'one');
    await waitFor('the answer', () => c.got.length === 1);
    expect(l.udp.flows).toBe(1);
    l.udp.configure({ responses: 1 });
    c.send(l.port, 'two');
    await waitFor('the flow to end', () => l.udp.flows === 0);
    l.udp.configure({ responses: undefined, idleMs: 100 });
    c.send(l.port, 'three');
    await waitFor('the answer', () => c.got.length === 3);
    expect(l.udp.flows).toBe(1);
    await waitFor('the flow to end when idle', () => l.udp.flows === 0, 2000);
  });
});

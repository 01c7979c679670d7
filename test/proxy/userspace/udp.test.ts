// The userspace backend relaying UDP on loopback to in-process endpoints.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UserspaceBackend } from '../../../proxy/userspace/backend.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { plan, portPlan } from './plans.ts';
import { freePort, udpAsk, udpEndpoint } from './servers.ts';
import { captureLogger } from '../../helpers/wait.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(names: string[], udpIdleMs = 30_000, extra: { udpMaxFlows?: number; onUdpEviction?: () => void } = {}) {
  const eps = await Promise.all(names.map((n) => udpEndpoint(n)));
  cleanups.push(() => Promise.all(eps.map((e) => e.close())));
  const port = await freePort();
  const backend = new UserspaceBackend({ log: silentLogger(), udpIdleMs, ...extra });
  cleanups.push(() => backend.close());
  const portPlanOf = (targets = eps.map((e) => e.target)) => portPlan({ name: 'dns', protocol: 'UDP', port, clusterEndpoints: targets });
  await backend.sync(plan(portPlanOf()), { full: true });
  return { eps, port, backend, portPlanOf };
}

async function udpClient(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

describe('userspace backend, UDP', () => {
  it('relays datagrams and replies; a client keeps its endpoint while its flow lives; clients are spread', async () => {
    const { port, backend } = await setup(['a', 'b']);
    expect(backend.listeners()).toEqual([{ key: 'default/dns:p/UDP/v4', protocol: 'UDP', address: '127.0.0.1', port }]);
    const one = await udpClient();
    const first = await udpAsk(one, port, 'ping');
    expect(first).toMatch(/^[ab] ping$/);
    const replyFrom = await new Promise<number>((resolve) => {
      one.once('message', (_m, r) => resolve(r.port));
      one.send('again', port, '127.0.0.1');
    });
    expect(replyFrom).toBe(port);
    for (let i = 0; i < 3; i++) expect((await udpAsk(one, port, `n${i}`))[0]).toBe(first[0]);
    const two = await udpClient();
    expect((await udpAsk(two, port, 'ping'))[0]).not.toBe(first[0]);
  });

  it('keeps a flow to an endpoint that still serves but is no longer chosen (terminating), and ends it once it stops serving (found by an audit: it was cut at once)', async () => {
    const { eps, port, backend } = await setup(['a', 'b']);
    const c = await udpClient();
    const first = (await udpAsk(c, port, 'x'))[0]!;
    const mine = eps[first === 'a' ? 0 : 1]!.target;
    const other = eps[first === 'a' ? 1 : 0]!.target;
    // Its endpoint terminates: no longer chosen for new clients, still serving.
    await backend.sync(plan(portPlan({ name: 'dns', protocol: 'UDP', port, clusterEndpoints: [other], servingEndpoints: [mine, other] })), { full: false });
    for (let i = 0; i < 3; i++) expect((await udpAsk(c, port, `q${i}`))[0]).toBe(first);
    const fresh = await udpClient();
    expect((await udpAsk(fresh, port, 'new'))[0]).not.toBe(first);
    // It is gone: the flow ends and the client moves.
    await backend.sync(plan(portPlan({ name: 'dns', protocol: 'UDP', port, clusterEndpoints: [other], servingEndpoints: [other] })), { full: false });
    expect((await udpAsk(c, port, 'moved'))[0]).not.toBe(first);
  });

  it('says once that UDP ports bound to a wildcard address answer from the kernel\'s preferred source (found by an audit)', async () => {
    const { log, records } = captureLogger();
    const [a] = await Promise.all([udpEndpoint('a')]);
    cleanups.push(() => a!.close());
    const [p1, p2] = [await freePort(), await freePort()];
    const wild = new UserspaceBackend({ log, bindAddress: '0.0.0.0' });
    cleanups.push(() => wild.close());
    await wild.sync(plan(portPlan({ name: 'one', protocol: 'UDP', port: p1, clusterEndpoints: [a!.target] }), portPlan({ name: 'two', protocol: 'UDP', port: p2, clusterEndpoints: [a!.target] })), { full: true });
    expect(records.filter((r) => String(r.msg).includes('answer from the address the kernel prefers'))).toHaveLength(1);
    const one = new UserspaceBackend({ log, bindAddress: '127.0.0.1' });
    cleanups.push(() => one.close());
    await one.sync(plan(portPlan({ name: 'three', protocol: 'UDP', port: await freePort(), clusterEndpoints: [a!.target] })), { full: true });
    expect(records.filter((r) => String(r.msg).includes('answer from the address the kernel prefers'))).toHaveLength(1);
  });

  it('closes idle flows: after the idle timeout the same client gets a new flow (round-robin moves it)', async () => {
    const { port } = await setup(['a', 'b'], 150);
    const c = await udpClient();
    const first = (await udpAsk(c, port, 'x'))[0];
    await new Promise((r) => setTimeout(r, 400));
    expect((await udpAsk(c, port, 'y'))[0]).not.toBe(first);
  });

  it('runs no timer for a port without flows, and one only while its flows last (found by an audit: every UDP port swept its empty flow table 8 times a second, 2.7% of a core for 1,000 idle UDP ports)', async () => {
    const started = vi.spyOn(globalThis, 'setInterval');
    const stopped = vi.spyOn(globalThis, 'clearInterval');
    const { port } = await setup(['a'], 100);
    expect(started).not.toHaveBeenCalled();
    const c = await udpClient();
    expect(await udpAsk(c, port, 'x')).toBe('a x');
    expect(started).toHaveBeenCalledTimes(1);
    const sweeper = started.mock.results[0]!.value as NodeJS.Timeout;
    await new Promise((r) => setTimeout(r, 400));
    expect(stopped).toHaveBeenCalledWith(sweeper);
    // A new flow starts it again and is still swept when idle.
    expect(await udpAsk(c, port, 'y')).toBe('a y');
    expect(started).toHaveBeenCalledTimes(2);
    await new Promise((r) => setTimeout(r, 400));
    expect(stopped).toHaveBeenCalledWith(started.mock.results[1]!.value);
  });

  it('closes idle flows after the idle timeout even when the wall clock stepped back an hour meanwhile', async () => {
    const { port } = await setup(['a', 'b'], 150);
    const c = await udpClient();
    const first = (await udpAsk(c, port, 'x'))[0];
    vi.spyOn(Date, 'now').mockReturnValue(Date.now() - 3_600_000);
    await new Promise((r) => setTimeout(r, 400));
    expect((await udpAsk(c, port, 'y'))[0]).not.toBe(first);
  });

  it('past the flow cap every fresh client is answered: the least recently used flow is evicted and counted', async () => {
    let evicted = 0;
    const cap = 16;
    const { port } = await setup(['a', 'b'], 30_000, { udpMaxFlows: cap, onUdpEviction: () => evicted++ });
    const clients = await Promise.all(Array.from({ length: 5 * cap }, () => udpClient()));
    // In waves of half the cap (each answered before the next), as DNS clients with fresh source ports come.
    const answers: string[] = [];
    for (let i = 0; i < clients.length; i += cap / 2) {
      const wave = clients.slice(i, i + cap / 2);
      answers.push(...(await Promise.all(wave.map((c, j) => udpAsk(c, port, `q${i + j}`).catch(() => 'no reply')))));
    }
    expect(answers.filter((a) => /^[ab] q\d+$/.test(a))).toHaveLength(5 * cap);
    expect(evicted).toBe(4 * cap);
    // The most recent client's flow survived: it keeps its endpoint.
    const last = clients.at(-1)!;
    expect((await udpAsk(last, port, 'again'))[0]).toBe(answers.at(-1)![0]);
    expect(evicted).toBe(4 * cap);
  });

  it('refuses at once while there is no endpoint (the port is left unbound: ICMP port unreachable), and serves again when one comes', async () => {
    const { eps, port, backend, portPlanOf } = await setup(['a']);
    /** A connected client's answer: the reply, or the error ICMP port unreachable gives it, with the time taken. */
    const ask = async () => {
      const s = createSocket('udp4');
      const t0 = performance.now();
      const got = await new Promise<string>((resolve) => {
        s.on('message', (m) => resolve(m.toString()));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        setTimeout(() => resolve('timeout'), 1000);
        s.connect(port, '127.0.0.1', () => s.send('ping'));
      });
      s.close();
      return { got, fast: performance.now() - t0 < 500 };
    };
    expect(await ask()).toEqual({ got: 'a ping', fast: true });
    const r = await backend.sync(plan(portPlanOf([])), { full: false });
    expect(r).toMatchObject({ rules: 0, failed: 0 });
    expect(await ask()).toEqual({ got: 'ECONNREFUSED', fast: true });
    await backend.sync(plan(portPlanOf(eps.map((e) => e.target))), { full: false });
    expect(await ask()).toEqual({ got: 'a ping', fast: true });
  });

  it('leaves out an endpoint that is its own listener, and refuses when it was the only one (found by an audit: one datagram went round through the proxy for ever)', async () => {
    const { log, records } = captureLogger();
    const port = await freePort();
    const backend = new UserspaceBackend({ log, udpIdleMs: 30_000 });
    cleanups.push(() => backend.close());
    const p = plan(portPlan({ name: 'loop', protocol: 'UDP', port, clusterEndpoints: [{ ip: '127.0.0.1', port }] }));
    expect(await backend.sync(p, { full: true })).toMatchObject({ rules: 0, failed: 0 });
    await backend.sync(p, { full: false });
    const c = createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => c.close(() => r())));
    const got = await new Promise<string>((resolve) => {
      c.on('message', (m) => resolve(m.toString()));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      setTimeout(() => resolve('timeout'), 1000);
      c.connect(port, '127.0.0.1', () => c.send('ping'));
    });
    expect(got).toBe('ECONNREFUSED');
    const warned = records.filter((r) => r.endpoint === `127.0.0.1:${port}`);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, service: 'default/loop', port });
  });

  it("Local policy at a nodePort with every endpoint elsewhere: the node's own clients are relayed to the short-cut endpoints", async () => {
    const { eps, backend } = await setup([]);
    const [remote] = await Promise.all([udpEndpoint('remote')]);
    cleanups.push(() => remote!.close());
    const nodePort = await freePort();
    await backend.sync(plan(portPlan({ name: 'dns', protocol: 'UDP', port: 53, nodePort, externalLocal: true, clusterEndpoints: [remote!.target], externalEndpoints: eps.map((e) => e.target), externalNoEndpoints: 'drop', shortcutEndpoints: [remote!.target] })), { full: false });
    expect(await udpAsk(await udpClient(), nodePort, 'hi')).toBe('remote hi');
  });

  it('an endpoint the node cannot route to ends its flow (no crash); the next datagram picks again', async () => {
    const { eps, port, backend, portPlanOf } = await setup(['a']);
    // connect() to the broadcast address fails with EACCES, as an address without a route fails with ENETUNREACH.
    await backend.sync(plan(portPlanOf([{ ip: '255.255.255.255', port: 9 }, eps[0]!.target])), { full: false });
    const replies: string[] = [];
    for (let i = 0; i < 6 && replies.length < 2; i++) {
      const reply = await udpAsk(await udpClient(), port, `q${i}`, 300).catch(() => null);
      if (reply !== null) replies.push(reply);
    }
    expect(replies).toEqual([expect.stringMatching(/^a q\d$/), expect.stringMatching(/^a q\d$/)]);
  });

  it('moves flows off an endpoint that was removed', async () => {
    const { eps, port, backend, portPlanOf } = await setup(['a', 'b']);
    const c = await udpClient();
    const first = (await udpAsk(c, port, 'x'))[0]!;
    const other = first === 'a' ? eps[1]! : eps[0]!;
    await backend.sync(plan(portPlanOf([other.target])), { full: false });
    expect((await udpAsk(c, port, 'y'))[0]).not.toBe(first);
  });

  it('frees the port when the Service port goes away', async () => {
    const { port, backend } = await setup(['a']);
    const r = await backend.sync(plan(), { full: false });
    expect(r).toMatchObject({ rules: 0, operations: 1 });
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => again.close(() => r()));
  });
});

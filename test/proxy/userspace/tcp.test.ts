// The userspace backend forwarding TCP on loopback to in-process endpoints.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserspaceBackend, type UserspaceOptions } from '../../../proxy/userspace/backend.ts';
import { listenerSpecs } from '../../../proxy/userspace/listeners.ts';
import { native, ownBudget, relayBufferBytes } from '../../../proxy/userspace/relay.ts';
import { TcpListener } from '../../../proxy/userspace/tcp.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';
import { plan, portPlan } from './plans.ts';
import { client, freePort, hashEndpoint, tcpEndpoint, whoAnswers, type TcpEndpoint } from './servers.ts';

const run = promisify(execFile);
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Whether the backends of the current describe block relay on native handles (relay.ts) or on net.Socket. */
let nativeRelay = true;

function backend(options: Partial<UserspaceOptions> = {}): UserspaceBackend {
  const b = new UserspaceBackend({ log: silentLogger(), nativeRelay, ...options });
  cleanups.push(() => b.close());
  return b;
}

async function endpoints(...names: string[]): Promise<TcpEndpoint[]> {
  const eps = await Promise.all(names.map((n) => tcpEndpoint(n)));
  cleanups.push(() => Promise.all(eps.map((e) => e.close())));
  return eps;
}

/** A Service port of a new backend whose one endpoint echoes bytes back unchanged; returns the port. */
async function echoService(): Promise<number> {
  const echo = await tcpEndpoint('echo', { greet: false });
  cleanups.push(() => echo.close());
  const port = await freePort();
  await backend().sync(plan(portPlan({ name: 'bulk', port, clusterEndpoints: [echo.target] })), { full: true });
  return port;
}

function tally(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

async function answers(port: number, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(await whoAnswers(port));
  return names;
}

describe('the TCP relay on native handles', () => {
  it('is what Node 24 gives a listener', async () => {
    expect(native).not.toBeNull();
    const [a] = await endpoints('a');
    const spec = listenerSpecs(plan(portPlan({ name: 'web', port: await freePort(), clusterEndpoints: [a!.target] })), 4).specs[0]!;
    const direct = new TcpListener(spec, { host: '127.0.0.1', reusePort: false, connectTimeoutMs: 1000, onError: () => {} });
    const viaSockets = new TcpListener({ ...spec, port: await freePort() }, { host: '127.0.0.1', reusePort: false, connectTimeoutMs: 1000, nativeRelay: false, onError: () => {} });
    cleanups.push(() => direct.destroy(), () => viaSockets.destroy());
    await direct.listen();
    await viaSockets.listen();
    expect([direct.relaysNatively, viaSockets.relaysNatively]).toEqual([true, false]);
    const c = client(spec.port);
    expect(await c.firstLine).toBe('a');
    expect(direct.connections).toBe(1);
    c.socket.end();
    await waitFor('the connection released', () => direct.connections === 0);
  });

  it('reads bulk data into buffers of its own, keeps it intact past a client that reads in bursts, and gives the buffers back', async () => {
    const port = await echoService();
    const data = randomBytes(40 * 1024 * 1024);
    const c = client(port);
    const got = createHash('sha256');
    let bytes = 0;
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, relayBufferBytes())), 5);
    c.socket.removeAllListeners('data');
    // Not read for a while, then read in bursts: the relay's writes to the client wait in libuv on its own buffer
    // (the echo side's), while reading that side stops.
    c.socket.pause();
    c.socket.on('data', (d: Buffer) => {
      got.update(d);
      const before = bytes;
      bytes += d.length;
      if (Math.floor(bytes / (4 << 20)) > Math.floor(before / (4 << 20))) {
        c.socket.pause();
        setTimeout(() => c.socket.resume(), 30);
      }
    });
    setTimeout(() => c.socket.resume(), 300);
    c.socket.end(data);
    expect(await c.closed).toBeUndefined();
    clearInterval(watch);
    expect(bytes).toBe(data.length);
    expect(got.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(most).toBeGreaterThan(0);
    await waitFor('the buffers given back', () => relayBufferBytes() === 0);
  });

  it('holds no more own buffers than its budget with more bulk connections than it covers, and they stay intact', async () => {
    const port = await echoService();
    // 100 connections, each with two sides that may want a buffer: far more than the budget's 64.
    const count = 100;
    const data = randomBytes(2 * 1024 * 1024);
    const want = createHash('sha256').update(data).digest('hex');
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, relayBufferBytes())), 2);
    const clients = Array.from({ length: count }, () => {
      const c = client(port);
      const got = createHash('sha256');
      let bytes = 0;
      c.socket.removeAllListeners('data');
      // Not ended, nothing read back at first: every connection stays open while its sides switch.
      c.socket.pause();
      c.socket.on('data', (d: Buffer) => {
        got.update(d);
        bytes += d.length;
      });
      c.socket.write(data);
      return { c, got, bytes: () => bytes };
    });
    // 64 sides have a buffer, the others none (their reads keep the allocating path).
    await waitFor('the whole budget taken', () => relayBufferBytes() === ownBudget, 10_000);
    for (const { c } of clients) {
      c.socket.resume();
      c.socket.end();
    }
    for (const { c } of clients) expect(await c.closed).toBeUndefined();
    clearInterval(watch);
    for (const { got, bytes } of clients) {
      expect(bytes()).toBe(data.length);
      expect(got.digest('hex')).toBe(want);
    }
    expect(most).toBeLessThanOrEqual(ownBudget);
    await waitFor('the buffers given back', () => relayBufferBytes() === 0);
  }, 30_000);
});

describe.each([true, false])('userspace backend, TCP (native relay: %s)', (native) => {
  beforeAll(() => {
    nativeRelay = native;
  });

  it.each([1, 2])('spreads 60 connections evenly over 3 endpoints (threads %i)', async (threads) => {
    const eps = await endpoints('a', 'b', 'c');
    const port = await freePort();
    const b = backend({ threads });
    const r = await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: eps.map((e) => e.target) })), { full: true });
    expect(r).toMatchObject({ rules: 1, elements: 3, operations: 1, failed: 0 });
    expect(b.listeners()).toEqual([{ key: 'default/web:p/TCP/v4', protocol: 'TCP', address: '127.0.0.1', port }]);
    const counts = tally(await answers(port, 60));
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
    // Round-robin is exact per thread; with two threads the kernel's SO_REUSEPORT hash decides which one accepts.
    for (const n of Object.values(counts)) expect(n).toBeGreaterThanOrEqual(threads === 1 ? 20 : 10);
  });

  it('keeps a client IP on one endpoint under ClientIP affinity, until the timeout passes', async () => {
    const eps = await endpoints('a', 'b');
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: eps.map((e) => e.target), affinitySeconds: 0.4 })), { full: true });
    const sticky = await answers(port, 6);
    expect(new Set(sticky).size).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(await whoAnswers(port)).not.toBe(sticky[0]);
  });

  it('resets at once when the Service has no endpoints', async () => {
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'empty', port })), { full: true });
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const c = client(port);
      expect(await c.closed).toBe('ECONNRESET');
      expect(performance.now() - t0).toBeLessThan(100);
    }
  });

  it('tries up to four endpoints when the chosen ones refuse, as kube-proxy\'s userspace proxier (found by an audit: with two refusing of three, about half the clients were reset)', async () => {
    const [live] = await endpoints('live');
    const dead = [{ ip: '127.0.0.1', port: await freePort() }, { ip: '127.0.0.1', port: await freePort() }, { ip: '127.0.0.1', port: await freePort() }];
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [...dead, live!.target] })), { full: true });
    expect(await answers(port, 12)).toEqual(Array(12).fill('live'));
  });

  it('says why clients are reset when this process is out of descriptors (found by an audit: nothing was logged)', async () => {
    const script = fileURLToPath(new URL('./fd-exhaustion.ts', import.meta.url));
    const { stdout } = await run('prlimit', ['--nofile=256:256', process.execPath, script, nativeRelay ? 'native' : 'sockets']);
    const r = JSON.parse(stdout) as { reported: string[]; ended: string; after: string };
    expect(r.ended).toBe('ECONNRESET');
    expect(r.reported).toHaveLength(1);
    expect(r.reported[0]).toMatch(/^cannot dial endpoint 127\.0\.0\.1:\d+: EMFILE; connections to this Service port are reset while it lasts$/);
    expect(r.after).toBe('hi');
  });

  it('moves on from an endpoint that refuses, and resets when none answers', async () => {
    const [live] = await endpoints('live');
    const dead = { ip: '127.0.0.1', port: await freePort() };
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [dead, live!.target] })), { full: true });
    expect(new Set(await answers(port, 10))).toEqual(new Set(['live']));
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [dead] })), { full: false });
    expect(await client(port).closed).toBe('ECONNRESET');
  });

  it('updates endpoints in place: an established connection keeps its endpoint, new ones go to the new set', async () => {
    const [a, bEp] = await endpoints('a', 'b');
    const port = await freePort();
    const be = backend();
    await be.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [a!.target] })), { full: true });
    const held = client(port);
    expect(await held.firstLine).toBe('a');
    const r = await be.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [bEp!.target] })), { full: false });
    expect(r).toMatchObject({ rules: 1, elements: 1, operations: 0 });
    expect(await whoAnswers(port)).toBe('b');
    held.socket.write('still here\n');
    await waitFor('the echo on the established connection', () => held.received().includes('still here'));
    held.socket.destroy();
  });

  it('closes the listener of a port that went away, and opens ports that appear', async () => {
    const [a] = await endpoints('a');
    const [p1, p2] = [await freePort(), await freePort()];
    const b = backend();
    const one = portPlan({ name: 'one', port: p1, clusterEndpoints: [a!.target] });
    const two = portPlan({ name: 'two', port: p2, clusterEndpoints: [a!.target] });
    await b.sync(plan(one), { full: true });
    const r = await b.sync(plan(two), { full: false });
    expect(r).toMatchObject({ rules: 1, operations: 2 });
    expect(b.listeners().map((l) => l.port)).toEqual([p2]);
    expect(await client(p1).closed).toBe('ECONNREFUSED');
    expect(await whoAnswers(p2)).toBe('a');
  });

  it('keeps established connections of a port that went away until they end, and cuts them on close()', async () => {
    const [a] = await endpoints('a');
    const port = await freePort();
    const b = new UserspaceBackend({ log: silentLogger(), nativeRelay });
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [a!.target] })), { full: true });
    const held = client(port);
    expect(await held.firstLine).toBe('a');
    expect(await b.sync(plan(), { full: false })).toMatchObject({ rules: 0, operations: 1 });
    held.socket.write('after removal\n');
    await waitFor('the echo after the port went away', () => held.received().includes('after removal'));
    await b.close();
    await waitFor('the connection to be cut', () => held.socket.readableEnded || held.socket.destroyed);
  });

  it('listens at the nodePort when there is one, forwarding to the external endpoints', async () => {
    const [inside, outside] = await endpoints('cluster', 'external');
    const [port, nodePort] = [await freePort(), await freePort()];
    const b = backend();
    await b.sync(plan(portPlan({ name: 'np', port, nodePort, clusterEndpoints: [inside!.target], externalEndpoints: [outside!.target] })), { full: true });
    expect(b.listeners().map((l) => l.port)).toEqual([nodePort]);
    expect(await whoAnswers(nodePort)).toBe('external');
  });

  it("Local policy at a nodePort with every endpoint elsewhere: the node's own clients take the short-cut (all endpoints)", async () => {
    const [remote] = await endpoints('remote');
    const [port, nodePort] = [await freePort(), await freePort()];
    const b = backend();
    const p = portPlan({ name: 'np', port, nodePort, externalLocal: true, clusterEndpoints: [remote!.target], externalEndpoints: [], externalNoEndpoints: 'drop', shortcutEndpoints: [remote!.target] });
    await b.sync(plan(p), { full: true });
    expect(await answers(nodePort, 3)).toEqual(['remote', 'remote', 'remote']);
  });

  it('skips a port it cannot bind, logs the Service and reason, keeps the others, and binds it at a later sync', async () => {
    const [a] = await endpoints('a');
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const taken = (squatter.address() as AddressInfo).port;
    const free = await freePort();
    const { log, records } = captureLogger();
    const b = backend({ log });
    const p = plan(portPlan({ name: 'blocked', port: taken, clusterEndpoints: [a!.target] }), portPlan({ name: 'fine', port: free, clusterEndpoints: [a!.target] }));
    expect(await b.sync(p, { full: true })).toMatchObject({ rules: 1, failed: 1 });
    expect(await whoAnswers(free)).toBe('a');
    expect(records.find((r) => r.reason === 'EADDRINUSE')).toMatchObject({ service: 'default/blocked', port: taken, level: 40 });
    await new Promise((r) => squatter.close(r));
    expect(await b.sync(p, { full: false })).toMatchObject({ rules: 2, failed: 0, operations: 1 });
    expect(await whoAnswers(taken)).toBe('a');
  });

  it('leaves out an endpoint that is its own listener (found by an audit: a connection dialled the proxy itself, again and again, until descriptors ran out)', async () => {
    const [live] = await endpoints('live');
    const port = await freePort();
    const b = backend();
    const self = { ip: '127.0.0.1', port };
    await b.sync(plan(portPlan({ name: 'loop', port, clusterEndpoints: [self, live!.target] })), { full: true });
    expect(await answers(port, 6)).toEqual(Array(6).fill('live'));
    await b.sync(plan(portPlan({ name: 'loop', port, clusterEndpoints: [self] })), { full: false });
    expect(await client(port).closed).toBe('ECONNRESET');
  });

  it('leaves out endpoints that loop through two Services, and keeps a chain through the proxy that ends at an endpoint', async () => {
    const [live] = await endpoints('live');
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    const at = (port: number) => ({ ip: '127.0.0.1', port });
    const b2 = backend();
    await b2.sync(plan(portPlan({ name: 'a', port: a, clusterEndpoints: [at(b), live!.target] }), portPlan({ name: 'b', port: b, clusterEndpoints: [at(a)] }), portPlan({ name: 'c', port: c, clusterEndpoints: [at(a)] })), { full: true });
    expect(await answers(a, 4)).toEqual(Array(4).fill('live'));
    expect(await answers(c, 4)).toEqual(Array(4).fill('live'));
    expect(await client(b).closed).toBe('ECONNRESET');
  });

  it('skips SCTP ports, logging each once', async () => {
    const { log, records } = captureLogger();
    const b = backend({ log });
    const p = plan(portPlan({ name: 'sctp', protocol: 'SCTP', port: await freePort() }));
    expect(await b.sync(p, { full: true })).toMatchObject({ rules: 0, unsupported: 1, failed: 0 });
    await b.sync(p, { full: false });
    expect(records.filter((r) => String(r.msg).includes('SCTP'))).toHaveLength(1);
  });

  it('forwards to an IPv6 endpoint (across families: the client came over IPv4)', async () => {
    const ep = await tcpEndpoint('v6', { host: '::1' });
    cleanups.push(() => ep.close());
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'six', port, clusterEndpoints: [ep.target] })), { full: true });
    const c = client(port);
    expect(await c.firstLine).toBe('v6');
    c.socket.end('ping\n');
    expect(await c.closed).toBeUndefined();
    expect(c.received()).toBe('v6\nping\n');
  });

  it('forwards a half-close: the client ends its side and still gets the reply', async () => {
    const ep = await hashEndpoint();
    cleanups.push(() => ep.close());
    const port = await freePort();
    const b = backend();
    await b.sync(plan(portPlan({ name: 'hash', port, clusterEndpoints: [ep.target] })), { full: true });
    const c = client(port);
    c.socket.end('hello');
    expect(await c.closed).toBeUndefined();
    expect(c.received()).toBe(createHash('sha256').update('hello').digest('hex'));
  });

  it('passes resets on as resets, both ways', async () => {
    // An endpoint that answers with a line, then resets the connection when it reads anything.
    const server = createServer((sock) => {
      sock.write('rst\n');
      sock.on('data', () => sock.resetAndDestroy());
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const seen: Array<string | undefined> = [];
    const echo = createServer((sock) => {
      sock.on('error', (e: NodeJS.ErrnoException) => seen.push(e.code));
      sock.on('close', () => seen.push('closed'));
      sock.write('echo\n');
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => echo.close(r)));
    const [rstPort, echoPort] = [await freePort(), await freePort()];
    const b = backend();
    await b.sync(
      plan(
        portPlan({ name: 'rst', port: rstPort, clusterEndpoints: [{ ip: '127.0.0.1', port: (server.address() as AddressInfo).port }] }),
        portPlan({ name: 'echo', port: echoPort, clusterEndpoints: [{ ip: '127.0.0.1', port: (echo.address() as AddressInfo).port }] }),
      ),
      { full: true },
    );
    // The endpoint resets: the client gets a reset, not a clean end.
    const c = client(rstPort);
    expect(await c.firstLine).toBe('rst');
    c.socket.write('x');
    expect(await c.closed).toBe('ECONNRESET');
    // The client resets: the endpoint gets a reset.
    const d = client(echoPort);
    expect(await d.firstLine).toBe('echo');
    d.socket.resetAndDestroy();
    await waitFor('the endpoint to see the reset', () => seen.includes('closed'));
    expect(seen).toEqual(['ECONNRESET', 'closed']);
  });

  it('carries 50 MB both ways intact', async () => {
    const port = await echoService();
    const data = randomBytes(50 * 1024 * 1024);
    const c = client(port);
    const got = createHash('sha256');
    let bytes = 0;
    c.socket.removeAllListeners('data');
    c.socket.on('data', (d: Buffer) => {
      got.update(d);
      bytes += d.length;
    });
    c.socket.end(data);
    expect(await c.closed).toBeUndefined();
    expect(bytes).toBe(data.length);
    expect(got.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('cuts established connections on close()', async () => {
    const [a] = await endpoints('a');
    const port = await freePort();
    const b = new UserspaceBackend({ log: silentLogger(), nativeRelay });
    await b.sync(plan(portPlan({ name: 'web', port, clusterEndpoints: [a!.target] })), { full: true });
    const c = client(port);
    expect(await c.firstLine).toBe('a');
    await b.close();
    // The test client allows half-open connections, so the proxy's close shows as end-of-stream (or a reset).
    await waitFor('the connection to be cut', () => c.socket.readableEnded || c.socket.destroyed);
    expect(b.listeners()).toEqual([]);
    expect(await client(port).closed).toBe('ECONNREFUSED');
  });
});

// The TCP and UDP services keeper (Streams) in-process, over a real store, service map and sockets: a port that
// cannot be bound is logged, counted and bound once it is free, without stopping the others; a change of endpoints
// moves new connections while one under way keeps its endpoint; an ExternalName Service is reached at its name; a
// drain lets a connection go on until its time-out and then cuts it.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { Streams } from '../../../ingress/stream/streams.ts';
import { service, slice } from '../../fixtures/objects.ts';
import { freePort } from '../../helpers/ports.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';

/** A TCP server on `host`:`port` that answers each chunk with `name:chunk`. */
async function echo(name: string, host: string, port: number): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.write(`${name}:${d}`));
  });
  await new Promise<void>((r) => server.listen({ host, port, ipv6Only: false }, r));
  return server;
}

/** A connection to 127.0.0.1:`port` and everything it has received. */
function client(port: number): { socket: Socket; got: () => string; closed: Promise<void> } {
  let got = '';
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('data', (d: Buffer) => (got += d));
  socket.on('error', () => {});
  return { socket, got: () => got, closed: new Promise((r) => socket.once('close', () => r())) };
}

const configMap = (data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tcp-services', namespace: 'default' }, data });
const ready = (ip: string) => ({ addresses: [ip], conditions: { ready: true } });

describe('Streams', () => {
  const cleanups: Array<() => Promise<unknown> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(objects: object[], retryMs = 100) {
    const store = new Store();
    store.apply(objects.flatMap((o) => parseObject(o)));
    const { log, records } = captureLogger();
    const registry = new Registry();
    const streams = new Streams({
      store,
      serviceMap: new ServiceMap(store, { nodeName: 'n1' }),
      log,
      registry,
      configMaps: { TCP: { namespace: 'default', name: 'tcp-services' } },
      host: '127.0.0.1',
      reserved: new Map(),
      reusePort: false,
      connectTimeoutMs: 1000,
      proxyProtocol: { timeoutMs: 1000 },
      retryMs,
    });
    streams.start();
    cleanups.push(() => streams.drain(0));
    return { store, streams, records, registry };
  }

  it('logs and counts a port that cannot be bound, serves the others, and binds it once it is free', async () => {
    const backend = await freePort();
    const [taken, free] = [await freePort(), await freePort()];
    const servers = [await echo('a', '127.0.0.2', backend)];
    cleanups.push(() => servers.forEach((s) => s.close()));
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    const { streams, records, registry } = await setup([
      service('echo', { clusterIP: '10.96.0.1', ports: [{ name: 'echo', port: 7000 }] }),
      slice('echo-a', 'echo', [ready('127.0.0.2')], [{ name: 'echo', port: backend }]),
      configMap({ [taken]: 'default/echo:7000', [free]: 'default/echo:echo' }),
    ]);
    await waitFor('both ports tried', () => streams.ready);
    const warned = records.find((r) => String(r.msg).startsWith(`TCP services port ${taken} cannot be bound on 127.0.0.1: address in use (EADDRINUSE)`));
    expect(warned).toBeDefined();
    expect(await registry.getSingleMetricAsString('netplane_ingress_stream_refused_entries')).toContain('netplane_ingress_stream_refused_entries{protocol="TCP",reason="cannot-bind"} 1');
    const c = client(free);
    c.socket.write('x');
    await waitFor('the free port to serve', () => c.got() === 'a:x');
    c.socket.destroy();
    await new Promise((r) => blocker.close(r));
    await waitFor('the port bound at last', () => records.some((r) => r.msg === `TCP services port ${taken} listening (bound at last), to default/echo:7000`), 3000);
    // Logged once, not at every try.
    expect(records.filter((r) => String(r.msg).includes('cannot be bound')).length).toBe(1);
    const d = client(taken);
    d.socket.write('y');
    await waitFor('the port to serve', () => d.got() === 'a:y');
    d.socket.destroy();
    expect(await registry.getSingleMetricAsString('netplane_ingress_stream_refused_entries')).toContain('reason="cannot-bind"} 0');
  });

  it('moves new connections when the endpoints change; a connection under way keeps its endpoint', async () => {
    const backend = await freePort();
    const port = await freePort();
    const servers = [await echo('a', '127.0.0.2', backend), await echo('b', '127.0.0.3', backend)];
    cleanups.push(() => servers.forEach((s) => s.close()));
    const echoService = service('echo', { clusterIP: '10.96.0.1', ports: [{ name: 'echo', port: 7000 }] });
    const { store } = await setup([echoService, slice('echo-a', 'echo', [ready('127.0.0.2')], [{ name: 'echo', port: backend }]), configMap({ [port]: 'default/echo:7000' })]);
    const first = (await waitFor('the port', async () => {
      const c = client(port);
      c.socket.write('1');
      await waitFor('an answer', () => c.got() !== '', 500).catch(() => c.socket.destroy());
      return c.got() === 'a:1' ? c : undefined;
    }))!;
    store.apply(parseObject(slice('echo-a', 'echo', [ready('127.0.0.3')], [{ name: 'echo', port: backend }])));
    const second = client(port);
    second.socket.write('2');
    await waitFor('the new endpoint', () => second.got() === 'b:2');
    first.socket.write('3');
    await waitFor('the old connection still on its endpoint', () => first.got() === 'a:1a:3');
    first.socket.destroy();
    second.socket.destroy();
  });

  it('reaches an ExternalName Service at its name and target port', async () => {
    const backend = await freePort();
    const port = await freePort();
    const server = await echo('ext', '::', backend);
    cleanups.push(() => void server.close());
    await setup([service('ext', { type: 'ExternalName', externalName: 'localhost', ports: [{ name: 'db', port: 5432, targetPort: backend }] }), configMap({ [port]: 'default/ext:db' })]);
    const got = await waitFor('the answer', async () => {
      const c = client(port);
      c.socket.write('hi');
      await waitFor('an answer', () => c.got() !== '', 500).catch(() => undefined);
      c.socket.destroy();
      return c.got();
    });
    expect(got).toBe('ext:hi');
  });

  it('drains: stops accepting, lets a connection go on until the time-out, then cuts it', async () => {
    const backend = await freePort();
    const port = await freePort();
    const server = await echo('a', '127.0.0.2', backend);
    cleanups.push(() => void server.close());
    const { streams } = await setup([
      service('echo', { clusterIP: '10.96.0.1', ports: [{ name: 'echo', port: 7000 }] }),
      slice('echo-a', 'echo', [ready('127.0.0.2')], [{ name: 'echo', port: backend }]),
      configMap({ [port]: 'default/echo:7000' }),
    ]);
    await waitFor('the port', () => streams.ready);
    const c = client(port);
    c.socket.write('1');
    await waitFor('the answer', () => c.got() === 'a:1');
    const started = performance.now();
    const drained = streams.drain(400);
    const late = client(port);
    await late.closed;
    c.socket.write('2');
    await waitFor('an answer while draining', () => c.got() === 'a:1a:2');
    await drained;
    await c.closed;
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(streams.inFlight).toBe(0);
  });
});

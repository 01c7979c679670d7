// `netplane ingress --tcp-services-configmap default/tcp-services`, the gateway run as a child process from a
// manifests directory: each ConfigMap entry is a port relayed to its Service's ready endpoints (two echo backends
// on 127.0.0.2 and 127.0.0.3), by the Service port's number or name, round robin; a Service without endpoints
// resets a connection at once; a bad entry is logged with its key and why while the others work; a rewrite of the
// ConfigMap opens and closes ports live (a connection under way on a removed port goes on); the gateway's own port
// is refused; SIGTERM stops accepting and lets an open connection finish.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { GatewayProcess } from './harness.ts';
import { exchange, logged, metricValue, streamServiceYaml, TcpEcho } from './streams.ts';
import { connect } from 'node:net';

describe('TCP services (--tcp-services-configmap)', () => {
  const gw = new GatewayProcess();
  let a: TcpEcho;
  let b: TcpEcho;
  const port: Record<'number' | 'name' | 'empty' | 'missing' | 'added', number> = { number: 0, name: 0, empty: 0, missing: 0, added: 0 };
  const echoed = (text: string) => (d: string) => d.endsWith(`:${text}`);

  beforeAll(async () => {
    const backendPort = await freePort();
    a = await new TcpEcho('a', '127.0.0.2', backendPort).start();
    b = await new TcpEcho('b', '127.0.0.3', backendPort).start();
    for (const k of Object.keys(port) as Array<keyof typeof port>) port[k] = await freePort();
    gw.write(
      'services.yaml',
      streamServiceYaml('echo', [{ name: 'echo', port: 7000, protocol: 'TCP' }], ['127.0.0.2', '127.0.0.3'], backendPort) + streamServiceYaml('empty', [{ name: 'db', port: 5432, protocol: 'TCP' }], [], backendPort),
    );
    gw.write(
      'tcp.yaml',
      configMapYaml('tcp-services', {
        [port.number]: 'default/echo:7000',
        [port.name]: 'default/echo:echo',
        [port.empty]: 'default/empty:5432',
        [port.missing]: 'default/gone:80',
        nope: 'default/echo:7000',
        '1': 'default/echo:7000:PROXI',
      }),
    );
    await gw.start(['--tcp-services-configmap', 'default/tcp-services', '--drain-timeout', '5s']);
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await a.stop();
    await b.stop();
  });

  it("relays a connection to the Service's endpoints, both ways", async () => {
    const r = await exchange(port.number, 'hello', echoed('hello'));
    expect(r.data).toMatch(/^(a|b):hello$/);
    expect(r.ended).toBe('end');
  });

  it('spreads connections over both endpoints, round robin', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await exchange(port.number, `n${i}`, echoed(`n${i}`))).data.split(':')[0]!);
    expect(new Set(seen)).toEqual(new Set(['a', 'b']));
    // In turn: never the same endpoint twice in a row.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('reaches a Service port by its name', async () => {
    expect((await exchange(port.name, 'named', echoed('named'))).data).toMatch(/^(a|b):named$/);
  });

  it('resets a connection at once when the Service has no ready endpoint, or does not exist; says why once', async () => {
    for (const p of [port.empty, port.missing]) {
      const r = await exchange(p, 'x');
      expect(r.ended).toBe('reset');
      expect(r.ms).toBeLessThan(1000);
    }
    await logged(() => gw.output, `TCP services port ${port.empty}: Service default/empty has no ready endpoint for TCP port 5432; connections are reset until it has one`);
    await logged(() => gw.output, `TCP services port ${port.missing}: Service default/gone does not exist`);
  });

  it('logs a bad entry with its ConfigMap, key and why, and serves the others', async () => {
    await logged(() => gw.output, 'ConfigMap default/tcp-services (--tcp-services-configmap), key \\"nope\\": key \\"nope\\" is not a port number', 'the entry is not served');
    await logged(() => gw.output, 'key \\"1\\": value \\"default/echo:7000:PROXI\\": the third field is \\"PROXI\\": it may only be PROXY or empty');
    const metrics = await gw.metrics();
    expect(metricValue(metrics, 'netplane_ingress_stream_refused_entries', { protocol: 'TCP', reason: 'bad-port' })).toBe(1);
    expect(metricValue(metrics, 'netplane_ingress_stream_refused_entries', { protocol: 'TCP', reason: 'bad-value' })).toBe(1);
    expect(metricValue(metrics, 'netplane_ingress_stream_listeners', { protocol: 'TCP' })).toBe(4);
  });

  it('counts connections by port, Service and result, and the bytes relayed; logs each', async () => {
    const metrics = await gw.metrics();
    const labels = { protocol: 'TCP', port: String(port.number), namespace: 'default', service: 'echo' };
    expect(metricValue(metrics, 'netplane_ingress_stream_connections_total', { ...labels, result: 'relayed' })).toBeGreaterThanOrEqual(5);
    expect(metricValue(metrics, 'netplane_ingress_stream_bytes_total', { ...labels, direction: 'in' })).toBeGreaterThanOrEqual(5);
    expect(metricValue(metrics, 'netplane_ingress_stream_bytes_total', { ...labels, direction: 'out' })).toBeGreaterThanOrEqual(7);
    expect(metricValue(metrics, 'netplane_ingress_stream_connections_total', { port: String(port.empty), service: 'empty', result: 'no-endpoint' })).toBe(1);
    const line = await logged(() => gw.output, '"stream":"TCP"', `"port":${port.number}`, '"result":"relayed"');
    expect(JSON.parse(line)).toMatchObject({ target: 'default/echo:7000', remote: '127.0.0.1', sent: expect.any(Number), received: expect.any(Number) });
  });

  it('follows a rewrite of the ConfigMap: a new port serves, a removed one refuses while its open connection goes on', async () => {
    // A connection under way on the port about to be removed.
    const open = connect({ host: '127.0.0.1', port: port.number });
    let got = '';
    open.on('data', (d: Buffer) => (got += d.toString('latin1')));
    open.on('error', () => {});
    open.write('before');
    await waitFor('the first echo', () => got.endsWith(':before'));
    gw.write('tcp.yaml', configMapYaml('tcp-services', { [port.added]: 'default/echo:echo', [port.name]: 'default/echo:echo', [gw.http]: 'default/echo:7000' }));
    await waitFor('the new port', async () => (await exchange(port.added, 'new', echoed('new'), 1000)).data.endsWith(':new'), 10_000, 100);
    await waitFor('the removed port to refuse', async () => (await exchange(port.number, 'old', undefined, 1000)).ended === 'refused', 10_000, 100);
    open.write('after');
    await waitFor('the echo after the removal', () => got.endsWith(':after'));
    open.destroy();
    await logged(() => gw.output, `key \\"${gw.http}\\": port ${gw.http} is the --http listener's`);
    await logged(() => gw.output, `TCP services port ${port.number} closed: no longer in the ConfigMap`);
    // The HTTP listener is the gateway's still.
    expect((await gw.get('any.test', '/')).status).toBe(404);
  });

  it('on SIGTERM stops accepting and lets an open connection finish', async () => {
    const open = connect({ host: '127.0.0.1', port: port.added });
    let got = '';
    open.on('data', (d: Buffer) => (got += d.toString('latin1')));
    open.on('error', () => {});
    open.write('one');
    await waitFor('the first echo', () => got.endsWith(':one'));
    gw.child!.kill('SIGTERM');
    await logged(() => gw.output, '"msg":"draining"', '"streams":1');
    expect((await exchange(port.added, 'late', undefined, 1000)).ended).toBe('refused');
    open.write('two');
    await waitFor('the echo while draining', () => got.endsWith(':two'));
    const closed = performance.now();
    open.end();
    expect(await gw.exited).toBe(0);
    // Exited once the connection closed, long before --drain-timeout (5 s).
    expect(performance.now() - closed).toBeLessThan(3000);
  });
});

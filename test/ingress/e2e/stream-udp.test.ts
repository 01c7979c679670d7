// `netplane ingress --udp-services-configmap default/udp-services`, the gateway run as a child process from a
// manifests directory: a datagram to an entry's port reaches one of its Service's ready endpoints (UDP echo backends
// on 127.0.0.2 and 127.0.0.3) and the answer comes back from the port itself; a client keeps its endpoint (a flow
// per client address), new clients take the endpoints in turn; a Service port by name; a Service without endpoints
// drops the datagrams and counts them; PROXY is ignored for UDP with a warning; a TCP entry on the same port
// number is another listener.
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { GatewayProcess } from './harness.ts';
import { exchange, logged, metricValue, streamServiceYaml, TcpEcho, udpAsk, UdpEcho } from './streams.ts';

describe('UDP services (--udp-services-configmap)', () => {
  const gw = new GatewayProcess();
  const backends: Array<UdpEcho | TcpEcho> = [];
  const port = { number: 0, name: 0, empty: 0 };

  beforeAll(async () => {
    const backendPort = await freePort();
    backends.push(
      await new UdpEcho('a', '127.0.0.2', backendPort).start(),
      await new UdpEcho('b', '127.0.0.3', backendPort).start(),
      await new UdpEcho('c', '127.0.0.4', backendPort).start(),
      await new TcpEcho('t', '127.0.0.2', backendPort).start(),
    );
    for (const k of Object.keys(port) as Array<keyof typeof port>) port[k] = await freePort();
    gw.write(
      'services.yaml',
      streamServiceYaml(
        'dns',
        [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        ],
        ['127.0.0.2', '127.0.0.3'],
        backendPort,
      ) +
        streamServiceYaml('empty', [{ name: 'dns', port: 53, protocol: 'UDP' }], [], backendPort) +
        streamServiceYaml('other', [{ name: 'dns', port: 53, protocol: 'UDP' }], ['127.0.0.4'], backendPort),
    );
    gw.write('udp.yaml', configMapYaml('udp-services', { [port.number]: 'default/dns:53', [port.name]: 'default/dns:dns:PROXY', [port.empty]: 'default/empty:53' }));
    // The same port number for TCP: a listener of its own.
    gw.write('tcp.yaml', configMapYaml('tcp-services', { [port.number]: 'default/dns:53' }));
    await gw.start(['--udp-services-configmap', 'default/udp-services', '--tcp-services-configmap', 'default/tcp-services']);
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    for (const b of backends) await b.stop();
  });

  it("relays a datagram to the Service's endpoints and sends the answer back from its port", async () => {
    const s = createSocket('udp4');
    const from: string[] = [];
    s.on('message', (_m, rinfo) => from.push(`${rinfo.address}:${rinfo.port}`));
    expect(await udpAsk(port.number, 'hello', 2000, s)).toMatch(/^(a|b):hello$/);
    expect(from).toEqual([`127.0.0.1:${port.number}`]);
    s.close();
  });

  it('keeps a client on its endpoint, and spreads new clients over both', async () => {
    const s = createSocket('udp4');
    const mine = new Set<string>();
    for (let i = 0; i < 4; i++) mine.add((await udpAsk(port.number, `same${i}`, 2000, s))!.split(':')[0]!);
    s.close();
    expect(mine.size).toBe(1);
    const all = new Set<string>();
    for (let i = 0; i < 4; i++) all.add((await udpAsk(port.number, `new${i}`, 2000))!.split(':')[0]!);
    expect(all).toEqual(new Set(['a', 'b']));
  });

  it('reaches a Service port by name, and ignores PROXY for UDP with a warning', async () => {
    expect(await udpAsk(port.name, 'named', 2000)).toMatch(/^(a|b):named$/);
    await logged(() => gw.output, `key \\"${port.name}\\": PROXY does not apply to UDP and is ignored`);
  });

  it('drops and counts the datagrams of a Service without endpoints', async () => {
    expect(await udpAsk(port.empty, 'lost', 300)).toBeUndefined();
    expect(await udpAsk(port.empty, 'lost', 300)).toBeUndefined();
    const metrics = await waitFor('the drops counted', async () => {
      const m = await gw.metrics();
      return metricValue(m, 'netplane_ingress_stream_datagrams_dropped_total', { port: String(port.empty), reason: 'no_endpoint' }) === 2 ? m : '';
    });
    expect(metricValue(metrics, 'netplane_ingress_stream_connections_total', { protocol: 'UDP', port: String(port.number), service: 'dns', result: 'relayed' })).toBeGreaterThanOrEqual(5);
    expect(metricValue(metrics, 'netplane_ingress_stream_listeners', { protocol: 'UDP' })).toBe(3);
    expect(metricValue(metrics, 'netplane_ingress_stream_active', { protocol: 'UDP' })).toBeGreaterThanOrEqual(5);
  });

  it('serves a TCP entry on the same port number beside the UDP one', async () => {
    expect((await exchange(port.number, 'tcp', (d) => d.endsWith(':tcp'))).data).toBe('t:tcp');
  });

  it('follows a rewrite: a changed target takes the next datagrams, even of a client with a flow; a removed port is closed', async () => {
    const s = createSocket('udp4');
    expect(await udpAsk(port.number, 'before', 2000, s)).toMatch(/^(a|b):before$/);
    gw.write('udp.yaml', configMapYaml('udp-services', { [port.number]: 'default/other:dns' }));
    await waitFor('the new target', async () => (await udpAsk(port.number, 'x', 200)) === 'c:x', 10_000, 100);
    // The flow to the old endpoint was closed: the same client's next datagram goes to the new one.
    expect(await udpAsk(port.number, 'after', 2000, s)).toBe('c:after');
    s.close();
    await logged(() => gw.output, `UDP services port ${port.name} closed: no longer in the ConfigMap`);
    expect(await udpAsk(port.name, 'gone', 300)).toBeUndefined();
  });
});

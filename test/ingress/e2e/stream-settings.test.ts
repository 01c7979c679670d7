// The controller ConfigMap's proxy-stream-* keys on the TCP and UDP services, the gateway run as a child process
// from a manifests directory: proxy-stream-timeout closes a TCP connection idle that long; proxy-stream-responses 1
// ends a UDP flow at its answer, so one client's datagrams go round robin; proxy-stream-next-upstream "false" leaves a
// connection whose endpoint refuses unserved; a bad value is logged with its key and why; a rewrite applies live.
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { GatewayProcess } from './harness.ts';
import { exchange, logged, streamServiceYaml, TcpEcho, udpAsk, UdpEcho } from './streams.ts';

describe('the TCP and UDP services under the controller ConfigMap (proxy-stream-*)', () => {
  const gw = new GatewayProcess();
  const backends: Array<TcpEcho | UdpEcho> = [];
  const port = { idle: 0, half: 0, udp: 0 };
  /** Which of `n` connections in a row to the half-refusing entry got their echo. */
  const served = async (n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if ((await exchange(port.half, `c${i}`, (d) => d.endsWith(`:c${i}`), 2000)).data === `a:c${i}`) ok++;
    return ok;
  };
  /** The endpoints that answered `n` datagrams sent from one client socket. */
  const answerers = async (n: number) => {
    const s = createSocket('udp4');
    const names = new Set<string>();
    for (let i = 0; i < n; i++) names.add((await udpAsk(port.udp, `d${i}`, 2000, s))?.split(':')[0] ?? 'none');
    s.close();
    return names;
  };

  beforeAll(async () => {
    const backendPort = await freePort();
    backends.push(
      await new TcpEcho('a', '127.0.0.2', backendPort).start(),
      await new UdpEcho('a', '127.0.0.2', backendPort).start(),
      await new UdpEcho('b', '127.0.0.3', backendPort).start(),
    );
    for (const k of Object.keys(port) as Array<keyof typeof port>) port[k] = await freePort();
    gw.write(
      'services.yaml',
      streamServiceYaml('solo', [{ name: 'echo', port: 7000, protocol: 'TCP' }], ['127.0.0.2'], backendPort) +
        // Nothing listens on 127.0.0.9: every other connection, round robin, is refused there.
        streamServiceYaml('half', [{ name: 'echo', port: 7000, protocol: 'TCP' }], ['127.0.0.2', '127.0.0.9'], backendPort) +
        streamServiceYaml('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }], ['127.0.0.2', '127.0.0.3'], backendPort),
    );
    gw.write('tcp.yaml', configMapYaml('tcp-services', { [port.idle]: 'default/solo:7000', [port.half]: 'default/half:7000' }));
    gw.write('udp.yaml', configMapYaml('udp-services', { [port.udp]: 'default/dns:53' }));
    gw.write(
      'controller.yaml',
      configMapYaml('ingress-nginx-controller', { 'proxy-stream-timeout': '500ms', 'proxy-stream-responses': '1', 'proxy-stream-next-upstream': 'false', 'proxy-stream-next-upstream-tries': 'many' }),
    );
    await gw.start(['--configmap', 'default/ingress-nginx-controller', '--tcp-services-configmap', 'default/tcp-services', '--udp-services-configmap', 'default/udp-services']);
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    for (const b of backends) await b.stop();
  });

  it('proxy-stream-timeout: a TCP connection with nothing either way for 500 ms is closed', async () => {
    const r = await exchange(port.idle, 'hi', () => false, 5000);
    expect(r).toMatchObject({ data: 'a:hi', ended: 'end' });
    expect(r.ms).toBeGreaterThan(450);
    expect(r.ms).toBeLessThan(2500);
  });

  it("proxy-stream-responses 1: a flow ends at its answer, and one client's datagrams go to both endpoints in turn", async () => {
    expect(await answerers(4)).toEqual(new Set(['a', 'b']));
  });

  it('proxy-stream-next-upstream "false": a connection whose endpoint refuses goes to no other', async () => {
    expect(await served(6)).toBe(3);
  });

  it('logs a bad value with its key and why, and applies the other keys', async () => {
    await logged(() => gw.output, 'ConfigMap default/ingress-nginx-controller: proxy-stream-next-upstream-tries is \\"many\\"; allowed is a whole number from 0 to 1000000 (0: each endpoint once); proxy-stream-next-upstream-tries keeps its last good value');
    expect(gw.output).not.toContain('keys netplane does not read');
  });

  it("follows a rewrite: ingress-nginx's defaults for the keys it no longer sets", async () => {
    gw.write('controller.yaml', configMapYaml('ingress-nginx-controller', { 'proxy-stream-next-upstream-tries': '2' }));
    await waitFor('every connection served', async () => (await served(2)) === 2, 10_000, 100);
    expect(await served(6)).toBe(6);
    expect((await answerers(4)).size).toBe(1);
    const r = await exchange(port.idle, 'still', () => false, 1500);
    expect(r).toMatchObject({ data: 'a:still', ended: 'timeout' });
  });
});

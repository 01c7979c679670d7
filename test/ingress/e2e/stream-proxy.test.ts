// PROXY protocol on TCP services entries (`NAMESPACE/SERVICE:PORT:PROXY[:PROXY]`), the gateway run as a child
// process: with the first PROXY the gateway reads the client's header (v1 text, v2 binary) and the backend gets the
// bytes after it, never the header; with the second too, the backend gets a v1 header naming the client the first
// one named; with the second alone (`::PROXY`), a v1 header naming the TCP client itself. A connection without a
// valid header is closed before it reaches the backend, and counted. --proxy-protocol-from and
// --proxy-protocol-timeout given without --proxy-protocol apply to those entries alone: a peer outside the range, and
// a header not whole in time, are closed, while the HTTP listener takes connections without a header.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { GatewayProcess } from './harness.ts';
import { exchange, logged, metricValue, streamServiceYaml, TcpEcho } from './streams.ts';

/** A version 2 PROXY header for TCP over IPv6: 2001:db8::1 port 40001 to 2001:db8::2 port 443. */
function v2Header(): Buffer {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  const address = (last: number) => [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), last];
  const block = [...address(1), ...address(2), 0x9c, 0x41, 0x01, 0xbb];
  return Buffer.from([...signature, 0x21, 0x21, 0, block.length, ...block]);
}

describe('TCP services with PROXY protocol', () => {
  const gw = new GatewayProcess();
  let echo: TcpEcho;
  const port = { decode: 0, both: 0, encode: 0 };
  /** What the backend received on the connection that carried `marker`. */
  const seenWith = (marker: string) => waitFor(`the backend to receive ${marker}`, () => echo.received.map((_, i) => echo.text(i)).find((t) => t.includes(marker)) ?? '');

  beforeAll(async () => {
    echo = await new TcpEcho('e', '127.0.0.2', await freePort()).start();
    for (const k of Object.keys(port) as Array<keyof typeof port>) port[k] = await freePort();
    gw.write('services.yaml', streamServiceYaml('echo', [{ name: 'echo', port: 7000, protocol: 'TCP' }], ['127.0.0.2'], echo.port));
    gw.write('tcp.yaml', configMapYaml('tcp-services', { [port.decode]: 'default/echo:7000:PROXY', [port.both]: 'default/echo:echo:PROXY:PROXY', [port.encode]: 'default/echo:7000::PROXY' }));
    await gw.start(['--tcp-services-configmap', 'default/tcp-services']);
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await echo.stop();
  });

  it('reads a v1 header from the client; the backend gets the bytes after it', async () => {
    const r = await exchange(port.decode, 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 7000\r\nafter-v1', (d) => d.endsWith('after-v1'));
    expect(r.data).toBe('e:after-v1');
    expect(await seenWith('after-v1')).toBe('after-v1');
  });

  it("sends the backend a v1 header naming the client the client's header named", async () => {
    const r = await exchange(port.both, 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 7000\r\nrelayed', (d) => d.endsWith('relayed'));
    expect(r.data).toContain('relayed');
    expect(await seenWith('relayed')).toBe('PROXY TCP4 203.0.113.7 198.51.100.1 40000 7000\r\nrelayed');
  });

  it('reads a v2 header (IPv6) and passes its client on in v1', async () => {
    const r = await exchange(port.both, Buffer.concat([v2Header(), Buffer.from('from-v2')]), (d) => d.endsWith('from-v2'));
    expect(r.data).toContain('from-v2');
    expect(await seenWith('from-v2')).toBe('PROXY TCP6 2001:db8::1 2001:db8::2 40001 443\r\nfrom-v2');
  });

  it('with `::PROXY` sends a header naming the TCP client and the port it reached', async () => {
    const r = await exchange(port.encode, 'plain', (d) => d.endsWith('plain'));
    expect(r.data).toContain('plain');
    expect(await seenWith('plain')).toMatch(new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ ${port.encode}\\r\\nplain$`));
  });

  it('closes a connection without a valid header before the backend sees it, and counts it; a bare connect-and-close is not counted', async () => {
    const before = echo.received.length;
    const r = await exchange(port.decode, 'GET / HTTP/1.1\r\n\r\n');
    expect(r.data).toBe('');
    expect(r.ended).toBe('end');
    await exchange(port.decode, '', undefined, 300);
    expect(echo.received.length).toBe(before);
    const metrics = await waitFor('the bare connection counted', async () => {
      const m = await gw.metrics();
      return metricValue(m, 'netplane_ingress_stream_connections_total', { port: String(port.decode), result: 'client-gone' }) === 1 ? m : '';
    });
    expect(metricValue(metrics, 'netplane_ingress_stream_connections_total', { port: String(port.decode), result: 'proxy-protocol' })).toBe(1);
    expect(gw.output).toContain('connection closed: bad PROXY protocol header from 127.0.0.1: the connection does not start with a PROXY protocol header');
  });
});

describe('TCP services with PROXY protocol: --proxy-protocol-from and --proxy-protocol-timeout without --proxy-protocol', () => {
  const gw = new GatewayProcess();
  let echo: TcpEcho;
  let port = 0;

  beforeAll(async () => {
    echo = await new TcpEcho('e', '127.0.0.2', await freePort()).start();
    port = await freePort();
    gw.write('services.yaml', streamServiceYaml('echo', [{ name: 'echo', port: 7000, protocol: 'TCP' }], ['127.0.0.2'], echo.port));
    gw.write('tcp.yaml', configMapYaml('tcp-services', { [port]: 'default/echo:7000:PROXY' }));
    await gw.start(['--tcp-services-configmap', 'default/tcp-services', '--proxy-protocol-from', '127.0.0.1/32', '--proxy-protocol-timeout', '1s']);
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await echo.stop();
  });

  it('relays a header from a peer in --proxy-protocol-from', async () => {
    const r = await exchange(port, 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 7000\r\nallowed', (d) => d.endsWith('allowed'));
    expect(r.data).toBe('e:allowed');
  });

  it('closes a connection from a peer outside --proxy-protocol-from before the backend sees it', async () => {
    const before = echo.received.length;
    const r = await exchange(port, 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 7000\r\nrefused', () => false, 5000, '127.0.0.5');
    // Closed unread: the kernel may answer the bytes in flight with a reset.
    expect(r.data).toBe('');
    expect(['end', 'reset']).toContain(r.ended);
    expect(echo.received.length).toBe(before);
    await logged(() => gw.output, 'connection closed: peer 127.0.0.5 is not in --proxy-protocol-from');
  });

  it('closes a connection whose header is not whole within --proxy-protocol-timeout', async () => {
    const r = await exchange(port, 'PROXY TCP4 203.0.113.7 ', () => false, 5000);
    expect(r).toMatchObject({ data: '', ended: 'end' });
    expect(r.ms).toBeGreaterThan(900);
    expect(r.ms).toBeLessThan(3000);
    await logged(() => gw.output, 'no whole PROXY protocol header from 127.0.0.1 within 1000 ms');
  });

  it('leaves the HTTP listener without PROXY protocol', async () => {
    expect((await gw.get('nothing.test', '/')).status).toBe(404);
  });
});

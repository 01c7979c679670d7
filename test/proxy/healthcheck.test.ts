import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { healthBody, HealthCheckServers } from '../../proxy/healthcheck.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { freePort } from '../helpers/ports.ts';


describe('healthBody', () => {
  const rows: Array<[localEndpoints: number, proxyHealthy: boolean, status: number]> = [
    [2, true, 200],
    [2, false, 503],
    [0, true, 503],
    [0, false, 503],
  ];
  it.each(rows)('%i local endpoints, proxy healthy %s: %i', (localEndpoints, proxyHealthy, status) => {
    const r = healthBody({ port: 1, namespace: 'd', name: 'x', localEndpoints }, proxyHealthy);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body)).toEqual({ service: { namespace: 'd', name: 'x' }, localEndpoints, serviceProxyHealthy: proxyHealthy });
  });
});

describe('health-check node ports', () => {
  let servers: HealthCheckServers | undefined;
  afterEach(async () => servers?.close());

  it('answers 200 with local endpoints and 503 without, in kube-proxy\'s JSON shape, and follows updates', async () => {
    let healthy = true;
    servers = new HealthCheckServers({ host: '127.0.0.1', log: silentLogger(), proxyHealthy: () => healthy });
    const port = await freePort();
    await servers.update([{ port, namespace: 'shop', name: 'edge', localEndpoints: 2 }]);
    let res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ service: { namespace: 'shop', name: 'edge' }, localEndpoints: 2, serviceProxyHealthy: true });

    healthy = false;
    await servers.update([{ port, namespace: 'shop', name: 'edge', localEndpoints: 0 }]);
    res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ service: { namespace: 'shop', name: 'edge' }, localEndpoints: 0, serviceProxyHealthy: false });

    await servers.update([]);
    expect(servers.ports()).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it('skips a port it cannot bind, serves the others, and retries on the next update', async () => {
    servers = new HealthCheckServers({ host: '127.0.0.1', log: silentLogger(), proxyHealthy: () => true });
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const taken = (busy.address() as { port: number }).port;
    const free = await freePort();
    const plans = [
      { port: taken, namespace: 'a', name: 'a', localEndpoints: 1 },
      { port: free, namespace: 'b', name: 'b', localEndpoints: 1 },
    ];
    await servers.update(plans);
    expect(servers.ports()).toEqual([free]);
    await new Promise((r) => busy.close(r));
    await servers.update(plans);
    expect(servers.ports()).toEqual([taken, free].sort((x, y) => x - y));
  });
});

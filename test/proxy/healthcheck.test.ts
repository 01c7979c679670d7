import { EventEmitter } from 'node:events';
import { createServer, type ListenOptions } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { healthBody, healthCheckHosts, HealthCheckServers, listenDualStack } from '../../proxy/healthcheck.ts';
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

describe('listenDualStack', () => {
  let servers: HealthCheckServers | undefined;
  afterEach(async () => servers?.close());

  /** A server whose binds fail with the given code for the given hosts; records the binds tried. */
  const fake = (fails: Record<string, string>) => {
    const tried: ListenOptions[] = [];
    const server = Object.assign(new EventEmitter(), {
      listen(options: ListenOptions, listening: () => void) {
        tried.push(options);
        const code = fails[options.host ?? ''];
        if (code) setImmediate(() => server.emit('error', Object.assign(new Error(code), { code })));
        else setImmediate(listening);
      },
    });
    return { server, tried };
  };

  it.each<[string, string, Record<string, string>, ListenOptions[], string | undefined]>([
    ['0.0.0.0 listens on :: for both families', '0.0.0.0', {}, [{ port: 1, host: '::', ipv6Only: false }], undefined],
    ['0.0.0.0 on a host without IPv6 falls back to IPv4', '0.0.0.0', { '::': 'EAFNOSUPPORT' }, [{ port: 1, host: '::', ipv6Only: false }, { port: 1, host: '0.0.0.0' }], undefined],
    ['0.0.0.0 with the port taken fails as it is', '0.0.0.0', { '::': 'EADDRINUSE' }, [{ port: 1, host: '::', ipv6Only: false }], 'EADDRINUSE'],
    ['another address is used as given', '192.168.50.1', {}, [{ port: 1, host: '192.168.50.1' }], undefined],
  ])('%s', async (_what, host, fails, binds, error) => {
    const { server, tried } = fake(fails);
    const done = listenDualStack(server, 1, host);
    if (error) await expect(done).rejects.toMatchObject({ code: error });
    else await done;
    expect(tried).toEqual(binds);
  });

  it('health-check node ports on 0.0.0.0 answer on IPv4 and IPv6 loopback', async () => {
    servers = new HealthCheckServers({ host: '0.0.0.0', log: silentLogger(), proxyHealthy: () => true });
    const port = await freePort();
    await servers.update([{ port, namespace: 'shop', name: 'edge', localEndpoints: 1 }]);
    for (const host of ['127.0.0.1', '[::1]']) expect((await fetch(`http://${host}:${port}/`)).status).toBe(200);
  });

  it('with a list of addresses, listens on each and follows the list at every update', async () => {
    let hosts: string[] = ['127.0.0.1'];
    servers = new HealthCheckServers({ host: '0.0.0.0', hosts: () => hosts, log: silentLogger(), proxyHealthy: () => true });
    const port = await freePort();
    const plan = [{ port, namespace: 'shop', name: 'edge', localEndpoints: 1 }];
    await servers.update(plan);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    await expect(fetch(`http://[::1]:${port}/`)).rejects.toThrow();
    hosts = ['::1'];
    await servers.update(plan);
    expect((await fetch(`http://[::1]:${port}/`)).status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    expect(servers.ports()).toEqual([port]);
  });
});

describe('healthCheckHosts (kube-proxy takes the health servers\' node IPs from --nodeport-addresses)', () => {
  const ifs = {
    lo: [{ address: '127.0.0.1', family: 'IPv4', netmask: '255.0.0.0', mac: '', internal: true, cidr: '127.0.0.1/8' }, { address: '::1', family: 'IPv6', netmask: '', mac: '', internal: true, cidr: '::1/128', scopeid: 0 }],
    eth0: [
      { address: '192.168.50.2', family: 'IPv4', netmask: '255.255.255.0', mac: '', internal: false, cidr: '192.168.50.2/24' },
      { address: '2001:db8::2', family: 'IPv6', netmask: '', mac: '', internal: false, cidr: '2001:db8::2/64', scopeid: 0 },
      { address: 'fe80::1', family: 'IPv6', netmask: '', mac: '', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    ],
    eth1: [{ address: '10.0.0.2', family: 'IPv4', netmask: '255.255.255.0', mac: '', internal: false, cidr: '10.0.0.2/24' }],
  } as const;
  it.each<[string[], string[] | undefined]>([
    [[], undefined],
    [['192.168.50.0/24'], ['192.168.50.2', '::']],
    [['192.168.50.0/24', '10.0.0.2/32'], ['10.0.0.2', '192.168.50.2', '::']],
    [['2001:db8::/64'], ['0.0.0.0', '2001:db8::2']],
    [['fe80::/10', '192.168.99.0/24'], []],
  ])('%j gives %j', (cidrs, want) => {
    expect(healthCheckHosts(cidrs, ifs as never)).toEqual(want);
  });
});

// netplane proxy --mode userspace as the quick start runs it: no privileges, Service ports on loopback, endpoints
// on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstLine } from '../helpers/first-line.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../helpers/ports.ts';
import { writeManifests } from './manifests.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));



describe('netplane proxy --mode userspace', () => {
  const backends: Server[] = [];
  let dir: string;
  let proxy: ChildProcess;
  let servicePort: number;
  let udpPort: number;
  let emptyPort: number;
  const udpEcho = createSocket('udp4');

  beforeAll(async () => {
    const slices: object[] = [];
    for (const name of ['a', 'b']) {
      const srv = createServer((s) => s.end(`${name}\n`));
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      backends.push(srv);
      slices.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `web-${name}`, labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'] }],
        ports: [{ name: 'http', port: (srv.address() as AddressInfo).port }],
      });
    }
    udpEcho.on('message', (m, r) => udpEcho.send(`echo ${m}`, r.port, r.address));
    await new Promise<void>((r) => udpEcho.bind(0, '127.0.0.1', r));
    [servicePort, udpPort, emptyPort] = [await freePort(), await freePort(), await freePort()];
    const objects = [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: servicePort }] } },
      ...slices,
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns' }, spec: { clusterIP: '10.96.0.11', ports: [{ name: 'dns', port: udpPort, protocol: 'UDP' }] } },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'dns-1', labels: { 'kubernetes.io/service-name': 'dns' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'] }],
        ports: [{ name: 'dns', port: (udpEcho.address() as AddressInfo).port, protocol: 'UDP' }],
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'empty' }, spec: { clusterIP: '10.96.0.12', ports: [{ port: emptyPort }] } },
    ];
    dir = await mkdtemp(join(tmpdir(), 'netplane-userspace-'));
    await writeManifests(dir, objects);
    proxy = spawn(process.execPath, [bin, 'proxy', '--mode', 'userspace', '--manifests', dir, '--admin', '127.0.0.1:0', '--min-sync-period', '50ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proxy.stdout!.on('data', (d) => (out += d));
    await waitFor('the first sync', () => out.includes('"rules synced"'), 15_000);
  });
  afterAll(async () => {
    proxy?.kill('SIGTERM');
    for (const b of backends) b.close();
    udpEcho.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('forwards TCP to every endpoint', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await firstLine(servicePort));
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('relays UDP both ways', async () => {
    const sock = createSocket('udp4');
    const reply = new Promise<string>((r) => sock.once('message', (m) => r(String(m))));
    sock.send('ping', udpPort, '127.0.0.1');
    expect(await reply).toBe('echo ping');
    sock.close();
  });

  it('refuses a Service without endpoints at once', async () => {
    const t0 = performance.now();
    await expect(firstLine(emptyPort)).rejects.toThrow(/ECONNRESET|ECONNREFUSED|socket hang up|closed/);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

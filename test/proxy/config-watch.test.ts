// --config read again while netplane proxy runs (userspace mode: no privileges): a rewrite that gives the same
// settings changes nothing; a file that cannot be used is logged once and the proxy runs on as it started; a changed
// setting restarts the process in place — the same PID — with the new settings, and its Service port serves again.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { changedFlags } from '../../runtime/reloader.ts';
import { freePort } from '../helpers/ports.ts';
import { firstLine } from '../helpers/first-line.ts';
import { waitFor } from '../helpers/wait.ts';
import { writeManifests } from './manifests.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));


const metricsAt = (port: number) => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status, () => 'refused');

describe('changedFlags', () => {
  it('names the flags whose values differ, deeply compared', () => {
    const running = { admin: { host: '127.0.0.1', port: 10249 }, 'cluster-cidr': [['10.244.0.0/16']], 'masquerade-all': false };
    expect(changedFlags(running, structuredClone(running))).toEqual([]);
    expect(changedFlags(running, { ...running, admin: { host: '0.0.0.0', port: 10249 }, 'masquerade-all': true })).toEqual(['admin', 'masquerade-all']);
  });
});

describe('netplane proxy --config, rewritten while it runs', () => {
  let dir: string | undefined;
  let proxy: ChildProcess | undefined;
  let backend: Server | undefined;
  afterAll(async () => {
    proxy?.kill('SIGKILL');
    backend?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('changes nothing for the same settings, keeps running on a bad file, and restarts in place for a new setting', async () => {
    backend = createServer((s) => s.end('web\n'));
    await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', r));
    const [servicePort, first, second] = [await freePort(), await freePort(), await freePort()];
    dir = await mkdtemp(join(tmpdir(), 'netplane-config-watch-'));
    await writeManifests(join(dir), [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: servicePort }] } },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'] }],
        ports: [{ name: 'http', port: (backend.address() as AddressInfo).port }],
      },
    ]);
    const file = join(dir, 'config.conf');
    const config = (metrics: number) => ({ apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', metricsBindAddress: `127.0.0.1:${metrics}`, clusterCIDR: '10.244.0.0/16' });
    await writeFile(file, stringify(config(first)));
    // Manifests beside the file: the manifests directory holds only the objects (a .conf is not read as one).
    proxy = spawn(process.execPath, [bin, 'proxy', '--mode', 'userspace', '--manifests', dir, '--config', file, '--min-sync-period', '50ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proxy.stdout!.on('data', (d) => (out += d));
    proxy.stderr!.on('data', (d) => (out += d));
    let exited = false;
    proxy.once('exit', () => (exited = true));
    const starts = () => out.split('\n').filter((l) => l.includes('"netplane proxy starting"')).length;
    await waitFor('the first sync', () => out.includes('"rules synced"'), 15_000);
    expect(await metricsAt(first)).toBe(200);
    expect(await firstLine(servicePort)).toBe('web');

    // The same settings, written differently: nothing to do.
    await writeFile(file, `# rewritten\n${stringify(config(first))}`);
    await waitFor('the rewrite read', () => out.includes('was rewritten; the settings it gives are the ones running'), 12_000);
    expect(starts()).toBe(1);

    // A file that cannot be used: said once, the proxy runs on.
    await writeFile(file, stringify({ ...config(second), clusterCIDR: '10.244.0.0/99' }));
    await waitFor('the bad file logged', () => out.includes('changed and cannot be used; netplane proxy keeps running as it started'), 12_000);
    await new Promise((r) => setTimeout(r, 6000));
    expect(out.split('\n').filter((l) => l.includes('changed and cannot be used')).length).toBe(1);
    expect(await metricsAt(first)).toBe(200);
    expect(await metricsAt(second)).toBe('refused');

    // A new metrics address: the same process starts again with it.
    await writeFile(file, stringify(config(second)));
    await waitFor('the restart', () => starts() === 2, 12_000);
    await waitFor('metrics on the new address', async () => (await metricsAt(second)) === 200, 15_000, 200);
    expect(out).toContain('changed (--admin): netplane proxy restarts in place to apply it');
    expect(exited).toBe(false);
    expect(await metricsAt(first)).toBe('refused');
    await waitFor('the Service served again', async () => (await firstLine(servicePort).catch(() => '')) === 'web', 15_000, 200);
  }, 90_000);
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { readUpView } from '../../../bin/up/view.ts';
import { service, slice } from '../../fixtures/objects.ts';

const quickstart = fileURLToPath(new URL('../../../examples/quickstart', import.meta.url));

describe('readUpView', () => {
  it('reads the quick start: the proxy listeners, the ingress host, and one backend per loopback endpoint', async () => {
    const view = await readUpView(quickstart, 'local', 'netplane');
    expect(view.ports.map((p) => [p.service, p.portName, p.protocol, p.listenPort, p.clusterIP, p.endpoints])).toEqual([
      ['default/api', 'http', 'TCP', 8001, '10.96.0.21', 1],
      ['default/web', 'http', 'TCP', 8000, '10.96.0.20', 2],
    ]);
    expect(view.hosts).toEqual(['web.localhost']);
    expect(view.backends).toEqual([
      { name: 'api-1', host: '127.0.0.1', port: 8083, service: 'default/api' },
      { name: 'web-1', host: '127.0.0.1', port: 8081, service: 'default/web' },
      { name: 'web-2', host: '127.0.0.1', port: 8082, service: 'default/web' },
    ]);
    expect(view.services).toEqual([
      { namespace: 'default', name: 'api', endpoints: 1 },
      { namespace: 'default', name: 'web', endpoints: 2 },
    ]);
  });

  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('names backends by Pod, then hostname, then Service; skips UDP, non-loopback and repeated endpoints; lists only its class', async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-upview-'));
    const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });
    const objects = [
      service('a', { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
      slice('a-1', 'a', [ep('127.0.0.2'), ep('127.0.0.3', { hostname: 'a-host' }), ep('10.244.0.5')], [{ name: 'http', port: 9000 }, { name: 'dns', port: 9053, protocol: 'UDP' }]),
      // Selects a's first endpoint again: one backend serves both.
      service('b', { clusterIP: '10.96.0.2', ports: [{ name: 'http', port: 81 }] }),
      slice('b-1', 'b', [ep('127.0.0.2', { targetRef: { kind: 'Pod', name: 'shared' } })], [{ name: 'http', port: 9000 }]),
      { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'mine', namespace: 'default' }, spec: { ingressClassName: 'netplane', rules: [{ host: 'a.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'a', port: { name: 'http' } } } }] } }] } },
      { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'theirs', namespace: 'default' }, spec: { ingressClassName: 'nginx', rules: [{ host: 'b.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'b', port: { name: 'http' } } } }] } }] } },
    ];
    await writeFile(join(dir, 'all.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    const view = await readUpView(dir, 'n1', 'netplane');
    expect(view.backends.map((b) => [b.name, b.host, b.port, b.service])).toEqual([
      ['a-1', '127.0.0.2', 9000, 'default/a'],
      ['a-host', '127.0.0.3', 9000, 'default/a'],
    ]);
    expect(view.hosts).toEqual(['a.test']);
    expect(view.ports.map((p) => [p.service, p.protocol, p.listenPort])).toEqual([
      ['default/a', 'UDP', 53],
      ['default/a', 'TCP', 80],
      ['default/b', 'TCP', 81],
    ]);
  });
});

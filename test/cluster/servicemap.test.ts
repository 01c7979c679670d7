import { describe, expect, it } from 'vitest';
import { parseObject } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import { sampleCluster, service, slice } from '../fixtures/objects.ts';

function storeWith(raws: object[]): Store {
  const store = new Store();
  store.apply(raws.flatMap((r) => parseObject(r)));
  return store;
}

describe('ServiceMap entries', () => {
  const map = new ServiceMap(storeWith(sampleCluster()), { nodeName: 'n1' });

  it('has one entry per Service and per Service port', () => {
    expect([...map.services.keys()].sort()).toEqual(['default/edge', 'default/search', 'default/web', 'shop/db']);
    expect([...map.ports.keys()].sort()).toEqual(['default/edge:dns/UDP', 'default/edge:https/TCP', 'default/web:http/TCP', 'shop/db:pg/TCP']);
  });

  it('gives dual-stack cluster IPs and the endpoints of both families with their conditions', () => {
    const web = map.ports.get('default/web:http/TCP')!;
    expect(web.service.clusterIPs).toEqual(['10.96.0.10', 'fd00:96::10']);
    expect(web.targetPort).toBe(8080);
    expect(web.endpoints.map((e) => [e.ip, e.port, e.family, e.ready, e.serving, e.terminating, e.nodeName, e.zone, e.local])).toEqual([
      ['10.244.1.5', 8080, 4, true, true, false, 'n1', 'zone-a', true],
      ['10.244.2.5', 8080, 4, false, true, true, 'n2', 'zone-b', false],
      ['fd00:244:1::5', 8080, 6, true, true, false, 'n1', undefined, true],
    ]);
  });

  it('carries nodePort, LB IPs (VIP mode only), external IPs, source ranges, affinity, policies and hints', () => {
    const https = map.ports.get('default/edge:https/TCP')!;
    expect(https).toMatchObject({ port: 443, nodePort: 30443, protocol: 'TCP' });
    expect(https.service).toMatchObject({
      type: 'LoadBalancer',
      loadBalancerIPs: ['203.0.113.10'],
      externalIPs: ['203.0.113.5'],
      loadBalancerSourceRanges: ['198.51.100.0/24'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 10800,
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 32000,
    });
    expect(https.endpoints[0]).toMatchObject({ ip: '10.244.1.9', port: 8443, zoneHints: ['zone-a'], nodeHints: [] });
    // The UDP port takes the slice's UDP port of the same name.
    expect(map.ports.get('default/edge:dns/UDP')!.endpoints.map((e) => e.port)).toEqual([5353]);
  });

  it('gives headless Services their addresses with hostnames, and ExternalName Services no addresses', () => {
    const db = map.services.get('shop/db')!;
    expect(db.headless).toBe(true);
    expect(db.clusterIPs).toEqual([]);
    expect(db.addresses).toMatchObject([{ ip: '10.244.2.7', hostname: 'db-0', local: false }]);
    const search = map.services.get('default/search')!;
    expect(search).toMatchObject({ type: 'ExternalName', externalName: 'search.example.com', clusterIPs: [], ports: [] });
  });

  it('is built for a node: the same cluster seen from n2 marks other endpoints local', () => {
    const fromN2 = new ServiceMap(storeWith(sampleCluster()), { nodeName: 'n2' });
    expect(fromN2.ports.get('default/web:http/TCP')!.endpoints.filter((e) => e.local).map((e) => e.ip)).toEqual(['10.244.2.5']);
  });
});

describe('ServiceMap endpoint rules', () => {
  it('keeps one endpoint per address and port across overlapping slices, preferring a ready one', () => {
    const store = storeWith([
      service('a', { clusterIP: '10.96.1.1', ports: [{ port: 80 }] }),
      slice('a-1', 'a', [{ addresses: ['10.0.0.1'], conditions: { ready: false } }], [{ port: 80 }]),
      slice('a-2', 'a', [{ addresses: ['10.0.0.1'], conditions: { ready: true } }, { addresses: ['10.0.0.2', '10.0.0.3'] }], [{ port: 80 }]),
    ]);
    const eps = new ServiceMap(store, { nodeName: 'x' }).ports.get('default/a:/TCP')!.endpoints;
    // Only the first address of an endpoint is used, as discovery/v1 tells consumers.
    expect(eps.map((e) => [e.ip, e.ready])).toEqual([
      ['10.0.0.1', true],
      ['10.0.0.2', true],
    ]);
  });

  it('reads unset conditions as discovery/v1 says (ready and serving true, terminating false), as kube-proxy does', () => {
    const store = storeWith([
      service('a', { clusterIP: '10.96.1.1', ports: [{ port: 80 }] }),
      slice(
        'a-1',
        'a',
        [
          { addresses: ['10.0.0.1'] },
          { addresses: ['10.0.0.2'], conditions: { ready: false, terminating: true } },
          { addresses: ['10.0.0.3'], conditions: { ready: false, serving: false, terminating: true } },
          { addresses: ['10.0.0.4'], conditions: { ready: false } },
        ],
        [{ port: 80 }],
      ),
    ]);
    const eps = new ServiceMap(store, { nodeName: 'x' }).ports.get('default/a:/TCP')!.endpoints;
    expect(eps.map((e) => [e.ip, e.ready, e.serving, e.terminating])).toEqual([
      ['10.0.0.1', true, true, false],
      // Terminating with serving unset: still serving, so a fallback when no endpoint is ready.
      ['10.0.0.2', false, true, true],
      ['10.0.0.3', false, false, true],
      ['10.0.0.4', false, true, false],
    ]);
  });

  it('ignores slices of other Services, other namespaces, FQDN slices and ports of other names or protocols', () => {
    const store = storeWith([
      service('a', { clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80 }] }),
      slice('a-other-ns', 'a', [{ addresses: ['10.0.0.9'] }], [{ name: 'http', port: 80 }], { namespace: 'other' }),
      slice('b-1', 'b', [{ addresses: ['10.0.0.8'] }], [{ name: 'http', port: 80 }]),
      slice('a-udp', 'a', [{ addresses: ['10.0.0.7'] }], [{ name: 'http', port: 80, protocol: 'UDP' }]),
      slice('a-name', 'a', [{ addresses: ['10.0.0.6'] }], [{ name: 'metrics', port: 9090 }]),
      { ...slice('a-fqdn', 'a', [{ addresses: ['db.example.com'] }], [{ name: 'http', port: 80 }]), addressType: 'FQDN' },
    ]);
    expect(new ServiceMap(store, { nodeName: 'x' }).ports.get('default/a:http/TCP')!.endpoints).toEqual([]);
  });
});

describe('ServiceMap change tracking', () => {
  it('reports every entry as changed to a new tracker, then nothing until something changes', () => {
    const map = new ServiceMap(storeWith(sampleCluster()), { nodeName: 'n1' });
    const t = map.tracker();
    expect(t.pending()).toEqual({ services: 4, endpoints: 0 });
    expect([...t.take().ports].sort()).toEqual([...map.ports.keys()].sort());
    expect(t.take().ports.size).toBe(0);
    expect(t.oldestPending()).toBeUndefined();
  });

  it('names the ports that changed, with the cause, and ignores writes that change nothing', () => {
    const store = storeWith(sampleCluster());
    const map = new ServiceMap(store, { nodeName: 'n1' });
    const t = map.tracker();
    t.take();
    let notified = 0;
    t.onChange(() => notified++);

    // Same object again: no change anywhere.
    store.apply(parseObject(sampleCluster()[3]!));
    expect(notified).toBe(0);

    // One endpoint becomes ready: only web's port changes, counted as an endpoint change.
    store.apply(parseObject(slice('web-v4', 'web', [
      { addresses: ['10.244.1.5'], nodeName: 'n1', zone: 'zone-a' },
      { addresses: ['10.244.2.5'], nodeName: 'n2', zone: 'zone-b' },
    ], [{ name: 'http', port: 8080, protocol: 'TCP' }])));
    expect(notified).toBe(1);
    expect(t.pending()).toEqual({ services: 0, endpoints: 1 });
    expect(t.oldestPending()).toBeTypeOf('number');
    const c = t.take();
    expect([...c.services]).toEqual(['default/web']);
    expect([...c.ports]).toEqual(['default/web:http/TCP']);

    // A port is renamed: the old port key goes, the new one comes; a spec change.
    store.apply(parseObject(service('edge', { type: 'ClusterIP', clusterIP: '10.96.0.30', ports: [{ name: 'tls', port: 443 }] })));
    expect(t.pending()).toEqual({ services: 1, endpoints: 0 });
    expect([...t.take().ports].sort()).toEqual(['default/edge:dns/UDP', 'default/edge:https/TCP', 'default/edge:tls/TCP']);
    expect(map.ports.has('default/edge:https/TCP')).toBe(false);

    // The Service goes: its entries go; a slice left behind does not bring it back.
    store.apply([{ kind: 'Service', key: 'default/edge', object: undefined }]);
    expect([...t.take().ports]).toEqual(['default/edge:tls/TCP']);
    expect(map.services.has('default/edge')).toBe(false);
  });

  it('moves endpoints when a slice is relabelled to another Service', () => {
    const store = storeWith([
      service('a', { clusterIP: '10.96.1.1', ports: [{ port: 80 }] }),
      service('b', { clusterIP: '10.96.1.2', ports: [{ port: 80 }] }),
      slice('s', 'a', [{ addresses: ['10.0.0.1'] }], [{ port: 80 }]),
    ]);
    const map = new ServiceMap(store, { nodeName: 'x' });
    const t = map.tracker();
    t.take();
    store.apply(parseObject(slice('s', 'b', [{ addresses: ['10.0.0.1'] }], [{ port: 80 }])));
    expect([...t.take().services].sort()).toEqual(['default/a', 'default/b']);
    expect(map.ports.get('default/a:/TCP')!.endpoints).toEqual([]);
    expect(map.ports.get('default/b:/TCP')!.endpoints.map((e) => e.ip)).toEqual(['10.0.0.1']);
  });
});

import { describe, expect, it } from 'vitest';
import { InvalidObjectError, parseObject } from '../../cluster/model/index.ts';

const svc = (spec: object, metadata: object = { name: 'web' }) => ({ apiVersion: 'v1', kind: 'Service', metadata, spec });

describe('parseObject: defaults filled as the API server fills them', () => {
  const cases: Array<{ name: string; raw: object; expect: (o: any) => void }> = [
    {
      name: 'namespace, type, protocol, targetPort, policies',
      raw: svc({ clusterIP: '10.0.0.1', ports: [{ port: 80 }] }),
      expect: (o) => {
        expect(o.metadata.namespace).toBe('default');
        expect(o.spec.type).toBe('ClusterIP');
        expect(o.spec.ports).toEqual([{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }]);
        expect(o.spec.clusterIPs).toEqual(['10.0.0.1']);
        expect(o.spec.externalTrafficPolicy).toBe('Cluster');
        expect(o.spec.internalTrafficPolicy).toBe('Cluster');
        expect(o.spec.sessionAffinityTimeoutSeconds).toBe(0);
      },
    },
    {
      name: 'headless',
      raw: svc({ clusterIP: 'None' }),
      expect: (o) => expect([o.spec.headless, o.spec.clusterIPs]).toEqual([true, []]),
    },
    {
      name: 'dual-stack clusterIPs win over clusterIP',
      raw: svc({ clusterIP: '10.0.0.1', clusterIPs: ['10.0.0.1', 'fd00::1'] }),
      expect: (o) => expect(o.spec.clusterIPs).toEqual(['10.0.0.1', 'fd00::1']),
    },
    {
      name: 'ClientIP affinity defaults to three hours',
      raw: svc({ sessionAffinity: 'ClientIP' }),
      expect: (o) => expect(o.spec.sessionAffinityTimeoutSeconds).toBe(10800),
    },
    {
      name: 'ClientIP affinity with a timeout',
      raw: svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
      expect: (o) => expect(o.spec.sessionAffinityTimeoutSeconds).toBe(60),
    },
    {
      name: 'unset slice conditions read as ready and serving',
      raw: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.1.0.1'] }], ports: [{ port: 8080 }] },
      expect: (o) => {
        expect(o.endpoints[0]).toMatchObject({ ready: true, serving: true, terminating: false });
        expect(o.ports).toEqual([{ name: '', protocol: 'TCP', port: 8080 }]);
      },
    },
    {
      name: 'serving follows ready when unset',
      raw: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: false, terminating: true } }] },
      expect: (o) => expect(o.endpoints[0]).toMatchObject({ ready: false, serving: false, terminating: true }),
    },
    {
      name: 'Secret stringData is folded into data as base64',
      raw: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { a: 'eA==' }, stringData: { b: 'hi' } },
      expect: (o) => expect(o.data).toEqual({ a: 'eA==', b: 'aGk=' }),
    },
    {
      name: 'Node podCIDRs from podCIDR',
      raw: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', namespace: 'ignored' }, spec: { podCIDR: '10.244.1.0/24' } },
      expect: (o) => {
        expect(o.spec.podCIDRs).toEqual(['10.244.1.0/24']);
        expect(o.metadata).not.toHaveProperty('namespace');
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [first, ...rest] = parseObject(c.raw);
      expect(rest).toEqual([]);
      c.expect(first!.object);
    });
  }
});

describe('parseObject: conversions and kinds it does not keep', () => {
  it('turns core/v1 Endpoints into one slice per subset and family', () => {
    const out = parseObject({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'web', namespace: 'shop' },
      subsets: [{ addresses: [{ ip: '10.1.0.1', nodeName: 'n1' }, { ip: 'fd00::1' }], notReadyAddresses: [{ ip: '10.1.0.2' }], ports: [{ name: 'http', port: 8080 }] }],
    });
    expect(out.map((o) => [o.kind, o.object.metadata.name])).toEqual([
      ['EndpointSlice', 'web-0-ipv4'],
      ['EndpointSlice', 'web-0-ipv6'],
    ]);
    const v4 = out[0]!.object as any;
    expect(v4.metadata.labels['kubernetes.io/service-name']).toBe('web');
    expect(v4.endpoints.map((e: any) => [e.addresses[0], e.ready, e.nodeName])).toEqual([
      ['10.1.0.1', true, 'n1'],
      ['10.1.0.2', false, undefined],
    ]);
    expect(v4.ports).toEqual([{ name: 'http', protocol: 'TCP', port: 8080, appProtocol: undefined }]);
  });

  it('reads List items and ignores kinds netplane does not use', () => {
    const out = parseObject({
      apiVersion: 'v1',
      kind: 'List',
      items: [svc({ clusterIP: '10.0.0.1' }), { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' } }],
    });
    expect(out.map((o) => o.kind)).toEqual(['Service']);
  });
});

describe('parseObject: errors name the field and the reason', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', 'hello', /not an object/],
    ['no kind', { apiVersion: 'v1' }, /apiVersion and kind/],
    ['wrong version', { apiVersion: 'v1beta1', kind: 'Service', metadata: { name: 'a' } }, /apiVersion "v1beta1" is not supported; use "v1"/],
    ['bad port', svc({ ports: [{ port: 70000 }] }), /spec\.ports\[0\]\.port: must be 1 to 65535/],
    ['bad protocol', svc({ ports: [{ port: 1, protocol: 'ICMP' }] }), /spec\.ports\[0\]\.protocol/],
    ['bad name', svc({}, { name: 'Web_1' }), /metadata\.name: must be lower-case/],
    ['bad cluster IP', svc({ clusterIP: '10.0.0.300' }), /spec\.clusterIP/],
    ['unnamed second port', svc({ ports: [{ port: 1 }, { port: 2 }] }), /spec\.ports\[0\]\.name: is required when a Service has more than one port/],
    ['ExternalName without a name', svc({ type: 'ExternalName' }), /spec\.externalName: is required/],
    [
      'slice address of the wrong family',
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['fd00::1'] }] },
      /endpoints\[0\]\.addresses\[0\]: "fd00::1" is not an IPv4 address/,
    ],
    [
      'ingress path without pathType',
      { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i' }, spec: { rules: [{ http: { paths: [{ path: '/', backend: { service: { name: 'a', port: { number: 80 } } } }] } }] } },
      /spec\.rules\[0\]\.http\.paths\[0\]\.pathType: must be Exact, Prefix or ImplementationSpecific/,
    ],
    ['bad base64 in a Secret', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: '***' } }, /data\.k: must be base64/],
    ['List item', { apiVersion: 'v1', kind: 'List', items: [svc({ ports: [{ port: 0 }] })] }, /^items\[0\]: Service: spec\.ports\[0\]\.port/],
  ];
  for (const [name, raw, message] of cases) {
    it(name, () => {
      let error: unknown;
      try {
        parseObject(raw);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidObjectError);
      expect((error as InvalidObjectError).code).toBe('NETPLANE_INVALID_OBJECT');
      expect((error as Error).message).toMatch(message);
    });
  }
});

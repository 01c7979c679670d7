import { describe, expect, it } from 'vitest';
import { InvalidObjectError, maxListDepth, parseObject } from '../../cluster/model/index.ts';

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
      // discovery/v1: "A nil value should be interpreted as "true"" (serving), kube-proxy: Serving == nil || *Serving.
      name: 'unset serving reads as true even when not ready (a terminating endpoint stays usable as a fallback)',
      raw: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: false, terminating: true } }] },
      expect: (o) => expect(o.endpoints[0]).toMatchObject({ ready: false, serving: true, terminating: true }),
    },
    {
      name: 'null conditions read as unset: ready, serving, not terminating',
      raw: { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: null, serving: null, terminating: null } }] },
      expect: (o) => expect(o.endpoints[0]).toMatchObject({ ready: true, serving: true, terminating: false }),
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

describe('parseObject: null is unset, as the API server decodes it', () => {
  // Templated output often leaves `labels:` or `selector:` with nothing after it; kubectl and the API server take
  // a null field as unset and a null map value as "".
  const cases: Array<{ name: string; raw: object; expect: (o: any) => void }> = [
    {
      name: 'null labels and annotations are empty',
      raw: svc({ clusterIP: '10.0.0.1' }, { name: 'web', labels: null, annotations: null }),
      expect: (o) => expect([o.metadata.labels, o.metadata.annotations]).toEqual([{}, {}]),
    },
    {
      name: 'a null label value is the empty string',
      raw: svc({}, { name: 'web', labels: { app: null } }),
      expect: (o) => expect(o.metadata.labels).toEqual({ app: '' }),
    },
    {
      name: 'null namespace is "default"',
      raw: svc({}, { name: 'web', namespace: null }),
      expect: (o) => expect(o.metadata.namespace).toBe('default'),
    },
    {
      name: 'null selector, ports, policies, affinity config and status take their defaults',
      raw: {
        ...svc({ selector: null, ports: null, externalTrafficPolicy: null, internalTrafficPolicy: null, sessionAffinity: null, sessionAffinityConfig: null, type: null, clusterIP: '10.0.0.1', externalIPs: null }),
        status: { loadBalancer: null },
      },
      expect: (o) => {
        expect(o.spec).toMatchObject({ type: 'ClusterIP', ports: [], externalIPs: [], externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None' });
        expect(o.spec.selector).toBeUndefined();
        expect(o.status).toEqual({ loadBalancer: { ingress: [] } });
      },
    },
    {
      name: 'null port fields: name and protocol defaulted, targetPort from port',
      raw: svc({ ports: [{ name: null, protocol: null, port: 80, targetPort: null, nodePort: null, appProtocol: null }] }),
      expect: (o) => expect(o.spec.ports).toEqual([{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }]),
    },
    {
      name: 'EndpointSlice: null endpoints, ports, hostname, nodeName, zone, hints',
      raw: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 's', labels: null },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.1.0.1'], hostname: null, nodeName: null, zone: null, hints: null, targetRef: null }],
        ports: [{ name: null, port: 80, protocol: null, appProtocol: null }],
      },
      expect: (o) => {
        expect(o.endpoints[0]).toMatchObject({ addresses: ['10.1.0.1'], nodeName: undefined, zone: undefined, zoneHints: undefined });
        expect(o.ports).toEqual([{ name: '', protocol: 'TCP', port: 80 }]);
      },
    },
    {
      name: 'Ingress: null class, default backend, tls and rules',
      raw: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i', annotations: null }, spec: { ingressClassName: null, defaultBackend: null, tls: null, rules: null } },
      expect: (o) => expect(o.spec).toEqual({ tls: [], rules: [] }),
    },
    {
      name: 'Node: null spec and status',
      raw: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: null }, spec: null, status: null },
      expect: (o) => expect([o.spec, o.status]).toEqual([{ podCIDRs: [], unschedulable: false, taints: [] }, { addresses: [] }]),
    },
    {
      name: 'Secret: null type and data, a null data value is empty',
      raw: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: null, data: { a: null }, stringData: null },
      expect: (o) => expect([o.type, o.data]).toEqual(['Opaque', { a: '' }]),
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

  it('writes Endpoints addresses in standard form and refuses a hostname that is not a DNS label, as for slices', () => {
    const endpoints = (address: object) => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'shop' }, subsets: [{ addresses: [address], ports: [{ port: 80 }] }] });
    const [six] = parseObject(endpoints({ ip: 'FD00:0:0::0001', hostname: 'web-0' }));
    expect((six!.object as any).endpoints[0].addresses).toEqual(['fd00::1']);
    expect(() => parseObject(endpoints({ ip: '10.1.0.1', hostname: 'a.b' }))).toThrow(/subsets\.0\.addresses\.0\.hostname|subsets\[0\]\.addresses\[0\]\.hostname/);
  });

  it('reads List items and ignores kinds netplane does not use', () => {
    const out = parseObject({
      apiVersion: 'v1',
      kind: 'List',
      items: [svc({ clusterIP: '10.0.0.1' }), { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' } }],
    });
    expect(out.map((o) => o.kind)).toEqual(['Service']);
  });

  it('reads a typed list of a kind it keeps (ServiceList, EndpointsList as slices), and skips others unread: a custom resource named ...List without items included', () => {
    const services = parseObject({ apiVersion: 'v1', kind: 'ServiceList', items: [svc({ clusterIP: '10.0.0.1' })] }, new Set(['Service']));
    expect(services.map((o) => o.kind)).toEqual(['Service']);
    expect(parseObject({ apiVersion: 'v1', kind: 'ServiceList', items: [svc({ clusterIP: '10.0.0.1' })] }, new Set(['Node']))).toEqual([]);
    const endpoints = { apiVersion: 'v1', kind: 'EndpointsList', items: [{ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.1.0.1' }], ports: [{ port: 80 }] }] }] };
    expect(parseObject(endpoints, new Set(['EndpointSlice'])).map((o) => o.kind)).toEqual(['EndpointSlice']);
    expect(parseObject({ apiVersion: 'example.com/v1', kind: 'IPAllowList', metadata: { name: 'x' }, spec: { cidrs: [] } })).toEqual([]);
    expect(() => parseObject({ apiVersion: 'v1', kind: 'ServiceList' })).toThrow('ServiceList: items must be a list');
  });

  it(`reads Lists nested in Lists up to ${maxListDepth} deep, and refuses deeper ones with a reason of bounded length`, () => {
    const nest = (depth: number) => {
      let raw: unknown = svc({ clusterIP: '10.0.0.1' });
      for (let i = 0; i < depth; i++) raw = { apiVersion: 'v1', kind: 'List', items: [raw] };
      return raw;
    };
    expect(parseObject(nest(maxListDepth)).map((o) => o.kind)).toEqual(['Service']);
    expect(() => parseObject(nest(maxListDepth + 1))).toThrow(new InvalidObjectError(`${'items[0]: '.repeat(maxListDepth)}List: Lists nested more than ${maxListDepth} deep`));
    // A typed list of a kind not read is skipped unread, as that kind is: however deep, and whatever it holds.
    let configMaps: unknown = { apiVersion: 'v1', kind: 'ConfigMapList', items: [] };
    for (let i = 0; i < maxListDepth; i++) configMaps = { apiVersion: 'v1', kind: 'List', items: [configMaps, svc({ clusterIP: '10.0.0.2' })] };
    expect(parseObject(configMaps, new Set(['Service'])).map((o) => o.kind)).toEqual(Array(maxListDepth).fill('Service'));
    // 3,000 levels: refused at the same depth, not after walking them all into a reason of 30,000 characters.
    expect(() => parseObject(nest(3000))).toThrow(new InvalidObjectError(`${'items[0]: '.repeat(maxListDepth)}List: Lists nested more than ${maxListDepth} deep`));
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

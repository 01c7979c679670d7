import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { PlanCache, planProxy, type PlanConfig } from '../../../proxy/plan/plan.ts';
import { service, slice } from '../../fixtures/objects.ts';

const config: PlanConfig = { nodeName: 'n1', zone: 'a', clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/48'], masqueradeAll: false, nodePortAddresses: [] };

function plan(raws: object[], cfg: Partial<PlanConfig> = {}) {
  const store = new Store();
  store.apply(raws.flatMap((r) => parseObject(r)));
  return planProxy(new ServiceMap(store, { nodeName: cfg.nodeName ?? config.nodeName }).ports.values(), { ...config, ...cfg });
}

type Ep = { ip: string; node?: string; zone?: string; ready?: boolean; serving?: boolean; terminating?: boolean; zones?: string[]; nodes?: string[] };
const ep = (e: Ep) => ({
  addresses: [e.ip],
  ...(e.node ? { nodeName: e.node } : {}),
  ...(e.zone ? { zone: e.zone } : {}),
  conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
  ...(e.zones || e.nodes ? { hints: { forZones: (e.zones ?? []).map((name) => ({ name })), forNodes: (e.nodes ?? []).map((name) => ({ name })) } } : {}),
});
const svcWith = (spec: object, eps: Ep[], labels?: Record<string, string>, annotations?: Record<string, string>) => [
  service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...spec }, { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) }),
  slice('web-1', 'web', eps.map(ep), [{ name: 'http', port: 8080 }]),
];
const ips = (t: { ip: string }[]) => t.map((x) => x.ip);

describe('planProxy: endpoint choice', () => {
  const cases: Array<{ name: string; spec?: object; annotations?: Record<string, string>; eps: Ep[]; cfg?: Partial<PlanConfig>; cluster: string[]; external?: string[]; shortcut?: string[]; serving?: string[]; clusterNo?: string; externalNo?: string }> = [
    { name: 'ready endpoints only', eps: [{ ip: '10.244.1.1' }, { ip: '10.244.2.1', ready: false }], cluster: ['10.244.1.1'] },
    {
      name: 'serving-terminating ones when none is ready',
      eps: [{ ip: '10.244.1.1', ready: false, serving: true, terminating: true }, { ip: '10.244.2.1', ready: false, serving: false, terminating: true }],
      cluster: ['10.244.1.1'],
    },
    { name: 'no usable endpoint: reject', eps: [{ ip: '10.244.1.1', ready: false }], cluster: [], clusterNo: 'reject' },
    {
      name: 'internalTrafficPolicy Local: local only',
      spec: { internalTrafficPolicy: 'Local' },
      eps: [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.2.1', node: 'n2' }],
      cluster: ['10.244.1.1'],
    },
    {
      name: 'internalTrafficPolicy Local without local endpoints: drop',
      spec: { internalTrafficPolicy: 'Local' },
      eps: [{ ip: '10.244.2.1', node: 'n2' }],
      cluster: [],
      clusterNo: 'drop',
    },
    {
      name: 'externalTrafficPolicy Local: external traffic local only, cluster traffic everywhere',
      spec: { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.2.1', node: 'n2' }],
      cluster: ['10.244.1.1', '10.244.2.1'],
      external: ['10.244.1.1'],
    },
    {
      name: 'externalTrafficPolicy Local without local endpoints: external drop',
      spec: { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.2.1', node: 'n2' }],
      cluster: ['10.244.2.1'],
      external: [],
      externalNo: 'drop',
    },
    {
      name: 'both policies Local: cluster IP local only, pods and the node short-cut to every endpoint',
      spec: { type: 'LoadBalancer', internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.2.1', node: 'n2' }],
      cluster: ['10.244.1.1'],
      external: ['10.244.1.1'],
      shortcut: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'both policies Local without local endpoints: drop from outside and to the cluster IP, short-cut still works',
      spec: { type: 'LoadBalancer', internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.2.1', node: 'n2' }],
      cluster: [],
      clusterNo: 'drop',
      external: [],
      externalNo: 'drop',
      shortcut: ['10.244.2.1'],
    },
    {
      name: 'the short-cut is topology-filtered like the Cluster policy',
      spec: { type: 'LoadBalancer', internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', trafficDistribution: 'PreferClose', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.2.1', node: 'n2', zone: 'a' }, { ip: '10.244.3.1', node: 'n3', zone: 'b' }],
      cluster: [],
      shortcut: ['10.244.2.1'],
    },
    {
      name: 'internalTrafficPolicy Local with the Cluster external policy: external traffic uses every endpoint',
      spec: { type: 'NodePort', internalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
      eps: [{ ip: '10.244.2.1', node: 'n2' }],
      cluster: [],
      external: ['10.244.2.1'],
      externalNo: 'reject',
    },
    {
      name: 'serving endpoints (whose flows conntrack clean-up keeps): terminating and remote ones too, not the unserving',
      spec: { internalTrafficPolicy: 'Local' },
      eps: [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.1.2', node: 'n1', ready: false, serving: true, terminating: true }, { ip: '10.244.2.1', node: 'n2' }, { ip: '10.244.2.2', node: 'n2', ready: false }],
      cluster: ['10.244.1.1'],
      serving: ['10.244.1.1', '10.244.1.2', '10.244.2.1'],
    },
    {
      name: 'zone hints for our zone narrow cluster traffic',
      eps: [{ ip: '10.244.1.1', zones: ['a'] }, { ip: '10.244.2.1', zones: ['b'] }],
      cluster: ['10.244.1.1'],
    },
    {
      name: 'zone hints ignored unless every endpoint has one',
      eps: [{ ip: '10.244.1.1', zones: ['a'] }, { ip: '10.244.2.1' }],
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'zone hints ignored when none names our zone',
      eps: [{ ip: '10.244.1.1', zones: ['b'] }, { ip: '10.244.2.1', zones: ['c'] }],
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'zone hints ignored when our zone is unknown',
      eps: [{ ip: '10.244.1.1', zones: ['a'] }, { ip: '10.244.2.1', zones: ['b'] }],
      cfg: { zone: undefined },
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'node hints win over zone hints when every endpoint has one',
      eps: [{ ip: '10.244.1.1', zones: ['a'], nodes: ['n9'] }, { ip: '10.244.1.2', zones: ['a'], nodes: ['n1'] }],
      cluster: ['10.244.1.2'],
    },
    {
      name: 'PreferClose without hints uses the endpoints in our zone',
      spec: { trafficDistribution: 'PreferClose' },
      eps: [{ ip: '10.244.1.1', zone: 'a' }, { ip: '10.244.2.1', zone: 'b' }],
      cluster: ['10.244.1.1'],
    },
    {
      name: 'PreferClose without hints and nothing in our zone uses all',
      spec: { trafficDistribution: 'PreferClose' },
      eps: [{ ip: '10.244.2.1', zone: 'b' }, { ip: '10.244.3.1', zone: 'c' }],
      cluster: ['10.244.2.1', '10.244.3.1'],
    },
    // The EndpointSlice controller's heuristics give no hint to an endpoint without a zone (or, for PreferSameNode, a
    // node), and kube-proxy reads hints only when every ready endpoint has one: then every endpoint is used.
    {
      name: 'PreferClose without hints, an endpoint without a zone: all, as the controller would give that one no hint',
      spec: { trafficDistribution: 'PreferClose' },
      eps: [{ ip: '10.244.1.1', zone: 'a' }, { ip: '10.244.2.1' }],
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'PreferSameNode without hints uses this node, else our zone, and an endpoint without a node means zone hints',
      spec: { trafficDistribution: 'PreferSameNode' },
      eps: [{ ip: '10.244.1.1', node: 'n1', zone: 'a' }, { ip: '10.244.1.2', zone: 'a' }, { ip: '10.244.2.1', node: 'n2', zone: 'b' }],
      cluster: ['10.244.1.1', '10.244.1.2'],
    },
    {
      name: 'PreferSameNode without hints, every endpoint with a node: this node only',
      spec: { trafficDistribution: 'PreferSameNode' },
      eps: [{ ip: '10.244.1.1', node: 'n1', zone: 'a' }, { ip: '10.244.1.2', node: 'n3', zone: 'a' }, { ip: '10.244.2.1', node: 'n2', zone: 'b' }],
      cluster: ['10.244.1.1'],
    },
    {
      name: 'topology-mode Auto: the controller decides the hints, and none means all (trafficDistribution is ignored)',
      spec: { trafficDistribution: 'PreferClose' },
      annotations: { 'service.kubernetes.io/topology-mode': 'Auto' },
      eps: [{ ip: '10.244.1.1', zone: 'a' }, { ip: '10.244.2.1', zone: 'b' }],
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
    {
      name: 'the older topology-aware-hints annotation counts too, and hints it wrote are read as any',
      spec: { trafficDistribution: 'PreferClose' },
      annotations: { 'service.kubernetes.io/topology-aware-hints': 'auto' },
      eps: [{ ip: '10.244.1.1', zone: 'a', zones: ['b'] }, { ip: '10.244.2.1', zone: 'b', zones: ['a'] }],
      cluster: ['10.244.2.1'],
    },
    {
      name: 'topology does not apply to not-ready endpoints: falls back to serving-terminating',
      spec: { trafficDistribution: 'PreferClose' },
      eps: [{ ip: '10.244.1.1', zone: 'a', ready: false, serving: true, terminating: true }, { ip: '10.244.2.1', zone: 'b', ready: false, serving: true, terminating: true }],
      cluster: ['10.244.1.1', '10.244.2.1'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const [p, ...rest] = plan(svcWith(c.spec ?? {}, c.eps, undefined, c.annotations), c.cfg).ports;
      expect(rest).toEqual([]);
      expect(ips(p!.clusterEndpoints)).toEqual(c.cluster);
      if (c.external) expect(ips(p!.externalEndpoints)).toEqual(c.external);
      if (c.shortcut) expect(ips(p!.shortcutEndpoints)).toEqual(c.shortcut);
      if (c.serving) expect(ips(p!.servingEndpoints)).toEqual(c.serving);
      if (c.clusterNo) expect(p!.clusterNoEndpoints).toBe(c.clusterNo);
      if (c.externalNo) expect(p!.externalNoEndpoints).toBe(c.externalNo);
    });
  }
});

describe('planProxy: which Services and what of them', () => {
  it('skips headless, ExternalName and proxy-name-labelled Services', () => {
    const p = plan([
      service('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
      service('ext', { type: 'ExternalName', externalName: 'example.com' }),
      service('other', { clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, { labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } }),
      service('mine', { clusterIP: '10.96.0.6', ports: [{ port: 80 }] }),
    ]);
    expect(p.ports.map((x) => x.key)).toEqual(['default/mine:/TCP/v4']);
  });

  it('gives a dual-stack Service one plan per family with that family only', () => {
    const p = plan([
      service('web', {
        type: 'LoadBalancer',
        clusterIPs: ['10.96.0.10', 'fd00:96::10'],
        externalIPs: ['203.0.113.5', '2001:db8::5'],
        loadBalancerSourceRanges: ['198.51.100.0/24', '2001:db8:1::/48'],
        ports: [{ name: 'http', port: 80, nodePort: 30080 }],
      }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } } }),
      slice('web-4', 'web', [ep({ ip: '10.244.1.1' })], [{ name: 'http', port: 8080 }]),
      slice('web-6', 'web', [ep({ ip: 'fd00:244:1::1' })], [{ name: 'http', port: 8080 }], { addressType: 'IPv6' }),
    ]);
    expect(p.ports.map((x) => [x.key, x.family, x.clusterIPs, x.externalIPs, x.loadBalancerIPs, x.sourceRanges, ips(x.clusterEndpoints), x.nodePort])).toEqual([
      ['default/web:http/TCP/v4', 4, ['10.96.0.10'], ['203.0.113.5'], ['203.0.113.10'], ['198.51.100.0/24'], ['10.244.1.1'], 30080],
      ['default/web:http/TCP/v6', 6, ['fd00:96::10'], ['2001:db8::5'], [], ['2001:db8:1::/48'], ['fd00:244:1::1'], 30080],
    ]);
  });

  // kube-proxy's allowFromNode: a load-balancer IP bound on the node is reached from the node with that IP as source.
  it.each<[string, PlanConfig['nodeIPs'], string[], string[]]>([
    ['a range holds the node address: the LB IPs are allowed sources too', { 4: '192.168.77.1', 6: 'fd00:77::1' }, ['192.168.77.0/24', '203.0.113.12/32'], ['fd00:77::/64', '2001:db8::12/128']],
    ['only the IPv6 range holds it', { 4: '192.168.99.1', 6: 'fd00:77::1' }, ['192.168.77.0/24'], ['fd00:77::/64', '2001:db8::12/128']],
    ['no range holds it', { 4: '10.0.0.1', 6: 'fd00:99::1' }, ['192.168.77.0/24'], ['fd00:77::/64']],
    ['the node address is unknown', undefined, ['192.168.77.0/24'], ['fd00:77::/64']],
  ])('loadBalancerSourceRanges when %s', (_what, nodeIPs, v4, v6) => {
    const p = plan([
      service('lbsr', {
        type: 'LoadBalancer',
        clusterIPs: ['10.96.0.12', 'fd00:96::12'],
        loadBalancerSourceRanges: ['192.168.77.0/24', 'fd00:77::/64'],
        ports: [{ name: 'http', port: 80, nodePort: 30080 }],
      }, { status: { loadBalancer: { ingress: [{ ip: '203.0.113.12' }, { ip: '2001:db8::12' }] } } }),
    ], nodeIPs ? { nodeIPs } : {});
    expect(p.ports.map((x) => x.sourceRanges)).toEqual([v4, v6]);
  });

  it('carries protocol, ports, affinity and the health-check node port of a Local LoadBalancer', () => {
    const p = plan([
      service('dns', {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.53',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
        ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30054 }],
      }),
      slice('dns-1', 'dns', [ep({ ip: '10.244.1.1', node: 'n1' }), ep({ ip: '10.244.1.2', node: 'n1' }), ep({ ip: '10.244.2.1', node: 'n2' })], [
        { name: 'dns', port: 5353, protocol: 'UDP' },
        { name: 'dns-tcp', port: 5353, protocol: 'TCP' },
      ]),
    ]);
    // Sorted by key: "dns-tcp" sorts before "dns/".
    expect(p.ports.map((x) => [x.protocol, x.port, x.nodePort, x.affinitySeconds, x.healthCheckNodePort, x.localEndpoints, x.clusterEndpoints[0]?.port])).toEqual([
      ['TCP', 53, 30054, 30, 32000, 2, 5353],
      ['UDP', 53, 30053, 30, 32000, 2, 5353],
    ]);
    expect(p.healthChecks).toEqual([{ port: 32000, namespace: 'default', name: 'dns', localEndpoints: 2 }]);
  });

  describe('the health-check node port counts ready local endpoints only', () => {
    const lb = { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32001, ports: [{ name: 'http', port: 80, nodePort: 30080 }] };
    const terminating = { ready: false, serving: true, terminating: true };
    const rows: Array<[name: string, eps: Ep[], localEndpoints: number, external: string[]]> = [
      ['ready local endpoints count', [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.1.2', node: 'n1' }, { ip: '10.244.2.1', node: 'n2' }], 2, ['10.244.1.1', '10.244.1.2']],
      ['only a terminating local endpoint: 0 (the node is drained), though its traffic still goes there', [{ ip: '10.244.1.3', node: 'n1', ...terminating }, { ip: '10.244.2.1', node: 'n2' }], 0, ['10.244.1.3']],
      ['a terminating one beside a ready one: 1', [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.1.3', node: 'n1', ...terminating }], 1, ['10.244.1.1']],
      ['no local endpoint: 0', [{ ip: '10.244.2.1', node: 'n2' }], 0, []],
    ];
    it.each(rows)('%s', (_name, eps, localEndpoints, external) => {
      const p = plan(svcWith(lb, eps));
      expect(p.healthChecks).toEqual([{ port: 32001, namespace: 'default', name: 'web', localEndpoints }]);
      expect([p.ports[0]!.localEndpoints, ips(p.ports[0]!.externalEndpoints)]).toEqual([localEndpoints, external]);
    });
  });

  it('splits cluster CIDRs and nodeport addresses by family; no nodeport addresses means all', () => {
    expect(plan([]).nodePortAddresses).toEqual({ 4: 'all', 6: 'all' });
    const p = plan([], { nodePortAddresses: ['192.168.0.0/24', 'fd00::/64'], masqueradeAll: true });
    expect(p).toMatchObject({ nodePortAddresses: { 4: ['192.168.0.0/24'], 6: ['fd00::/64'] }, clusterCIDRs: { 4: ['10.244.0.0/16'], 6: ['fd00:244::/48'] }, masqueradeAll: true });
  });

  it('is deterministic: the same map gives an equal plan, sorted by key', () => {
    const raws = [...svcWith({}, [{ ip: '10.244.1.2' }, { ip: '10.244.1.1' }]), service('a', { clusterIP: '10.96.0.1', ports: [{ port: 1 }] })];
    const a = plan(raws);
    expect(a).toEqual(plan([...raws].reverse()));
    expect(a.ports.map((x) => x.key)).toEqual(['default/a:/TCP/v4', 'default/web:http/TCP/v4']);
    expect(ips(a.ports[1]!.clusterEndpoints)).toEqual(['10.244.1.1', '10.244.1.2']);
  });
});

describe('PlanCache', () => {
  it('hands back the same PortPlan objects for unchanged entries, new ones for changed entries or config', () => {
    const store = new Store();
    store.apply([...svcWith({}, [{ ip: '10.244.1.1' }]), service('a', { clusterIP: '10.96.0.1', ports: [{ port: 1 }] })].flatMap((r) => parseObject(r)));
    const map = new ServiceMap(store, { nodeName: 'n1' });
    const cache = new PlanCache();
    const first = planProxy(map.ports.values(), config, cache);
    const again = planProxy(map.ports.values(), config, cache);
    expect(again.ports.map((p, i) => p === first.ports[i])).toEqual([true, true]);
    store.apply(parseObject(slice('web-1', 'web', [ep({ ip: '10.244.1.2' })], [{ name: 'http', port: 8080 }])));
    const changed = planProxy(map.ports.values(), config, cache);
    const byKey = (plan: typeof first) => new Map(plan.ports.map((p) => [p.key, p]));
    expect(byKey(changed).get('default/a:/TCP/v4')).toBe(byKey(first).get('default/a:/TCP/v4'));
    expect(byKey(changed).get('default/web:http/TCP/v4')).not.toBe(byKey(first).get('default/web:http/TCP/v4'));
    expect(changed).toEqual(planProxy(map.ports.values(), config));
    const otherZone = planProxy(map.ports.values(), { ...config, zone: 'b' }, cache);
    expect(otherZone.ports[0]).not.toBe(changed.ports[0]);
  });

  it('marks endpoints known to be on another node as not local (hairpin needs only the others)', () => {
    const [p] = plan(svcWith({}, [{ ip: '10.244.1.1', node: 'n1' }, { ip: '10.244.2.1', node: 'n2' }, { ip: '10.244.3.1' }])).ports;
    expect(p!.clusterEndpoints.map((t) => [t.ip, t.local])).toEqual([
      ['10.244.1.1', true],
      ['10.244.2.1', false],
      ['10.244.3.1', true],
    ]);
  });
});

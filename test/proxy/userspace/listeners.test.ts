import { describe, expect, it } from 'vitest';
import { isSelf, listenerSpecs } from '../../../proxy/userspace/listeners.ts';
import { plan, portPlan } from './plans.ts';

const cluster = [{ ip: '10.0.0.1', port: 8080 }];
const external = [{ ip: '10.0.0.2', port: 8080 }];
const v6 = [{ ip: 'fd00::1', port: 8080 }];

describe('listenerSpecs', () => {
  it.each([
    ['a Service port listens at its port, to the cluster endpoints', portPlan({ name: 'a', port: 80, clusterEndpoints: cluster, externalEndpoints: external }), { port: 80, nodePort: false, endpoints: cluster }],
    ['a nodePort listens at the nodePort, to the external endpoints', portPlan({ name: 'a', port: 80, nodePort: 30080, clusterEndpoints: cluster, externalEndpoints: external }), { port: 30080, nodePort: true, endpoints: external }],
    ['UDP is kept', portPlan({ name: 'a', protocol: 'UDP', port: 53, clusterEndpoints: cluster }), { protocol: 'UDP', port: 53 }],
    ['affinity is kept', portPlan({ name: 'a', affinitySeconds: 10800 }), { affinitySeconds: 10800 }],
  ])('%s', (_name, p, want) => {
    const { specs, skipped } = listenerSpecs(plan(p), 4);
    expect(skipped).toEqual([]);
    expect(specs).toHaveLength(1);
    expect(specs[0]).toMatchObject({ key: p.key, service: 'default/a', ...want });
  });

  it('a UDP port without endpoints gets no listener (so the kernel refuses its datagrams), TCP keeps one (it resets)', () => {
    const udp = portPlan({ name: 'u', protocol: 'UDP', port: 53 });
    const nodePort = portPlan({ name: 'n', protocol: 'UDP', port: 53, nodePort: 30053, clusterEndpoints: cluster });
    const tcp = portPlan({ name: 't', port: 80 });
    expect(listenerSpecs(plan(udp, nodePort, tcp), 4)).toEqual({ specs: [expect.objectContaining({ key: tcp.key, endpoints: [] })], skipped: [], loops: [] });
  });

  describe('Local policy at a nodePort: a short-cut for this node and the pod network when its endpoints differ', () => {
    const withCIDRs = (...ports: Parameters<typeof plan>) => ({ ...plan(...ports), clusterCIDRs: { 4: ['10.244.0.0/16'], 6: [] } });
    const local = (o: Parameters<typeof portPlan>[0]) => portPlan({ port: 80, nodePort: 30080, externalLocal: true, ...o });
    const sources = ['127.0.0.0/8', '::1/128', '192.168.50.1', '10.244.0.0/16'];
    it.each([
      ['endpoints elsewhere only: outside none, the node and pods all', local({ name: 'a', externalEndpoints: [], shortcutEndpoints: cluster }), { endpoints: [], shortcut: { endpoints: cluster, sources } }],
      ['the same endpoints either way: no short-cut', local({ name: 'a', externalEndpoints: cluster, shortcutEndpoints: cluster }), { endpoints: cluster, shortcut: undefined }],
      ['a UDP port with endpoints elsewhere only is bound for the short-cut', local({ name: 'a', protocol: 'UDP', externalEndpoints: [], shortcutEndpoints: cluster }), { endpoints: [], shortcut: { endpoints: cluster, sources } }],
      ['the Cluster policy: no short-cut', portPlan({ name: 'a', port: 80, nodePort: 30080, externalEndpoints: external, shortcutEndpoints: cluster }), { endpoints: external, shortcut: undefined }],
    ])('%s', (_name, p, want) => {
      const { specs } = listenerSpecs(withCIDRs(p), 4, new Set(), ['192.168.50.1']);
      expect(specs).toHaveLength(1);
      expect({ endpoints: specs[0]!.endpoints, shortcut: specs[0]!.shortcut }).toEqual(want);
    });
  });

  it('skips SCTP', () => {
    const { specs, skipped } = listenerSpecs(plan(portPlan({ name: 's', protocol: 'SCTP', port: 9 })), 4);
    expect(specs).toEqual([]);
    expect(skipped).toEqual([{ key: 'default/s:p/SCTP/v4', service: 'default/s', protocol: 'SCTP', port: 9, reason: 'sctp-unsupported' }]);
  });

  it.each([
    [4, 'default/d:p/TCP/v4'],
    [6, 'default/d:p/TCP/v6'],
  ] as const)('a dual-stack port gets one listener: the plan of the bind family (%i)', (family, key) => {
    const ports = [portPlan({ name: 'd', family: 4, clusterEndpoints: cluster }), portPlan({ name: 'd', family: 6, clusterEndpoints: v6 })];
    expect(listenerSpecs(plan(...ports), family).specs.map((s) => s.key)).toEqual([key]);
  });

  it('a single-stack port of the other family still gets a listener (forwarded across families)', () => {
    expect(listenerSpecs(plan(portPlan({ name: 'six', family: 6, clusterEndpoints: v6 })), 4).specs.map((s) => [s.key, s.endpoints])).toEqual([['default/six:p/TCP/v6', v6]]);
  });

  describe('an endpoint that is the listener itself is left out (found by an audit: one connection made a chain of connections to itself until descriptors ran out, one datagram went round for ever)', () => {
    const local = ['192.168.50.1', 'fe80::1'];
    it.each([
      ['the bind address at the listening port', { ip: '127.0.0.1', port: 80 }, '127.0.0.1', true],
      ['the bind address at another port', { ip: '127.0.0.1', port: 8080 }, '127.0.0.1', false],
      ['another loopback address', { ip: '127.0.0.2', port: 80 }, '127.0.0.1', false],
      ['IPv6 loopback in another spelling', { ip: '0:0::1', port: 80 }, '::1', true],
      ['0.0.0.0: any loopback address', { ip: '127.0.0.5', port: 80 }, '0.0.0.0', true],
      ["0.0.0.0: one of this node's addresses", { ip: '192.168.50.1', port: 80 }, '0.0.0.0', true],
      ['0.0.0.0: another host', { ip: '10.0.0.9', port: 80 }, '0.0.0.0', false],
      ['0.0.0.0 does not take IPv6', { ip: '::1', port: 80 }, '0.0.0.0', false],
      [':: takes IPv4 too', { ip: '127.0.0.1', port: 80 }, '::', true],
      [":: and one of this node's IPv6 addresses", { ip: 'FE80::1', port: 80 }, '::', true],
    ] as const)('%s', (_name, t, host, want) => {
      expect(isSelf(t, 80, host, local)).toBe(want);
    });

    it('is listed once per port, and a port left with none refuses (UDP gets no listener)', () => {
      const self = { ip: '127.0.0.1', port: 80 };
      const other = { ip: '127.0.0.1', port: 8080 };
      const tcp = portPlan({ name: 't', port: 80, clusterEndpoints: [self, other] });
      const udp = portPlan({ name: 'u', protocol: 'UDP', port: 80, clusterEndpoints: [self] });
      // At its nodePort the Service port is another port: an endpoint at the Service's own port is no loop there.
      const np = portPlan({ name: 'n', port: 81, nodePort: 30081, clusterEndpoints: [{ ip: '127.0.0.1', port: 30081 }], externalEndpoints: [{ ip: '127.0.0.1', port: 81 }, { ip: '127.0.0.1', port: 30081 }] });
      const got = listenerSpecs(plan(tcp, udp, np), 4, new Set(), [], '127.0.0.1');
      expect(got.specs.map((s) => [s.key, s.endpoints])).toEqual([
        ['default/n:p/TCP/v4', [{ ip: '127.0.0.1', port: 81 }]],
        ['default/t:p/TCP/v4', [other]],
      ]);
      expect(got.loops).toEqual([
        { key: 'default/n:p/TCP/v4', service: 'default/n', protocol: 'TCP', port: 30081, endpoint: '127.0.0.1:30081' },
        { key: 'default/t:p/TCP/v4', service: 'default/t', protocol: 'TCP', port: 80, endpoint: '127.0.0.1:80' },
        { key: 'default/u:p/UDP/v4', service: 'default/u', protocol: 'UDP', port: 80, endpoint: '127.0.0.1:80' },
      ]);
    });
  });

  it('an endpoint that leads back through other listeners is left out; a chain that ends elsewhere is kept', () => {
    const at = (port: number) => ({ ip: '127.0.0.1', port });
    const ports = [
      // a → b → a: a loop of two Services; a also has a real endpoint.
      portPlan({ name: 'a', port: 81, clusterEndpoints: [at(82), at(9001)] }),
      portPlan({ name: 'b', port: 82, clusterEndpoints: [at(81)] }),
      // c → d → endpoint: a chain through the proxy, no loop.
      portPlan({ name: 'c', port: 83, clusterEndpoints: [at(84)] }),
      portPlan({ name: 'd', port: 84, clusterEndpoints: [at(9002)] }),
      // A UDP endpoint at a TCP listener's port is another socket: no loop.
      portPlan({ name: 'u', protocol: 'UDP', port: 85, clusterEndpoints: [at(83)] }),
    ];
    const got = listenerSpecs(plan(...ports), 4, new Set(), [], '0.0.0.0');
    expect(got.specs.map((s) => [s.key, s.endpoints.map((t) => t.port)])).toEqual([
      ['default/a:p/TCP/v4', [9001]],
      ['default/b:p/TCP/v4', []],
      ['default/c:p/TCP/v4', [84]],
      ['default/d:p/TCP/v4', [9002]],
      ['default/u:p/UDP/v4', [83]],
    ]);
    expect(got.loops.map((l) => [l.key, l.endpoint])).toEqual([
      ['default/a:p/TCP/v4', '127.0.0.1:82'],
      ['default/b:p/TCP/v4', '127.0.0.1:81'],
    ]);
  });

  it('two Service ports on one port: the first by key keeps it, unless the other already holds it', () => {
    const ports = [portPlan({ name: 'a', port: 80 }), portPlan({ name: 'b', port: 80 }), portPlan({ name: 'c', port: 80, protocol: 'UDP', clusterEndpoints: cluster })];
    const fresh = listenerSpecs(plan(...ports), 4);
    expect(fresh.specs.map((s) => s.key)).toEqual(['default/a:p/TCP/v4', 'default/c:p/UDP/v4']);
    expect(fresh.skipped).toEqual([{ key: 'default/b:p/TCP/v4', service: 'default/b', protocol: 'TCP', port: 80, reason: 'port-taken', takenBy: 'default/a:p/TCP/v4' }]);
    const held = listenerSpecs(plan(...ports), 4, new Set(['default/b:p/TCP/v4']));
    expect(held.specs.map((s) => s.key)).toEqual(['default/b:p/TCP/v4', 'default/c:p/UDP/v4']);
    expect(held.skipped.map((s) => [s.key, s.takenBy])).toEqual([['default/a:p/TCP/v4', 'default/b:p/TCP/v4']]);
  });
});

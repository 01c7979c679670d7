// The published addresses, as ingress-nginx picks them from --publish-service and --publish-status-address, and
// the comparison that decides whether an Ingress's status needs a write.
import { describe, expect, it } from 'vitest';
import { parseKind } from '../../../cluster/model/index.ts';
import type { Service } from '../../../cluster/model/service.ts';
import { normalize, parseServiceRef, parseStatusAddresses, publishedAddresses, sameAddresses, serviceAddresses, type LoadBalancerAddress } from '../../../ingress/status/addresses.ts';
import { statusWrites } from '../../../ingress/status/sync.ts';
import { service } from '../../fixtures/objects.ts';

const svc = (spec: Record<string, unknown>, status?: object): Service => parseKind('Service', service('gw', spec, { namespace: 'ops', ...(status ? { status } : {}) }));
const lb = (...ingress: object[]) => ({ loadBalancer: { ingress } });

describe('serviceAddresses (ingress-nginx statusAddressFromService)', () => {
  const cases: { name: string; svc: Service; want: LoadBalancerAddress[] }[] = [
    { name: 'LoadBalancer: each ingress IP', svc: svc({ type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, lb({ ip: '203.0.113.20' }, { ip: '203.0.113.10' })), want: [{ ip: '203.0.113.10' }, { ip: '203.0.113.20' }] },
    { name: 'LoadBalancer: a host name where there is no IP', svc: svc({ type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, lb({ hostname: 'abc.elb.example.com' })), want: [{ hostname: 'abc.elb.example.com' }] },
    { name: 'LoadBalancer: the IP only when both are set', svc: svc({ type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, lb({ ip: '203.0.113.10', hostname: 'x.example.com' })), want: [{ ip: '203.0.113.10' }] },
    {
      name: 'LoadBalancer: external IPs added when not already there',
      svc: svc({ type: 'LoadBalancer', clusterIP: '10.96.0.5', externalIPs: ['198.51.100.7', '203.0.113.10'], ports: [{ port: 80 }] }, lb({ ip: '203.0.113.10' })),
      want: [{ ip: '198.51.100.7' }, { ip: '203.0.113.10' }],
    },
    { name: 'LoadBalancer not provisioned yet: none', svc: svc({ type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }), want: [] },
    { name: 'NodePort: its external IPs', svc: svc({ type: 'NodePort', clusterIP: '10.96.0.5', externalIPs: ['198.51.100.7'], ports: [{ port: 80 }] }), want: [{ ip: '198.51.100.7' }] },
    { name: 'NodePort without external IPs: its cluster IP', svc: svc({ type: 'NodePort', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }), want: [{ ip: '10.96.0.5' }] },
    { name: 'ClusterIP: its cluster IP', svc: svc({ clusterIP: '10.96.0.5', ports: [{ port: 80 }] }), want: [{ ip: '10.96.0.5' }] },
    { name: 'ExternalName: its name', svc: svc({ type: 'ExternalName', externalName: 'edge.example.com' }), want: [{ hostname: 'edge.example.com' }] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(serviceAddresses('ops/gw', c.svc)).toEqual({ addresses: c.want }));
  }

  it('has no addresses for a missing or headless Service, and says why', () => {
    expect(serviceAddresses('ops/gw', undefined)).toEqual({ problem: '--publish-service ops/gw: no such Service' });
    expect(serviceAddresses('ops/gw', svc({ clusterIP: 'None', ports: [{ port: 80 }] }))).toMatchObject({ problem: expect.stringContaining('headless') });
  });

  it('reads the Service by its key, or takes the fixed list', () => {
    const gw = svc({ clusterIP: '10.96.0.5', ports: [{ port: 80 }] });
    expect(publishedAddresses({ service: 'ops/gw' }, (k) => (k === 'ops/gw' ? gw : undefined))).toEqual({ addresses: [{ ip: '10.96.0.5' }] });
    expect(publishedAddresses({ addresses: [{ ip: '192.0.2.1' }] }, () => undefined)).toEqual({ addresses: [{ ip: '192.0.2.1' }] });
  });
});

describe('the flags', () => {
  it('--publish-status-address takes IPs and DNS names separated by commas', () => {
    expect(parseStatusAddresses('203.0.113.10, lb.example.com,2001:db8::1')).toEqual([{ ip: '2001:db8::1' }, { ip: '203.0.113.10' }, { hostname: 'lb.example.com' }]);
    for (const bad of ['', '203.0.113.10,', 'a b', 'http://lb.example.com', '-lb.example.com']) expect(() => parseStatusAddresses(bad), bad).toThrow(/neither an IP address nor a DNS name/);
  });

  it('--publish-service takes NAMESPACE/NAME', () => {
    expect(parseServiceRef('netplane-system/netplane-ingress')).toBe('netplane-system/netplane-ingress');
    for (const bad of ['netplane-ingress', 'a/b/c', '/b', 'a/', 'A/b']) expect(() => parseServiceRef(bad), bad).toThrow(/NAMESPACE\/NAME/);
  });
});

describe('comparing and choosing writes', () => {
  it('compares IPs and host names only, in any order, as ingress-nginx does', () => {
    const rows: [LoadBalancerAddress[] | undefined, LoadBalancerAddress[] | undefined, boolean][] = [
      [[{ ip: '1.1.1.1' }, { ip: '2.2.2.2' }], [{ ip: '2.2.2.2' }, { ip: '1.1.1.1' }], true],
      [[{ ip: '1.1.1.1', ports: [{ port: 80 }] } as LoadBalancerAddress], [{ ip: '1.1.1.1' }], true],
      [[], undefined, true],
      [[{ ip: '1.1.1.1' }], [{ hostname: '1.1.1.1' }], false],
      [[{ ip: '1.1.1.1' }], [], false],
      [[{ ip: '1.1.1.1' }], [{ ip: '1.1.1.1' }, { hostname: 'lb.example.com' }], false],
    ];
    for (const [a, b, same] of rows) expect(sameAddresses(a, b), JSON.stringify([a, b])).toBe(same);
    expect(normalize([{ ip: '2.2.2.2' }, { hostname: 'b' }, { ip: '2.2.2.2' }, {}])).toEqual([{ ip: '2.2.2.2' }, { hostname: 'b' }]);
  });

  it('writes the served Ingresses whose status differs, never one the API does not have', () => {
    const observed = new Map<string, LoadBalancerAddress[]>([
      ['a/same', [{ ip: '1.1.1.1' }]],
      ['a/old', [{ ip: '9.9.9.9' }]],
      ['a/empty', []],
      ['b/other-class', []],
    ]);
    const served = ['a/same', 'a/old', 'a/empty', 'a/not-listed-yet'];
    expect(statusWrites(served, [{ ip: '1.1.1.1' }], (k) => observed.get(k))).toEqual(['a/empty', 'a/old']);
    expect(statusWrites(served, [], (k) => observed.get(k))).toEqual(['a/old', 'a/same']);
  });
});

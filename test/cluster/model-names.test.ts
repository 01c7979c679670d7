// Fields that become DNS names, checked as the API server checks them (found by an audit: names that could not be
// written in a DNS message were accepted and answered with malformed packets).
import { describe, expect, it } from 'vitest';
import { InvalidObjectError, parseObject, type EndpointSlice, type Service } from '../../cluster/model/index.ts';
import { ServiceMap } from '../../cluster/servicemap/index.ts';
import { Store } from '../../cluster/store.ts';
import { service as svcOf, slice as sliceOf } from '../fixtures/objects.ts';

const svc = (spec: object, metadata: object = { name: 'web' }) => ({ apiVersion: 'v1', kind: 'Service', metadata, spec });
const ext = (externalName: string) => svc({ type: 'ExternalName', externalName });
const long = (n: number) => 'a'.repeat(n);

/** The InvalidObjectError message parseObject throws, or 'ok'. */
function verdict(raw: unknown): string {
  try {
    parseObject(raw);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidObjectError);
    return (e as Error).message;
  }
}

describe('Service names, namespaces and ExternalNames', () => {
  const cases: Array<[string, unknown, RegExp | 'ok']> = [
    ['a name of 63 characters', svc({}, { name: long(63) }), 'ok'],
    ['a name of 64 characters', svc({}, { name: long(64) }), /^Service: metadata\.name: "a{64}" is 64 characters; a Service name is a DNS label of at most 63$/],
    ['a name of 70 characters', svc({ clusterIP: '10.96.0.70' }, { name: long(70) }), /metadata\.name: .* is 70 characters/],
    ['a name of 250 characters', svc({}, { name: long(250) }), /metadata\.name: .* is 250 characters/],
    ['a name with a dot', svc({}, { name: 'web.v2' }), /metadata\.name: "web\.v2" must be a DNS label: .*starting with a letter/],
    ['a name starting with a digit', svc({}, { name: '1web' }), /metadata\.name: "1web" must be a DNS label/],
    ['a namespace of 64 characters', svc({}, { name: 'web', namespace: long(64) }), /metadata\.namespace: "a{64}" is 64 characters; a DNS label has at most 63/],
    ['a namespace with a dot', svc({}, { name: 'web', namespace: 'team.a' }), /metadata\.namespace: "team\.a" must be a DNS label/],
    ['an ExternalName', ext('db.example.com'), 'ok'],
    ['an ExternalName with a final dot', ext('ext.s20d.svc.cluster.local.'), 'ok'],
    ['an ExternalName holding an IPv4 address', ext('192.0.2.55'), 'ok'],
    ['an ExternalName with an empty label', ext('foo..example.com'), /^Service: spec\.externalName: "foo\.\.example\.com" must be a DNS name: .*separated by single dots/],
    ['an ExternalName with upper-case letters', ext('DB.example.com'), /spec\.externalName: "DB\.example\.com" must be a DNS name/],
    ['an ExternalName with two final dots', ext('db.example.com..'), /spec\.externalName: "db\.example\.com\." must be a DNS name/],
    ['an ExternalName of 254 characters', ext(`${long(60)}.`.repeat(4) + long(10)), /spec\.externalName: .* is 254 characters; a DNS name has at most 253/],
    ['an ExternalName holding an IPv6 address', ext('2001:db8::55'), /spec\.externalName: "2001:db8::55" must be a DNS name/],
    // The API server's IsDNS1123Subdomain does not limit labels to 63 characters: accepted, and answered SERVFAIL.
    ['an ExternalName with a label of 70 characters', ext(`${long(70)}.example.com`), 'ok'],
    // externalName is checked only when the Service is an ExternalName, as the API server does.
    ['an externalName on a ClusterIP Service', svc({ clusterIP: '10.96.0.9', externalName: 'Not..checked' }), 'ok'],
  ];
  for (const [name, raw, want] of cases) {
    it(name, () => {
      const got = verdict(raw);
      if (want === 'ok') expect(got).toBe('ok');
      else expect(got).toMatch(want);
    });
  }
});

const slice = (endpoints: object[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'live-1', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'live' } },
  addressType: 'IPv4',
  endpoints,
  ports: [{ name: 'http', port: 8080 }],
});

describe('EndpointSlice endpoint hostnames', () => {
  const cases: Array<[string, unknown, RegExp | 'ok']> = [
    ['a hostname', slice([{ addresses: ['10.0.0.1'], hostname: 'db-0' }]), 'ok'],
    ['no hostname', slice([{ addresses: ['10.0.0.1'] }]), 'ok'],
    ['a hostname of 63 characters', slice([{ addresses: ['10.0.0.1'], hostname: long(63) }]), 'ok'],
    // The API server refuses the whole slice (ValidateEndpointSlice): a dotted hostname made an SRV target that was
    // itself NXDOMAIN, an underscore one a PTR name (found by an audit).
    ['a dotted hostname', slice([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'], hostname: 'a.b' }]), /^EndpointSlice: endpoints\[1\]\.hostname: "a\.b" must be a DNS label/],
    ['an upper-case hostname with an underscore', slice([{ addresses: ['10.0.0.1'], hostname: 'L_1' }]), /endpoints\[0\]\.hostname: "L_1" must be a DNS label/],
    ['an empty hostname', slice([{ addresses: ['10.0.0.1'], hostname: '' }]), /endpoints\[0\]\.hostname: "" must be a DNS label/],
    ['a hostname of 64 characters', slice([{ addresses: ['10.0.0.1'], hostname: long(64) }]), /endpoints\[0\]\.hostname: "a{64}" is 64 characters; a DNS label has at most 63/],
  ];
  for (const [name, raw, want] of cases) {
    it(name, () => {
      const got = verdict(raw);
      if (want === 'ok') expect(got).toBe('ok');
      else expect(got).toMatch(want);
    });
  }
});

describe('IPv6 addresses in their standard form (found by an audit: one address written two ways was two endpoints)', () => {
  const one = <T>(raw: object) => (parseObject(raw)[0]!.object as T);
  it('writes EndpointSlice addresses, Service cluster, external and load-balancer IPs in one form', () => {
    const s = one<EndpointSlice>(sliceOf('s', 'web', [{ addresses: ['FD00:0:0::0001'] }, { addresses: ['2001:DB8::0:7'] }, { addresses: ['fd00::1'] }], [], { addressType: 'IPv6' }));
    expect(s.endpoints.map((e) => e.addresses[0])).toEqual(['fd00::1', '2001:db8::7', 'fd00::1']);
    const v = one<Service>(
      svcOf('web', { clusterIP: 'FD00:96:0::10', clusterIPs: ['FD00:96:0::10', '10.96.0.10'], externalIPs: ['2001:DB8:0:0:0:0:0:5', '192.0.2.5'] }, { status: { loadBalancer: { ingress: [{ ip: '2001:db8:0::a' }] } } }),
    );
    expect([v.spec.clusterIPs, v.spec.externalIPs, v.status.loadBalancer.ingress[0]!.ip]).toEqual([['fd00:96::10', '10.96.0.10'], ['2001:db8::5', '192.0.2.5'], '2001:db8::a']);
    expect(one<Service>(svcOf('solo', { clusterIP: 'FD00::0:10' })).spec.clusterIPs).toEqual(['fd00::10']);
  });

  it('refuses what the API server refuses: an IPv4-mapped address in an IPv6 slice, port names that are no DNS-1123 label, a Service port name twice, a Namespace name with a dot', () => {
    expect(verdict(sliceOf('s', 'web', [{ addresses: ['::FFFF:1.2.3.4'] }], [], { addressType: 'IPv6' }))).toMatch(/endpoints\[0\]\.addresses\[0\]: "::FFFF:1\.2\.3\.4" is an IPv4-mapped IPv6 address, which an IPv6 slice may not hold/);
    expect(verdict(sliceOf('s', 'web', [{ addresses: ['0:0:0:0:0:ffff:a00:1'] }], [], { addressType: 'IPv6' }))).toMatch(/IPv4-mapped/);
    for (const name of ['HTTP', 'a.b', '-ab', 'a b']) {
      expect(verdict(svcOf('web', { clusterIP: '10.96.0.10', ports: [{ name, port: 80 }] }))).toMatch(/ports\[0\]\.name/);
      expect(verdict(sliceOf('s', 'web', [{ addresses: ['10.0.0.1'] }], [{ name, port: 80 }]))).toMatch(/ports\[0\]\.name/);
    }
    expect(verdict(svcOf('dup', { clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns', port: 53, protocol: 'TCP' }] }))).toMatch(/ports\[1\]\.name: duplicates port name "dns"/);
    expect(verdict({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } })).toMatch(/Namespace: metadata\.name/);
    expect(one<Service>(svcOf('ok', { clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] })).spec.ports).toHaveLength(2);
  });

  it('leaves IPv4 and FQDN slices and bad addresses to the checks as they were', () => {
    expect(one<EndpointSlice>(sliceOf('s', 'web', [{ addresses: ['10.0.0.1'] }], [])).endpoints[0]!.addresses).toEqual(['10.0.0.1']);
    expect(verdict(sliceOf('s', 'web', [{ addresses: ['FD00::1'] }], []))).toMatch(/endpoints\[0\]\.addresses\[0\]: "FD00::1" is not an IPv4 address/);
    expect(verdict(sliceOf('s', 'web', [{ addresses: ['fd00::zz'] }], [], { addressType: 'IPv6' }))).toMatch(/"fd00::zz" is not an IPv6 address/);
  });

  it('gives the service map one endpoint for one address in two slices, written two ways', () => {
    const store = new Store();
    const raws = [
      svcOf('web', { clusterIP: 'fd00:96::10', ports: [{ name: 'http', port: 80 }] }),
      sliceOf('web-a', 'web', [{ addresses: ['fd00::1'] }], [{ name: 'http', port: 8080 }], { addressType: 'IPv6' }),
      sliceOf('web-b', 'web', [{ addresses: ['FD00:0:0::0001'] }], [{ name: 'http', port: 8080 }], { addressType: 'IPv6' }),
    ];
    store.apply(raws.flatMap((r) => parseObject(r)));
    const map = new ServiceMap(store, { nodeName: 'n1' });
    expect(map.ports.get('default/web:http/TCP')!.endpoints.map((e) => `${e.ip} ${e.port}`)).toEqual(['fd00::1 8080']);
  });
});

describe('cluster IPs that are not addresses (found by an audit: "Invalid input")', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['clusterIP: bogus', svc({ clusterIP: 'bogus' }), /^Service: spec\.clusterIP: must be an IPv4 or IPv6 address, "None" or empty$/],
    ['clusterIP: 10.0.0.300', svc({ clusterIP: '10.0.0.300' }), /^Service: spec\.clusterIP: must be an IPv4 or IPv6 address, "None" or empty$/],
    ['clusterIPs: [10.0.0.1, bogus]', svc({ clusterIPs: ['10.0.0.1', 'bogus'] }), /^Service: spec\.clusterIPs\[1\]: must be an IPv4 or IPv6 address or "None"$/],
    ['externalIPs: [bogus]', svc({ externalIPs: ['bogus'] }), /^Service: spec\.externalIPs\[0\]: must be an IPv4 or IPv6 address$/],
  ];
  for (const [name, raw, want] of cases) it(name, () => expect(verdict(raw)).toMatch(want));
});

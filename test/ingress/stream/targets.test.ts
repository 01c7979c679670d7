// streamTarget: where a TCP or UDP services entry's connections go — the ready endpoints of its Service port by
// number or name, of the entry's protocol, at the endpoints' port; an ExternalName Service at its name and target
// port; and why there is nowhere to go when the Service, its port or a ready endpoint is missing.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import type { StreamEntry } from '../../../ingress/stream/entries.ts';
import { streamTarget } from '../../../ingress/stream/targets.ts';
import { service, slice } from '../../fixtures/objects.ts';

const ready = (ip: string) => ({ addresses: [ip], conditions: { ready: true } });

function cluster(): ServiceMap {
  const store = new Store();
  store.apply(
    [
      service('dns', {
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'dns-tcp', port: 53, targetPort: 5353, protocol: 'TCP' },
          { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
        ],
      }),
      slice('dns-a', 'dns', [ready('10.0.0.1'), ready('10.0.0.2'), { addresses: ['10.0.0.3'], conditions: { ready: false } }], [
        { name: 'dns-tcp', port: 5353, protocol: 'TCP' },
        { name: 'dns', port: 5353, protocol: 'UDP' },
      ]),
      service('idle', { clusterIP: '10.96.0.11', ports: [{ name: 'db', port: 5432 }] }),
      service('search', { type: 'ExternalName', externalName: 'search.example.com.', ports: [{ name: 'https', port: 443, targetPort: 8443 }] }),
      service('named', { type: 'ExternalName', externalName: 'named.example.com', ports: [{ name: 'https', port: 443, targetPort: 'https' }] }),
    ].flatMap((r) => parseObject(r)),
  );
  return new ServiceMap(store, { nodeName: 'n1' });
}

const entry = (protocol: 'TCP' | 'UDP', service: string, servicePort: number | string): StreamEntry => ({ protocol, port: 9000, namespace: 'default', service, servicePort, decode: false, encode: false });

describe('streamTarget', () => {
  const map = cluster();
  const cases: Array<[string, StreamEntry, string[], RegExp?]> = [
    ['a TCP port by number: its ready endpoints at their port', entry('TCP', 'dns', 53), ['10.0.0.1:5353', '10.0.0.2:5353']],
    ['a TCP port by name', entry('TCP', 'dns', 'dns-tcp'), ['10.0.0.1:5353', '10.0.0.2:5353']],
    ['a UDP port by name', entry('UDP', 'dns', 'dns'), ['10.0.0.1:5353', '10.0.0.2:5353']],
    ['a name of the other protocol', entry('UDP', 'dns', 'dns-tcp'), [], /has no UDP port named "dns-tcp"/],
    ['a port the Service lacks', entry('TCP', 'dns', 54), [], /Service default\/dns has no TCP port 54/],
    ['a Service that does not exist', entry('TCP', 'gone', 80), [], /Service default\/gone does not exist/],
    ['a port without a ready endpoint', entry('TCP', 'idle', 5432), [], /has no ready endpoint for TCP port 5432/],
    ['an ExternalName: its name (without the final dot) and target port', entry('TCP', 'search', 443), ['search.example.com:8443']],
    ['an ExternalName whose targetPort is a name', entry('TCP', 'named', 443), [], /names its targetPort \("https"\); it must be a number/],
  ];
  for (const [what, e, endpoints, problem] of cases) {
    it(what, () => {
      const t = streamTarget(e, map);
      expect(t.endpoints.map((x) => `${x.ip}:${x.port}`)).toEqual(endpoints);
      if (problem) expect(t.problem).toMatch(problem);
      else expect(t.problem).toBeUndefined();
    });
  }
});

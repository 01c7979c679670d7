// parseStreamEntries: the TCP and UDP services ConfigMaps' entries as ingress-nginx reads them, good and bad, one
// row each; a bad entry is a problem naming its key and why, and leaves the others served.
import { describe, expect, it } from 'vitest';
import { parseStreamEntries, type StreamEntry, type StreamProtocol, type StreamRefusal } from '../../../ingress/stream/entries.ts';

const reserved = new Map([
  [80, 'the --http listener'],
  [10254, 'the admin listener (--admin)'],
]);

type Good = [key: string, value: string, protocol: StreamProtocol, entry: Omit<StreamEntry, 'protocol' | 'port'>, warning?: RegExp];
const plain = { decode: false, encode: false };

describe('parseStreamEntries: entries served', () => {
  const cases: Good[] = [
    ['5432', 'db/postgres:5432', 'TCP', { namespace: 'db', service: 'postgres', servicePort: 5432, ...plain }],
    ['9000', 'default/web:http', 'TCP', { namespace: 'default', service: 'web', servicePort: 'http', ...plain }],
    ['9001', 'default/web:8080:PROXY', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, decode: true, encode: false }],
    ['9002', 'default/web:8080:PROXY:PROXY', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, decode: true, encode: true }],
    // ingress-nginx: an empty third field with PROXY fourth sends a header without reading one.
    ['9003', 'default/web:8080::PROXY', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, decode: false, encode: true }],
    ['9004', 'default/web:8080:proxy', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, decode: true, encode: false }],
    ['9005', 'default/web:8080:', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, ...plain }],
    // A YAML block scalar's newline and stray spaces around the value.
    ['9006', ' default/web:8080\n', 'TCP', { namespace: 'default', service: 'web', servicePort: 8080, ...plain }],
    ['53', 'kube-system/dns:53', 'UDP', { namespace: 'kube-system', service: 'dns', servicePort: 53, ...plain }],
    ['54', 'kube-system/dns:dns-udp', 'UDP', { namespace: 'kube-system', service: 'dns', servicePort: 'dns-udp', ...plain }],
    ['55', 'kube-system/dns:53:PROXY', 'UDP', { namespace: 'kube-system', service: 'dns', servicePort: 53, ...plain }, /PROXY does not apply to UDP/],
    ['65535', 'a/b:1', 'TCP', { namespace: 'a', service: 'b', servicePort: 1, ...plain }],
    // The gateway's own ports are TCP: a UDP entry there takes nothing of the gateway's.
    ['80', 'default/quic:443', 'UDP', { namespace: 'default', service: 'quic', servicePort: 443, ...plain }],
  ];
  for (const [key, value, protocol, entry, warning] of cases) {
    it(`${protocol} ${key}: ${JSON.stringify(value)}`, () => {
      const read = parseStreamEntries({ [key]: value }, protocol, reserved);
      expect(read.entries).toEqual([{ protocol, port: Number(key), ...entry }]);
      if (warning) {
        expect(read.problems).toHaveLength(1);
        expect(read.problems[0]!.reason).toMatch(warning);
        expect(read.problems[0]!.refused).toBeUndefined();
      } else expect(read.problems).toEqual([]);
    });
  }
});

type Bad = [key: string, value: string, refused: StreamRefusal, reason: RegExp];

describe('parseStreamEntries: entries refused, each with its key and why', () => {
  const cases: Bad[] = [
    ['http', 'default/web:80', 'bad-port', /key "http" is not a port number/],
    ['0', 'default/web:80', 'bad-port', /not a port number from 1 to 65535/],
    ['65536', 'default/web:80', 'bad-port', /not a port number/],
    ['-1', 'default/web:80', 'bad-port', /not a port number/],
    ['+80', 'default/web:80', 'bad-port', /not a port number/],
    ['080', 'default/web:80', 'bad-port', /leading zeros/],
    ['80', 'default/web:8080', 'reserved-port', /port 80 is the --http listener's/],
    ['10254', 'default/web:8080', 'reserved-port', /admin listener/],
    ['9000', 'web:80', 'bad-value', /namespace is missing/],
    ['9000', 'default/web', 'bad-value', /must be NAMESPACE\/SERVICE:PORT/],
    ['9000', '', 'bad-value', /must be NAMESPACE\/SERVICE:PORT/],
    ['9000', 'default/web:80:PROXY:PROXY:PROXY', 'bad-value', /must be NAMESPACE\/SERVICE:PORT/],
    ['9000', 'default/web:80:PROXI', 'bad-value', /third field is "PROXI": it may only be PROXY or empty/],
    ['9000', 'default/web:80::yes', 'bad-value', /fourth field is "yes"/],
    ['9000', 'default/web:0', 'bad-value', /Service port 0 is not a port number/],
    ['9000', 'default/web:99999', 'bad-value', /Service port 99999/],
    ['9000', 'default/web:Http', 'bad-value', /neither a port number nor a port name/],
    ['9000', 'default/web:', 'bad-value', /neither a port number nor a port name/],
    ['9000', 'Default/web:80', 'bad-value', /namespace "Default"/],
    ['9000', 'default/9web:80', 'bad-value', /Service name "9web"/],
    ['9000', 'default/web/x:80', 'bad-value', /Service name "web\/x"/],
    ['9000', 'default/:80', 'bad-value', /Service name ""/],
  ];
  for (const [key, value, refused, reason] of cases) {
    it(`${key}: ${JSON.stringify(value)} (${refused})`, () => {
      const read = parseStreamEntries({ [key]: value }, 'TCP', reserved);
      expect(read.entries).toEqual([]);
      expect(read.problems).toHaveLength(1);
      expect(read.problems[0]).toMatchObject({ key, refused });
      expect(read.problems[0]!.reason).toMatch(reason);
    });
  }
});

describe('parseStreamEntries: a ConfigMap', () => {
  it('serves its good entries, sorted by port, beside its bad ones', () => {
    const read = parseStreamEntries({ '9002': 'b/two:2', nope: 'a/one:1', '9001': 'a/one:1', '9003': 'a/bad' }, 'TCP');
    expect(read.entries.map((e) => e.port)).toEqual([9001, 9002]);
    expect(read.problems.map((p) => p.key).sort()).toEqual(['9003', 'nope']);
  });

  it('has no entries when it has no data', () => {
    expect(parseStreamEntries(undefined, 'UDP')).toEqual({ entries: [], problems: [] });
  });
});

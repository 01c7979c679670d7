import { describe, expect, it } from 'vitest';
import { listeningBlock, type ListeningInput } from '../../../bin/up/listening.ts';
import type { UpView } from '../../../bin/up/view.ts';
import { parseHostPort } from '../../../runtime/flags.ts';

const hp = parseHostPort;
const view: UpView = {
  ports: [
    { service: 'default/api', portName: 'http', protocol: 'TCP', listenPort: 8001, servicePort: 8001, clusterIP: '10.96.0.21', endpoints: 1 },
    { service: 'default/web', portName: 'http', protocol: 'TCP', listenPort: 8000, servicePort: 8000, clusterIP: '10.96.0.20', endpoints: 2 },
  ],
  hosts: ['web.localhost'],
  backends: [{ name: 'web-1', host: '127.0.0.1', port: 8081, service: 'default/web' }],
  services: [
    { namespace: 'default', name: 'api', endpoints: 1 },
    { namespace: 'default', name: 'web', endpoints: 2 },
  ],
};
const admin = (name: string, addr: string) => ({ name, admin: hp(addr) });

const cases: Array<[string, ListeningInput, string[], string[]]> = [
  [
    'the quick start',
    {
      components: [admin('proxy', '127.0.0.1:10249'), admin('dns', '127.0.0.1:9153')],
      dns: { listen: [hp('127.0.0.1:5353')], zone: 'cluster.local' },
      ingress: { http: hp('127.0.0.1:8080'), https: hp('127.0.0.1:8443') },
      proxy: { mode: 'userspace', bindAddress: '127.0.0.1' },
      view,
      backends: view.backends,
    },
    [
      'dns      udp+tcp 127.0.0.1:5353, zone cluster.local   try: dig @127.0.0.1 -p 5353 web.default.svc.cluster.local',
      "ingress  http://127.0.0.1:8080 https://127.0.0.1:8443, hosts web.localhost   try: curl -H 'Host: web.localhost' http://127.0.0.1:8080/",
      'proxy    userspace: default/api:http at 127.0.0.1:8001, default/web:http at 127.0.0.1:8000   try: curl http://127.0.0.1:8000/',
      'backends web-1 127.0.0.1:8081 (examples/backend.ts)',
      'admin    proxy 127.0.0.1:10249, dns 127.0.0.1:9153 (/metrics /healthz /readyz)   try: curl http://127.0.0.1:10249/metrics',
    ],
    ['web-1 127.0.0.1:8081', 'dns 127.0.0.1:5353', 'ingress 127.0.0.1:8080', 'proxy 127.0.0.1:8001', 'proxy 127.0.0.1:8000', 'proxy admin 127.0.0.1:10249', 'dns admin 127.0.0.1:9153'],
  ],
  [
    'from an API server (no view), wildcard addresses, DNS on port 53, HTTPS only',
    {
      components: [admin('dns', '0.0.0.0:9153')],
      dns: { listen: [hp('0.0.0.0:53'), hp('[::]:53')], zone: 'example.org' },
      ingress: { https: hp(':443') },
      proxy: { mode: 'userspace', bindAddress: '0.0.0.0' },
      backends: [],
    },
    [
      'dns      udp+tcp 0.0.0.0:53 [::]:53, zone example.org   try: dig @127.0.0.1 kubernetes.default.svc.example.org',
      'ingress  https://0.0.0.0:443   try: curl -k https://127.0.0.1:443/',
      'proxy    userspace: one listener per Service port on 0.0.0.0',
      'admin    dns 0.0.0.0:9153 (/metrics /healthz /readyz)   try: curl http://127.0.0.1:9153/metrics',
    ],
    ['dns 127.0.0.1:53', 'dns ::1:53', 'ingress 127.0.0.1:443', 'dns admin 127.0.0.1:9153'],
  ],
  [
    'the proxy in nftables mode: Services at their cluster IPs, nothing to probe',
    { components: [], proxy: { mode: 'nftables', bindAddress: '127.0.0.1' }, view, backends: [] },
    ['proxy    nftables: default/api:http at 10.96.0.21:8001, default/web:http at 10.96.0.20:8000   try: curl http://10.96.0.20:8000/'],
    [],
  ],
];

describe('listeningBlock', () => {
  for (const [name, input, lines, probes] of cases) {
    it(name, () => {
      const block = listeningBlock(input);
      expect(block.lines).toEqual(lines);
      expect(block.probes.map((p) => `${p.what} ${p.host}:${p.port}`)).toEqual(probes);
    });
  }
});

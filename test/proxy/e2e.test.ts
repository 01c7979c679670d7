// netplane proxy as users run it (the CLI, in the node's network namespace, from a manifest directory), tested
// with real packets from a pod and from a client outside the node, in nftables and in iptables mode.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eps, svc, writeManifests } from './manifests.ts';
import { ProxyProcess, releaseSuite } from './process.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from './topology.ts';
import { waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const names = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? r.name : r.error));
const counts = (rs: ProbeResult[]) => names(rs).reduce<Record<string, number>>((m, n) => ((m[n] = (m[n] ?? 0) + 1), m), {});

const webPorts = [
  { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 },
  { name: 'dns', port: 53, targetPort: 8080, protocol: 'UDP', nodePort: 30053 },
];
const webEndpointPorts = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 8080, protocol: 'UDP' }];

/** The cluster every scenario runs against; pods 1-3 are on this node ("node1"), endpoints on "node2" are pretend-remote. */
function manifests(t: ProxyTopology, webEndpoints: number[], taints: string[] = []) {
  const p = (i: number) => t.pods[i - 1]!;
  return [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, spec: { podCIDR: '10.244.1.0/24', taints: taints.map((key) => ({ key, effect: 'NoSchedule' })) }, status: { addresses: [{ type: 'InternalIP', address: '192.168.50.1' }] } },
    svc('web', { type: 'LoadBalancer', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ports: webPorts }, { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } }),
    eps('web', 4, webEndpoints.map((i) => [p(i).ip4, 'node1']), webEndpointPorts),
    eps('web', 6, webEndpoints.map((i) => [p(i).ip6, 'node1']), webEndpointPorts),
    svc('local', { type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', healthCheckNodePort: 30999, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } }),
    eps('local', 4, [[p(1).ip4, 'node1'], [p(2).ip4, 'node2']], [{ name: 'http', port: 8080 }]),
    svc('remote-only', { type: 'NodePort', clusterIP: '10.96.0.21', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30082 }] }),
    eps('remote-only', 4, [[p(2).ip4, 'node2']], [{ name: 'http', port: 8080 }]),
    svc('both-local', { type: 'LoadBalancer', clusterIP: '10.96.0.22', externalIPs: ['198.51.100.22'], internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30084 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.22' }] } }),
    eps('both-local', 4, [[p(2).ip4, 'node2']], [{ name: 'http', port: 8080 }]),
    svc('draining', { type: 'LoadBalancer', clusterIP: '10.96.0.23', externalTrafficPolicy: 'Local', healthCheckNodePort: 30998, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30085 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.23' }] } }),
    { ...eps('draining', 4, [[p(3).ip4, 'node1'], [p(2).ip4, 'node2']], [{ name: 'http', port: 8080 }]), endpoints: [
      { addresses: [p(3).ip4], nodeName: 'node1', conditions: { ready: false, serving: true, terminating: true } },
      { addresses: [p(2).ip4], nodeName: 'node2', conditions: { ready: true } },
    ] },
    svc('empty', { clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
    svc('sticky', { clusterIPs: ['10.96.0.40', 'fd00:96::40'], ipFamilies: ['IPv4', 'IPv6'], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    eps('sticky', 4, [1, 2, 3].map((i) => [p(i).ip4, 'node1']), [{ name: 'http', port: 8080 }]),
    eps('sticky', 6, [1, 2, 3].map((i) => [p(i).ip6, 'node1']), [{ name: 'http', port: 8080 }]),
    svc('self', { clusterIP: '10.96.0.50', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    eps('self', 4, [[p(1).ip4, 'node1']], [{ name: 'http', port: 8080 }]),
    svc('ranged', { type: 'LoadBalancer', clusterIP: '10.96.0.60', loadBalancerSourceRanges: ['10.0.0.0/8'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30083 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.30' }] } }),
    eps('ranged', 4, [[p(3).ip4, 'node1']], [{ name: 'http', port: 8080 }]),
    svc('other-proxy', { clusterIP: '10.96.0.70', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    eps('other-proxy', 4, [[p(1).ip4, 'node1']], [{ name: 'http', port: 8080 }]),
  ].map((o) => (o.metadata.name === 'other-proxy' && o.kind === 'Service' ? { ...o, metadata: { ...o.metadata, labels: { 'service.kubernetes.io/service-proxy-name': 'elsewhere' } } } : o));
}

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`netplane proxy --mode ${mode} in the kernel`, () => {
    let t: ProxyTopology;
    let dir: string;
    let proxy: ProxyProcess;

    const write = (webEndpoints: number[], taints: string[] = []) => writeManifests(dir, manifests(t, webEndpoints, taints));
    const syncs = () => proxy.syncs();
    const startProxy = (extra: string[] = []) => proxy.start({ mode, extra });
    const stopProxy = () => proxy.stop();

    beforeAll(async () => {
      t = await buildTopology(3, [8080]);
      dir = await mkdtemp(join(tmpdir(), `netplane-proxy-${mode}-`));
      await write([1, 2, 3]);
      proxy = new ProxyProcess(t, dir);
      await startProxy();
    }, 60_000);
    afterAll(() => releaseSuite(proxy, t?.lab, dir));

    const cases: Array<{ name: string; from: 'client' | 'pod'; proto?: 'tcp' | 'udp'; host: string; port: number }> = [
      { name: 'ClusterIP TCP from a pod', from: 'pod', host: '10.96.0.10', port: 80 },
      { name: 'ClusterIP UDP from a pod', from: 'pod', proto: 'udp', host: '10.96.0.10', port: 53 },
      { name: 'ClusterIP TCP from outside', from: 'client', host: '10.96.0.10', port: 80 },
      { name: 'ClusterIP over IPv6 from outside', from: 'client', host: 'fd00:96::10', port: 80 },
      { name: 'NodePort TCP from outside', from: 'client', host: '192.168.50.1', port: 30080 },
      { name: 'NodePort UDP from outside', from: 'client', proto: 'udp', host: '192.168.50.1', port: 30053 },
      { name: 'NodePort from a pod', from: 'pod', host: '192.168.50.1', port: 30080 },
      { name: 'LoadBalancer IP from outside', from: 'client', host: '203.0.113.10', port: 80 },
      { name: 'LoadBalancer IP from a pod', from: 'pod', host: '203.0.113.10', port: 80 },
    ];
    for (const c of cases) {
      it(`${c.name}: reaches every endpoint`, async () => {
        const rs = await t.probe(c.from === 'client' ? t.client : t.pods[0]!.ns, c.proto ?? 'tcp', c.host, c.port, 30);
        expect(Object.keys(counts(rs)).sort()).toEqual(['pod1', 'pod2', 'pod3']);
      });
    }

    it('masquerades outside traffic to Cluster-policy Services, keeps pod sources, and keeps client IPs under the Local policy', async () => {
      const [fromClient] = await t.probe(t.client, 'tcp', '10.96.0.10', 80);
      expect(fromClient).toMatchObject({ ok: true, seenAs: '10.244.1.1' });
      // "ranged" has only pod3 behind it, so pod1 never reaches itself (hairpin is masqueraded, tested below).
      const [fromPod] = await t.probe(t.pods[0]!.ns, 'tcp', '10.96.0.60', 80);
      expect(fromPod).toMatchObject({ ok: true, name: 'pod3', seenAs: t.pods[0]!.ip4 });
      const local = await t.probe(t.client, 'tcp', '203.0.113.20', 80, 10);
      expect(local.map((r) => (r.ok ? `${r.name} ${r.seenAs}` : r.error))).toEqual(Array(10).fill('pod1 192.168.50.2'));
      const localNodePort = await t.probe(t.client, 'tcp', '192.168.50.1', 30081, 10);
      expect(names(localNodePort)).toEqual(Array(10).fill('pod1'));
    });

    it('Local policy without local endpoints drops external traffic, while cluster traffic still works', async () => {
      const [external] = await t.probe(t.client, 'tcp', '192.168.50.1', 30082);
      expect(external).toMatchObject({ ok: false, error: 'timeout' });
      const [cluster] = await t.probe(t.pods[0]!.ns, 'tcp', '10.96.0.21', 80);
      expect(cluster).toMatchObject({ ok: true, name: 'pod2' });
    });

    it('both policies Local, endpoints elsewhere only: pods and the node reach the external destinations, outside and cluster-IP traffic is dropped', async () => {
      const reach = [
        [t.pods[0]!.ns, '203.0.113.22', 80],
        [t.pods[0]!.ns, '198.51.100.22', 80],
        [t.pods[0]!.ns, '192.168.50.1', 30084],
        [t.node, '203.0.113.22', 80],
        [t.node, '198.51.100.22', 80],
        [t.node, '192.168.50.1', 30084],
      ] as const;
      for (const [from, host, port] of reach) expect([from, host, names(await t.probe(from, 'tcp', host, port, 3))]).toEqual([from, host, ['pod2', 'pod2', 'pod2']]);
      expect((await t.probe(t.client, 'tcp', '203.0.113.22', 80))[0]).toMatchObject({ ok: false, error: 'timeout' });
      expect((await t.probe(t.pods[0]!.ns, 'tcp', '10.96.0.22', 80))[0]).toMatchObject({ ok: false, error: 'timeout' });
    });

    it('refuses a Service without endpoints at once, TCP and UDP', async () => {
      for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
        for (const from of [t.client, t.pods[0]!.ns]) {
          const [r] = await t.probe(from, proto, '10.96.0.30', port);
          expect(r).toMatchObject({ ok: false, error: 'ECONNREFUSED' });
          expect(r!.ms).toBeLessThan(500);
        }
      }
    });

    it('hairpin: a pod reaches itself through its Service, seen as masqueraded', async () => {
      const rs = await t.probe(t.pods[0]!.ns, 'tcp', '10.96.0.50', 80, 3);
      expect(rs.map((r) => (r.ok ? `${r.name} ${r.seenAs}` : r.error))).toEqual(Array(3).fill('pod1 10.244.1.1'));
    });

    it.each(['10.96.0.40', 'fd00:96::40'])('ClientIP affinity sticks, and expires after its timeout (%s)', async (vip) => {
      const first = await t.probe(t.client, 'tcp', vip, 80, 10);
      expect(new Set(names(first)).size).toBe(1);
      let moved = false;
      let last = names(first)[0];
      for (let i = 0; i < 10 && !moved; i++) {
        await new Promise((r) => setTimeout(r, 1300));
        const [r] = await t.probe(t.client, 'tcp', vip, 80);
        expect(r!.ok).toBe(true);
        moved = r!.ok && r!.name !== last;
        if (r!.ok) last = r!.name;
      }
      expect(moved).toBe(true);
    });

    it('loadBalancerSourceRanges: drops outside the ranges, admits inside them', async () => {
      const [outside] = await t.probe(t.client, 'tcp', '203.0.113.30', 80);
      expect(outside).toMatchObject({ ok: false, error: 'timeout' });
      const [inside] = await t.probe(t.pods[0]!.ns, 'tcp', '203.0.113.30', 80);
      expect(inside).toMatchObject({ ok: true, name: 'pod3' });
    });

    it('leaves Services of another proxy alone', async () => {
      const [r] = await t.probe(t.pods[1]!.ns, 'tcp', '10.96.0.70', 80);
      expect(r).toMatchObject({ ok: false });
    });

    it('serves the health-check node port of a Local LoadBalancer', async () => {
      const { stdout } = await t.lab.exec(t.client, 'curl', ['-s', '-w', '\n%{http_code}', 'http://192.168.50.1:30999/']);
      const [body, code] = stdout.split('\n');
      expect(code).toBe('200');
      expect(JSON.parse(body!)).toEqual({ service: { namespace: 'default', name: 'local' }, localEndpoints: 1, serviceProxyHealthy: true });
    });

    it('fails the health check of a node whose local endpoints are all terminating, while their traffic still flows', async () => {
      const { stdout } = await t.lab.exec(t.client, 'curl', ['-s', '-w', '\n%{http_code}', 'http://192.168.50.1:30998/']);
      const [body, code] = stdout.split('\n');
      expect(code).toBe('503');
      expect(JSON.parse(body!)).toEqual({ service: { namespace: 'default', name: 'draining' }, localEndpoints: 0, serviceProxyHealthy: true });
      expect(names(await t.probe(t.client, 'tcp', '203.0.113.23', 80, 3))).toEqual(['pod3', 'pod3', 'pod3']);
    });

    it('applies an endpoint change, and UDP flows to the removed endpoint move instead of black-holing', async () => {
      // A UDP "client" with a fixed source port keeps one conntrack entry alive.
      const before = await t.probe(t.client, 'udp', '10.96.0.10', 53, 1, ['--source-port', '40053']);
      expect(before[0]!.ok).toBe(true);
      const stuckOn = before[0]!.ok ? before[0]!.name : '';
      const keep = [1, 2, 3].filter((i) => `pod${i}` !== stuckOn);
      const n = syncs();
      await write(keep);
      await waitFor('the resync', () => syncs() > n, 5000);
      // The stale conntrack entries are deleted just after the rules are synced (and logged): ask until the flow has
      // moved. Were the entry left, every probe would keep black-holing on the removed endpoint and refresh it.
      const after = await waitFor<ProbeResult[] | null>(
        'the UDP flow to move off the removed endpoint',
        async () => {
          const got = await t.probe(t.client, 'udp', '10.96.0.10', 53, 1, ['--source-port', '40053']);
          return got[0]!.ok && names(got)[0] !== stuckOn ? got : null;
        },
        5000,
        100,
      );
      expect(after![0]).toMatchObject({ ok: true });
      expect(names(after!)[0]).not.toBe(stuckOn);
      const tcp = await t.probe(t.client, 'tcp', '10.96.0.10', 80, 20);
      expect(Object.keys(counts(tcp)).sort()).toEqual(keep.map((i) => `pod${i}`));
      await write([1, 2, 3]);
      const m = syncs();
      await waitFor('the resync', () => syncs() > m, 5000);
    });

    it('a restart keeps established and new connections working', async () => {
      const held = t.probe(t.client, 'tcp', '10.96.0.10', 80, 1, ['--hold', '2500']);
      await new Promise((r) => setTimeout(r, 300));
      await stopProxy();
      // With the proxy stopped, its rules keep serving new connections.
      expect(names(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 5)).every((n) => n.startsWith('pod'))).toBe(true);
      await startProxy();
      expect((await held)[0]).toMatchObject({ ok: true });
      expect(names(await t.probe(t.client, 'tcp', '10.96.0.10', 80, 5)).every((n) => n.startsWith('pod'))).toBe(true);
    });

    it('sets conntrack as kube-proxy does: established TCP entries kept 24 h, CLOSE_WAIT ones 1 h', async () => {
      const sysctl = async (key: string) => Number((await t.lab.exec(t.node, 'sysctl', ['-n', key])).stdout.trim());
      expect(await sysctl('net.netfilter.nf_conntrack_tcp_timeout_established')).toBe(86_400);
      expect(await sysctl('net.netfilter.nf_conntrack_tcp_timeout_close_wait')).toBe(3_600);
      // The table size is the host's (read-only in this namespace) and already larger than the floor here.
    });

    it("serves kube-proxy's /healthz on port 10256 to load balancers, 503 while the cluster autoscaler removes the node", async () => {
      const healthz = async () => {
        const out = (await t.lab.exec(t.client, 'curl', ['-s', '-w', '\n%{http_code}', 'http://192.168.50.1:10256/healthz'])).stdout;
        const [body = '', code = ''] = out.split('\n');
        return { status: Number(code), body: JSON.parse(body) as { nodeEligible: boolean; lastUpdated: string } };
      };
      const ok = await healthz();
      expect([ok.status, ok.body.nodeEligible]).toEqual([200, true]);
      expect(Date.now() - Date.parse(ok.body.lastUpdated)).toBeLessThan(120_000);
      await write([1, 2, 3], ['ToBeDeletedByClusterAutoscaler']);
      await waitFor('/healthz to say the node is leaving', async () => (await healthz()).status === 503, 5000);
      expect((await healthz()).body.nodeEligible).toBe(false);
      await write([1, 2, 3]);
      await waitFor('/healthz to be 200 again', async () => (await healthz()).status === 200, 5000);
    });

    it("--nodeport-addresses primary accepts NodePorts on the Node's InternalIP only", async () => {
      const pod = t.pods[0]!.ns;
      // By default every local address takes NodePorts: the pod bridge's address too.
      const allOk = (rs: ProbeResult[]) => rs.length > 0 && rs.every((r) => r.ok);
      expect(allOk(await t.probe(pod, 'tcp', '10.244.1.1', 30080, 1))).toBe(true);
      await stopProxy();
      await startProxy(['--nodeport-addresses', 'primary']);
      try {
        expect(allOk(await t.probe(pod, 'tcp', '192.168.50.1', 30080, 3))).toBe(true);
        expect(allOk(await t.probe(t.client, 'tcp', '192.168.50.1', 30080, 3))).toBe(true);
        expect((await t.probe(pod, 'tcp', '10.244.1.1', 30080, 1))[0]).toMatchObject({ ok: false });
      } finally {
        await stopProxy();
        await startProxy();
      }
    });

    it('--cleanup removes everything netplane made and nothing else', async () => {
      await stopProxy();
      await t.lab.exec(t.node, 'nft', ['add', 'table', 'inet', 'someone-else']);
      await t.lab.exec(t.node, 'iptables', ['-t', 'nat', '-N', 'SOMEONE-ELSE']);
      await t.lab.exec(t.node, process.execPath, [bin, 'proxy', '--cleanup']);
      const nft = (await t.lab.exec(t.node, 'nft', ['list', 'tables'])).stdout;
      expect(nft).not.toMatch(/netplane/);
      expect(nft).toMatch(/someone-else/);
      const ipt = (await t.lab.exec(t.node, 'iptables-save', [])).stdout + (await t.lab.exec(t.node, 'ip6tables-save', [])).stdout;
      expect(ipt).not.toMatch(/NETPLANE/);
      expect(ipt).toMatch(/SOMEONE-ELSE/);
      const [r] = await t.probe(t.client, 'tcp', '10.96.0.10', 80);
      expect(r!.ok).toBe(false);
    });
  });
}

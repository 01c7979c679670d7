// netplane proxy and the node's own addresses on a dual-stack node whose Node object has an IPv4 InternalIP only:
// which addresses take NodePorts (`--nodeport-addresses` of one family, `primary`), health-check node ports and
// /healthz over both families, and a load-balancer IP bound on the node reached from the node itself under
// loadBalancerSourceRanges. Real packets in network namespaces (topology.ts), the CLI as users run it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';
import { ProxyProcess, releaseSuite } from './process.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from './topology.ts';

const reached = (rs: ProbeResult[]) => rs.length > 0 && rs.every((r) => r.ok);

function manifests(t: ProxyTopology): object[] {
  const p = (i: number) => t.pods[i - 1]!;
  const slice = (name: string, family: 4 | 6, pods: number[]) => eps(name, family, pods.map((i) => [family === 4 ? p(i).ip4 : p(i).ip6, 'node1']));
  const dual = { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' };
  return [
    // A dual-stack node whose Node names only its IPv4 address, as with a kubelet given one --node-ip.
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, spec: { podCIDR: '10.244.1.0/24' }, status: { addresses: [{ type: 'InternalIP', address: t.nodeIP4 }] } },
    svc('web', { type: 'NodePort', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ...dual, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] }),
    slice('web', 4, [1, 2, 3]),
    slice('web', 6, [1, 2, 3]),
    svc('lbl', { type: 'LoadBalancer', clusterIPs: ['10.96.0.11', 'fd00:96::11'], ...dual, externalTrafficPolicy: 'Local', healthCheckNodePort: 30999, ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.11' }, { ip: '2001:db8::11' }] } }),
    slice('lbl', 4, [1]),
    slice('lbl', 6, [1]),
    svc('lbsr', { type: 'LoadBalancer', clusterIP: '10.96.0.12', loadBalancerSourceRanges: ['192.168.50.0/24'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30082 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.12' }] } }),
    slice('lbsr', 4, [2]),
  ];
}

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`netplane proxy --mode ${mode}: the node's own addresses, both families`, () => {
    let t: ProxyTopology;
    let dir: string;
    let proxy: ProxyProcess;
    const startProxy = (extra: string[] = []) => proxy.start({ mode, extra });

    beforeAll(async () => {
      t = await buildTopology(3, [8080]);
      dir = await mkdtemp(join(tmpdir(), `netplane-node-addresses-${mode}-`));
      await writeManifests(dir, manifests(t));
      proxy = new ProxyProcess(t, dir);
    }, 60_000);
    afterEach(() => proxy?.stop());
    afterAll(() => releaseSuite(proxy, t?.lab, dir));

    it('--nodeport-addresses with IPv4 CIDRs only: IPv4 NodePorts on those addresses, IPv6 ones on every address', async () => {
      await startProxy(['--nodeport-addresses', '192.168.50.0/24']);
      const pod = t.pods[0]!.ns;
      expect(reached(await t.probe(t.client, 'tcp', t.nodeIP4, 30080, 3))).toBe(true);
      expect(reached(await t.probe(t.client, 'tcp', t.nodeIP6, 30080, 3))).toBe(true);
      expect(reached(await t.probe(pod, 'tcp', 'fd00:244:1::1', 30080, 3))).toBe(true);
      expect((await t.probe(pod, 'tcp', '10.244.1.1', 30080))[0]).toMatchObject({ ok: false });
      // Health-check node ports likewise, as kube-proxy's service health server listens: the IPv4 addresses in the
      // CIDRs, every IPv6 address.
      const get = async (ns: string, url: string) => (await t.lab.exec(ns, 'curl', ['-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url]).then((r) => r.stdout, (e: Error) => e.message));
      await waitFor('the health-check node port', async () => (await get(t.client, `http://${t.nodeIP4}:30999/`)) === '200', 5000, 100);
      expect(await get(t.client, `http://[${t.nodeIP6}]:30999/`)).toBe('200');
      expect(await get(pod, 'http://10.244.1.1:30999/')).not.toBe('200');
    });

    it("--nodeport-addresses primary with an IPv4 InternalIP only: IPv4 NodePorts on it, IPv6 ones on every address", async () => {
      await startProxy(['--nodeport-addresses', 'primary']);
      const pod = t.pods[0]!.ns;
      expect(reached(await t.probe(t.client, 'tcp', t.nodeIP4, 30080, 3))).toBe(true);
      expect(reached(await t.probe(t.client, 'tcp', t.nodeIP6, 30080, 3))).toBe(true);
      expect(reached(await t.probe(pod, 'tcp', 'fd00:244:1::1', 30080, 3))).toBe(true);
      expect((await t.probe(pod, 'tcp', '10.244.1.1', 30080))[0]).toMatchObject({ ok: false });
    });

    it('answers health-check node ports and /healthz on the IPv4 and the IPv6 address (default wildcard addresses)', async () => {
      await startProxy();
      const get = async (url: string) => (await t.lab.exec(t.client, 'curl', ['-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url])).stdout;
      // Health-check ports open after the first sync.
      await waitFor('the health-check node port', () => get(`http://${t.nodeIP4}:30999/`), 5000, 100);
      for (const host of [t.nodeIP4, `[${t.nodeIP6}]`]) {
        expect([host, await get(`http://${host}:30999/`)]).toEqual([host, '200']);
        expect([host, await get(`http://${host}:10256/healthz`)]).toEqual([host, '200']);
      }
    });

    if (mode === 'nftables') {
      it('loadBalancerSourceRanges holding the node address: the node reaches a load-balancer IP bound on itself', async () => {
        await t.lab.exec(t.node, 'ip', ['addr', 'add', '203.0.113.12/32', 'dev', 'lo']);
        try {
          await startProxy();
          // The node's packet to its own VIP leaves with the VIP as source, which no range names.
          expect((await t.probe(t.node, 'tcp', '203.0.113.12', 80, 3)).map((r) => (r.ok ? r.name : r.error))).toEqual(['pod2', 'pod2', 'pod2']);
          expect((await t.probe(t.client, 'tcp', '203.0.113.12', 80))[0]).toMatchObject({ ok: true, name: 'pod2' });
        } finally {
          await t.lab.exec(t.node, 'ip', ['addr', 'del', '203.0.113.12/32', 'dev', 'lo']);
        }
      });
    }
  });
}

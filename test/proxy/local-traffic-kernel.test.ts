// --detect-local-mode in the kernel: netplane proxy (the CLI) in a node namespace, in nftables and in iptables mode,
// with three clients: a pod on the node's bridge (br0, 10.244.1.11), a pod on a routed veth named as Calico names
// them (cali1, 10.244.2.5), and a client outside the node (eth0, 192.168.50.2). For each --detect-local-mode the
// endpoint tells whether the client's address to a cluster IP was kept (local traffic) or masqueraded, and a
// Local-policy load-balancer IP whether the client took every endpoint (local: the short-circuit) or only this
// node's. One network per proxy mode; the detect-local modes run one after another in it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';
import { ProxyProcess, releaseSuite } from './process.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from './topology.ts';

/** "web": a dual-stack cluster IP served by pod2; "local": a Local-policy load-balancer IP, pod2 here and pod3 "elsewhere". */
function manifests(t: ProxyTopology, podCIDRs: string[] | undefined) {
  const [, pod2, pod3] = t.pods;
  return [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, spec: podCIDRs ? { podCIDRs } : {}, status: { addresses: [{ type: 'InternalIP', address: t.nodeIP4 }] } },
    svc('web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    eps('web', 4, [[pod2!.ip4, 'node1']]),
    eps('web', 6, [[pod2!.ip6, 'node1']]),
    svc('local', { type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }] }, { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } }),
    eps('local', 4, [[pod2!.ip4, 'node1'], [pod3!.ip4, 'node2']]),
  ];
}

const clients = ['bridged', 'routed', 'outside'] as const;
type Client = (typeof clients)[number];
const seen = (r: ProbeResult | undefined) => (r?.ok ? `${r.name} as ${r.seenAs}` : r?.error);

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`--detect-local-mode with --mode ${mode}, in the kernel`, () => {
    let t: ProxyTopology;
    let dir: string;
    let routed: string;
    let proxy: ProxyProcess;
    let from: Record<Client, { ns: string; 4: string; 6: string }>;

    const write = (podCIDRs: string[] | undefined) => writeManifests(dir, manifests(t, podCIDRs));
    const syncs = () => proxy.syncs();
    const logged = (re: RegExp) => proxy.logs.some((l) => typeof l.msg === 'string' && re.test(l.msg));

    async function startProxy(extra: string[], started: () => boolean): Promise<void> {
      await proxy.stop();
      await proxy.start({ mode, extra }, started, 'the proxy to start');
    }
    async function readyz(): Promise<{ code: string; body: string }> {
      const admin = proxy.logs.find((l) => l.msg === 'netplane proxy starting')?.admin as string;
      const { stdout } = await t.lab.exec(t.node, 'curl', ['-s', '-w', '\n%{http_code}', `http://${admin}/readyz`]);
      const i = stdout.lastIndexOf('\n');
      return { code: stdout.slice(i + 1), body: stdout.slice(0, i) };
    }

    /**
     * Asserts, for every client, what a local (true) and a not-local (false) client gets: to the cluster IP of the
     * family its own address kept, or the node's bridge address (masqueraded); to the Local-policy load-balancer IP
     * (IPv4) both endpoints, or only this node's with its address kept.
     */
    async function expectLocal(local: Record<Client, boolean>, family: 4 | 6 = 4): Promise<void> {
      const vip = family === 4 ? '10.96.0.10' : 'fd00:96::10';
      const masqueraded = family === 4 ? '10.244.1.1' : 'fd00:244:1::1';
      const got = await Promise.all(
        clients.map(async (c) => {
          const [cluster] = await t.probe(from[c].ns, 'tcp', vip, 80);
          const lb = family === 4 ? await t.probe(from[c].ns, 'tcp', '203.0.113.20', 80, 16) : [];
          return [c, { cluster: seen(cluster), lb: [...new Set(lb.map(seen))].sort() }] as const;
        }),
      );
      const want = clients.map((c) => [
        c,
        {
          cluster: `pod2 as ${local[c] ? from[c][family] : masqueraded}`,
          lb: family === 6 ? [] : local[c] ? [`pod2 as ${from[c][4]}`, `pod3 as ${from[c][4]}`] : [`pod2 as ${from[c][4]}`],
        },
      ] as const);
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
    }

    beforeAll(async () => {
      t = await buildTopology(3, [8080]);
      routed = await t.lab.ns('routed');
      // A routed pod interface, as Calico's: its own link and subnet, no bridge.
      await t.lab.veth({ ns: t.node, ifname: 'cali1', addrs: ['10.244.2.1/24', 'fd00:244:2::1/64'] }, { ns: routed, ifname: 'eth0', addrs: ['10.244.2.5/24', 'fd00:244:2::5/64'] });
      await t.lab.exec(routed, 'ip', ['route', 'add', 'default', 'via', '10.244.2.1']);
      await t.lab.exec(routed, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd00:244:2::1']);
      from = {
        bridged: { ns: t.pods[0]!.ns, 4: t.pods[0]!.ip4, 6: t.pods[0]!.ip6 },
        routed: { ns: routed, 4: '10.244.2.5', 6: 'fd00:244:2::5' },
        outside: { ns: t.client, 4: t.clientIP4, 6: 'fd00:50::2' },
      };
      dir = await mkdtemp(join(tmpdir(), `netplane-detect-local-${mode}-`));
      proxy = new ProxyProcess(t, dir);
    }, 60_000);
    afterAll(() => releaseSuite(proxy, t?.lab, dir));

    it('NodeCIDR: programs nothing and is not ready until the Node has podCIDRs, then only they are local (both families)', async () => {
      await write(undefined);
      const waiting = /^waiting for Node "node1"'s spec\.podCIDRs \(--detect-local-mode NodeCIDR\): it has none yet; no rule is programmed until it has them$/;
      await startProxy(['--detect-local-mode', 'NodeCIDR'], () => logged(waiting));
      const unready = await readyz();
      expect(unready.code).toBe('503');
      expect(JSON.parse(unready.body).waiting).toEqual([{ check: 'proxy-rules', reason: expect.stringMatching(waiting) }]);
      expect(syncs()).toBe(0);
      const kernel = mode === 'nftables' ? (await t.lab.exec(t.node, 'nft', ['list', 'tables'])).stdout : (await t.lab.exec(t.node, 'iptables-save', ['-t', 'nat'])).stdout;
      expect(kernel).not.toMatch(/netplane|NETPLANE-/);

      await write(['10.244.1.0/24', 'fd00:244:1::/64']);
      await waitFor('the first sync', () => syncs() > 0, 10_000);
      expect((await readyz()).code).toBe('200');
      await expectLocal({ bridged: true, routed: false, outside: false });
      await expectLocal({ bridged: true, routed: false, outside: false }, 6);
    }, 60_000);

    it("NodeCIDR: follows a change of the Node's podCIDRs without a restart, and keeps them when they go", async () => {
      const before = syncs();
      await write(['10.244.2.0/24']);
      await waitFor('the re-plan', () => logged(/has new spec\.podCIDRs 10\.244\.2\.0\/24 \(were 10\.244\.1\.0\/24, fd00:244:1::\/64\)/) && syncs() > before, 10_000);
      await expectLocal({ bridged: false, routed: true, outside: false });
      // IPv6 has no pod CIDR now: nothing is local, and cluster-IP traffic is not masqueraded (as without --cluster-cidr).
      const [v6] = await t.probe(from.outside.ns, 'tcp', 'fd00:96::10', 80);
      expect(seen(v6)).toBe(`pod2 as ${from.outside[6]}`);

      await write(undefined);
      await waitFor('the warning', () => logged(/the Node "node1" has no spec\.podCIDRs any more; traffic from 10\.244\.2\.0\/24 stays local/), 10_000);
      await expectLocal({ bridged: false, routed: true, outside: false });
      expect(proxy.child!.exitCode).toBeNull();
    }, 60_000);

    it('BridgeInterface: traffic in on the bridge is local, in both families', async () => {
      await write(['10.244.1.0/24']);
      await startProxy(['--detect-local-mode', 'BridgeInterface', '--pod-bridge-interface', 'br0'], () => syncs() > 0);
      await expectLocal({ bridged: true, routed: false, outside: false });
      await expectLocal({ bridged: true, routed: false, outside: false }, 6);
    }, 60_000);

    if (mode === 'nftables') {
      it('BridgeInterface: a bridge named like an nft keyword (meta) is still matched as a name', async () => {
        await startProxy(['--detect-local-mode', 'BridgeInterface', '--pod-bridge-interface', 'meta'], () => syncs() > 0);
        const rules = (await t.lab.exec(t.node, 'nft', ['list', 'chain', 'ip', 'netplane', 'services'])).stdout;
        expect(rules).toMatch(/iifname "meta" ip daddr \. meta l4proto \. th dport vmap @fallback-vips/);
        await expectLocal({ bridged: false, routed: false, outside: false });
      }, 60_000);
    }

    it('InterfaceNamePrefix: traffic in on an interface named cali* is local, the bridge is not', async () => {
      await startProxy(['--detect-local-mode', 'InterfaceNamePrefix', '--pod-interface-name-prefix', 'cali'], () => syncs() > 0);
      await expectLocal({ bridged: false, routed: true, outside: false });
      await expectLocal({ bridged: false, routed: true, outside: false }, 6);
      await proxy.stop();
    }, 60_000);
  });
}

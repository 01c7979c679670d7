// loadBalancerSourceRanges in iptables mode, from Service objects through the planner to real packets: a
// load-balancer IP bound on the node itself (kube-vip, MetalLB-style) is reached from the node with the VIP as its
// source address, which kube-proxy allows when a range holds the node's address (allowFromNode), and only then.
// Every namespace is removed at the end, also on failure.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import { planProxy } from '../../../proxy/plan/plan.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { service, slice } from '../../fixtures/objects.ts';
import { topologyForSuite, type ProbeResult, type ProxyTopology } from '../topology.ts';

const probeScript = fileURLToPath(new URL('../../helpers/probe.ts', import.meta.url));

/** A LoadBalancer Service whose VIP is bound on the node, with one endpoint: pod1 on this node. */
function vipService(name: string, vip: string, ranges: string[], policy: 'Cluster' | 'Local' = 'Cluster'): object[] {
  return [
    service(name, { type: 'LoadBalancer', clusterIP: '', externalTrafficPolicy: policy, loadBalancerSourceRanges: ranges, ports: [{ port: 80, targetPort: 8080 }] }, { status: { loadBalancer: { ingress: [{ ip: vip }] } } }),
    slice(`${name}-1`, name, [{ addresses: ['10.244.1.11'], nodeName: 'n1' }], [{ port: 8080 }]),
  ];
}

let topo: ProxyTopology;

/** The probe with a short timeout, for traffic that is expected to be dropped. */
async function probeQuick(ns: string, host: string): Promise<ProbeResult> {
  const { stdout } = await topo.lab.exec(ns, process.execPath, [probeScript, 'tcp', host, '80', '1', '700']);
  return JSON.parse(stdout.trim()) as ProbeResult;
}
const outcome = (r: ProbeResult) => (r.ok ? r.name : r.error);

describe('iptables mode: loadBalancerSourceRanges and a VIP bound on the node', () => {
  topologyForSuite(1, [8080], async (t) => {
    topo = t;
    for (const vip of ['192.168.60.13', '192.168.60.14', '192.168.60.15']) await topo.lab.exec(topo.node, 'ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
    const store = new Store();
    store.apply(
      [
        // The node's address 192.168.50.1 is in the range, and so is the client's.
        ...vipService('held', '192.168.60.13', ['192.168.50.0/24']),
        ...vipService('other', '192.168.60.14', ['10.0.0.0/8']),
        ...vipService('local', '192.168.60.15', ['192.168.50.0/24'], 'Local'),
      ].flatMap((r) => parseObject(r)),
    );
    const plan = planProxy(new ServiceMap(store, { nodeName: 'n1' }).ports.values(), {
      nodeName: 'n1',
      clusterCIDRs: ['10.244.0.0/16'],
      masqueradeAll: false,
      nodePortAddresses: [],
      nodeIPs: { 4: topo.nodeIP4 },
    });
    const runner: CommandRunner = { run: (command, args, input) => topo.lab.exec(topo.node, command, args, input) };
    await new IptablesBackend(runner, { log: silentLogger(), tcpBeLiberal: async () => false }).sync(plan, { full: true });
  });

  it('a range holds the node address: the node reaches the VIP (its packets carry the VIP as source), Cluster and Local policy', async () => {
    const rows = await Promise.all([topo.probe(topo.node, 'tcp', '192.168.60.13', 80, 2), topo.probe(topo.node, 'tcp', '192.168.60.15', 80, 2)]);
    expect(rows.map((rs) => rs.map(outcome))).toEqual([
      ['pod1', 'pod1'],
      ['pod1', 'pod1'],
    ]);
  });

  it('sources in a range pass, others are dropped; the node is refused where no range holds it, as in kube-proxy', async () => {
    const [client, clientOther, nodeOther] = await Promise.all([
      topo.probe(topo.client, 'tcp', '192.168.60.13', 80, 2),
      probeQuick(topo.client, '192.168.60.14'),
      probeQuick(topo.node, '192.168.60.14'),
    ]);
    expect(client.map(outcome)).toEqual(['pod1', 'pod1']);
    expect([clientOther, nodeOther].map(outcome)).toEqual(['timeout', 'timeout']);
  });
});

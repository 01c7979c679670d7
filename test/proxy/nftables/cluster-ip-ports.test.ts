// Ports a cluster IP does not serve, in the kernel: kube-proxy's nftables mode rejects new connections to them
// (its cluster-ips-check chain, after DNAT), so a client of a Service whose port changed (80 → 81) is refused at
// once instead of waiting for a time-out. The backend runs in-process with nft inside the node namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import type { PortPlan, ProxyPlan } from '../../../proxy/plan/types.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from '../topology.ts';
import { eps, plan, port, served } from './plans.ts';

const outcome = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? r.name : r.error));

// Each test runs a dozen probe processes, seconds each on a loaded machine.
describe('nftables: ports a cluster IP does not serve', { timeout: 45_000 }, () => {
  let t: ProxyTopology;
  let backend: NftablesBackend;
  const pod = (i: number) => t.pods[i - 1]!;

  /** "web" on `webPort` (TCP, both families) and "dns" 53/UDP on the same cluster IP; "empty" with no endpoint. */
  function cluster(webPort: number, protocol: PortPlan['protocol'] = 'TCP'): ProxyPlan {
    return plan([
      served('web', eps([pod(1).ip4]), { port: webPort, protocol, clusterIPs: ['10.96.0.10'] }),
      served('web', eps([pod(1).ip6]), { family: 6, port: webPort, protocol, clusterIPs: ['fd00:96::10'] }),
      served('web', eps([pod(1).ip4]), { portName: 'dns', protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'] }),
      port('empty', { clusterIPs: ['10.96.0.30'] }),
    ]);
  }
  /** Each client's result for one probe, and that every refusal came at once. */
  async function from(proto: 'tcp' | 'udp', host: string, p: number): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [who, ns] of [['client', t.client], ['pod', pod(2).ns], ['node', t.node]] as const) {
      const [r] = await t.probe(ns, proto, host, p);
      if (r && !r.ok && r.error === 'ECONNREFUSED') expect(r.ms).toBeLessThan(500);
      out[who] = outcome(r ? [r] : []).join();
    }
    return out;
  }
  const all = (v: string) => ({ client: v, pod: v, node: v });

  beforeAll(async () => {
    t = await buildTopology(2, [8080], 's21dcip');
    const runner: CommandRunner = { run: (command, args, input) => t.lab.exec(t.node, command, args, input) };
    backend = new NftablesBackend(runner, { log: silentLogger() });
    await backend.sync(cluster(80), { full: true });
  }, 60_000);
  afterAll(async () => {
    await t?.lab.destroy();
  });

  it('refuses TCP and UDP to a port the cluster IP does not have, from outside, a pod and the node', async () => {
    expect(await from('tcp', '10.96.0.10', 80)).toEqual(all('pod1'));
    expect(await from('tcp', '10.96.0.10', 82)).toEqual(all('ECONNREFUSED'));
    expect(await from('udp', '10.96.0.10', 82)).toEqual(all('ECONNREFUSED'));
    expect(await from('tcp', 'fd00:96::10', 82)).toEqual(all('ECONNREFUSED'));
  });

  it('a Service port changed from 80 to 81: 81 serves, 80 is refused at once', async () => {
    await backend.sync(cluster(81), { full: false });
    expect(await from('tcp', '10.96.0.10', 81)).toEqual(all('pod1'));
    expect(await from('tcp', '10.96.0.10', 80)).toEqual(all('ECONNREFUSED'));
    expect(await from('tcp', 'fd00:96::10', 80)).toEqual(all('ECONNREFUSED'));
    expect(await from('udp', '10.96.0.10', 53)).toEqual(all('pod1'));
  });

  it('a protocol change (TCP to UDP on 81): the TCP port is refused, the UDP one serves', async () => {
    await backend.sync(cluster(81, 'UDP'), { full: false });
    expect(await from('udp', '10.96.0.10', 81)).toEqual(all('pod1'));
    expect(await from('tcp', '10.96.0.10', 81)).toEqual(all('ECONNREFUSED'));
  });

  it('an address that is no cluster IP any more is left alone (routed as any other)', async () => {
    await backend.sync(plan([served('web', eps([pod(1).ip4]), { clusterIPs: ['10.96.0.11'] })]), { full: false });
    expect(await from('tcp', '10.96.0.11', 80)).toEqual(all('pod1'));
    // Not refused: it goes out by the default route, where nothing answers (a time-out, or no neighbour).
    expect(Object.values(await from('tcp', '10.96.0.10', 81))).not.toContain('ECONNREFUSED');
  });
});

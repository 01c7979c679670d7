// iptables mode on a host whose firewall drops by default, as Docker leaves it (FORWARD policy DROP, a DOCKER-USER
// chain) and as hardened hosts set INPUT: Service traffic must pass all the same, through netplane's own accepts
// (kube-proxy's KUBE-FORWARD and filter KUBE-NODEPORTS), while other traffic stays dropped. Real packets from a
// client outside the node; every namespace is removed at the end, also on failure.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import type { Target } from '../../../proxy/plan/types.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { topologyForSuite, type ProbeResult, type ProxyTopology } from '../topology.ts';
import { plan, port } from './plans.ts';

const echo = fileURLToPath(new URL('../../helpers/echo.ts', import.meta.url));
const probeScript = fileURLToPath(new URL('../../helpers/probe.ts', import.meta.url));

const ep = (i: number): Target => ({ ip: `10.244.1.${10 + i}`, port: 8080 });
const ep6 = (i: number): Target => ({ ip: `fd00:244:1::${10 + i}`, port: 8080 });
/** The health-check node port (an echo server in the node stands in for the health-check server) and a port beside it that no Service uses. */
const healthPort = 30256;
const otherNodePort = 30257;

const services = plan(
  [
    port('web', { clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['192.168.60.10'], nodePort: 30080, clusterEndpoints: [ep(1), ep(2)] }),
    port('web', { protocol: 'UDP', clusterIPs: ['10.96.0.10'], nodePort: 30081, clusterEndpoints: [ep(1), ep(2)] }),
    port('web', { family: 6, clusterIPs: ['fd00:96::10'], clusterEndpoints: [ep6(1), ep6(2)] }),
  ],
  { healthChecks: [{ port: healthPort, namespace: 'default', name: 'lb', localEndpoints: 1 }] },
);

let topo: ProxyTopology;

const ok = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? 'ok' : r.error));

/** The probe with a short timeout, for traffic that is expected to be dropped. */
async function probeQuick(ns: string, host: string, port: number): Promise<ProbeResult[]> {
  const { stdout } = await topo.lab.exec(ns, process.execPath, [probeScript, 'tcp', host, String(port), '1', '700']);
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as ProbeResult);
}

describe('iptables mode with FORWARD and INPUT policies DROP', () => {
  topologyForSuite(2, [8080], async (t) => {
    topo = t;
    const inNode = (command: string, args: string[]) => topo.lab.exec(topo.node, command, args);
    for (const cmd of ['iptables', 'ip6tables']) {
      // Docker's filter table: FORWARD drops, and every forwarded packet first passes DOCKER-USER.
      await inNode(cmd, ['-P', 'FORWARD', 'DROP']);
      await inNode(cmd, ['-N', 'DOCKER-USER']);
      await inNode(cmd, ['-A', 'DOCKER-USER', '-j', 'RETURN']);
      await inNode(cmd, ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
      // A host firewall that accepts nothing but loopback (and ICMPv6, without which IPv6 neighbours are not found).
      await inNode(cmd, ['-P', 'INPUT', 'DROP']);
      await inNode(cmd, ['-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
    }
    await inNode('ip6tables', ['-A', 'INPUT', '-p', 'ipv6-icmp', '-j', 'ACCEPT']);
    const ready = new Promise<void>((resolve, reject) => {
      const server = topo.lab.spawn(topo.node, process.execPath, [echo, 'node', String(healthPort), String(otherNodePort)]);
      server.stdout!.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    });
    await ready;
    const runner: CommandRunner = { run: (command, args, input) => topo.lab.exec(topo.node, command, args, input) };
    await new IptablesBackend(runner, { log: silentLogger(), tcpBeLiberal: async () => false }).sync(services, { full: true });
  });

  it('NodePort over TCP and UDP, load-balancer IP and cluster IP reach the pods from outside (IPv4 and IPv6)', async () => {
    const results = await Promise.all([
      topo.probe(topo.client, 'tcp', topo.nodeIP4, 30080, 4),
      topo.probe(topo.client, 'udp', topo.nodeIP4, 30081, 4),
      topo.probe(topo.client, 'tcp', '192.168.60.10', 80, 4),
      topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 4),
      topo.probe(topo.client, 'tcp', 'fd00:96::10', 80, 4),
    ]);
    expect(results.map(ok)).toEqual(results.map(() => ['ok', 'ok', 'ok', 'ok']));
  });

  it('a health-check node port is served past INPUT DROP: every packet of the connection, not only the first', async () => {
    const rs = await topo.probe(topo.client, 'tcp', topo.nodeIP4, healthPort, 3);
    expect(rs.map((r) => (r.ok ? r.name : r.error))).toEqual(['node', 'node', 'node']);
  });

  it('other traffic stays dropped: a pod address directly, and a node port no Service uses', async () => {
    const [pod, other] = await Promise.all([probeQuick(topo.client, '10.244.1.11', 8080), probeQuick(topo.client, topo.nodeIP4, otherNodePort)]);
    expect([pod[0], other[0]]).toMatchObject([
      { ok: false, error: 'timeout' },
      { ok: false, error: 'timeout' },
    ]);
  });
});

// The iptables backend against the kernel: rules programmed in a node namespace, real packets from a client outside
// the node, from pods and from the node itself. Every namespace is removed at the end, also on failure.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ForwardAccept, forwardChain } from '../../../overlay/forward.ts';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import type { Target } from '../../../proxy/plan/types.ts';
import { CommandError, type CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { waitFor } from '../../helpers/wait.ts';
import { topologyForSuite, type ProbeResult, type ProxyTopology } from '../topology.ts';
import { plan, port } from './plans.ts';

const probeScript = fileURLToPath(new URL('../../helpers/probe.ts', import.meta.url));
const sessionScript = fileURLToPath(new URL('./session.ts', import.meta.url));

const ep = (i: number): Target => ({ ip: `10.244.1.${10 + i}`, port: 8080 });
const ep6 = (i: number): Target => ({ ip: `fd00:244:1::${10 + i}`, port: 8080 });
const all = [ep(1), ep(2), ep(3)];
const gateway = '10.244.1.1';

/** Every Service the tests use; `web` endpoints can be changed. */
function services(web: Target[] = all, extra: ReturnType<typeof port>[] = []) {
  return plan([
    port('web', { clusterIPs: ['10.96.0.10'], loadBalancerIPs: ['192.168.60.10'], nodePort: 30080, clusterEndpoints: web }),
    port('web', { protocol: 'UDP', clusterIPs: ['10.96.0.10'], clusterEndpoints: web }),
    port('local', { clusterIPs: ['10.96.0.11'], nodePort: 30081, externalLocal: true, clusterEndpoints: [ep(1), ep(3)], externalEndpoints: [ep(1)] }),
    port('empty', { clusterIPs: ['10.96.0.20'], nodePort: 30082 }),
    port('empty', { protocol: 'UDP', clusterIPs: ['10.96.0.20'] }),
    port('sticky', { clusterIPs: ['10.96.0.30'], clusterEndpoints: all, affinitySeconds: 60 }),
    port('self', { clusterIPs: ['10.96.0.40'], clusterEndpoints: [ep(1)] }),
    port('closed', { loadBalancerIPs: ['192.168.60.11'], sourceRanges: ['10.0.0.0/8'], clusterEndpoints: all }),
    port('open', { loadBalancerIPs: ['192.168.60.12'], sourceRanges: ['192.168.50.0/24'], clusterEndpoints: all }),
    port('web', { family: 6, clusterIPs: ['fd00:96::10'], clusterEndpoints: [ep6(1), ep6(2), ep6(3)] }),
    ...extra,
  ]);
}

let topo: ProxyTopology;
let runner: CommandRunner;
let backend: IptablesBackend;

const names = (rs: ProbeResult[]) => new Set(rs.map((r) => (r.ok ? r.name : `error:${r.error}`)));
const seen = (rs: ProbeResult[]) => new Set(rs.map((r) => (r.ok ? r.seenAs : `error:${r.error}`)));

/** The probe with a short timeout, for traffic that is expected to be dropped. */
async function probeQuick(ns: string, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs: number): Promise<ProbeResult[]> {
  const { stdout } = await topo.lab.exec(ns, process.execPath, [probeScript, proto, host, String(port), '1', String(timeoutMs)]);
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as ProbeResult);
}

/** iptables-save (or another variant) in the node, both tables. */
const saved = async (command: string) => (await topo.lab.exec(topo.node, command, [])).stdout;

/** Rules in built-in chains that jump to netplane, by table and chain. */
function hooks(text: string): string[] {
  const out: string[] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    const m = /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j NETPLANE-/.exec(line);
    if (m) out.push(`${table} ${m[1]}`);
  }
  return out.sort();
}
// filter INPUT: Services (new connections) and health checks; FORWARD: Services and forwarding accepts.
const oneHookEach = ['filter FORWARD', 'filter FORWARD', 'filter INPUT', 'filter INPUT', 'filter OUTPUT', 'nat OUTPUT', 'nat POSTROUTING', 'nat PREROUTING'];

describe('iptables backend in a network namespace', () => {
  topologyForSuite(3, [8080], async (t) => {
    topo = t;
    runner = { run: (command, args, input) => topo.lab.exec(topo.node, command, args, input) };
    backend = new IptablesBackend(runner, { log: silentLogger() });
    await backend.sync(services(), { full: true });
  });

  it('ClusterIP: TCP and UDP spread over every endpoint; the client outside the pod network is masqueraded', async () => {
    const [tcp, udp] = await Promise.all([topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 30), topo.probe(topo.client, 'udp', '10.96.0.10', 80, 30)]);
    for (const rs of [tcp, udp]) {
      expect(names(rs)).toEqual(new Set(['pod1', 'pod2', 'pod3']));
      expect(seen(rs)).toEqual(new Set([gateway]));
    }
  });

  it('from a pod: the pod address is kept; an endpoint reaching itself (hairpin) sees the node', async () => {
    const [fromPod2, hairpin] = await Promise.all([topo.probe(topo.pods[1]!.ns, 'tcp', '10.96.0.10', 80, 12), topo.probe(topo.pods[0]!.ns, 'tcp', '10.96.0.40', 80, 2)]);
    // Answered at once (no lost first SYN), seen as the pod itself unless it reached itself.
    expect(fromPod2.filter((r) => !r.ok || r.ms > 500)).toEqual([]);
    for (const r of fromPod2) if (r.ok) expect(r.seenAs).toBe(r.name === 'pod2' ? gateway : '10.244.1.12');
    expect(names(hairpin)).toEqual(new Set(['pod1']));
    expect(seen(hairpin)).toEqual(new Set([gateway]));
  });

  it('NodePort and load-balancer IP under the Cluster policy: reachable from outside, masqueraded', async () => {
    const [nodePort, lb] = await Promise.all([topo.probe(topo.client, 'tcp', topo.nodeIP4, 30080, 8), topo.probe(topo.client, 'tcp', '192.168.60.10', 80, 8)]);
    for (const rs of [nodePort, lb]) {
      expect(rs.every((r) => r.ok)).toBe(true);
      expect(seen(rs)).toEqual(new Set([gateway]));
    }
  });

  it('Local policy: outside keeps its address and reaches local endpoints; pods and the node use all endpoints', async () => {
    const [outside, pod, node] = await Promise.all([
      topo.probe(topo.client, 'tcp', topo.nodeIP4, 30081, 6),
      topo.probe(topo.pods[1]!.ns, 'tcp', topo.nodeIP4, 30081, 16),
      topo.probe(topo.node, 'tcp', topo.nodeIP4, 30081, 6),
    ]);
    expect(names(outside)).toEqual(new Set(['pod1']));
    expect(seen(outside)).toEqual(new Set([topo.clientIP4]));
    expect(names(pod)).toEqual(new Set(['pod1', 'pod3']));
    expect(seen(pod)).toEqual(new Set(['10.244.1.12']));
    expect(node.every((r) => r.ok)).toBe(true);
    expect(seen(node)).toEqual(new Set([gateway]));
  });

  it('no endpoints: TCP and UDP are refused at once, on the cluster IP and the node port', async () => {
    const results = (
      await Promise.all([
        topo.probe(topo.client, 'tcp', '10.96.0.20', 80),
        topo.probe(topo.client, 'udp', '10.96.0.20', 80),
        topo.probe(topo.client, 'tcp', topo.nodeIP4, 30082),
        topo.probe(topo.pods[0]!.ns, 'udp', '10.96.0.20', 80),
      ])
    ).flat();
    expect(results.map((r) => (r.ok ? r : { ok: r.ok, error: r.error, fast: r.ms < 500 }))).toEqual(results.map(() => ({ ok: false, error: 'ECONNREFUSED', fast: true })));
  });

  it('ClientIP affinity: every connection from the client goes to the same endpoint', async () => {
    const rs = await topo.probe(topo.client, 'tcp', '10.96.0.30', 80, 10);
    expect(rs.every((r) => r.ok)).toBe(true);
    expect(names(rs).size).toBe(1);
  });

  it('load-balancer source ranges: other sources are dropped, listed ones pass', async () => {
    const [closed, open] = await Promise.all([probeQuick(topo.client, 'tcp', '192.168.60.11', 80, 700), topo.probe(topo.client, 'tcp', '192.168.60.12', 80, 2)]);
    expect(closed[0]).toMatchObject({ ok: false, error: 'timeout' });
    expect(open.every((r) => r.ok)).toBe(true);
  });

  it('IPv6 ClusterIP: spread over endpoints, masqueraded from outside the pod network', async () => {
    const rs = await topo.probe(topo.client, 'tcp', 'fd00:96::10', 80, 15);
    expect(rs.every((r) => r.ok)).toBe(true);
    expect(names(rs).size).toBeGreaterThanOrEqual(2);
    expect(seen(rs)).toEqual(new Set(['fd00:244:1::1']));
  });

  it('an endpoint change moves new connections, TCP and UDP', async () => {
    const r = await backend.sync(services([ep(3)]), { full: false });
    expect(r.operations).toBeGreaterThan(0);
    const [tcp, udp] = await Promise.all([topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 6), topo.probe(topo.client, 'udp', '10.96.0.10', 80, 6)]);
    expect(names(tcp)).toEqual(new Set(['pod3']));
    expect(names(udp)).toEqual(new Set(['pod3']));
  });

  it('a restore the kernel refuses rejects with CommandError and leaves the working rules', async () => {
    // Plans are validated before rendering, so break the restore input on its way: a jump to a missing chain.
    const breaking: CommandRunner = { run: (c, a, i) => runner.run(c, a, i?.replace('COMMIT', '-A NETPLANE-NOSUCH -j ACCEPT\nCOMMIT')) };
    const broken = new IptablesBackend(breaking, { log: silentLogger() });
    const err = await broken.sync(services([ep(1)]), { full: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const rs = await topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 4);
    expect(names(rs)).toEqual(new Set(['pod3']));
  });

  it('a new instance doing a full sync keeps open connections, removes duplicates and stale chains', async () => {
    const session = topo.lab.spawn(topo.client, process.execPath, [sessionScript, '10.96.0.10', '80', '1500']);
    let out = '';
    session.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise((resolve) => session.once('exit', resolve));
    await waitFor('the long connection', () => out.includes('connected'));
    // What a crash between two restores, an older version or a hand-made rule may leave behind.
    await runner.run('iptables', ['-t', 'nat', '-I', 'PREROUTING', '1', '-m', 'comment', '--comment', 'netplane service portals', '-j', 'NETPLANE-SERVICES']);
    await runner.run('iptables', ['-t', 'nat', '-N', 'NETPLANE-SVC-STALE']);
    await runner.run('ip6tables', ['-t', 'filter', '-A', 'OUTPUT', '-j', 'NETPLANE-SERVICES']);

    const fresh = new IptablesBackend(runner, { log: silentLogger() });
    await fresh.sync(services(), { full: true });
    await fresh.sync(services(), { full: true });
    await exited;
    expect(JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!)).toEqual({ ok: true, name: 'pod3' });
    expect(names(await topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 20))).toEqual(new Set(['pod1', 'pod2', 'pod3']));
    expect(hooks(await saved('iptables-save'))).toEqual(oneHookEach);
    expect(hooks(await saved('ip6tables-save'))).toEqual(oneHookEach);
    expect(await saved('iptables-save')).not.toContain('STALE');
    backend = fresh;
  });

  it('a jump deleted by hand comes back where the first install put it: NETPLANE-FORWARD after NETPLANE-SERVICES', async () => {
    // Targets of the FORWARD rules, top down.
    const forwardOrder = async (command: string) =>
      (await runner.run(command, ['-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.startsWith('-A FORWARD')).map((l) => /-j (\S+)/.exec(l)?.[1] ?? l);
    for (const [command, source] of [['iptables', '192.0.2.1/32'], ['ip6tables', '2001:db8::1/128']] as const) {
      const installed = await forwardOrder(command);
      expect(installed.slice(0, 2)).toEqual(['NETPLANE-SERVICES', 'NETPLANE-FORWARD']);
      await runner.run(command, ['-D', 'FORWARD', '-m', 'comment', '--comment', 'netplane forwarding rules', '-j', 'NETPLANE-FORWARD']);
      // Somebody else's rule inserted first since (as Docker does with DOCKER-USER): it stays ahead of both.
      await runner.run(command, ['-I', 'FORWARD', '1', '-s', source, '-j', 'RETURN']);
      try {
        await backend.sync(services(), { full: true });
        expect(await forwardOrder(command)).toEqual(['RETURN', ...installed]);
      } finally {
        await runner.run(command, ['-D', 'FORWARD', '-s', source, '-j', 'RETURN']);
      }
    }
  });

  it('cleanup leaves no netplane chain or jump in either family, and the rest alone', async () => {
    await runner.run('iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.99.0.0/16', '-j', 'RETURN']);
    await backend.cleanup();
    for (const command of ['iptables-save', 'ip6tables-save']) expect(await saved(command)).not.toContain('NETPLANE');
    expect(await saved('iptables-save')).toContain('-A POSTROUTING -s 10.99.0.0/16 -j RETURN');
    const [r] = await probeQuick(topo.client, 'tcp', '10.96.0.10', 80, 500);
    expect(r!.ok).toBe(false);
  });

  it("leaves the overlay's forward-accept chain alone: full syncs and a clean-up keep NETPLANE-OVERLAY-FWD and its jump", async () => {
    const overlay = new ForwardAccept(runner);
    const overlayLines = (save: string) => save.split('\n').filter((l) => l.includes(forwardChain));
    await runner.run('iptables', ['-P', 'FORWARD', 'DROP']);
    try {
      expect(await overlay.sync(['10.244.0.0/16'])).toBe(true);
      const installed = overlayLines(await saved('iptables-save'));
      // The chain, its two accepts and the jump from FORWARD.
      expect(installed.filter((l) => l.startsWith('-A '))).toHaveLength(3);
      const proxy = new IptablesBackend(runner, { log: silentLogger() });
      await proxy.sync(services(), { full: true });
      await proxy.sync(services(), { full: true });
      expect(overlayLines(await saved('iptables-save'))).toEqual(installed);
      await proxy.cleanup();
      const left = await saved('iptables-save');
      expect(overlayLines(left)).toEqual(installed);
      expect(left.split('\n').filter((l) => l.includes('NETPLANE') && !l.includes(forwardChain))).toEqual([]);
    } finally {
      await overlay.cleanup();
      await runner.run('iptables', ['-P', 'FORWARD', 'ACCEPT']);
    }
  });

  it('works the same with iptables-legacy', async () => {
    const legacy = new IptablesBackend(runner, { log: silentLogger(), variant: 'legacy' });
    await legacy.sync(plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: [ep(2)] })]), { full: true });
    expect(hooks(await saved('iptables-legacy-save'))).toEqual(oneHookEach);
    expect(names(await topo.probe(topo.client, 'tcp', '10.96.0.10', 80, 2))).toEqual(new Set(['pod2']));
    await legacy.cleanup();
    for (const command of ['iptables-legacy-save', 'ip6tables-legacy-save', 'iptables-save']) expect(await saved(command)).not.toContain('NETPLANE');
  });
});

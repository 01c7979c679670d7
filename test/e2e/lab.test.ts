// The whole data plane in a lab (three nodes in network namespaces, built by `netplane lab up`): cluster DNS,
// a ClusterIP answered across the overlay, the ingress from the host, endpoint changes, every component on
// node 1 killed and restarted under a probe loop, and a complete teardown. Scenarios run in order on one lab.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webEndpointsFile, webEndpointsText } from '../../lab/manifests.ts';
import { labCluster, labPods, type LabComponent, type LabPlan } from '../../lab/plan.ts';
import { httpGet, stopProcess } from '../../lab/processes.ts';
import { labRestart } from '../../lab/restart.ts';
import { readState, type LabState } from '../../lab/state.ts';
import { HostRunner } from '../../runtime/exec.ts';
import { waitFor } from '../helpers/wait.ts';
import { leftovers, netplane, removeLab } from '../lab/run.ts';

const probeScript = fileURLToPath(new URL('./probe.ts', import.meta.url));
const host = new HostRunner();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One probe attempt (see probe.ts). */
type Line = { t: number; kind: 'http' | 'dns'; ok: boolean; pod?: string; node?: string; client?: string; status?: number; addrs?: string[]; error?: string };

/** A running probe loop: its lines so far, and stop(). */
interface Probe {
  lines: Line[];
  stop(): Promise<Line[]>;
}

/** Starts probe.ts, in a namespace or (ns undefined) in the host's; resolves once its first line arrived. */
async function startProbe(ns: string | undefined, args: string[]): Promise<Probe> {
  const argv = [process.execPath, probeScript, ...args];
  const proc = ns ? spawn('ip', ['netns', 'exec', ns, ...argv]) : spawn(argv[0]!, argv.slice(1));
  const lines: Line[] = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise((r) => proc.once('exit', r));
  await waitFor('the probe to start', () => lines.length > 0 || proc.exitCode !== null, 10_000);
  return {
    lines,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      return lines;
    },
  };
}

describe('netplane lab: the data plane end to end', () => {
  let stateDir: string;
  let state: LabState;
  let plan: LabPlan;
  const pids = new Set<number>();
  const podNs = (name: string) => `np${plan.id}-${name}`;
  const client = () => podNs('web-11');
  const ingressURL = () => `http://${plan.nodes[0]!.ip}/`;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'netplane-lab-e2e-'));
    const r = await netplane(['lab', 'up', '--state-dir', stateDir]);
    const s = await readState(stateDir).catch(() => undefined);
    if (s?.plan) plan = s.plan;
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}): ${r.stderr}`);
    state = s!;
    for (const p of state.processes) pids.add(p.pid);
  }, 90_000);
  afterAll(async () => {
    await removeLab(stateDir, plan);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('every component collected the garbage of its start once before it said it was ready (node --expose-gc, as the image runs it)', async () => {
    const components = state.processes.filter((p) => p.component !== undefined);
    expect(components.length).toBeGreaterThanOrEqual(9);
    for (const p of components) {
      const log = await readFile(p.log, 'utf8');
      expect(log.match(/collected the garbage of loading the first view/g)?.length, p.name).toBe(1);
    }
  });

  it('a pod on node 1 resolves web.default.svc.cluster.local through the cluster DNS', async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const { stdout } = await host.run('ip', ['netns', 'exec', client(), 'dig', `@${labCluster.dnsClusterIP}`, transport, '+short', '+time=2', '+tries=1', 'web.default.svc.cluster.local', 'A']);
      expect(stdout.trim(), transport).toBe(labCluster.webClusterIP);
    }
    // The pod's resolv.conf (the lab's /etc/netns entry) names the cluster DNS and the search path.
    const { stdout } = await host.run('ip', ['netns', 'exec', client(), 'getent', 'hosts', 'web']);
    expect(stdout.trim().split(/\s+/)).toEqual([labCluster.webClusterIP, 'web.default.svc.cluster.local']);
  });

  it('its connections to the ClusterIP are answered by pods on nodes 2 and 3 across the overlay, unmasqueraded', async () => {
    const probe = await startProbe(client(), ['--http', `http://${labCluster.webClusterIP}/`, '--every', '0', '--count', '60']);
    await waitFor('60 answers', () => probe.lines.length >= 60, 20_000);
    const lines = await probe.stop();
    expect(lines.filter((l) => !l.ok)).toEqual([]);
    const byNode = new Set(lines.map((l) => l.node));
    expect(byNode).toContain('node2');
    expect(byNode).toContain('node3');
    for (const l of lines.filter((x) => x.node !== 'node1')) expect(l.client, `${l.pod} saw`).toBe('10.244.1.11');
    // And by name, with curl, as an application in the pod would.
    const { stdout } = await host.run('ip', ['netns', 'exec', client(), 'curl', '-sf', '-m', '2', 'http://web.default.svc.cluster.local/']);
    expect(labPods(plan).map((p) => p.name)).toContain(stdout.trim());
  });

  it('the ingress serves the Service from the host by host name and by path', async () => {
    const byHost = await httpGet(ingressURL(), labCluster.ingressHost);
    expect(byHost.status).toBe(200);
    expect(labPods(plan).map((p) => p.name)).toContain(byHost.body.trim());
    const byPath = await httpGet(`${ingressURL()}web/anything`, plan.nodes[0]!.ip);
    expect(byPath.status).toBe(200);
    expect((await httpGet(`${ingressURL()}elsewhere`, 'other.lab')).status).toBe(404);
  });

  it('changing the EndpointSlice changes who answers within a second, in the pod and at the ingress', async () => {
    const only = labPods(plan).filter((p) => p.name === 'web-31');
    const inPod = await startProbe(client(), ['--http', `http://${labCluster.webClusterIP}/`, '--every', '20']);
    const atIngress = await startProbe(undefined, ['--http', ingressURL(), '--host', labCluster.ingressHost, '--every', '20']);
    await sleep(300);
    const t0 = Date.now();
    await writeFile(join(state.manifests, webEndpointsFile), webEndpointsText(only));
    await sleep(2000);
    for (const [where, probe] of [['pod', inPod], ['ingress', atIngress]] as const) {
      const lines = await probe.stop();
      const after = lines.filter((l) => l.t >= t0);
      // The first attempt from which on only web-31 answered.
      const lastOther = after.findLastIndex((l) => l.pod !== 'web-31');
      const switched = after[lastOther + 1];
      expect(switched, `${where}: web-31 answers in the end`).toBeDefined();
      expect(switched!.t - t0, `${where}: switched after`).toBeLessThan(1000);
      expect(lines.filter((l) => !l.ok), `${where}: failed attempts`).toEqual([]);
      expect(after.slice(lastOther + 1).length, `${where}: answers after the switch`).toBeGreaterThan(20);
    }
    await writeFile(join(state.manifests, webEndpointsFile), webEndpointsText(labPods(plan)));
    await waitFor('web-21 to answer again', async () => (await httpGet(ingressURL(), labCluster.ingressHost)).headers['x-pod'] === 'web-21', 5000, 0);
  }, 20_000);

  // Overlay and proxy leave the kernel programmed when they die, so nothing is lost even while they are down; dns
  // and the ingress serve from their process, so their queries fail from the kill until they are back.
  const outage: Record<LabComponent, { pod: Array<'http' | 'dns'>; ingress: boolean }> = {
    overlay: { pod: [], ingress: false },
    proxy: { pod: [], ingress: false },
    dns: { pod: ['dns'], ingress: false },
    ingress: { pod: [], ingress: true },
  };
  it.each(['overlay', 'proxy', 'dns', 'ingress'] as const)('killing and restarting %s on node 1 loses nothing beyond the restart', async (component) => {
    const old = (await readState(stateDir)).processes.find((p) => p.name === `node1/${component}`)!;
    const inPod = await startProbe(client(), ['--http', `http://${labCluster.webClusterIP}/`, '--dns', labCluster.dnsClusterIP, 'web.default.svc.cluster.local', '--every', '20', '--timeout', '300']);
    const atIngress = await startProbe(undefined, ['--http', ingressURL(), '--host', labCluster.ingressHost, '--every', '20', '--timeout', '300']);
    await sleep(500);
    const killedAt = Date.now();
    await stopProcess(old, 'SIGKILL');
    await sleep(300);
    const restarted = await labRestart(stateDir, 'node1', component);
    pids.add(restarted.process.pid);
    const readyAt = Date.now();
    await sleep(1000);
    const pod = await inPod.stop();
    const ingress = await atIngress.stop();
    const allowed = outage[component];
    const failed = (lines: Line[], kinds: string[]) => lines.filter((l) => !l.ok && !kinds.includes(l.kind));
    // An attempt started up to its time-out (300 ms) before the kill may still be in flight when the process dies.
    const failedOutside = (lines: Line[]) => lines.filter((l) => !l.ok && (l.t < killedAt - 300 || l.t > readyAt));
    expect(restarted.wasRunning).toBe(false);
    expect(failed(pod, allowed.pod), 'pod: failures of what should not fail').toEqual([]);
    expect(failed(ingress, allowed.ingress ? ['http'] : []), 'ingress: failures of what should not fail').toEqual([]);
    expect(failedOutside(pod), 'pod: failures outside the restart').toEqual([]);
    expect(failedOutside(ingress), 'ingress: failures outside the restart').toEqual([]);
    for (const [where, lines] of [['pod', pod], ['ingress', ingress]] as const) {
      const late = lines.filter((l) => l.t > readyAt);
      expect(late.length, `${where}: attempts after the restart`).toBeGreaterThan(10);
    }
    // The probes do see an outage where one is expected (the kill is real, the loop fast enough to notice).
    if (allowed.pod.includes('dns')) expect(pod.some((l) => l.kind === 'dns' && !l.ok)).toBe(true);
    if (allowed.ingress) expect(ingress.some((l) => !l.ok)).toBe(true);
  }, 30_000);

  it('down tears the lab down completely', async () => {
    const r = await netplane(['lab', 'down', '--state-dir', stateDir]);
    expect(r).toMatchObject({ code: 0, stdout: `Lab removed: 10 namespaces, link ${plan.hostLink}, 16 processes.\n` });
    expect(await leftovers(plan, [...pids])).toEqual([]);
    expect((await netplane(['lab', 'status', '--state-dir', stateDir])).code).toBe(1);
  }, 30_000);
});

// `netplane lab status`: the lab's nodes, pods and Services (read from its manifests, as the components read them)
// and the health of every process (alive, and each component's /readyz and /healthz), as tables or JSON.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { mergeFiles } from '../cluster/manifests/merge.ts';
import { parseManifestText } from '../cluster/manifests/parse.ts';
import type { AnyObject, EndpointSlice, Service } from '../cluster/model/index.ts';
import { serviceNameLabel } from '../cluster/model/index.ts';
import { ingressNode, labCluster } from './plan.ts';
import { isHealthy, processHealth, type ProcessHealth } from './processes.ts';
import { readState, type LabProcess, type LabState } from './state.ts';

/** One Service as the lab's manifests define it, with its ready endpoints. */
export interface ServiceRow {
  name: string;
  clusterIPs: string[];
  ports: string[];
  endpoints: string[];
}

/** Everything `lab status` reports. */
export interface LabStatus {
  state: LabState;
  processes: Array<{ process: LabProcess; health: ProcessHealth; healthy: boolean }>;
  services: ServiceRow[];
  /** Manifest files that do not parse, with the reason. */
  problems: string[];
  healthy: boolean;
}

/** Reads the lab in `stateDir` and checks every process; rejects with NoLabError when there is none. */
export async function labStatus(stateDir: string): Promise<LabStatus> {
  const state = await readState(stateDir);
  const processes = await Promise.all(
    state.processes.map(async (p) => {
      const health = await processHealth(p);
      return { process: p, health, healthy: isHealthy(health) };
    }),
  );
  const { services, problems } = await readServices(state.manifests);
  return { state, processes, services, problems, healthy: state.phase === 'running' && processes.every((p) => p.healthy) };
}

async function readServices(dir: string): Promise<{ services: ServiceRow[]; problems: string[] }> {
  const files = new Map<string, AnyObject[]>();
  const problems: string[] = [];
  for (const path of await listManifests(dir)) {
    const parsed = parseManifestText(relative(dir, path), await readFile(path, 'utf8'));
    if (parsed.ok) files.set(path, parsed.objects);
    else problems.push(`${parsed.problem.file}${parsed.problem.document ? ` document ${parsed.problem.document}` : ''}: ${parsed.problem.reason}`);
  }
  const objects = [...mergeFiles(files).desired.values()].map((d) => d.object);
  const slices = objects.filter((o): o is { kind: 'EndpointSlice'; object: EndpointSlice } => o.kind === 'EndpointSlice').map((o) => o.object);
  const services = objects
    .filter((o): o is { kind: 'Service'; object: Service } => o.kind === 'Service')
    .map(({ object: s }) => {
      const mine = slices.filter((sl) => sl.metadata.namespace === s.metadata.namespace && sl.metadata.labels[serviceNameLabel] === s.metadata.name);
      return {
        name: `${s.metadata.namespace}/${s.metadata.name}`,
        clusterIPs: s.spec.headless ? ['None'] : s.spec.clusterIPs,
        ports: s.spec.ports.map((p) => `${p.name ? `${p.name} ` : ''}${p.port}/${p.protocol}`),
        endpoints: mine.flatMap((sl) => sl.endpoints.filter((e) => e.ready).map((e) => e.targetRef?.name ?? e.addresses[0]!)),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  return { services, problems };
}

async function listManifests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listManifests(path)));
    else if (/\.(ya?ml|json)$/i.test(e.name)) out.push(path);
  }
  return out.sort();
}

/** Left-aligned columns, two spaces apart. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

const code = (c: { status: number | null; detail: string } | undefined) => (c === undefined ? '-' : c.status === null ? `(${c.detail})` : String(c.status));

/** The status as text: a summary, then nodes, pods, Services and components. */
export function formatStatus(s: LabStatus): string {
  const { state } = s;
  const plan = state.plan;
  const out: string[] = [];
  if (!plan) return `A lab is recorded in ${state.stateDir} but was never built (phase ${state.phase}); run "netplane lab down".\n`;
  const byName = new Map(s.processes.map((p) => [p.process.name, p]));
  out.push(`Lab ${plan.id}: ${plan.nodes.length} nodes, ${state.phase} since ${state.startedAt} (state in ${state.stateDir})`);
  out.push(`  underlay ${plan.underlayCIDR}; this host is ${plan.hostIP} on ${plan.hostLink}`);
  out.push(`  manifests ${state.manifests} (edits apply within a second); logs ${state.logs}`);
  out.push(`  ingress:  curl -H 'Host: ${labCluster.ingressHost}' http://${ingressNode(plan).ip}/`);
  out.push(`  in a pod: ip netns exec np${plan.id}-${plan.nodes[0]!.pods[0]!.name} curl http://web.default.svc.${labCluster.zone}/`);
  out.push('');
  out.push(table(['NODE', 'NAMESPACE', 'UNDERLAY IP', 'POD CIDR', 'COMPONENTS'], plan.nodes.map((n) => [n.name, `np${plan.id}-${n.name}`, n.ip, n.podCIDR, n.components.join(' ')])));
  out.push('');
  const pods = plan.nodes.flatMap((n) => n.pods);
  out.push(
    table(
      ['POD', 'NODE', 'IP', 'NAMESPACE', 'STATE'],
      pods.map((p) => {
        const proc = byName.get(`pod/${p.name}`);
        return [p.name, p.node, p.ip, `np${plan.id}-${p.name}`, proc ? (proc.health.running ? `running (pid ${proc.process.pid})` : 'not running') : 'not started'];
      }),
    ),
  );
  out.push('');
  out.push(table(['SERVICE', 'CLUSTER IP', 'PORTS', 'READY ENDPOINTS'], s.services.map((v) => [v.name, v.clusterIPs.join(',') || '-', v.ports.join(', '), `${v.endpoints.length}${v.endpoints.length ? `: ${v.endpoints.join(' ')}` : ''}`])));
  for (const p of s.problems) out.push(`  manifest problem: ${p}`);
  out.push('');
  const components = s.processes.filter((p) => p.process.component);
  out.push(
    table(
      ['COMPONENT', 'PID', 'STATE', '/readyz', '/healthz', 'ADMIN'],
      components.map(({ process: p, health: h, healthy }) => [p.name, String(p.pid), h.running ? (healthy ? 'ready' : 'not ready') : 'not running', code(h.readyz), code(h.healthz), p.admin ?? '-']),
    ),
  );
  out.push('');
  const bad = s.processes.filter((p) => !p.healthy).map((p) => p.process.name);
  out.push(bad.length === 0 && state.phase === 'running' ? `All ${components.length} components and ${pods.length} pods are ready.` : `Not ready: ${bad.join(', ') || `the lab is ${state.phase}`}.`);
  return `${out.join('\n')}\n`;
}

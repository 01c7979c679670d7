// `netplane lab` as users run it: wrong command lines, then up → status → a second up refused (the first one
// unharmed) → restart → down, after which no namespace, link, /etc/netns entry, process or state file is left.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabPlan } from '../../lab/plan.ts';
import { readState, type LabState } from '../../lab/state.ts';
import { leftovers, netplane, removeLab } from './run.ts';

describe('netplane lab: wrong command lines', () => {
  it.each([
    [['lab', 'up', '--nodes', '1'], 'netplane lab up: --nodes "1": must be a whole number from 2 to 9'],
    [['lab', 'up', '--nodes', '10'], 'netplane lab up: --nodes "10": must be a whole number from 2 to 9'],
    [['lab', 'up', '--nodse', '3'], 'netplane lab up: unknown flag --nodse (see netplane lab up --help)'],
    [['lab', 'up', '--manifests', '/nonexistent/dir'], 'netplane lab up: --manifests "/nonexistent/dir": must be a directory of manifests'],
    [['lab', 'start'], 'netplane lab: unknown command "start"; commands are up, status, restart, down (see netplane lab --help)'],
    [['lab', 'restart', '--node', 'node1'], 'netplane lab restart: give --node NAME and --component overlay|proxy|dns|ingress'],
    [['lab', 'restart', '--node', 'node1', '--component', 'kubelet'], 'netplane lab restart: --component "kubelet": must be one of overlay, proxy, dns, ingress'],
  ])('%j → exit 2 and one sentence', async (args, sentence) => {
    const r = await netplane(args);
    expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 2, stderr: `${sentence}\n`, stdout: '' });
  });

  it('status and down without a lab say so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'netplane-lab-none-'));
    try {
      const status = await netplane(['lab', 'status', '--state-dir', dir]);
      expect(status).toMatchObject({ code: 1, stderr: `netplane lab status: no lab is running (nothing recorded in ${dir})\n` });
      const down = await netplane(['lab', 'down', '--state-dir', dir]);
      expect(down).toMatchObject({ code: 0, stderr: `netplane lab down: no lab is running (nothing recorded in ${dir})\n` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('netplane lab up → status → up again → restart → down', () => {
  let stateDir: string;
  let extra: string;
  let plan: LabPlan | undefined;
  let first: LabState;
  const pids = new Set<number>();

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'netplane-lab-cli-'));
    extra = await mkdtemp(join(tmpdir(), 'netplane-lab-extra-'));
    await writeFile(
      join(extra, 'api.yaml'),
      [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'default' }, spec: { clusterIP: '10.96.0.200', ports: [{ name: 'http', port: 8080 }] } },
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: 'api-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'api' } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: 8080 }],
          endpoints: [{ addresses: ['10.244.2.12'], nodeName: 'node2', targetRef: { kind: 'Pod', namespace: 'default', name: 'web-22' } }],
        },
      ].map((o) => JSON.stringify(o)).join('\n---\n'),
    );
  });
  afterAll(async () => {
    await removeLab(stateDir, plan);
    await rm(stateDir, { recursive: true, force: true });
    await rm(extra, { recursive: true, force: true });
  });

  it('up builds two nodes and returns once everything is ready, printing the status', async () => {
    const r = await netplane(['lab', 'up', '--nodes', '2', '--manifests', extra, '--state-dir', stateDir]);
    plan = (await readState(stateDir).catch(() => undefined))?.plan;
    expect(r.stderr).toMatch(/ready in [\d.]+ s/);
    expect(r.code).toBe(0);
    first = await readState(stateDir);
    for (const p of first.processes) pids.add(p.pid);
    expect(first.phase).toBe('running');
    expect(first.processes.map((p) => p.name).sort()).toEqual(
      ['node1/dns', 'node1/ingress', 'node1/overlay', 'node1/proxy', 'node2/dns', 'node2/overlay', 'node2/proxy', 'pod/web-11', 'pod/web-12', 'pod/web-21', 'pod/web-22'],
    );
    expect(r.stdout).toContain('All 7 components and 4 pods are ready.');
  }, 90_000);

  it('status prints nodes, pods, Services (with the extra manifests) and every component ready', async () => {
    const r = await netplane(['lab', 'status', '--state-dir', stateDir]);
    expect(r.code).toBe(0);
    const p = plan!;
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/));
    expect(rows).toContainEqual(['node1', `np${p.id}-node1`, p.nodes[0]!.ip, '10.244.1.0/24', 'overlay proxy dns ingress']);
    expect(rows).toContainEqual(['node2', `np${p.id}-node2`, p.nodes[1]!.ip, '10.244.2.0/24', 'overlay proxy dns']);
    expect(rows).toContainEqual(['web-22', 'node2', '10.244.2.12', `np${p.id}-web-22`, `running (pid ${first.processes.find((q) => q.name === 'pod/web-22')!.pid})`]);
    expect(rows).toContainEqual(['default/api', '10.96.0.200', 'http 8080/TCP', '1: web-22']);
    expect(rows).toContainEqual(['default/web', '10.96.0.100', 'http 80/TCP', '4: web-11 web-12 web-21 web-22']);
    expect(rows).toContainEqual(['kube-system/kube-dns', '10.96.0.10', 'dns 53/UDP, dns-tcp 53/TCP', `2: 10.244.1.1 10.244.2.1`]);
    const components = rows.filter((row) => /^node\d\/\w+$/.test(row[0]!));
    expect(components.map((row) => `${row[0]} ${row[2]} ${row[3]} ${row[4]}`)).toEqual(
      ['node1/overlay', 'node1/proxy', 'node1/dns', 'node1/ingress', 'node2/overlay', 'node2/proxy', 'node2/dns'].map((n) => `${n} ready 200 200`),
    );
    const json = JSON.parse((await netplane(['lab', 'status', '--json', '--state-dir', stateDir])).stdout);
    expect(json.healthy).toBe(true);
  });

  it('a second up says a lab is running and leaves it alone', async () => {
    const r = await netplane(['lab', 'up', '--state-dir', stateDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^netplane lab up: a lab is already running \(2 nodes, up since .*\); see "netplane lab status", or run "netplane lab down" first\n$/);
    expect(await readState(stateDir)).toEqual(first);
    expect((await netplane(['lab', 'status', '--state-dir', stateDir])).code).toBe(0);
  });

  it('restart replaces one component, and status reports a killed one until then', async () => {
    const proxy = first.processes.find((p) => p.name === 'node2/proxy')!;
    process.kill(proxy.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const down = await netplane(['lab', 'status', '--state-dir', stateDir]);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/node2\/proxy\s+\d+\s+not running\s+\(ECONNREFUSED\)/);
    expect(down.stdout).toContain('Not ready: node2/proxy.');
    const r = await netplane(['lab', 'restart', '--node', 'node2', '--component', 'proxy', '--state-dir', stateDir]);
    expect(r.stdout).toMatch(/^node2\/proxy was not running; started as pid (\d+), ready in \d+ ms\n$/);
    const after = await readState(stateDir);
    const pid = after.processes.find((p) => p.name === 'node2/proxy')!.pid;
    pids.add(pid);
    expect(pid).not.toBe(proxy.pid);
    expect((await netplane(['lab', 'status', '--state-dir', stateDir])).code).toBe(0);
  }, 30_000);

  it('down removes every namespace, link, process and file it made', async () => {
    const r = await netplane(['lab', 'down', '--state-dir', stateDir]);
    expect(r).toMatchObject({ code: 0, stdout: `Lab removed: 7 namespaces, link ${plan!.hostLink}, 11 processes.\n` });
    expect(await leftovers(plan!, [...pids])).toEqual([]);
    await expect(stat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 30_000);
});

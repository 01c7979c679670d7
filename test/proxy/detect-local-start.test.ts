// What netplane proxy (the CLI, nftables mode, in a node namespace) says at start about local-traffic detection:
// with --detect-local-mode NodeCIDR and a Node without spec.podCIDRs, that it waits for them (naming the Node),
// again every sync period, not ready and with no rule, until the Node gets them and the rules appear; with
// ClusterCIDR and no --cluster-cidr, one warning that no traffic is treated as local (as kube-proxy logs).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { onLogLines, type LogRecord } from '../../lab/log-lines.ts';
import { NetnsLab } from '../../lab/netns.ts';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';
import { ProxyProcess, releaseSuite } from './process.ts';
import type { ProxyTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

/** node1 (with `podCIDRs` when given) and a Service web at 10.96.0.10 with `endpoints` (default one). */
function objects(podCIDRs?: string[], endpoints = ['10.244.1.11']): object[] {
  return [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, spec: podCIDRs ? { podCIDRs } : {}, status: { addresses: [{ type: 'InternalIP', address: '192.168.50.1' }] } },
    svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    eps('web', 4, endpoints.map((ip) => [ip, 'node1'] as [string, string])),
  ];
}

const waiting = /^waiting for Node "node1"'s spec\.podCIDRs \(--detect-local-mode NodeCIDR\): it has none yet; no rule is programmed until it has them$/;
const noLocal = /^--detect-local-mode ClusterCIDR without --cluster-cidr: traffic from pods cannot be told from other traffic, so none is treated as local/;

describe('netplane proxy at start: what it says about local-traffic detection (nftables, in a namespace)', () => {
  let lab: NetnsLab;
  let node: string;
  let dir: string;
  let proxy: ProxyProcess;
  let child: ChildProcess | undefined;

  const nft = async () => (await lab.exec(node, 'nft', ['list', 'ruleset'])).stdout;

  beforeAll(async () => {
    lab = NetnsLab.create({ id: `gap${randomBytes(3).toString('hex')}` });
    node = await lab.ns('node');
    await lab.veth({ ns: node, ifname: 'eth0', addrs: ['192.168.50.1/24'] }, { ns: await lab.ns('peer'), ifname: 'eth0', addrs: ['192.168.50.2/24'] });
    dir = await mkdtemp(join(tmpdir(), 'netplane-detect-local-start-'));
    // ProxyProcess needs only the lab and the node namespace of a topology.
    proxy = new ProxyProcess({ lab, node } as Pick<ProxyTopology, 'lab' | 'node'> as ProxyTopology, dir);
  }, 30_000);
  afterEach(async () => {
    await proxy.stop();
    child?.kill('SIGTERM');
    child = undefined;
  });
  afterAll(() => releaseSuite(proxy, lab, dir));

  it('NodeCIDR: says it waits for the Node\'s podCIDRs, again every sync period, not ready and no rule; rules once the Node has them', async () => {
    await writeManifests(dir, objects());
    const said = () => proxy.logs.filter((l) => typeof l.msg === 'string' && waiting.test(l.msg));
    await proxy.start({ mode: 'nftables', extra: ['--detect-local-mode', 'NodeCIDR', '--sync-period', '1s'] }, () => said().length > 0, 'the waiting line');
    expect(said()[0]).toMatchObject({ level: 40, waitedS: 0, giveUpInS: 300 });
    await waitFor('the line again a sync period later', () => said().length >= 3, 5000);
    expect(said()[2]).toMatchObject({ level: 40, waitedS: expect.any(Number), giveUpInS: expect.any(Number) });
    expect(said()[2]!.waitedS).toBeGreaterThanOrEqual(1);
    expect(proxy.syncs()).toBe(0);
    const admin = proxy.logs.find((l) => l.msg === 'netplane proxy starting')?.admin as string;
    const readyz = (await lab.exec(node, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${admin}/readyz`])).stdout;
    expect(readyz).toBe('503');
    expect(await nft()).not.toMatch(/netplane/);

    await writeManifests(dir, objects(['10.244.1.0/24']));
    await waitFor('the first sync', () => proxy.syncs() > 0, 10_000);
    const rules = await nft();
    expect(rules).toMatch(/10\.96\.0\.10/);
    // The Node's podCIDR is the local traffic.
    expect(rules).toMatch(/set pod-cidrs \{[^}]*elements = \{ 10\.244\.1\.0\/24 \}/s);
    expect(proxy.logs.find((l) => l.msg === 'no longer waiting; programming rules')).toMatchObject({ waited: expect.stringMatching(waiting) });
    const lines = said().length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(said()).toHaveLength(lines);
  }, 40_000);

  const rows: Array<[what: string, flags: string[], warnings: number]> = [
    ['ClusterCIDR (the default) without --cluster-cidr: one warning', [], 1],
    ['ClusterCIDR with --cluster-cidr: none', ['--cluster-cidr', '10.244.0.0/16'], 0],
    ['NodeCIDR without --cluster-cidr: none (the Node says what is local)', ['--detect-local-mode', 'NodeCIDR'], 0],
  ];
  for (const [what, flags, warnings] of rows) {
    it(what, async () => {
      await writeManifests(dir, objects(['10.244.1.0/24']));
      const logs: LogRecord[] = [];
      const p = lab.spawn(node, process.execPath, [bin, 'proxy', '--manifests', dir, '--node-name', 'node1', '--mode', 'nftables', '--admin', '127.0.0.1:0', '--min-sync-period', '50ms', ...flags]);
      child = p;
      onLogLines(p.stdout!, (r) => logs.push(r));
      const synced = () => logs.filter((l) => l.msg === 'rules synced').length;
      await waitFor('the first sync', () => synced() > 0 || p.exitCode !== null, 15_000);
      expect(p.exitCode).toBeNull();
      // Another sync: the warning is a start-up one, not repeated.
      await writeManifests(dir, objects(['10.244.1.0/24'], ['10.244.1.11', '10.244.1.12']));
      await waitFor('the second sync', () => synced() > 1, 10_000);
      const warned = logs.filter((l) => typeof l.msg === 'string' && noLocal.test(l.msg));
      expect(warned).toHaveLength(warnings);
      if (warnings) expect(warned[0]).toMatchObject({ level: 40 });
    }, 40_000);
  }
});

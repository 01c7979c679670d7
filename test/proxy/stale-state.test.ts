// State that outlives a change in the kernel, tested with netplane proxy as users run it (the CLI in the node's
// network namespace, from a manifest directory): UDP conntrack entries that would keep a client on an endpoint
// that is gone.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onLogLines } from '../../lab/log-lines.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const echo = fileURLToPath(new URL('../helpers/echo.ts', import.meta.url));
const answer = (rs: ProbeResult[]) => (rs[0]?.ok ? rs[0].name : rs[0]?.error);

/** What the manifests hold: the endpoint (pod number, port) of Service `dns`, and whether Service `late` exists. */
interface Cluster {
  dns: [pod: number, port: number];
  late: boolean;
}

function manifests(t: ProxyTopology, c: Cluster): object[] {
  const meta = (name: string, labels?: object) => ({ name, namespace: 'default', ...(labels ? { labels } : {}) });
  const service = (name: string, clusterIP: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: meta(name), spec: { clusterIP, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } });
  const slice = (name: string, pod: number, port: number) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta(`${name}-1`, { 'kubernetes.io/service-name': name }),
    addressType: 'IPv4',
    endpoints: [{ addresses: [t.pods[pod - 1]!.ip4], nodeName: 'node1', conditions: { ready: true } }],
    ports: [{ name: 'dns', port, protocol: 'UDP' }],
  });
  return [
    service('dns', '10.96.0.14'),
    slice('dns', ...c.dns),
    ...(c.late ? [service('late', '10.96.0.20'), slice('late', 1, 8080)] : []),
  ];
}

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`netplane proxy --mode ${mode}: stale UDP conntrack entries`, () => {
    let t: ProxyTopology;
    let dir: string;
    let proxy: ChildProcess | undefined;
    let logs: Array<Record<string, unknown>> = [];
    const syncs = () => logs.filter((l) => l.msg === 'rules synced').length;
    const write = (c: Cluster) => writeFile(join(dir, 'cluster.yaml'), manifests(t, c).map((o) => JSON.stringify(o)).join('\n---\n'));

    async function start(): Promise<void> {
      logs = [];
      const p = t.lab.spawn(t.node, process.execPath, [bin, 'proxy', '--manifests', dir, '--node-name', 'node1', '--mode', mode, '--cluster-cidr', '10.244.0.0/16',
        '--admin', '127.0.0.1:0', '--min-sync-period', '50ms', '--conntrack-max-per-core', '0', '--conntrack-min', '0']);
      onLogLines(p.stdout!, (r) => logs.push(r));
      proxy = p;
      await waitFor('the first sync', () => syncs() > 0 || p.exitCode !== null, 15_000);
      expect(p.exitCode).toBeNull();
    }
    async function stop(): Promise<void> {
      const p = proxy!;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
    async function change(c: Cluster): Promise<void> {
      const n = syncs();
      await write(c);
      await waitFor('the resync', () => syncs() > n, 5000);
    }
    /** A client with a fixed source port that keeps sending until `name` answers (or gives up after a while). */
    const keepSending = (sourcePort: number, host: string, name: string) =>
      waitFor(`${name} to answer ${host} from port ${sourcePort}`, async () => answer(await t.probe(t.pods[1]!.ns, 'udp', host, 53, 1, ['--source-port', String(sourcePort)])) === name, 8000, 100);

    beforeAll(async () => {
      t = await buildTopology(3, [8080]);
      // A second server in pod1 on another port, with a name of its own, to tell an endpoint's ports apart.
      const other = t.lab.spawn(t.pods[0]!.ns, process.execPath, [echo, 'pod1-8081', '8081']);
      await new Promise((r) => other.stdout!.once('data', r));
      dir = await mkdtemp(join(tmpdir(), `netplane-stale-${mode}-`));
      await write({ dns: [3, 8080], late: false });
      await start();
    }, 60_000);
    afterAll(async () => {
      proxy?.kill('SIGKILL');
      await t?.lab.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('after a restart, a flow to an endpoint removed meanwhile moves to a live one', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.14', 53, 1, ['--source-port', '40500']))).toBe('pod3');
      await stop();
      await write({ dns: [1, 8080], late: false });
      await start();
      await keepSending(40500, '10.96.0.14', 'pod1');
    });

    it('a flow that began before its Service existed reaches the endpoint once the Service is there', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.20', 53, 1, ['--source-port', '40501']))).toBe('timeout');
      await change({ dns: [1, 8080], late: true });
      await keepSending(40501, '10.96.0.20', 'pod1');
    });

    it('a flow moves when its endpoint keeps its address but changes its port', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.14', 53, 1, ['--source-port', '40502']))).toBe('pod1');
      await change({ dns: [1, 8081], late: true });
      await keepSending(40502, '10.96.0.14', 'pod1-8081');
    });
  });
}

// State that outlives a change in the kernel, tested with netplane proxy as users run it (the CLI in the node's
// network namespace, from a manifest directory): UDP conntrack entries that would keep a client on an endpoint
// that is gone, and the rules of the other kernel mode after a switch of --mode.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc, writeManifests } from './manifests.ts';
import { ProxyProcess, type ProxyFlags } from './process.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from './topology.ts';

const echo = fileURLToPath(new URL('../helpers/echo.ts', import.meta.url));
const answer = (rs: ProbeResult[]) => (rs[0]?.ok ? rs[0].name : rs[0]?.error);

/** What the manifests hold: the endpoint (pod number, port) of Service `dns`, whether Service `late` exists, and TCP Service `gone`. */
interface Cluster {
  dns: [pod: number, port: number];
  late: boolean;
  gone?: boolean;
}

function manifests(t: ProxyTopology, c: Cluster): object[] {
  const service = (name: string, clusterIP: string, protocol = 'UDP') => svc(name, { clusterIP, ports: [{ name: 'dns', port: 53, protocol }] });
  const slice = (name: string, pod: number, port: number, protocol = 'UDP') => eps(name, 4, [[t.pods[pod - 1]!.ip4, 'node1']], [{ name: 'dns', port, protocol }]);
  return [
    service('dns', '10.96.0.14'),
    slice('dns', ...c.dns),
    ...(c.late ? [service('late', '10.96.0.20'), slice('late', 1, 8080)] : []),
    ...(c.gone ? [service('gone', '10.96.0.15', 'TCP'), slice('gone', 2, 8080, 'TCP')] : []),
  ];
}

type KernelMode = ProxyFlags['mode'];

/** Runs netplane proxy in the node namespace of `t` on the manifests in `dir`, one process at a time. */
function proxyRunner(t: ProxyTopology, dir: string) {
  const proxy = new ProxyProcess(t, dir);
  const write = (c: Cluster) => writeManifests(dir, manifests(t, c));
  return {
    write,
    /** Starts the proxy and waits for its first sync. */
    start: (mode: KernelMode) => proxy.start({ mode, clusterCIDR: '10.244.0.0/16', extra: ['--conntrack-max-per-core', '0', '--conntrack-min', '0'] }),
    /** Stops it (SIGTERM); its rules stay. */
    stop: () => proxy.stop(),
    /** Writes new manifests and waits for the sync that applies them. */
    async change(c: Cluster): Promise<void> {
      const n = proxy.syncs();
      await write(c);
      await waitFor('the resync', () => proxy.syncs() > n, 5000);
    },
    kill: () => proxy.kill(),
  };
}

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`netplane proxy --mode ${mode}: stale UDP conntrack entries`, () => {
    let t: ProxyTopology;
    let dir: string;
    let run: ReturnType<typeof proxyRunner>;
    /** A client with a fixed source port that keeps sending until `name` answers (or gives up after a while). */
    const keepSending = (sourcePort: number, host: string, name: string) =>
      waitFor(`${name} to answer ${host} from port ${sourcePort}`, async () => answer(await t.probe(t.pods[1]!.ns, 'udp', host, 53, 1, ['--source-port', String(sourcePort)])) === name, 8000, 100);

    beforeAll(async () => {
      t = await buildTopology(3, [8080]);
      // A second server in pod1 on another port, with a name of its own, to tell an endpoint's ports apart.
      const other = t.lab.spawn(t.pods[0]!.ns, process.execPath, [echo, 'pod1-8081', '8081']);
      await new Promise((r) => other.stdout!.once('data', r));
      dir = await mkdtemp(join(tmpdir(), `netplane-stale-${mode}-`));
      run = proxyRunner(t, dir);
      await run.write({ dns: [3, 8080], late: false });
      await run.start(mode);
    }, 60_000);
    afterAll(async () => {
      run?.kill();
      await t?.lab.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('after a restart, a flow to an endpoint removed meanwhile moves to a live one', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.14', 53, 1, ['--source-port', '40500']))).toBe('pod3');
      await run.stop();
      await run.write({ dns: [1, 8080], late: false });
      await run.start(mode);
      await keepSending(40500, '10.96.0.14', 'pod1');
    });

    it('a flow that began before its Service existed reaches the endpoint once the Service is there', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.20', 53, 1, ['--source-port', '40501']))).toBe('timeout');
      await run.change({ dns: [1, 8080], late: true });
      await keepSending(40501, '10.96.0.20', 'pod1');
    });

    it('a flow moves when its endpoint keeps its address but changes its port', async () => {
      expect(answer(await t.probe(t.pods[1]!.ns, 'udp', '10.96.0.14', 53, 1, ['--source-port', '40502']))).toBe('pod1');
      await run.change({ dns: [1, 8081], late: true });
      await keepSending(40502, '10.96.0.14', 'pod1-8081');
    });
  });
}

describe('netplane proxy: switching --mode removes the other mode\'s rules once the new mode\'s are in place', () => {
  let t: ProxyTopology;
  let dir: string;
  let run: ReturnType<typeof proxyRunner>;
  const iptables = async () => (await t.lab.exec(t.node, 'iptables-save', [])).stdout + (await t.lab.exec(t.node, 'ip6tables-save', [])).stdout;
  const nftTables = async () => (await t.lab.exec(t.node, 'nft', ['list', 'tables'])).stdout;
  const reach = async () => answer(await t.probe(t.pods[0]!.ns, 'tcp', '10.96.0.15', 53));

  beforeAll(async () => {
    t = await buildTopology(2, [8080]);
    dir = await mkdtemp(join(tmpdir(), 'netplane-switch-'));
    run = proxyRunner(t, dir);
    // Someone else's objects of both kinds, which must stay.
    await t.lab.exec(t.node, 'nft', ['add', 'table', 'inet', 'someone-else']);
    await t.lab.exec(t.node, 'iptables', ['-t', 'nat', '-N', 'SOMEONE-ELSE']);
  }, 60_000);
  afterAll(async () => {
    run?.kill();
    await t?.lab.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const switches: Array<[from: KernelMode, to: KernelMode, leftover: () => Promise<boolean>]> = [
    ['iptables', 'nftables', async () => /NETPLANE/.test(await iptables())],
    ['nftables', 'iptables', async () => /netplane/.test(await nftTables())],
  ];
  for (const [from, to, leftover] of switches) {
    it(`${from} to ${to}: a Service deleted afterwards is gone, and others' tables and chains stay`, async () => {
      await run.write({ dns: [1, 8080], late: false, gone: true });
      await run.start(from);
      expect(await reach()).toBe('pod2');
      await run.stop();
      expect(await leftover()).toBe(true);
      await run.start(to);
      await waitFor(`the ${from} rules to be removed`, async () => !(await leftover()), 5000);
      expect(await reach()).toBe('pod2');
      await run.change({ dns: [1, 8080], late: false });
      expect(await reach()).not.toBe('pod2');
      expect(await nftTables()).toMatch(/someone-else/);
      expect(await iptables()).toMatch(/SOMEONE-ELSE/);
      await run.stop();
    });
  }
});

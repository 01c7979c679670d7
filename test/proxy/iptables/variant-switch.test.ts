// A switch of iptables variant (--iptables-variant, or `auto` deciding otherwise after a restart) with netplane proxy
// as users run it: the variant the last run programmed is cleaned once the new one's rules are in place, as a switch
// of --mode is. Both variants' nat tables see every packet and the first DNAT wins, so rules left in the other one
// kept deleted Services reachable and sent traffic to endpoints that were gone.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../../lab/netns.ts';
import { IptablesBackend } from '../../../proxy/iptables/backend.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { cleanOtherVariants } from '../../../proxy/iptables/variant.ts';
import { CommandError, type CommandRunner } from '../../../runtime/exec.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';
import { eps, svc, writeManifests } from '../manifests.ts';
import { ProxyProcess, releaseSuite } from '../process.ts';
import { buildTopology, type ProbeResult, type ProxyTopology } from '../topology.ts';

const port = 64100;

describe('cleanOtherVariants', () => {
  /** A host with both variants, each holding a netplane chain, whose legacy restore fails; records the commands run. */
  const host = () => {
    const ran: string[] = [];
    const runner: CommandRunner = {
      async run(command, args) {
        ran.push(`${command} ${args.join(' ')}`);
        if (command.includes('legacy-restore')) throw new CommandError(command, 1, 'refused');
        return { stdout: command.endsWith('-save') && args[0] !== '--version' ? '*nat\n:NETPLANE-SERVICES - [0:0]\nCOMMIT\n' : '', stderr: '' };
      },
    };
    return { ran, runner };
  };

  it.each([
    ['nft', { cleaned: [], failed: ['legacy'] }],
    ['legacy', { cleaned: ['nft'], failed: [] }],
    ['default', { cleaned: [], failed: [] }],
  ] as const)('with %s in use: %j, a failure logged and not thrown', async (chosen, want) => {
    const { ran, runner } = host();
    const { log, records } = captureLogger();
    expect(await cleanOtherVariants(chosen, runner, log)).toEqual(want);
    // The variant in use is never touched; an installed other one is restored (cleaned).
    expect(ran.filter((c) => c.includes(`-${chosen}-`) && !c.endsWith('--version'))).toEqual([]);
    for (const v of [...want.cleaned, ...want.failed]) expect(ran).toContain(`iptables-${v}-restore -w 5 --noflush`);
    expect(records.filter((r) => r.level === 40)).toHaveLength(want.failed.length);
  });
});
const names = (rs: ProbeResult[]) => new Set(rs.map((r) => (r.ok ? r.name : r.error)));

describe('a clean-up of a variant the host does not use', () => {
  let lab: NetnsLab;
  let node: string;
  beforeAll(async () => {
    lab = NetnsLab.create({ id: 's22acl' });
    node = await lab.ns('node');
  });
  afterAll(() => lab?.destroy());

  // `iptables-legacy-save -t nat` makes the legacy nat table (and registers its hooks) where there was none; after
  // that every iptables-nft command warns "iptables-legacy tables present" (found by an audit: each start in
  // nftables mode, --cleanup and now each start in iptables mode cleaned legacy so).
  it('makes no table in it, and still removes netplane\'s chains where they are', async () => {
    const runner: CommandRunner = { run: (command, args, input) => lab.exec(node, command, args, input) };
    const tables = async () => (await lab.exec(node, 'cat', ['/proc/net/ip_tables_names', '/proc/net/ip6_tables_names'])).stdout.trim();
    await new IptablesBackend(runner, { log: silentLogger(), variant: 'legacy' }).cleanup();
    expect(await tables()).toBe('');
    await runner.run('iptables-legacy', ['-t', 'nat', '-N', 'NETPLANE-SERVICES']);
    await runner.run('iptables-legacy', ['-t', 'nat', '-A', 'OUTPUT', '-j', 'NETPLANE-SERVICES']);
    await new IptablesBackend(runner, { log: silentLogger(), variant: 'legacy' }).cleanup();
    expect((await runner.run('iptables-legacy-save', [])).stdout).not.toContain('NETPLANE');
    expect(await tables()).toBe('nat');
  });
});

describe('netplane proxy --mode iptables: switching --iptables-variant removes the other variant\'s rules', () => {
  let t: ProxyTopology;
  let dir: string;
  let proxy: ProxyProcess;
  const save = async (variant: string) => (await t.lab.exec(t.node, `iptables-${variant}-save`, [])).stdout + (await t.lab.exec(t.node, `ip6tables-${variant}-save`, [])).stdout;
  /** Service `web` on pods `web`, and Service `gone` on pod 2 while `gone` is set. */
  const write = (web: number[], gone: boolean) =>
    writeManifests(dir, [
      svc('web', { clusterIP: '10.96.0.14', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
      eps('web', 4, web.map((i) => [t.pods[i - 1]!.ip4, 'node1']), [{ name: 'http', port, protocol: 'TCP' }]),
      ...(gone ? [svc('gone', { clusterIP: '10.96.0.15', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }), eps('gone', 4, [[t.pods[1]!.ip4, 'node1']], [{ name: 'http', port, protocol: 'TCP' }])] : []),
    ]);
  const start = (variant: string) => proxy.start({ mode: 'iptables', clusterCIDR: '10.244.0.0/16', extra: ['--iptables-variant', variant, '--healthz-bind-address', `127.0.0.1:${port + 1}`, '--conntrack-max-per-core', '0', '--conntrack-min', '0'] });

  beforeAll(async () => {
    t = await buildTopology(3, [port], 's22avs');
    dir = await mkdtemp(join(tmpdir(), 'netplane-variant-switch-'));
    proxy = new ProxyProcess(t, dir);
  }, 60_000);
  afterAll(() => releaseSuite(proxy, t?.lab, dir));

  for (const [from, to] of [['legacy', 'nft'], ['nft', 'legacy']] as const) {
    it(`${from} to ${to}: the ${from} rules go; a deleted Service and removed endpoints are no longer reached`, async () => {
      await write([1, 2, 3], true);
      await start(from);
      expect(names(await t.probe(t.client, 'tcp', '10.96.0.15', 80))).toEqual(new Set(['pod2']));
      await proxy.stop();
      expect(await save(from)).toMatch(/NETPLANE-SERVICES/);

      await start(to);
      await waitFor(`the ${from} rules to be removed`, async () => !/NETPLANE/.test(await save(from)), 5000);
      const n = proxy.syncs();
      await write([1], false);
      await waitFor('the resync', () => proxy.syncs() > n, 5000);
      expect(names(await t.probe(t.client, 'tcp', '10.96.0.15', 80))).not.toContain('pod2');
      expect(names(await t.probe(t.client, 'tcp', '10.96.0.14', 80, 12))).toEqual(new Set(['pod1']));
      await proxy.stop();
    }, 60_000);
  }
});

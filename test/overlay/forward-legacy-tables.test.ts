// The forward-accept rules on a host that does not use iptables-legacy: reading it must not create its tables.
// `iptables-legacy-save -t filter` makes the legacy filter table (and registers its hooks) where there was none,
// after which every iptables-nft command on the host warns "iptables-legacy tables present" (found by an audit: the
// overlay read each variant so on every sync, as the proxy's clean-up did before c4fbb41). In fresh namespaces,
// `/proc/net/ip_tables_names` and `ip6_tables_names` list the legacy tables that exist.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../lab/netns.ts';
import { ForwardAccept, forwardChain } from '../../overlay/forward.ts';
import type { CommandRunner } from '../../runtime/exec.ts';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const cidrs = ['10.244.0.0/16', 'fd00:244::/32'];

/** The legacy tables of a namespace, IPv4 then IPv6, as the kernel lists them. */
async function legacyTables(lab: NetnsLab, ns: string): Promise<{ v4: string; v6: string }> {
  const read = async (file: string) => (await lab.exec(ns, 'cat', [file])).stdout.trim();
  return { v4: await read('/proc/net/ip_tables_names'), v6: await read('/proc/net/ip6_tables_names') };
}

describe('ForwardAccept on a host without legacy tables', () => {
  let lab: NetnsLab;
  let ns: string;
  let runner: CommandRunner;

  beforeAll(async () => {
    lab = NetnsLab.create({ id: 's22eleg' });
    ns = await lab.ns('node');
    runner = { run: (command, args, input) => lab.exec(ns, command, args, input) };
  }, 30_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('a sync, a forced one and a clean-up make no legacy table, and no nftables table either', async () => {
    const f = new ForwardAccept(runner);
    expect(await f.sync(cidrs)).toBe(false);
    expect(await f.sync(cidrs, true)).toBe(false);
    expect(await f.cleanup()).toBe(0);
    expect(await legacyTables(lab, ns)).toEqual({ v4: '', v6: '' });
    expect((await lab.exec(ns, 'nft', ['list', 'tables'])).stdout.trim()).toBe('');
  });

  it('a legacy FORWARD that drops still gets the accepts, in its family only; the clean-up removes them', async () => {
    await lab.exec(ns, 'iptables-legacy', ['-P', 'FORWARD', 'DROP']);
    const f = new ForwardAccept(runner);
    expect(await f.sync(cidrs)).toBe(true);
    const saved = (await lab.exec(ns, 'iptables-legacy-save', [])).stdout;
    expect(saved).toContain(`-A FORWARD -m comment --comment "netplane overlay: forward pod traffic" -j ${forwardChain}`);
    expect(saved).toContain(`-A ${forwardChain} -s 10.244.0.0/16`);
    expect(await legacyTables(lab, ns)).toEqual({ v4: 'filter', v6: '' });
    expect(await f.cleanup()).toBe(1);
    expect((await lab.exec(ns, 'iptables-legacy-save', [])).stdout).not.toContain(forwardChain);
    expect(await legacyTables(lab, ns)).toEqual({ v4: 'filter', v6: '' });
  });
});

describe('netplane overlay on nodes without legacy tables', () => {
  let t: OverlayTopology;

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, true, 4, 's22elga');
    await t.writeNodes();
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('pods reach each other, and neither the agent (start, resyncs) nor --cleanup leaves a legacy table', async () => {
    await Promise.all(t.nodes.map((n) => t.startAgent(n, ['--resync-period', '1s'])));
    const [p1, p2] = [t.nodes[0]!.pods[0]!, t.nodes[1]!.pods[0]!];
    expect(await t.probe(p1.ns, 'tcp', p2.ip)).toEqual([expect.objectContaining({ ok: true, name: p2.name })]);
    expect(await t.probe(p2.ns, 'tcp', p1.ip6!)).toEqual([expect.objectContaining({ ok: true, name: p1.name })]);
    // A resync or two (each a forced forward-accept sync).
    await new Promise((r) => setTimeout(r, 2500));
    for (const n of t.nodes) expect(await legacyTables(t.lab, n.ns)).toEqual({ v4: '', v6: '' });
    await t.stopAgent(t.nodes[0]!);
    await t.lab.exec(t.nodes[0]!.ns, process.execPath, [bin, 'overlay', '--cleanup']);
    expect(await legacyTables(t.lab, t.nodes[0]!.ns)).toEqual({ v4: '', v6: '' });
  }, 60_000);
});

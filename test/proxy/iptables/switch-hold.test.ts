// Never flush what is working, across a switch: restarted with another iptables variant (or another kernel mode) on
// a manifest broken since the start, the proxy must hold its first sync as it does when the last run's rules are in
// its own variant or table. The first sync's clean-ups (cleanOtherVariants, the other mode's clean-up) would
// otherwise remove the last run's rules for the Services the broken file holds, which nothing then programs.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { eps, svc } from '../manifests.ts';
import { type ProxyFlags, ProxyProcess, releaseSuite } from '../process.ts';
import { buildTopology, type ProxyTopology } from '../topology.ts';

const port = 64900;
const ports = (p: number) => [{ name: 'http', port: p, targetPort: port, protocol: 'TCP' }];
const file = (objects: object[]) => objects.map((o) => JSON.stringify(o)).join('\n---\n');

/** The last run, then the run after the switch. */
const switches: Array<[string, ProxyFlags, ProxyFlags]> = [
  ['iptables-legacy to iptables-nft', { mode: 'iptables', extra: ['--iptables-variant', 'legacy'] }, { mode: 'iptables', extra: ['--iptables-variant', 'nft'] }],
  ['iptables-nft to iptables-legacy', { mode: 'iptables', extra: ['--iptables-variant', 'nft'] }, { mode: 'iptables', extra: ['--iptables-variant', 'legacy'] }],
  ['nftables to iptables', { mode: 'nftables' }, { mode: 'iptables', extra: ['--iptables-variant', 'nft'] }],
  ['iptables-legacy to nftables', { mode: 'iptables', extra: ['--iptables-variant', 'legacy'] }, { mode: 'nftables' }],
];

describe('netplane proxy restarted with another iptables variant or kernel mode on a manifest broken since the start', () => {
  let t: ProxyTopology;
  let dir: string;
  let proxy: ProxyProcess;
  /** Service `name` at `ip`:80 on pod `pod` (1-based), in its own file; `svcPort` 99999 makes the file invalid. */
  const write = (name: string, ip: string, pod: number, svcPort = 80) =>
    writeFile(join(dir, `${name}.yaml`), file([svc(name, { clusterIP: ip, ports: ports(svcPort) }), eps(name, 4, [[t.pods[pod - 1]!.ip4, 'node1']], [{ name: 'http', port, protocol: 'TCP' }])]));
  const answers = async (ip: string) => {
    const [r] = await t.probe(t.client, 'tcp', ip, 80, 1);
    return r?.ok ? r.name : r?.error;
  };
  const start = (flags: ProxyFlags, ready?: () => boolean) =>
    proxy.start({ ...flags, clusterCIDR: '10.244.0.0/16', extra: [...(flags.extra ?? []), '--healthz-bind-address', `127.0.0.1:${port + 1}`, '--conntrack-max-per-core', '0', '--conntrack-min', '0'] }, ready, 'the start');
  const held = () => proxy.logs.some((l) => String(l.msg).startsWith('manifests never read: a.yaml document 1 ('));
  const cleanup = async () => {
    const p = t.lab.spawn(t.node, process.execPath, [new URL('../../../bin/netplane.ts', import.meta.url).pathname, 'proxy', '--cleanup']);
    expect(await new Promise((r) => p.once('exit', r))).toBe(0);
  };

  beforeAll(async () => {
    t = await buildTopology(2, [port], 's23dsh');
    dir = await mkdtemp(join(tmpdir(), 'netplane-switch-hold-'));
    proxy = new ProxyProcess(t, dir);
  }, 60_000);
  afterAll(() => releaseSuite(proxy, t?.lab, dir));

  for (const [name, from, to] of switches) {
    it(`${name}: the last run's rules keep serving until the file is fixed, then the new rules take over`, { timeout: 60_000 }, async () => {
      await cleanup();
      await write('a', '10.96.0.22', 1);
      await write('b', '10.96.0.23', 2);
      await start(from);
      expect(await answers('10.96.0.22')).toBe('pod1');
      await proxy.stop();

      await write('a', '10.96.0.22', 1, 99999);
      await start(to, held);
      // Before: not held; the first sync programmed b only and the clean-up removed a's rules (a timed out).
      expect(await answers('10.96.0.22')).toBe('pod1');
      expect(await answers('10.96.0.23')).toBe('pod2');
      expect(proxy.syncs()).toBe(0);

      await write('a', '10.96.0.22', 1);
      await waitFor('the first sync once the file is fixed', () => proxy.syncs() > 0, 10_000);
      expect(await answers('10.96.0.22')).toBe('pod1');
      expect(await answers('10.96.0.23')).toBe('pod2');
      await proxy.stop();
    });
  }
});

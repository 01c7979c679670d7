// Never flush what is working, across a restart: a manifest broken while the proxy was down has no last good
// version in the new process's view, so its first sync would delete the Services it held. netplane proxy as users
// run it (the CLI in the node's namespace, from a manifest directory), killed, restarted on a broken file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { eps, svc } from './manifests.ts';
import { ProxyProcess, releaseSuite } from './process.ts';
import { buildTopology, type ProxyTopology } from './topology.ts';

const port = (p: number) => [{ name: 'http', port: p, targetPort: 8080, protocol: 'TCP' }];
const file = (objects: object[]) => objects.map((o) => JSON.stringify(o)).join('\n---\n');

for (const mode of ['nftables', 'iptables'] as const) {
  describe(`netplane proxy --mode ${mode} restarted on a manifest that is broken`, () => {
    let t: ProxyTopology;
    let dir: string;
    let proxy: ProxyProcess;
    /** Service `name` at `ip`:80 on pod `pod` (1-based), in its own file; `svcPort` 99999 makes the file invalid. */
    const write = (name: string, ip: string, pod: number, svcPort = 80) =>
      writeFile(join(dir, `${name}.yaml`), file([svc(name, { clusterIP: ip, ports: port(svcPort) }), eps(name, 4, [[t.pods[pod - 1]!.ip4, 'node1']])]));
    const answers = async (ip: string) => {
      const [r] = await t.probe(t.client, 'tcp', ip, 80, 1);
      return r?.ok ? r.name : r?.error;
    };
    const start = (ready?: () => boolean) => proxy.start({ mode, clusterCIDR: '10.244.0.0/16', extra: ['--conntrack-max-per-core', '0', '--conntrack-min', '0'] }, ready, 'the start');
    const killed = async () => {
      const p = proxy.child;
      const exited = p && p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined;
      proxy.kill();
      await exited;
    };
    const holdLine = (l: { msg?: unknown }) => String(l.msg).startsWith('manifests never read: a.yaml document 1 (');
    const held = () => proxy.logs.some(holdLine);

    beforeAll(async () => {
      t = await buildTopology(2, [8080]);
      dir = await mkdtemp(join(tmpdir(), `netplane-unread-${mode}-`));
      proxy = new ProxyProcess(t, dir);
    }, 60_000);
    afterAll(() => releaseSuite(proxy, t?.lab, dir));

    it('keeps the rules of the last run until the file is fixed, then programs everything', { timeout: 60_000 }, async () => {
      await write('a', '10.96.0.22', 1);
      await write('b', '10.96.0.23', 2);
      await start();
      expect(await answers('10.96.0.22')).toBe('pod1');
      expect(await answers('10.96.0.23')).toBe('pod2');

      await killed();
      await write('a', '10.96.0.22', 1, 99999);
      await start(held);
      expect(proxy.logs.find(holdLine)?.msg).toMatch(/spec\.ports\[0\]\.port: must be 1 to 65535\); the rules of the last run stay as they are until these are fixed or removed$/);
      // The file's Service still answers from the rules of the last run, and nothing was synced.
      expect(await answers('10.96.0.22')).toBe('pod1');
      expect(await answers('10.96.0.23')).toBe('pod2');
      // A change elsewhere waits with the rest.
      await write('c', '10.96.0.24', 2);
      await new Promise((r) => setTimeout(r, 500));
      expect(proxy.syncs()).toBe(0);

      await write('a', '10.96.0.22', 1);
      await waitFor('the first sync once the file is fixed', () => proxy.syncs() > 0, 10_000);
      expect(await answers('10.96.0.22')).toBe('pod1');
      expect(await answers('10.96.0.24')).toBe('pod2');
    });

    it('a broken file removed, not fixed, ends the hold at once: its Services are gone, as the directory says', { timeout: 60_000 }, async () => {
      await killed();
      await write('a', '10.96.0.22', 1, 99999);
      await start(held);
      expect(await answers('10.96.0.22')).toBe('pod1');
      await rm(join(dir, 'a.yaml'));
      // The sync period is 30 s: the sync comes from the source saying the file is gone.
      await waitFor('the sync once the file is removed', () => proxy.syncs() > 0, 10_000);
      expect(await answers('10.96.0.22')).not.toBe('pod1');
      expect(await answers('10.96.0.23')).toBe('pod2');
    });

    it('rules of the last run removed during the hold (--cleanup) end it: what the view holds is programmed', { timeout: 60_000 }, async () => {
      await killed();
      await write('a', '10.96.0.22', 1, 99999);
      await proxy.start({ mode, clusterCIDR: '10.244.0.0/16', extra: ['--conntrack-max-per-core', '0', '--conntrack-min', '0', '--sync-period', '2s'] }, held, 'the start');
      expect(await answers('10.96.0.23')).toBe('pod2');
      const cleanup = t.lab.spawn(t.node, process.execPath, [new URL('../../bin/netplane.ts', import.meta.url).pathname, 'proxy', '--cleanup', '--mode', mode]);
      expect(await new Promise((r) => cleanup.once('exit', r))).toBe(0);
      // Held, the node would stay without rules until the file is fixed; the next held attempt sees them gone.
      await waitFor('the sync once the rules of the last run are gone', () => proxy.syncs() > 0, 10_000);
      expect(proxy.logs.some((l) => String(l.msg).startsWith('the rules of the last run are gone from the kernel'))).toBe(true);
      expect(await answers('10.96.0.23')).toBe('pod2');
      await rm(join(dir, 'a.yaml'));
    });

    it('holds nothing when no earlier run left rules: a fresh node programs what it can read', { timeout: 60_000 }, async () => {
      await killed();
      const cleanup = t.lab.spawn(t.node, process.execPath, [new URL('../../bin/netplane.ts', import.meta.url).pathname, 'proxy', '--cleanup', '--mode', mode]);
      expect(await new Promise((r) => cleanup.once('exit', r))).toBe(0);
      expect(await answers('10.96.0.23')).not.toBe('pod2');
      await write('a', '10.96.0.22', 1, 99999);
      await start();
      expect(held()).toBe(false);
      expect(await answers('10.96.0.23')).toBe('pod2');
    });
  });
}

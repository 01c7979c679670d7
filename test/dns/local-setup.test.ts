// netplane dns's node-local networking in the kernel, in a network namespace of the test's own: --local-interface
// puts the listen address on a dummy interface before listening (a bridge without ports on a kernel without dummy
// devices, as this test's machines are), --notrack keeps its DNS out of conntrack (checked with conntrack itself
// against a port without the rules), both removed at exit, kept with --keep-local-setup; an interface of that name
// of another kind is never taken over.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { HostRunner } from '../../runtime/exec.ts';
import { parseText, repoRoot } from '../deploy/load.ts';
import { service } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';

const host = new HostRunner();
const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const ns = `np-dnsloc-${process.pid}`;
const local = '169.254.20.10';
let dir: string;

const inNs = (cmd: string, args: string[], input?: string) => host.run('ip', ['netns', 'exec', ns, cmd, ...args], input);

interface Running {
  proc: ChildProcess;
  logs(): string;
  exited: Promise<number | null>;
}

const running: Running[] = [];

/** netplane dns in the namespace, listening on the node-local address (unless `args` say where). */
function start(extra: string[], args = ['dns', '--listen', `${local}:53`]): Running {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, ...args, '--manifests', dir, '--admin', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--lameduck', '0s', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const r = { proc, logs: () => out, exited: new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code))) };
  running.push(r);
  return r;
}

async function stop(r: Running): Promise<number | null> {
  if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  return r.exited;
}

const linkOf = async (name: string) => (await inNs('ip', ['-d', '-j', 'link', 'show', name]).then((o) => JSON.parse(o.stdout) as Array<{ flags: string[]; ifalias?: string; linkinfo?: { info_kind?: string } }>, () => []))[0];
/** Whether this kernel makes dummy devices (CONFIG_DUMMY). */
let dummies = false;
const holderKind = () => (dummies ? 'dummy' : 'bridge');
const addressesOf = async (name: string) => ((await inNs('ip', ['-j', 'addr', 'show', 'dev', name]).then((o) => JSON.parse(o.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)))[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`) ?? [];
const table = () => inNs('nft', ['list', 'table', 'ip', 'netplane-dns']).then((o) => o.stdout, () => '');
/** Entries of the namespace's conntrack table to the node-local address on a UDP port. */
const tracked = async (port: number) => (await inNs('conntrack', ['-L', '-p', 'udp', '-d', local, '--dport', String(port)]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))).stdout.split('\n').filter((l) => l.startsWith('udp')).length;
/** Waits for the Service's address from the zone (SERVFAIL until the manifests are loaded, which may follow listening). */
const answered = () => waitFor('an answer from the zone', async () => (await dig('web.default.svc.cluster.local')) === '10.96.0.10', 10_000);
const dig = (name: string, port = 53) => inNs('dig', [`@${local}`, '-p', String(port), '+time=1', '+tries=1', '+short', name]).then((o) => o.stdout.trim(), () => 'no reply');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'netplane-dnsloc-'));
  await writeFile(join(dir, 'web.yaml'), JSON.stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })));
  await host.run('ip', ['netns', 'add', ns]);
  await host.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // Something in the namespace that tracks connections, as kube-proxy's rules do on a node: without it the
  // namespace has no conntrack table to keep anything out of.
  dummies = await inNs('ip', ['link', 'add', 'np-probe0', 'type', 'dummy']).then(() => true, () => false);
  await inNs('ip', ['link', 'del', 'np-probe0']).catch(() => {});
  await inNs('nft', ['-f', '-'], 'table inet conntrack-on {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ct state established accept\n  }\n}\n');
}, 30_000);

afterEach(async () => {
  for (const r of running.splice(0)) await stop(r);
  await inNs('ip', ['link', 'del', 'nodelocaldns']).catch(() => {});
  await inNs('nft', ['delete', 'table', 'ip', 'netplane-dns']).catch(() => {});
});

afterAll(async () => {
  await host.run('ip', ['netns', 'del', ns]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('--local-interface and --notrack', () => {
  it('put the address on a dummy interface, keep its DNS out of conntrack, and remove both at exit', async () => {
    const dns = start(['--local-interface', 'nodelocaldns', '--notrack']);
    await waitFor('dns listening', () => dns.logs().includes(`udp://${local}:53`) || dns.proc.exitCode !== null, 15_000);
    expect(dns.proc.exitCode, dns.logs()).toBeNull();
    const link = await linkOf('nodelocaldns');
    expect(link?.linkinfo?.info_kind).toBe(holderKind());
    expect(link?.ifalias).toBe('netplane dns: node-local addresses');
    expect(link?.flags).toContain('UP');
    if (!dummies) expect(dns.logs()).toMatch(/this kernel has no dummy devices \(CONFIG_DUMMY\): a bridge without ports holds the node-local addresses/);
    // Besides the kernel's own IPv6 link-local address.
    expect((await addressesOf('nodelocaldns')).filter((a) => !a.startsWith('fe80:'))).toEqual([`${local}/32`]);
    await waitFor('the notrack table', async () => (await table()).includes('notrack'), 5000);

    // What was tracked before the rules were in (the server's datagram to itself at start) is forgotten first.
    await answered();
    await inNs('conntrack', ['-F']);
    expect(await dig('web.default.svc.cluster.local')).toBe('10.96.0.10');
    expect(await tracked(53)).toBe(0);
    // The same address on a port without the rules is tracked: the namespace does track connections.
    expect(await dig('web.default.svc.cluster.local', 5300)).not.toBe('10.96.0.10');
    expect(await tracked(5300)).toBeGreaterThanOrEqual(1);

    expect(await stop(dns)).toBe(0);
    expect(await linkOf('nodelocaldns')).toBeUndefined();
    expect(await table()).toBe('');
  });

  it('with --keep-local-setup both stay at exit, and the next start takes them as they are', async () => {
    const first = start(['--local-interface', 'nodelocaldns', '--notrack', '--keep-local-setup']);
    await waitFor('dns listening', () => first.logs().includes(`udp://${local}:53`) || first.proc.exitCode !== null, 15_000);
    await waitFor('the notrack table', async () => (await table()).includes('notrack'), 5000);
    expect(await stop(first)).toBe(0);
    expect((await linkOf('nodelocaldns'))?.linkinfo?.info_kind).toBe(holderKind());
    expect(await table()).toContain('notrack');
    const second = start(['--local-interface', 'nodelocaldns', '--notrack']);
    await waitFor('dns listening', () => second.logs().includes(`udp://${local}:53`) || second.proc.exitCode !== null, 15_000);
    await answered();
    expect(second.logs()).not.toMatch(/the interface nodelocaldns: created it/);
  });

  it("deploy/dns-nodelocal.yaml's args: the interface and the rules, both kept at exit for the next pod", async () => {
    type Pod = { spec?: { template?: { spec?: { containers?: Array<{ name: string; args?: string[] }> } } } };
    const file = 'deploy/dns-nodelocal.yaml';
    const daemonSet = parseText(file, readFileSync(join(repoRoot, file), 'utf8')).docs.map((d) => d.body as Pod & { kind?: string }).find((b) => b.kind === 'DaemonSet');
    // The cluster is read from the test's manifests and the admin address moved: the rest as deployed.
    const args = (daemonSet?.spec?.template?.spec?.containers?.find((c) => c.name === 'dns')?.args ?? []).filter((a) => !a.startsWith('--admin=') && !a.startsWith('--dns-service='));
    expect(args).toContain('--local-interface=netplane-dns');
    const dns = start([], args);
    await waitFor('dns listening', () => dns.logs().includes(`udp://${local}:53`) || dns.proc.exitCode !== null, 15_000);
    await answered();
    expect((await addressesOf('netplane-dns')).filter((a) => !a.startsWith('fe80:'))).toEqual([`${local}/32`]);
    await waitFor('the notrack table', async () => (await table()).includes('notrack'), 5000);
    expect(await stop(dns)).toBe(0);
    expect((await addressesOf('netplane-dns')).filter((a) => !a.startsWith('fe80:'))).toEqual([`${local}/32`]);
    expect(await table()).toContain('notrack');
    await inNs('ip', ['link', 'del', 'netplane-dns']);
  });

  it('where the host firewall drops what is not established, accepts the untracked DNS as node-cache does, and takes the accept out at exit', async () => {
    const ipt = (args: string[]) => inNs('iptables-nft', args);
    await ipt(['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    await ipt(['-P', 'INPUT', 'DROP']);
    try {
      const dns = start(['--local-interface', 'nodelocaldns', '--notrack']);
      await waitFor('dns listening', () => dns.logs().includes(`udp://${local}:53`) || dns.proc.exitCode !== null, 15_000);
      await answered();
      const saved = (await inNs('iptables-nft-save', [])).stdout;
      // The jump first in INPUT, before the host's own rule.
      expect(saved.split('\n').filter((l) => l.startsWith('-A INPUT '))[0]).toBe('-A INPUT -m comment --comment "netplane dns: node-local DNS" -j NETPLANE-DNS-LOCAL');
      expect(saved).toContain(`-A NETPLANE-DNS-LOCAL -d ${local}/32 -p udp -m udp --dport 53 -m comment --comment "netplane dns: node-local DNS" -j ACCEPT`);
      // Logged once the rules are in: its line may reach the pipe a moment after they are.
      await waitFor('the accept logged', () => /iptables-nft INPUT or OUTPUT may drop untracked packets: node-local DNS is accepted there through NETPLANE-DNS-LOCAL/.test(dns.logs()), 5000);
      // Without the jump the host's policy drops the untracked query: the accept is what lets it in.
      await ipt(['-D', 'INPUT', '-m', 'comment', '--comment', 'netplane dns: node-local DNS', '-j', 'NETPLANE-DNS-LOCAL']);
      expect(await dig('web.default.svc.cluster.local')).not.toBe('10.96.0.10');
      expect(await stop(dns)).toBe(0);
      const after = (await inNs('iptables-nft-save', [])).stdout;
      expect(after).not.toContain('NETPLANE-DNS-LOCAL');
      expect(after).toContain(':INPUT DROP');
      expect(after).toContain('-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
    } finally {
      await ipt(['-P', 'INPUT', 'ACCEPT']);
      await ipt(['-F', 'INPUT']);
    }
  });

  it('an interface of that name it did not make is not taken over: exit 1, one sentence', async () => {
    await inNs('ip', ['link', 'add', 'nodelocaldns', 'type', 'bridge']);
    const dns = start(['--local-interface', 'nodelocaldns']);
    expect(await dns.exited).toBe(1);
    expect(dns.logs()).toMatch(/the interface nodelocaldns is there and is a bridge device, not a dummy one nor one netplane made: netplane does not take it over/);
    expect((await linkOf('nodelocaldns'))?.linkinfo?.info_kind).toBe('bridge');
    expect(await addressesOf('nodelocaldns')).toEqual([]);
  });
});

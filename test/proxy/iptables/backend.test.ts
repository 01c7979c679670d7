import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IptablesBackend, iptablesCommands, readTcpBeLiberal } from '../../../proxy/iptables/backend.ts';
import { endpointChain, portChains } from '../../../proxy/iptables/names.ts';
import { CommandError } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { FakeIptables } from './fake.ts';
import { eps, plan, port } from './plans.ts';

const web = (list = eps('10.244.1.11:8080', '10.244.1.12:8080')) =>
  plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: list }), port('web', { family: 6, clusterIPs: ['fd00:96::10'], clusterEndpoints: eps('[fd00:244:1::11]:8080') })]);

function setup(tcpBeLiberal = false) {
  const fake = new FakeIptables();
  const liberal = { value: tcpBeLiberal, reads: 0 };
  const read = async () => {
    liberal.reads++;
    return liberal.value;
  };
  const backend = new IptablesBackend(fake, { log: silentLogger(), tcpBeLiberal: read });
  return { fake, backend, liberal };
}

/** nat PREROUTING, OUTPUT, POSTROUTING; filter INPUT ×2 (services, health checks), FORWARD ×2 (services, forwarding), OUTPUT. */
const jumpsPerFamily = 8;

const restores = (fake: FakeIptables) => fake.calls.filter((c) => c.command.endsWith('-restore'));
const jumpLines = (dump: string) => dump.split('\n').filter((l) => /^(nat|filter) (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l));

describe('IptablesBackend with a fake iptables', () => {
  it('first sync reads back both families, programs chains and one jump per built-in chain', async () => {
    const { fake, backend } = setup();
    const r = await backend.sync(web(), { full: false });
    expect(fake.calls.map((c) => `${c.command} ${c.args.join(' ')}`)).toEqual([
      'iptables-save -t nat',
      'iptables-save -t filter',
      'iptables-restore -w 5 --noflush',
      'ip6tables-save -t nat',
      'ip6tables-save -t filter',
      'ip6tables-restore -w 5 --noflush',
    ]);
    for (const f of [4, 6] as const) expect(jumpLines(fake.dump(f))).toHaveLength(jumpsPerFamily);
    expect(r.elements).toBe(3);
    expect(r.rules).toBeGreaterThan(10);
    expect(r.operations).toBe(restores(fake).reduce((n, c) => n + c.input!.trimEnd().split('\n').length, 0));
  });

  it('an unchanged plan sends nothing; an endpoint change sends only the changed chains', async () => {
    const { fake, backend } = setup();
    await backend.sync(web(), { full: true });
    const first = fake.calls.length;
    const same = await backend.sync(web(), { full: false });
    expect(same.operations).toBe(0);
    expect(fake.calls.length).toBe(first);

    const changed = await backend.sync(web(eps('10.244.1.12:8080')), { full: false });
    const sent = restores(fake).at(-1)!;
    expect(sent.command).toBe('iptables-restore');
    expect(sent.input).toMatch(/^-X NETPLANE-SEP-/m);
    expect(sent.input).not.toContain('NETPLANE-POSTROUTING');
    expect(changed.operations).toBe(sent.input!.trimEnd().split('\n').length);
    expect(changed.elements).toBe(2);
    expect(fake.dump(4)).not.toContain('10.244.1.11');
  });

  it('a full sync on existing state leaves no duplicate jump and deletes stale netplane chains only', async () => {
    const { fake, backend } = setup();
    await backend.sync(web(), { full: true });
    fake.apply(4, '*nat\n:NETPLANE-SVC-STALESTALESTAL - [0:0]\n:OTHER - [0:0]\n-I PREROUTING 1 -m comment --comment "netplane service portals" -j NETPLANE-SERVICES\n-A PREROUTING -j OTHER\nCOMMIT\n');
    const fresh = new IptablesBackend(fake, { log: silentLogger(), tcpBeLiberal: async () => false });
    await fresh.sync(web(), { full: true });
    const dump = fake.dump(4);
    expect(jumpLines(dump).filter((l) => l.includes('NETPLANE'))).toHaveLength(jumpsPerFamily);
    expect(dump).toContain('nat PREROUTING -j OTHER');
    expect(dump).toContain('nat :OTHER');
    expect(dump).not.toContain('STALE');
    // The same full sync again changes nothing in the kernel.
    await fresh.sync(web(), { full: true });
    expect(fake.dump(4)).toBe(dump);
  });

  it('a failed restore rejects with CommandError and keeps what was programmed; the next sync recovers', async () => {
    const { fake, backend } = setup();
    await backend.sync(web(), { full: true });
    const before = fake.dump(4);
    fake.failRestores.push('Bad rule', 'Bad rule');
    const err = await backend.sync(web(eps('10.244.1.13:8080')), { full: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(fake.dump(4)).toBe(before);
    await backend.sync(web(eps('10.244.1.13:8080')), { full: false });
    expect(fake.dump(4)).toContain('10.244.1.13:8080');
    expect(fake.dump(4)).not.toContain('10.244.1.11');
  });

  it('a change that fails because the kernel drifted is retried at once as a full sync', async () => {
    const { fake, backend } = setup();
    await backend.sync(web(), { full: true });
    // Someone deletes the chain of endpoint .12 by hand (after unhooking it): the change below keeps .12 and does
    // not rewrite its unchanged chain, so the new jump to it fails. (A stale chain deleted by hand is no problem:
    // declaring it before `-X` creates it again.)
    const key = 'default/web:http/TCP/v4';
    const sep = endpointChain(key, '10.244.1.12:8080');
    fake.apply(4, `*nat\n:${portChains(key).svc} - [0:0]\n:${sep} - [0:0]\n-X ${sep}\nCOMMIT\n`);
    await backend.sync(web(eps('10.244.1.12:8080')), { full: false });
    expect(fake.dump(4)).toContain('-j DNAT --to-destination 10.244.1.12:8080');
    expect(fake.calls.filter((c) => c.command === 'iptables-save').length).toBe(4);
  });

  it('a family whose tables cannot be read is skipped while it has no ports, and fails the sync when it has', async () => {
    const { fake, backend } = setup();
    fake.missing.add('ip6tables-save');
    fake.missing.add('ip6tables-restore');
    const v4only = plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: eps('10.244.1.11:8080') })]);
    await expect(backend.sync(v4only, { full: true })).resolves.toMatchObject({ elements: 1 });
    const err = await backend.sync(web(), { full: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    // IPv4 was still brought up to date.
    expect(fake.dump(4)).toContain('10.244.1.12:8080');
  });

  it('cleanup removes jumps and chains in both families, and nothing else', async () => {
    const { fake, backend } = setup();
    fake.apply(4, '*filter\n:KUBE-X - [0:0]\n-A INPUT -j KUBE-X\nCOMMIT\n');
    await backend.sync(web(), { full: true });
    await backend.cleanup();
    expect(fake.dump(4)).toBe(['filter :KUBE-X', 'filter INPUT -j KUBE-X'].join('\n'));
    expect(fake.dump(6)).toBe('');
    // Cleaning up twice is harmless, and a sync afterwards starts from scratch.
    await backend.cleanup();
    await backend.sync(web(), { full: false });
    expect(jumpLines(fake.dump(6))).toHaveLength(jumpsPerFamily);
  });

  it("reports rules per table as kube-proxy's iptables_total counts them: rules in its own chains, both families", async () => {
    const { fake, backend } = setup();
    const r = await backend.sync(web(), { full: true });
    const own = (table: string) => [4, 6].flatMap((f) => fake.dump(f as 4 | 6).split('\n')).filter((l) => new RegExp(`^${table} NETPLANE-\\S+ `).test(l)).length;
    expect(r.rulesByTable).toEqual({ nat: own('nat'), filter: own('filter') });
    expect(r.rulesByTable!.nat + r.rulesByTable!.filter).toBe(r.rules);
  });

  it('drops INVALID forwarded packets unless nf_conntrack_tcp_be_liberal is set, read again at full syncs only', async () => {
    const { fake, backend, liberal } = setup(true);
    const invalid = (f: 4 | 6) => fake.dump(f).includes('filter NETPLANE-FORWARD -m conntrack --ctstate INVALID -j DROP');
    await backend.sync(web(), { full: false });
    expect([invalid(4), invalid(6)]).toEqual([false, false]);
    liberal.value = false;
    await backend.sync(web(eps('10.244.1.13:8080')), { full: false });
    expect(liberal.reads).toBe(1);
    expect(invalid(4)).toBe(false);
    await backend.sync(web(eps('10.244.1.13:8080')), { full: true });
    expect(liberal.reads).toBe(2);
    expect([invalid(4), invalid(6)]).toEqual([true, true]);
  });

  it('reads nf_conntrack_tcp_be_liberal from a file: non-zero is set; unreadable is not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'np-liberal-'));
    try {
      const rows: Array<[string | undefined, boolean]> = [['1\n', true], ['0\n', false], [undefined, false]];
      for (const [content, want] of rows) {
        const file = join(dir, `v${String(content).trim()}`);
        if (content !== undefined) await writeFile(file, content);
        expect(await readTcpBeLiberal(file)).toBe(want);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the binaries of each variant', () => {
    expect(iptablesCommands(4)).toEqual({ save: 'iptables-save', restore: 'iptables-restore' });
    expect(iptablesCommands(6, 'legacy')).toEqual({ save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' });
    expect(iptablesCommands(4, 'nft')).toEqual({ save: 'iptables-nft-save', restore: 'iptables-nft-restore' });
  });
});

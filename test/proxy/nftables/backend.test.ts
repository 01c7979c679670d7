// NftablesBackend against a fake nft: full syncs reconcile with what is there (and find nothing to do when in
// sync), a foreign or older layout is rewritten in one transaction, failures keep the previous state, clean-up
// removes only netplane's tables, and stale ClientIP affinity entries are removed.
import { describe, expect, it } from 'vitest';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import { FakeNft } from '../../../proxy/nftables/fake.ts';
import { affinityIdKey, affinityIds, type AffinityRole } from '../../../proxy/nftables/affinity.ts';
import { Transaction, TransactionError } from '../../../proxy/nftables/transaction.ts';
import { CommandError } from '../../../runtime/exec.ts';
import { NftNetlinkError, type ElementChannel } from '../../../proxy/nftables/netlink/socket.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import type { ProxyPlan } from '../../../proxy/plan/types.ts';
import { eps, plan, port, served, smallPlan } from './plans.ts';

const backend = (fake: FakeNft) => new NftablesBackend(fake, { log: silentLogger() });
const applies = (fake: FakeNft) => fake.calls.filter((c) => c.args.join(' ') === '-f -').length;
const sticky = (ips: string[]) => plan([served('sticky', eps(ips), { clusterIPs: ['10.96.0.40'], affinitySeconds: 10800 })]);
/** The affinity ID of the first port of a plan named `name`, for one of its endpoint lists. */
const idOf = (p: ProxyPlan, name: string, role: AffinityRole = 'all') => affinityIds(p.ports).get(affinityIdKey(p.ports.find((x) => x.name === name)!, role));

describe('NftablesBackend', () => {
  it('programs a plan, and a full resync (also by a new instance, after a restart) sends nothing', async () => {
    const fake = new FakeNft();
    const first = await backend(fake).sync(smallPlan, { full: true });
    const dump = fake.dump();
    expect(first).toEqual({
      rules: dump.filter((l) => l.startsWith('rule')).length,
      elements: dump.filter((l) => l.startsWith('element')).length,
      operations: fake.calls.at(-1)!.input!.trim().split('\n').length,
      via: 'nft',
    });
    const restarted = backend(fake);
    expect(await restarted.sync(smallPlan, { full: true })).toMatchObject({ operations: 0 });
    expect(await restarted.sync(smallPlan, { full: false })).toMatchObject({ operations: 0 });
    expect(applies(fake)).toBe(1);
    expect(fake.dump()).toEqual(dump);
  });

  it('rewrites an older or foreign layout in one transaction, keeping recorded affinity entries', async () => {
    const reference = new FakeNft();
    await backend(reference).sync(smallPlan, { full: true });
    const fake = new FakeNft();
    await backend(fake).sync(smallPlan, { full: true });
    await fake.run('nft', ['-f', '-'], [
      'add set ip netplane old-vips { type ipv4_addr; }',
      'add chain ip netplane old-services',
      'add rule ip netplane old-services ip daddr @old-vips accept',
      'add rule ip netplane nat-prerouting jump old-services',
      'flush chain ip netplane services',
      'add rule ip netplane services ip daddr 10.96.0.10 dnat to 10.244.1.99',
      'delete element ip netplane cluster-vips { 10.96.0.20 . tcp . 80 }',
      'add element ip netplane cluster-vips { 10.96.0.99 . tcp . 80 : goto cluster-lb-1 }',
      `add element ip netplane affinity { 192.168.50.2 . ${idOf(smallPlan, 'sticky')} : 10.244.1.12 . 8080 }`,
      '',
    ].join('\n'));
    const before = applies(fake);
    const result = await backend(fake).sync(smallPlan, { full: true });
    expect(applies(fake) - before).toBe(1);
    expect(result.operations).toBeGreaterThan(0);
    expect(fake.dump()).toEqual([...reference.dump(), `element ip netplane affinity 192.168.50.2 . ${idOf(smallPlan, 'sticky')} : 10.244.1.12 . 8080`].sort());
  });

  it('on a refused transaction rejects, changes nothing, keeps the last applied state, and recovers', async () => {
    const fake = new FakeNft();
    const b = backend(fake);
    await b.sync(sticky(['10.244.1.11']), { full: true });
    const dump = fake.dump();
    fake.failNext = 'Could not process rule: No space left on device';
    const next = sticky(['10.244.1.11', '10.244.1.12']);
    await expect(b.sync(next, { full: false })).rejects.toBeInstanceOf(CommandError);
    expect(fake.dump()).toEqual(dump);
    const refused = fake.calls.at(-1)!.input;
    await b.sync(next, { full: false });
    expect(fake.calls.at(-1)!.input).toBe(refused);
    const reference = new FakeNft();
    await backend(reference).sync(next, { full: true });
    expect(fake.dump()).toEqual(reference.dump());
  });

  it('refuses text nft would misread before running anything', async () => {
    const fake = new FakeNft();
    const bad = plan([served('bad', eps(['10.244.1.11']), { clusterIPs: ['10.96.0.1 }; flush ruleset; {'] })]);
    await expect(backend(fake).sync(bad, { full: true })).rejects.toBeInstanceOf(TransactionError);
    expect(applies(fake)).toBe(0);
  });

  it('a rule may quote an interface name and nothing else', () => {
    const rules: Array<[rule: string, ok: boolean]> = [
      ['iifname "cni0" accept', true],
      ['iifname != "cali*" accept', true],
      ['iifname "meta" iifname "br-1.2_x" accept', true],
      ['iifname "cni0" comment "x" accept', true],
      ['iifname "cn"i0" accept', false],
      ['iifname "cni0 accept', false],
      ['iifname "a b" accept', false],
      ['iifname "a\nflush ruleset" accept', false],
      ['iifname "x" # "y"', false],
    ];
    for (const [rule, ok] of rules) expect([rule, new Transaction().addRule(4, 'services', rule).error === undefined]).toEqual([rule, ok]);
  });

  it('cleanup deletes both tables and nothing else, and is fine when they are gone', async () => {
    const fake = new FakeNft();
    await fake.run('nft', ['-f', '-'], 'add table ip someone-else\n');
    const b = backend(fake);
    await b.sync(smallPlan, { full: true });
    await b.cleanup();
    expect(fake.dump()).toEqual(['table ip someone-else']);
    await b.cleanup();
    await b.sync(smallPlan, { full: false });
    expect(fake.dump().filter((l) => l.startsWith('table'))).toEqual(['table ip netplane', 'table ip someone-else', 'table ip6 netplane']);
  });

  it('removes recorded affinity entries that point at a removed endpoint or a Service without affinity', async () => {
    const fake = new FakeNft();
    const b = backend(fake);
    await b.sync(sticky(['10.244.1.11', '10.244.1.12']), { full: true });
    const id = idOf(sticky([]), 'sticky');
    const entry = (client: string, ep: string, of = id) => `${client} . ${of} : ${ep} . 8080`;
    const entries = [entry('192.168.50.2', '10.244.1.11'), entry('192.168.50.3', '10.244.1.12'), entry('192.168.50.4', '10.244.1.11', 12345)];
    await fake.run('nft', ['-f', '-'], `add element ip netplane affinity { ${entries.join(', ')} }\n`);
    const recorded = () => fake.dump().filter((l) => l.startsWith('element ip netplane affinity ')).map((l) => l.replace('element ip netplane affinity ', ''));
    const result = await b.sync(sticky(['10.244.1.11']), { full: false });
    expect(recorded()).toEqual([entries[0]]);
    expect(result.operations).toBeGreaterThan(1);
    // A restarted proxy removes what went stale while it was away.
    await fake.run('nft', ['-f', '-'], `add element ip netplane affinity { ${entry('192.168.50.5', '10.244.1.13')} }\n`);
    await backend(fake).sync(sticky(['10.244.1.11']), { full: true });
    expect(recorded()).toEqual([entries[0]]);
  });

  it('checks each entry against the endpoint list of its ID: under the Local policy, this node\'s list and the Cluster one', async () => {
    const local = (cluster: string[], here: string[]) =>
      plan([port('l', { clusterIPs: ['10.96.0.2'], loadBalancerIPs: ['203.0.113.2'], externalLocal: true, clusterEndpoints: eps(cluster), externalEndpoints: eps(here), affinitySeconds: 30 })]);
    const fake = new FakeNft();
    const b = backend(fake);
    const before = local(['10.244.1.11', '10.244.2.21'], ['10.244.1.11']);
    await b.sync(before, { full: true });
    const [all, mine] = [idOf(before, 'l', 'all'), idOf(before, 'l', 'local')];
    const entries = [`192.168.50.2 . ${mine} : 10.244.1.11 . 8080`, `192.168.50.3 . ${mine} : 10.244.2.21 . 8080`, `10.244.1.5 . ${all} : 10.244.2.21 . 8080`];
    await fake.run('nft', ['-f', '-'], `add element ip netplane affinity { ${entries.join(', ')} }\n`);
    await backend(fake).sync(before, { full: true });
    // A remote endpoint is never this node's: its entry under the local ID goes.
    expect(fake.dump().filter((l) => l.startsWith('element ip netplane affinity ')).map((l) => l.replace('element ip netplane affinity ', ''))).toEqual([entries[2], entries[0]].sort());
  });

  it('removes IPv6 affinity entries by the ID they carry, when their endpoint left that list or the port dropped affinity', async () => {
    const sticky6 = (ips: string[], affinitySeconds = 10800) => plan([served('sticky6', eps(ips), { family: 6, clusterIPs: ['fd00:96::40'], affinitySeconds, nodePort: 30040 })]);
    const fake = new FakeNft();
    const b = backend(fake);
    await b.sync(sticky6(['fd00:244:1::11', 'fd00:244:1::12']), { full: true });
    const id = idOf(sticky6([]), 'sticky6');
    const entries = [`1 . ${id} : fd00:244:1::11`, `2 . ${id} : fd00:244:1::12`, `3 . 12345 : fd00:244:1::11`];
    await fake.run('nft', ['-f', '-'], `add element ip6 netplane affinity { ${entries.join(', ')} }\n`);
    const recorded = () => fake.dump().filter((l) => l.startsWith('element ip6 netplane affinity ')).map((l) => l.replace('element ip6 netplane affinity ', ''));
    await b.sync(sticky6(['fd00:244:1::11']), { full: false });
    expect(recorded()).toEqual([entries[0]]);
    // Affinity dropped: its entries go too, also when found by a restarted proxy.
    await backend(fake).sync(sticky6(['fd00:244:1::11'], 0), { full: true });
    expect(recorded()).toEqual([]);
  });

  it('with a netlink channel, leaves to nft what its codec cannot read, and nft refuses it as before', async () => {
    const sent: number[] = [];
    const channel: ElementChannel = {
      maxBatchBytes: 1 << 20,
      apply: async (batches) => void sent.push(batches.length),
      readElements: async () => [],
      close: () => {},
    };
    const fake = new FakeNft();
    const withChannel = new NftablesBackend(fake, { log: silentLogger(), elements: () => channel });
    // A cluster IP with a leading zero: text the codec refuses (the fake nft takes it, the real one would not).
    const api = (ip: string) => served('api', eps([ip]), { clusterIPs: ['10.96.0.20'] });
    const odd = plan([served('web', eps(['10.244.1.11']), { clusterIPs: ['10.96.0.010'] }), api('10.244.1.13')]);
    expect(await withChannel.sync(odd, { full: true })).toMatchObject({ via: 'nft' });
    expect(sent).toEqual([]);
    expect(applies(fake)).toBe(1);
    expect(fake.dump()).toContain('element ip netplane cluster-vips 10.96.0.010 . tcp . 80 : goto cluster-lb-1');
    // An element-only change of readable text then goes by netlink, one batch.
    expect(await withChannel.sync(plan([odd.ports[1]!, api('10.244.1.14')]), { full: false })).toMatchObject({ via: 'netlink' });
    expect([sent, applies(fake)]).toEqual([[1], 1]);
  });

  it('after a batch fails, closes its netlink channel and opens a new one for the next sync', async () => {
    const opened: string[] = [];
    const closed: string[] = [];
    let failNext = false;
    const open = (): ElementChannel => {
      const name = `channel ${opened.length + 1}`;
      opened.push(name);
      return {
        maxBatchBytes: 1 << 20,
        apply: async () => {
          if (failNext) {
            failNext = false;
            throw new NftNetlinkError('add elements to cluster-lb-1-endpoints', 'EIO');
          }
        },
        readElements: async () => [],
        close: () => void closed.push(name),
      };
    };
    const fake = new FakeNft();
    const b = new NftablesBackend(fake, { log: silentLogger(), elements: open });
    const at = (ip: string) => plan([served('web', eps([ip]), { clusterIPs: ['10.96.0.10'] })]);
    await b.sync(at('10.244.1.11'), { full: true });
    failNext = true;
    await expect(b.sync(at('10.244.1.12'), { full: false })).rejects.toMatchObject({ errno: 'EIO' });
    expect([opened, closed]).toEqual([['channel 1'], ['channel 1']]);
    await b.sync(at('10.244.1.12'), { full: true });
    expect(opened).toEqual(['channel 1', 'channel 2']);
  });
});

// The netlink path for set elements (proxy/nftables/netlink/): the codec's bytes, the batches' limits, and in the
// kernel, that a table loaded and changed through it holds exactly what nft alone makes of the same plans, that
// element-only changes take it and others do not, and that a batch the kernel refuses changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import { readTable } from '../../../proxy/nftables/kernel.ts';
import { readTablesByNetlink } from '../../../proxy/nftables/netlink/read.ts';
import { encodeBatches, type ElementBatchOp } from '../../../proxy/nftables/netlink/batch.ts';
import { elementCodec, ElementTextError, type ElementCodec } from '../../../proxy/nftables/netlink/elements.ts';
import { NftNetlinkError, type ElementChannel } from '../../../proxy/nftables/netlink/socket.ts';
import { render } from '../../../proxy/nftables/render.ts';
import type { ProxyPlan } from '../../../proxy/plan/types.ts';
import type { CommandRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { NamespacedElementChannel } from '../../../lab/nft-elements.ts';
import { NetnsLab } from '../../../lab/netns.ts';
import { eps, plan, port, served, smallPlan } from './plans.ts';
import { endianness } from 'node:os';

const key = (c: ElementCodec, text: string) => {
  const out = Buffer.alloc(c.keyLength);
  c.key(text, out, 0);
  return [...out];
};
const u32 = (n: number) => (endianness() === 'LE' ? [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24] : [n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]);

describe('set element codec', () => {
  it('lays out concatenations in 32-bit registers, lone fields at their own size', () => {
    const lb = elementCodec('typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport;')!;
    expect(key(lb, '10.96.0.1 . tcp . 80 . 3')).toEqual([10, 96, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0, ...u32(3)]);
    expect(lb.data?.kind).toBe('bytes');
    const value = Buffer.alloc(8);
    if (lb.data?.kind === 'bytes') lb.data.write('10.244.1.2 . 8080', value, 0);
    expect([...value]).toEqual([10, 244, 1, 2, 0x1f, 0x90, 0, 0]);
    const vip6 = elementCodec('type ipv6_addr . inet_proto . inet_service : verdict;')!;
    expect(key(vip6, 'fd00:96::10 . udp . 53')).toEqual([0xfd, 0, 0, 0x96, ...Array(11).fill(0), 0x10, 17, 0, 0, 0, 0, 53, 0, 0]);
    expect(vip6.data).toEqual({ kind: 'verdict' });
    expect(key(elementCodec('type inet_proto . inet_service : mark;')!, 'sctp . 30080')).toEqual([132, 0, 0, 0, 0x75, 0x80, 0, 0]);
    const ports = elementCodec('type mark : inet_service;')!;
    expect(key(ports, '0x00000102')).toEqual(u32(0x102));
    expect(ports.data?.kind === 'bytes' && ports.data.length).toBe(2);
    expect(key(elementCodec('type ipv4_addr;')!, '10.96.0.10')).toEqual([10, 96, 0, 10]);
  });

  it('has no codec for what it does not lay out itself: intervals, timeouts, sizes, unknown types', () => {
    for (const spec of ['type ipv4_addr; flags interval;', 'typeof ct id : meta mark; size 65536; flags dynamic,timeout; timeout 1s;', 'type ether_addr;', 'typeof ip saddr . tcp dport;', 'type ipv4_addr : verdict; flags interval;']) {
      expect(elementCodec(spec), spec).toBeUndefined();
    }
  });

  it('refuses text that does not fit the set', () => {
    const c = elementCodec('type ipv4_addr . inet_proto . inet_service : verdict;')!;
    for (const bad of ['10.96.0.1 . tcp', '10.96.0.1 . tcp . 80 . 1', '10.96.0.256 . tcp . 80', '10.96.0.01 . tcp . 80', '10.96.0.1 . tcp . 65536', 'fd00::1 . tcp . 80', '10.96.0.1 . tcp . 8o']) {
      expect(() => key(c, bad), bad).toThrow(ElementTextError);
    }
  });
});

describe('set element batches', () => {
  const codec = () => elementCodec('type ipv4_addr . inet_proto . inet_service : verdict;')!;
  const ops = (n: number): ElementBatchOp[] => [
    { verb: 'delete', family: 4, set: 'cluster-vips', keys: ['10.96.0.1 . tcp . 80'], values: undefined },
    { verb: 'add', family: 4, set: 'cluster-vips', keys: Array.from({ length: n }, (_, i) => `10.96.${i >> 8}.${i & 255} . tcp . 80`), values: Array(n).fill('goto cluster-lb-3') },
  ];
  /** Messages of a batch: [type, element count]. */
  const messages = (bytes: Buffer): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let off = 0; off < bytes.length; ) {
      const len = bytes.readUInt32LE(off);
      const type = bytes.readUInt16LE(off + 4);
      let elements = 0;
      for (let a = off + 20; a < off + len; ) {
        const alen = bytes.readUInt16LE(a);
        if ((bytes.readUInt16LE(a + 2) & 0x7fff) === 3) for (let e = a + 4; e < a + alen; e += bytes.readUInt16LE(e)) elements++;
        a += (alen + 3) & ~3;
      }
      out.push([type, elements]);
      off += len;
    }
    return out;
  };

  it.runIf(endianness() === 'LE')('puts deletions and additions in begin/end-framed batches within the size given, every element once', () => {
    const batches = encodeBatches(ops(5000), codec, 64 * 1024);
    expect(batches.length).toBeGreaterThan(3);
    let deleted = 0;
    let added = 0;
    for (const b of batches) {
      expect(b.bytes.length).toBeLessThanOrEqual(64 * 1024);
      const m = messages(b.bytes);
      expect([m[0]![0], m.at(-1)![0]]).toEqual([0x10, 0x11]);
      for (const [type, n] of m.slice(1, -1)) {
        expect(n).toBeGreaterThan(0);
        if (type === ((10 << 8) | 14)) deleted += n;
        else if (type === ((10 << 8) | 12)) added += n;
      }
      expect(b.seqs.length).toBe(m.length - 2);
    }
    expect([deleted, added]).toEqual([1, 5000]);
    // One big batch when it may be big: each message's element list stays within a 16-bit attribute length.
    const one = encodeBatches(ops(5000), codec, 8 << 20);
    expect(one.length).toBe(1);
    expect(messages(one[0]!.bytes).slice(1, -1).every(([, n]) => n * 40 < 65536)).toBe(true);
  });
});

/** The set each element message of a batch is for, in order. */
function setNames(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    for (let a = off + 20; a < off + len; ) {
      const alen = bytes.readUInt16LE(a);
      if (bytes.readUInt16LE(a + 2) === 2) out.push(bytes.toString('latin1', a + 4, a + alen - 1));
      a += (alen + 3) & ~3;
    }
    off += len;
  }
  return out;
}

describe('set elements by netlink in the kernel', () => {
  let lab: NetnsLab;
  let textNs: string;
  let netlinkNs: string;
  let writer: NamespacedElementChannel;
  const applied = { nft: 0, netlink: 0 };
  let viaText: NftablesBackend;
  let viaNetlink: NftablesBackend;
  const runnerIn = (ns: string, count = false): CommandRunner => ({
    run: (command, args, input, options) => {
      if (count && command === 'nft' && args[0] === '-f') applied.nft++;
      return lab.exec(ns, command, args, input, options);
    },
  });

  beforeAll(async () => {
    lab = NetnsLab.create();
    textNs = await lab.ns('text');
    netlinkNs = await lab.ns('netlink');
    writer = await NamespacedElementChannel.open(netlinkNs);
    const counting: ElementChannel = {
      maxBatchBytes: writer.maxBatchBytes,
      apply: (batches, describe) => {
        applied.netlink++;
        return writer.apply(batches, describe);
      },
      readElements: (f, set) => writer.readElements(f, set),
      // The backend closes a channel after a failed batch and opens another; this one lives as long as the tests.
      close: () => {},
    };
    viaText = new NftablesBackend(runnerIn(textNs), { log: silentLogger() });
    viaNetlink = new NftablesBackend(runnerIn(netlinkNs, true), { log: silentLogger(), elements: () => counting });
  }, 30_000);
  afterAll(async () => {
    writer?.close();
    await lab?.destroy();
  });

  /** The dns Service's endpoint moved to `ip`. */
  const dnsAt = (ip: string, ports = smallPlan.ports) => plan([...ports.filter((p) => p.name !== 'dns'), served('dns', eps([ip], 5353), { protocol: 'UDP', port: 53, clusterIPs: ['10.96.0.10'] })]);
  const changed = dnsAt('10.244.1.12');
  const grown = plan([...changed.ports, served('four', eps(['10.244.1.11', '10.244.1.12', '10.244.1.13', '10.244.1.14']), { clusterIPs: ['10.96.0.44'] })]);

  /** Both namespaces' tables, as the kernel reader sees them (elements sorted). */
  async function tables(ns: string) {
    const out: unknown[] = [];
    for (const f of [4, 6] as const) {
      const t = await readTable(runnerIn(ns), f);
      out.push({ ...t, sets: [...t.sets].sort().map(([n, s]) => [n, s.kind, s.id, [...s.elements].sort()]), chains: [...t.chains].sort() });
    }
    return out;
  }
  async function both(p: ProxyPlan, full = false) {
    await viaText.sync(p, { full });
    const result = await viaNetlink.sync(p, { full });
    expect(await tables(netlinkNs)).toEqual(await tables(textNs));
    return result.via;
  }

  it('a table made from nothing: nft for its objects, one netlink load for its elements, the same table as nft alone', async () => {
    expect(await both(smallPlan, true)).toBe('nft+netlink');
    expect(applied).toEqual({ nft: 1, netlink: 1 });
    // Every kind of element the plan has went by netlink: the rendered sets with a codec are all filled.
    const desired = render(smallPlan);
    const encoded = [...desired[4].sets, ...desired[6].sets].filter(([, s]) => s.elements && s.elements.size > 0 && elementCodec(s.spec));
    expect(encoded.map(([n]) => n)).toEqual(expect.arrayContaining(['cluster-vips', 'cluster-ips', 'no-endpoints', 'affinity-ids', 'affinity-ports', 'hairpin']));
  });

  it('element-only changes go by netlink alone, changes with new chains by nft', async () => {
    expect(await both(changed)).toBe('netlink');
    expect(applied).toEqual({ nft: 1, netlink: 2 });
    // A Service of a new endpoint count makes a new load-balancing chain: nft, elements and all.
    expect(await both(grown)).toBe('nft');
    expect(applied).toEqual({ nft: 2, netlink: 2 });
    // Services gone and back, a Service without endpoints, a port moved.
    await both(plan([...grown.ports.filter((p) => p.name !== 'web'), port('gone', { clusterIPs: ['10.96.0.31'] })]));
    await both(grown);
  });

  it('reads a table back by netlink as nft lists it, and a restarted backend so finds nothing to change', async () => {
    const desired = render(grown);
    const byNetlink = await readTablesByNetlink(runnerIn(netlinkNs), writer, desired);
    let compared = 0;
    for (const f of [4, 6] as const) {
      const byNft = await readTable(runnerIn(netlinkNs), f);
      expect([...byNetlink[f].chains].sort()).toEqual([...byNft.chains].sort());
      expect([...byNetlink[f].sets.keys()].sort()).toEqual([...byNft.sets.keys()].sort());
      for (const [name, set] of byNft.sets) {
        // The kernel-filled sets are not read by netlink (diff.ts does not look at their elements).
        if (!desired[f].sets.get(name)?.elements) continue;
        expect([f, name, [...byNetlink[f].sets.get(name)!.elements].sort()]).toEqual([f, name, [...set.elements].sort()]);
        if (set.elements.size > 0) compared++;
      }
    }
    // Codec sets and the interval ones nft lists (pod-cidrs, source-ranges) alike.
    expect(compared).toBeGreaterThan(25);
    const restarted = new NftablesBackend(runnerIn(netlinkNs), { log: silentLogger(), elements: () => writer });
    expect(await restarted.sync(grown, { full: true })).toMatchObject({ operations: 0 });
  });

  it('a batch the kernel refuses changes nothing, and the next full sync repairs what was changed by hand', async () => {
    const codec = (f: 4 | 6, set: string) => elementCodec(render(smallPlan)[f].sets.get(set)!.spec)!;
    const before = await tables(netlinkNs);
    const batches = encodeBatches([
      { verb: 'add', family: 4, set: 'cluster-ips', keys: ['10.96.9.9'], values: undefined },
      { verb: 'delete', family: 4, set: 'cluster-ips', keys: ['10.96.9.8'], values: undefined },
    ], codec, writer.maxBatchBytes);
    const refused = writer.apply(batches, () => 'delete elements of cluster-ips');
    await expect(refused).rejects.toBeInstanceOf(NftNetlinkError);
    await expect(refused).rejects.toMatchObject({ errno: 'ENOENT' });
    expect(await tables(netlinkNs)).toEqual(before);

    // Someone deletes an element by hand; the next change replaces it (a deletion and an addition) and is refused
    // as a whole, leaving the rest of the table as it was; the full sync after it (what the proxy's retry does)
    // makes the table whole again.
    await lab.exec(netlinkNs, 'nft', ['delete', 'element', 'ip', 'netplane', 'cluster-lb-1-endpoints', '{ 10.96.0.10 . udp . 53 . 0 }']);
    const handEdited = await tables(netlinkNs);
    const moved = dnsAt('10.244.1.13', grown.ports);
    const sent = applied.netlink;
    await expect(viaNetlink.sync(moved, { full: false })).rejects.toMatchObject({ errno: 'ENOENT' });
    expect(applied.netlink).toBe(sent + 1);
    expect(await tables(netlinkNs)).toEqual(handEdited);
    await viaText.sync(moved, { full: false });
    await viaNetlink.sync(moved, { full: true });
    expect(await tables(netlinkNs)).toEqual(await tables(textNs));
  });

  it('with a small send buffer: a new table loads in many batches, and a change too big for one goes to nft', async () => {
    // 200 KiB is the send buffer of a host with the default net.core.wmem_max; 16 KiB makes the same happen at 300
    // Services.
    const small = await lab.ns('small');
    const text = await lab.ns('small-text');
    const sent: number[] = [];
    const loaded: string[] = [];
    const smallWriter: ElementChannel = {
      maxBatchBytes: 16 * 1024,
      apply: (batches, describe) => {
        sent.push(batches.length);
        for (const b of batches) loaded.push(...setNames(b.bytes));
        return inner.apply(batches, describe);
      },
      readElements: (f, set) => inner.readElements(f, set),
      close: () => inner.close(),
    };
    const inner = await NamespacedElementChannel.open(small);
    let nftRuns = 0;
    const counted: CommandRunner = { run: (c, a, i, o) => ((nftRuns += c === 'nft' && a[0] === '-f' ? 1 : 0), lab.exec(small, c, a, i, o)) };
    const viaSmall = new NftablesBackend(counted, { log: silentLogger(), elements: () => smallWriter });
    const reference = new NftablesBackend(runnerIn(text), { log: silentLogger() });
    const many = (n: number, first: number) =>
      plan(Array.from({ length: n }, (_, i) => served(`s${i}`, eps([`10.244.${1 + (i >> 8)}.${i & 255}`, `10.244.9.${(i + first) & 255}`]), { clusterIPs: [`10.96.${1 + (i >> 8)}.${i & 255}`] })));
    try {
      for (const [p, full] of [[many(300, 0), true], [many(300, 1), false]] as const) {
        await reference.sync(p, { full });
        await viaSmall.sync(p, { full });
        expect(await tables(small)).toEqual(await tables(text));
      }
      // The load: one nft run, then several batches in one apply. The change (300 endpoints moved, 1,200 element
      // operations) is more than one batch: nft, not a part of it by netlink.
      expect(sent.length).toBe(1);
      expect(sent[0]).toBeGreaterThan(3);
      expect(nftRuns).toBe(2);
      // In the load, the endpoint maps come first, the dispatch maps after them, the cluster IPs last.
      const kinds = loaded.map((n) => (n.endsWith('-endpoints') ? 'endpoints' : n === 'cluster-ips' ? 'cluster-ips' : n.endsWith('-vips') ? 'dispatch' : 'other'));
      const order = kinds.filter((k, i) => k !== kinds[i - 1]);
      expect(order).toEqual(['endpoints', 'dispatch', 'other', 'cluster-ips']);
    } finally {
      await viaSmall.close();
    }
  });
});

// The canonical forms shared by the renderer and the kernel reader, the transaction builder, and reading what the
// real kernel lists (fixtures captured from nft 1.0.6 by fixtures/capture.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { affinityIdKey, affinityIds } from '../../../proxy/nftables/affinity.ts';
import { diff } from '../../../proxy/nftables/diff.ts';
import { elemText, parseTable } from '../../../proxy/nftables/kernel.ts';
import { canonicalCIDR, canonicalIP, normalizeCIDRs } from '../../../proxy/nftables/model.ts';
import { render } from '../../../proxy/nftables/render.ts';
import { Transaction, TransactionError } from '../../../proxy/nftables/transaction.ts';
import { smallPlan } from './plans.ts';

const fixture = (f: string) => readFileSync(new URL(`fixtures/kernel-small-${f}.json`, import.meta.url), 'utf8');

describe('nftables canonical forms', () => {
  const ips: Array<[string, string]> = [
    ['10.96.0.1', '10.96.0.1'],
    ['fd00:96:0:0:0:0:0:10', 'fd00:96::10'],
    ['FD00:0096::0010', 'fd00:96::10'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fd00:1:2:3:4:5:6:7', 'fd00:1:2:3:4:5:6:7'],
    ['fd00::', 'fd00::'],
  ];
  for (const [input, want] of ips) it(`canonicalIP(${input}) = ${want}`, () => expect(canonicalIP(input)).toBe(want));

  const cidrs: Array<[string, string]> = [
    ['10.244.0.0/16', '10.244.0.0/16'],
    ['10.244.3.7/16', '10.244.0.0/16'],
    ['192.168.1.1/32', '192.168.1.1'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00:244:0:1::5/48', 'fd00:244::/48'],
    ['fd00::1/128', 'fd00::1'],
  ];
  for (const [input, want] of cidrs) it(`canonicalCIDR(${input}) = ${want}`, () => expect(canonicalCIDR(input)).toBe(want));

  it('normalizes CIDR lists for interval sets: duplicates and covered prefixes go, order is by address', () => {
    expect(normalizeCIDRs(['10.1.0.0/16', '10.0.0.0/8', '192.168.1.0/24', '192.168.1.0/24', '172.16.0.1/32'])).toEqual(['10.0.0.0/8', '172.16.0.1', '192.168.1.0/24']);
    expect(normalizeCIDRs(['10.0.1.0/24', '10.0.2.0/24'])).toEqual(['10.0.1.0/24', '10.0.2.0/24']);
  });

  const elems: Array<[unknown, string]> = [
    [{ concat: ['10.96.0.1', 'tcp', 80, 0] }, '10.96.0.1 . tcp . 80 . 0'],
    [{ goto: { target: 'cluster-lb-2' } }, 'goto cluster-lb-2'],
    [{ drop: null }, 'drop'],
    [{ prefix: { addr: '10.244.0.0', len: 16 } }, '10.244.0.0/16'],
    [{ concat: ['203.0.113.30', 'tcp', 80, { prefix: { addr: '10.0.0.0', len: 8 } }] }, '203.0.113.30 . tcp . 80 . 10.0.0.0/8'],
    [{ elem: { val: { concat: ['192.168.50.2', '10.96.0.40', 'tcp', 80] }, timeout: 3600, expires: 3599 } }, '192.168.50.2 . 10.96.0.40 . tcp . 80'],
  ];
  for (const [json, want] of elems) it(`reads the element ${JSON.stringify(json)}`, () => expect(elemText(json as never)).toBe(want));
});

describe('nftables kernel reader', () => {
  it('reads what nft 1.0.6 lists back into the rendered form: a full sync finds nothing to do', () => {
    const kernel = { 4: parseTable(4, fixture('ip')), 6: parseTable(6, fixture('ip6')) };
    const tx = diff(kernel, render(smallPlan));
    expect(tx.text()).toBe('');
  });

  it('reads the affinity entries the kernel recorded (client or hash . ID), with their endpoints', () => {
    const id = (name: string) => affinityIds(smallPlan.ports).get(affinityIdKey(smallPlan.ports.find((p) => p.name === name)!, 'all'));
    expect([...parseTable(4, fixture('ip')).sets.get('affinity')!.elements]).toEqual([
      [`192.168.50.2 . ${id('sticky')}`, '10.244.1.12 . 8080'],
      [`192.168.50.3 . ${id('sticky')}`, '10.244.1.99 . 8080'],
    ]);
    expect([...parseTable(6, fixture('ip6')).sets.get('affinity')!.elements]).toEqual([[`3595430098 . ${id('web6')}`, 'fd00:244:1::11']]);
  });

  it('sees a table without netplane comments as foreign: every chain is rewritten, every set recreated', () => {
    const stripped = fixture('ip').replaceAll(/,"comment":"[0-9a-f]{16}"/g, '');
    const tx = diff({ 4: parseTable(4, stripped), 6: parseTable(6, fixture('ip6')) }, render(smallPlan));
    const lines = tx.text().split('\n');
    expect(lines.filter((l) => l.startsWith('delete map ip netplane') || l.startsWith('delete set ip netplane')).length).toBe(render(smallPlan)[4].sets.size);
    expect(lines.filter((l) => l.startsWith('flush chain ip netplane')).length).toBe(render(smallPlan)[4].chains.size);
    expect(lines.some((l) => / ip6 /.test(l))).toBe(false);
  });
});

describe('nftables transaction builder', () => {
  it('writes operations in dependency order, whatever order they were added in', () => {
    const tx = new Transaction()
      .addElements(4, 'cluster-vips', [['10.96.0.1 . tcp . 80', 'goto cluster-lb-3']])
      .addRule(4, 'cluster-lb-3', 'dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @cluster-endpoints')
      .addChain(4, 'cluster-lb-3')
      .deleteChain(4, 'cluster-lb-2')
      .deleteElements(4, 'cluster-vips', ['10.96.0.1 . tcp . 80'])
      .flushChain(4, 'cluster-lb-2')
      .addTable(4);
    expect(tx.text().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'add table',
      'flush chain',
      'delete element',
      'delete chain',
      'add chain',
      'add rule',
      'add element',
      '',
    ]);
    expect(tx.lines).toBe(7);
  });

  it('batches elements, 1000 to a line', () => {
    const tx = new Transaction().addElements(4, 'hairpin', Array.from({ length: 2500 }, (_, i) => [`10.0.${i >> 8}.${i & 255} . 10.0.${i >> 8}.${i & 255}`, ''] as const));
    expect(tx.lines).toBe(3);
  });

  const bad: Array<[string, (tx: Transaction) => Transaction]> = [
    ['a name with a space', (tx) => tx.addChain(4, 'a b')],
    ['an element with a brace', (tx) => tx.addElements(4, 'cluster-vips', [['10.96.0.1 } . tcp . 80', 'drop']])],
    ['a rule with a line break', (tx) => tx.addRule(4, 'services', 'accept\nflush ruleset')],
  ];
  for (const [what, build] of bad) {
    it(`keeps the first error: ${what}`, () => {
      const tx = build(new Transaction());
      expect(tx.error).toBeInstanceOf(TransactionError);
      expect(tx.error?.code).toBe('NETPLANE_NFT_INVALID');
    });
  }
});

import { describe, expect, it } from 'vitest';
import { jumps } from '../../../proxy/iptables/names.ts';
import { cleanupText, jumpLines, parseSave, restoreText } from '../../../proxy/iptables/render.ts';
import { buildRuleset } from '../../../proxy/iptables/ruleset.ts';
import type { PortPlan } from '../../../proxy/plan/types.ts';
import { eps, plan, port, readable } from './plans.ts';

const three = eps('10.244.1.11:8080', '10.244.1.12:8080', '10.244.1.13:8080');
const to = (ep: string) => `-m comment --comment "default/web:http -> ${ep}"`;
const withEndpoints = (list: PortPlan['clusterEndpoints']) => plan([port('web', { clusterIPs: ['10.96.0.10'], clusterEndpoints: list })]);

describe('restoreText', () => {
  it('is empty when nothing changed since the last apply', () => {
    const p = withEndpoints(three);
    expect(restoreText(buildRuleset(p, 4), { previous: buildRuleset(p, 4) })).toBe('');
  });

  it('writes only changed chains and deletes the endpoint chain that went away', () => {
    const before = withEndpoints(three);
    const after = withEndpoints(eps('10.244.1.11:8080', '10.244.1.12:8080'));
    const text = readable(readable(restoreText(buildRuleset(after, 4), { previous: buildRuleset(before, 4) }), after), before);
    expect(text.split('\n').filter((l) => !l.startsWith('-A'))).toEqual([
      '*nat',
      ':NETPLANE-SVC-web - [0:0]',
      ':NETPLANE-SEP-web/10.244.1.13:8080 - [0:0]',
      '-X NETPLANE-SEP-web/10.244.1.13:8080',
      'COMMIT',
      '',
    ]);
    expect(text).toContain(`-A NETPLANE-SVC-web ${to('10.244.1.11:8080')} -m statistic --mode random --probability 0.5000000000`);
  });

  it('from the kernel: inserts missing jumps, deletes duplicates, foreign-looking stale jumps and stale chains, keeps others', () => {
    const saved = parseSave(
      [
        '# Warning: iptables-legacy tables present, use iptables-legacy-save to see them',
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        ':NETPLANE-SERVICES - [0:0]',
        ':NETPLANE-SVC-OLDOLDOLDOLDOLD - [0:0]',
        ':DOCKER - [0:0]',
        '-A PREROUTING -m comment --comment "netplane service portals" -j NETPLANE-SERVICES',
        '-A PREROUTING -m comment --comment "netplane service portals" -j NETPLANE-SERVICES',
        '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
        '-A OUTPUT -j NETPLANE-SVC-OLDOLDOLDOLDOLD',
        'COMMIT',
      ].join('\n'),
    );
    const text = restoreText(buildRuleset(plan([]), 4), { kernel: saved });
    const lines = text.split('\n').filter((l) => !l.startsWith('-A ') && !l.startsWith(':NETPLANE-') && l !== '');
    expect(lines).toEqual([
      '*nat',
      '-D PREROUTING -m comment --comment "netplane service portals" -j NETPLANE-SERVICES',
      '-D OUTPUT -j NETPLANE-SVC-OLDOLDOLDOLDOLD',
      `-I OUTPUT 1 ${jumps.nat[1]!.spec}`,
      `-I POSTROUTING 1 ${jumps.nat[2]!.spec}`,
      '-X NETPLANE-SVC-OLDOLDOLDOLDOLD',
      'COMMIT',
      '*filter',
      ...jumps.filter.map((j) => `-I ${j.chain} 1 ${j.spec}`),
      'COMMIT',
    ]);
    expect(text).toContain(':NETPLANE-SVC-OLDOLDOLDOLDOLD - [0:0]');
    expect(text).not.toContain('DOCKER');
  });

  it('cleanupText removes jumps and every netplane chain, nothing else', () => {
    const saved = parseSave(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':NETPLANE-SERVICES - [0:0]',
        ':KUBE-FIREWALL - [0:0]',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "netplane service portals" -j NETPLANE-SERVICES',
        '-A INPUT -j KUBE-FIREWALL',
        '-A NETPLANE-SERVICES -d 10.96.0.1/32 -p tcp -j REJECT',
        'COMMIT',
      ].join('\n'),
    );
    expect(cleanupText(saved).split('\n')).toEqual([
      '*filter',
      ':NETPLANE-SERVICES - [0:0]',
      '-D INPUT -m conntrack --ctstate NEW -m comment --comment "netplane service portals" -j NETPLANE-SERVICES',
      '-X NETPLANE-SERVICES',
      'COMMIT',
      '',
    ]);
    expect(cleanupText(parseSave('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n'))).toBe('');
  });
});

// A jump somebody deleted goes back where a first install put it (found by an audit: it went back first in its
// chain, so a lone NETPLANE-FORWARD jump came back ahead of NETPLANE-SERVICES, whose drops it is meant to follow).
describe('jumpLines: a repair restores the start-up order', () => {
  const [health, inputServices, forward, forwardServices, outputServices] = jumps.filter.map((j) => ({ ...j, rule: `-A ${j.chain} ${j.spec}` }));
  const other = '-A FORWARD -j DOCKER-USER';
  const inputs = [inputServices!.rule, health!.rule];
  /** filter as iptables-save prints it with `rules` in INPUT and FORWARD (the OUTPUT jump always present). */
  const filter = (...rules: string[]) =>
    parseSave(['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':DOCKER-USER - [0:0]', ...rules, outputServices!.rule, 'COMMIT'].join('\n')).filter;
  it.each([
    [
      'nothing installed: each first in turn, so NETPLANE-SERVICES ends up ahead of NETPLANE-FORWARD',
      filter(),
      [`-I INPUT 1 ${health!.spec}`, `-I INPUT 1 ${inputServices!.spec}`, `-I FORWARD 1 ${forward!.spec}`, `-I FORWARD 1 ${forwardServices!.spec}`],
    ],
    ['NETPLANE-FORWARD deleted: back right after NETPLANE-SERVICES, not first', filter(...inputs, forwardServices!.rule, other), [`-I FORWARD 2 ${forward!.spec}`]],
    ['NETPLANE-FORWARD deleted and a rule inserted first since: still right after NETPLANE-SERVICES', filter(...inputs, other, forwardServices!.rule), [`-I FORWARD 3 ${forward!.spec}`]],
    ['NETPLANE-SERVICES deleted: back first, ahead of NETPLANE-FORWARD', filter(...inputs, forward!.rule, other), [`-I FORWARD 1 ${forwardServices!.spec}`]],
    ['the health-check jump deleted: back after the Services jump of INPUT', filter(inputServices!.rule, forwardServices!.rule, forward!.rule), [`-I INPUT 2 ${health!.spec}`]],
    [
      'a duplicate: iptables deletes the first equal rule, and the position is counted without it',
      filter(...inputs, forwardServices!.rule, forwardServices!.rule, other),
      [`-D FORWARD ${forwardServices!.spec}`, `-I FORWARD 2 ${forward!.spec}`],
    ],
  ] as const)('%s', (_name, saved, want) => {
    expect(jumpLines('filter', saved)).toEqual(want);
  });
});

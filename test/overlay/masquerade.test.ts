// The masquerade tables: rendered text, when nft runs, clean-up, and the real nft accepting and replacing them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../lab/netns.ts';
import { Masquerade, renderMasquerade } from '../../overlay/masquerade.ts';
import { CommandError, type CommandOutput, type CommandRunner } from '../../runtime/exec.ts';

/** Records nft calls; `fail` makes them fail with that stderr. */
class Recorder implements CommandRunner {
  calls: string[] = [];
  fail: string | undefined;
  async run(command: string, args: readonly string[], input?: string): Promise<CommandOutput> {
    this.calls.push(`${command} ${args.join(' ')}${input ? `\n${input}` : ''}`);
    if (this.fail) throw new CommandError(`${command} ${args.join(' ')}`, 1, this.fail);
    return { stdout: '', stderr: '' };
  }
}

describe('renderMasquerade', () => {
  it('masquerades what leaves the cluster CIDRs except multicast, and what comes from elsewhere to other nodes\' pods, per family; untracks VXLAN; replaces each table whole', () => {
    expect(renderMasquerade(['10.244.0.0/16', 'fd00:244::/48', '10.244.3.0/24'], { vxlan: [{ local: '192.168.60.1', port: 8472 }], podCIDRs: ['10.244.1.0/24', 'fd00:244:0:1::/64'] })).toBe(
      [
        'table ip netplane-overlay',
        'delete table ip netplane-overlay',
        'table ip netplane-overlay {',
        '  comment "netplane overlay: masquerade pod traffic leaving the cluster"',
        '  set cluster {',
        '    type ipv4_addr; flags interval;',
        '    elements = { 10.244.0.0/16 }',
        '  }',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        '    ip daddr 10.244.1.0/24 return',
        '    ip saddr @cluster ip daddr @cluster return',
        '    ip daddr @cluster masquerade fully-random',
        '    ip saddr != @cluster return',
        '    ip daddr 224.0.0.0/4 return',
        '    masquerade fully-random',
        '  }',
        '  chain vxlan-in {',
        '    type filter hook prerouting priority raw; policy accept;',
        '    ip daddr 192.168.60.1 udp dport 8472 notrack',
        '  }',
        '  chain vxlan-out {',
        '    type filter hook output priority raw; policy accept;',
        '    ip saddr 192.168.60.1 udp dport 8472 notrack',
        '  }',
        '}',
        'table ip6 netplane-overlay',
        'delete table ip6 netplane-overlay',
        'table ip6 netplane-overlay {',
        '  comment "netplane overlay: masquerade pod traffic leaving the cluster"',
        '  set cluster {',
        '    type ipv6_addr; flags interval;',
        '    elements = { fd00:244::/48 }',
        '  }',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        '    ip6 daddr fd00:244:0:1::/64 return',
        '    ip6 saddr @cluster ip6 daddr @cluster return',
        '    ip6 daddr @cluster masquerade fully-random',
        '    ip6 saddr != @cluster return',
        '    ip6 daddr ff00::/8 return',
        '    masquerade fully-random',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('over an IPv6 underlay, the VXLAN packets are untracked in the ip6 table, even with no IPv6 pod network', () => {
    const text = renderMasquerade(['10.244.0.0/16'], { vxlan: [{ local: 'fd00:60::1', port: 8472 }] });
    expect(text).not.toMatch(/ ip (s|d)addr fd00/);
    expect(text.slice(text.indexOf('table ip6 netplane-overlay {'))).toBe(
      [
        'table ip6 netplane-overlay {',
        '  comment "netplane overlay: masquerade pod traffic leaving the cluster"',
        '  chain vxlan-in {',
        '    type filter hook prerouting priority raw; policy accept;',
        '    ip6 daddr fd00:60::1 udp dport 8472 notrack',
        '  }',
        '  chain vxlan-out {',
        '    type filter hook output priority raw; policy accept;',
        '    ip6 saddr fd00:60::1 udp dport 8472 notrack',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('with the second (IPv6) device, each table keeps its own device\'s VXLAN packets untracked', () => {
    const text = renderMasquerade(['10.244.0.0/16', 'fd00:244::/48'], { vxlan: [{ local: '192.168.60.1', port: 8472 }, { local: 'fd00:60::1', port: 8472 }] });
    const v4 = text.slice(text.indexOf('table ip netplane-overlay {'), text.indexOf('table ip6 netplane-overlay'));
    const v6 = text.slice(text.indexOf('table ip6 netplane-overlay {'));
    expect(v4).toContain('    ip daddr 192.168.60.1 udp dport 8472 notrack\n');
    expect(v4).toContain('    ip saddr 192.168.60.1 udp dport 8472 notrack\n');
    expect(v4).not.toContain('fd00:60::1');
    expect(v6).toContain('  chain vxlan-in {\n    type filter hook prerouting priority raw; policy accept;\n    ip6 daddr fd00:60::1 udp dport 8472 notrack\n  }');
    expect(v6).toContain('  chain vxlan-out {\n    type filter hook output priority raw; policy accept;\n    ip6 saddr fd00:60::1 udp dport 8472 notrack\n  }');
    expect(v6).not.toContain('192.168.60.1');
  });

  it('without a podCIDR of its own in a family, only pod-to-pod traffic keeps its source there', () => {
    const text = renderMasquerade(['10.244.0.0/16', 'fd00:244::/48'], { podCIDRs: ['10.244.1.0/24'] });
    expect(text).toContain('    ip daddr 10.244.1.0/24 return\n    ip saddr @cluster ip daddr @cluster return\n');
    expect(text).toContain('policy accept;\n    ip6 saddr @cluster ip6 daddr @cluster return\n    ip6 daddr @cluster masquerade fully-random\n');
  });

  it('a family without CIDRs only has its table removed', () => {
    expect(renderMasquerade(['10.244.0.0/16'])).toMatch(/\ntable ip6 netplane-overlay\ndelete table ip6 netplane-overlay\n$/);
  });
});

describe('Masquerade', () => {
  it('runs nft for new rules and for a forced sync only', async () => {
    const r = new Recorder();
    const m = new Masquerade(r);
    expect(await m.sync(['10.244.0.0/16'])).toBe(true);
    expect(await m.sync(['10.244.0.0/16'])).toBe(false);
    expect(await m.sync(['10.244.0.0/16'], undefined, true)).toBe(true);
    expect(await m.sync(['10.244.0.0/16', '10.245.0.0/16'])).toBe(true);
    expect(r.calls.map((c) => c.split('\n')[0])).toEqual(Array(3).fill('nft -f -'));
  });

  it('after a failure, the next sync tries again', async () => {
    const r = new Recorder();
    const m = new Masquerade(r);
    r.fail = 'Error: Could not process rule: Operation not permitted';
    await expect(m.sync(['10.244.0.0/16'])).rejects.toBeInstanceOf(CommandError);
    r.fail = undefined;
    expect(await m.sync(['10.244.0.0/16'])).toBe(true);
  });

  it('cleanup deletes both tables, absent ones being fine, and reports other failures', async () => {
    const r = new Recorder();
    r.fail = 'Error: Could not process rule: No such file or directory';
    await new Masquerade(r).cleanup();
    expect(r.calls).toEqual(['nft delete table ip netplane-overlay', 'nft delete table ip6 netplane-overlay']);
    r.fail = 'Error: Operation not permitted';
    await expect(new Masquerade(r).cleanup()).rejects.toBeInstanceOf(CommandError);
  });
});

describe('Masquerade with the real nft', () => {
  let lab: NetnsLab;
  let ns: string;
  beforeAll(async () => {
    lab = NetnsLab.create();
    ns = await lab.ns('masq');
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('creates, replaces and removes the tables', async () => {
    const runner: CommandRunner = { run: (c, a, i) => lab.exec(ns, c, a, i) };
    const m = new Masquerade(runner);
    await m.sync(['10.244.0.0/16', 'fd00:244::/48'], { vxlan: [{ local: '192.168.60.1', port: 8472 }], podCIDRs: ['10.244.1.0/24', 'fd00:244:0:1::/64'] });
    await m.sync(['10.244.0.0/16', 'fd00:244::/48'], { vxlan: [{ local: '192.168.60.1', port: 8472 }], podCIDRs: ['10.244.1.0/24', 'fd00:244:0:1::/64'] }, true);
    expect((await lab.exec(ns, 'nft', ['list', 'chain', 'ip6', 'netplane-overlay', 'postrouting'])).stdout).toContain('ip6 daddr fd00:244:0:1::/64 return');
    expect((await lab.exec(ns, 'nft', ['list', 'chain', 'ip', 'netplane-overlay', 'vxlan-in'])).stdout).toContain('ip daddr 192.168.60.1 udp dport 8472 notrack');
    expect((await lab.exec(ns, 'nft', ['list', 'tables'])).stdout).toBe('table ip netplane-overlay\ntable ip6 netplane-overlay\n');
    await m.sync(['10.244.0.0/16'], { vxlan: [{ local: 'fd00:60::1', port: 8472 }] });
    expect((await lab.exec(ns, 'nft', ['list', 'chain', 'ip6', 'netplane-overlay', 'vxlan-out'])).stdout).toContain('ip6 saddr fd00:60::1 udp dport 8472 notrack');
    await m.sync(['10.244.0.0/16', '10.245.0.0/16']);
    const listed = (await lab.exec(ns, 'nft', ['list', 'ruleset'])).stdout;
    expect(listed).toContain('elements = { 10.244.0.0/16, 10.245.0.0/16 }');
    expect(listed).not.toContain('ip6');
    await m.cleanup();
    await m.cleanup();
    expect((await lab.exec(ns, 'nft', ['list', 'tables'])).stdout).toBe('');
  });
});

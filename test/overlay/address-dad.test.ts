// An IPv6 address that is still tentative or failed duplicate address detection is never the VXLAN source: the
// kernel neither sends from a tentative address nor takes packets to it, and a DAD-failed one belongs to another
// host on the link. node1's eth0 (IPv6 underlay) gets, after its own fd00:60::1, fd00:60::100 (DAD fails: the
// outside host has it) and fd00:60::51 (DAD takes a minute); the kernel lists the newest first, so `--iface eth0` used to
// take fd00:60::51. Now the device's source is fd00:60::1 and pod11 reaches pod21.
//
//   underlay: br0 ─┬─ node1 eth0 fd00:60::1/64 (+ ::100 dadfailed, ::51 tentative) ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 fd00:60::2/64                                     ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import type { OverlayTopology, TestNode } from './topology.ts';
import { twoNodes, vxlanDevice } from './two-nodes.ts';

describe('netplane overlay skips tentative and DAD-failed IPv6 addresses as its VXLAN source', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;
  const ip = (args: string[]) => t.lab.exec(node1.ns, 'ip', args);
  const flags = async () => {
    const [dev] = JSON.parse((await ip(['-j', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout) as Array<{ addr_info: Array<{ local: string; tentative?: boolean; dadfailed?: boolean }> }>;
    return Object.fromEntries(dev!.addr_info.filter((a) => !a.local.startsWith('fe80')).map((a) => [a.local, a.dadfailed ? 'dadfailed' : a.tentative ? 'tentative' : 'ok']));
  };

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodes('s23cdad', { underlay: 6 }));
    // The lab turns DAD off in its namespaces; on for node1's eth0, with a minute between probes.
    await t.lab.exec(node1.ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.accept_dad=1', 'net.ipv6.conf.eth0.dad_transmits=1']);
    await ip(['addr', 'add', 'fd00:60::100/64', 'dev', 'eth0']);
    await waitFor('fd00:60::100 to fail DAD', async () => (await flags())['fd00:60::100'] === 'dadfailed', 5000);
    await t.lab.exec(node1.ns, 'sysctl', ['-qw', 'net.ipv6.neigh.eth0.retrans_time_ms=60000']);
    await ip(['addr', 'add', 'fd00:60::51/64', 'dev', 'eth0']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('takes fd00:60::1 with --iface eth0, and pods reach each other', async () => {
    expect(await flags()).toEqual({ 'fd00:60::51': 'tentative', 'fd00:60::100': 'dadfailed', 'fd00:60::1': 'ok' });
    await t.startAgent(node1, ['--resync-period', '1h', '--iface', 'eth0']);
    const dev = await vxlanDevice(t, node1.ns);
    expect(dev.local6 ?? dev.local).toBe('fd00:60::1');
    const [r] = await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip);
    expect(r).toMatchObject({ ok: true, name: 'pod21' });
  });

  it('names the address it cannot use when --iface gives it', async () => {
    await t.stopAgent(node1);
    const refused = (l: Record<string, unknown>) => /--iface fd00:60::100: the address failed IPv6 duplicate address detection/.test(String(l.msg));
    const a = await t.startAgent(node1, ['--resync-period', '1h', '--iface', 'fd00:60::100', '--iface', 'fd00:60::51'], refused);
    expect(a.logs.find(refused)?.msg).toMatch(/--iface fd00:60::51: the address is still tentative/);
  });
});

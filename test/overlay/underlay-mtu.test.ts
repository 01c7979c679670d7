// The VXLAN devices' MTU follows the underlay interface's while the agent runs: Flannel sets the device's MTU to the
// interface's less 50 (less 70 over IPv6) once, at start; netplane keeps it so (the link watch sees the underlay's
// MTU change), for the IPv6 device too, and subnet.env's FLANNEL_MTU with it. A pod's packet that no longer fits
// gets "fragmentation needed" from its node, with the new MTU, instead of being lost on the underlay. Real packets
// (ping with DF set) on a dual-stack underlay with --ipv6-device auto; every namespace is removed at the end.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

describe('netplane overlay: the underlay interface\'s MTU changes while it runs', () => {
  let t: OverlayTopology;
  let dir: string;
  const mtus = async () => {
    const links = JSON.parse(await t.sh(t.nodes[0]!.ns, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string; mtu: number }>;
    return Object.fromEntries(links.filter((l) => /^(eth0|netplane)/.test(l.ifname)).map((l) => [l.ifname, l.mtu]));
  };
  const flannelMtu = async () => /^FLANNEL_MTU=(\d+)$/m.exec(await readFile(join(dir, 'subnet.env'), 'utf8').catch(() => ''))?.[1];
  /** Pings `to` from pod11 with DF set and `size` bytes of payload; the ping's output, failed or not. */
  const ping = async (to: string, size: number) => {
    const pod = t.nodes[0]!.pods[0]!;
    // Through sh: a failed ping's report is on its stdout, which a failed command's error does not keep.
    return (await t.lab.exec(pod.ns, 'sh', ['-c', `ping -c 1 -W 1 -M do -s ${size} ${to} 2>&1; true`])).stdout;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-s22e-mtu-'));
    t = await buildOverlayTopology(2, 1, true, 'dual', 's22emtu');
    await t.writeNodes();
    await t.startAgent(t.nodes[0]!, ['--ipv6-device', 'auto', '--subnet-file', join(dir, 'subnet.env'), '--resync-period', '1h']);
    await t.startAgent(t.nodes[1]!, ['--ipv6-device', 'auto']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts at the interface\'s less 50 and less 70, and a pod packet of the full 1450 crosses', async () => {
    expect(await mtus()).toEqual({ eth0: 1500, 'netplane.1': 1450, 'netplane-v6.1': 1430 });
    expect(await flannelMtu()).toBe('1450');
    expect(await ping(t.nodes[1]!.pods[0]!.ip, 1450 - 28)).toMatch(/1 received/);
  });

  it('follows the interface down to 1400 at once, and a packet too large for it gets "fragmentation needed" with the new MTU', async () => {
    await t.lab.exec(t.nodes[0]!.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
    await waitFor('the devices to follow', async () => isDeepStrictEqual(await mtus(), { eth0: 1400, 'netplane.1': 1350, 'netplane-v6.1': 1330 }), 3000);
    await waitFor('subnet.env to follow', async () => (await flannelMtu()) === '1350', 3000);
    expect(await ping(t.nodes[1]!.pods[0]!.ip, 1350 - 28)).toMatch(/1 received/);
    expect(await ping(t.nodes[1]!.pods[0]!.ip, 1450 - 28)).toMatch(/Frag needed and DF set \(mtu = 1350\)|message too long, mtu=1350/i);
    expect(await ping(t.nodes[1]!.pods[0]!.ip6!, 1330 - 48)).toMatch(/1 received/);
  });

  it('and back up to 1500', async () => {
    await t.lab.exec(t.nodes[0]!.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1500']);
    await waitFor('the devices to follow', async () => isDeepStrictEqual(await mtus(), { eth0: 1500, 'netplane.1': 1450, 'netplane-v6.1': 1430 }), 3000);
    await waitFor('subnet.env to follow', async () => (await flannelMtu()) === '1450', 3000);
    // The pod remembers the smaller path MTU it was told of (for 10 minutes): it forgets it here.
    await t.lab.exec(t.nodes[0]!.pods[0]!.ns, 'ip', ['route', 'flush', 'cache']);
    expect(await ping(t.nodes[1]!.pods[0]!.ip, 1450 - 28)).toMatch(/1 received/);
  });
});

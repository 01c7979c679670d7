// netplane overlay --direct-routing follows this host's own addresses: an address added to the underlay interface
// on a remote node's network makes that node directly reachable at once (a route of protocol 110 instead of the
// VXLAN entries), and its removal brings VXLAN back, each within about a second although the resync period is an
// hour. The CLI runs in the node namespaces of a small network:
//
//   node1 eth0 192.168.60.1/24 ──veth── node2 eth0 192.168.61.2/24   (each reaches the other's network on the link)
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onLogLines, type LogRecord } from '../../lab/log-lines.ts';
import { NetnsLab } from '../../lab/netns.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { waitFor } from '../helpers/wait.ts';
import { overlayEntries } from './entries.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

const nodes = [
  { name: 'node1', ip: '192.168.60.1', podCIDR: '10.244.1.0/24' },
  { name: 'node2', ip: '192.168.61.2', podCIDR: '10.244.2.0/24' },
] as const;

/** node1's entries for node2: a direct route (protocol 110), or the VXLAN device's neighbour, FDB entry and route. */
const direct = ['direct 10.244.2.0/24 via 192.168.61.2 dev eth0'];
const vxlan = [`fdb ${derivedMac('192.168.61.2')} 192.168.61.2`, `neigh 10.244.2.0 ${derivedMac('192.168.61.2')}`, 'route 10.244.2.0/24 via 10.244.2.0'].sort();

describe("netplane overlay --direct-routing follows this host's address changes (resync period 1 h)", () => {
  let lab: NetnsLab;
  let dir: string;
  let node1: string;
  const logs: LogRecord[] = [];

  /** node1's direct routes and VXLAN entries as sorted lines. */
  const state = () => overlayEntries(lab, node1);

  beforeAll(async () => {
    lab = NetnsLab.create({ id: `gap${randomBytes(3).toString('hex')}` });
    dir = await mkdtemp(join(tmpdir(), 'netplane-direct-address-'));
    node1 = await lab.ns('node1');
    const node2 = await lab.ns('node2');
    await lab.exec(node1, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await lab.veth({ ns: node1, ifname: 'eth0', addrs: ['192.168.60.1/24'] }, { ns: node2, ifname: 'eth0', addrs: ['192.168.61.2/24'] });
    // Each node reaches the other's network on the link, as through a router: not on a network of its own address.
    await lab.exec(node1, 'ip', ['route', 'add', '192.168.61.0/24', 'dev', 'eth0', 'metric', '100']);
    await lab.exec(node2, 'ip', ['route', 'add', '192.168.60.0/24', 'dev', 'eth0', 'metric', '100']);
    const docs = nodes.map((n) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name }, spec: { podCIDR: n.podCIDR }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } }));
    await writeFile(join(dir, 'nodes.yaml'), docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    const proc = lab.spawn(node1, process.execPath, [
      bin, 'overlay', '--manifests', dir, '--node-name', 'node1', '--cluster-cidr', '10.244.0.0/16', '--admin', '127.0.0.1:0', '--direct-routing', '--resync-period', '1h', '--log-level', 'debug',
    ]);
    onLogLines(proc.stdout!, (r) => logs.push(r));
    proc.stderr!.on('data', (d) => logs.push({ msg: String(d), stderr: true }));
    await waitFor('the first sync', () => logs.some((l) => l.msg === 'overlay synced') || proc.exitCode !== null, 15_000);
    expect(proc.exitCode, JSON.stringify(logs.slice(-5))).toBeNull();
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reaches node2 (another network) over VXLAN at start', async () => {
    expect(await state()).toEqual(vxlan);
  });

  const steps: Array<[what: string, ip: string[], want: string[]]> = [
    ['an address on node2\'s network added to eth0 makes node2 direct', ['addr', 'add', '192.168.61.1/24', 'dev', 'eth0'], direct],
    ['an address on another network changes nothing', ['addr', 'add', '192.168.99.1/24', 'dev', 'eth0'], direct],
    ['that address removed again brings VXLAN back', ['addr', 'del', '192.168.61.1/24', 'dev', 'eth0'], vxlan],
    ['added once more, direct again', ['addr', 'add', '192.168.61.1/24', 'dev', 'eth0'], direct],
  ];
  for (const [what, ip, want] of steps) {
    it(`${what}, within about a second`, async () => {
      const t0 = performance.now();
      await lab.exec(node1, 'ip', ip);
      await waitFor(`node1's entries for node2 to be ${JSON.stringify(want)}`, async () => JSON.stringify(await state()) === JSON.stringify(want), 1500, 10);
      expect(performance.now() - t0).toBeLessThan(1500);
      // Still so a moment later: nothing flaps back.
      await new Promise((r) => setTimeout(r, 300));
      expect(await state()).toEqual(want);
    });
  }

  it('logged no failure', () => {
    expect(logs.filter((l) => Number(l.level) >= 40 || l.stderr)).toEqual([]);
  });
});

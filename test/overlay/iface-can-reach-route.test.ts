// --iface-can-reach follows the route to its address while the agent runs: a route or rule change alone — no
// address or interface change, and the resync an hour away — chooses the underlay again within about the host
// debounce, and the VXLAN device moves to the new interface with its entries. node1 (the set-up of
// iface-can-reach.test.ts) starts with its default route via eth0, so the route to 203.0.113.9 leaves from eth0 at
// 192.168.60.1; the default route is then moved to mgmt0 (the device follows to 10.99.0.1), and a more specific
// route to 203.0.113.0/24 via eth0 is added (the device comes back, and pod11 reaches pod21 again over it). Then
// what is not a main-table unicast route: a blackhole route holding the address makes the node wait, saying why
// (what is programmed stays), and its deletion ends the wait; a rule sending the address to table 100, whose route
// leaves through eth0, moves the device to eth0, and that route's deletion and return move it off and back.
//
//   underlay: br0 ─┬─ node1 eth0 192.168.60.1/24, mgmt0 10.99.0.1/24 ── cni0 ── pod11 10.244.1.11
//                  └─ node2 eth0 192.168.60.2/24                     ── cni0 ── pod21 10.244.2.11
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import type { Agent, OverlayTopology, TestNode } from './topology.ts';
import { twoNodesWithMgmt, vxlanDevice } from './two-nodes.ts';

/** How long the device may take to follow a route change: the 100 ms debounce and one sync, with room for a loaded machine. */
const boundMs = 3000;

describe('netplane overlay --iface-can-reach follows a route change', () => {
  let t: OverlayTopology;
  let node1: TestNode;
  let node2: TestNode;
  let agent: Agent;

  beforeAll(async () => {
    ({ t, node1, node2 } = await twoNodesWithMgmt('s25creach'));
    await t.lab.exec(node1.ns, 'ip', ['route', 'add', 'default', 'via', '192.168.60.254', 'dev', 'eth0']);
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  const ip = (...args: string[]) => t.lab.exec(node1.ns, 'ip', args);
  const on = (local: string, link: string) => async () => {
    const dev = await vxlanDevice(t, node1.ns).catch(() => undefined);
    return dev?.local === local && dev.link === link;
  };
  /**
   * Waits until the agent has logged nothing for a second: moving the device is followed by syncs of its own (the
   * new device's interface and address announcements), which read the host again; a change made before they are
   * over could be seen by them, not by the watch under test.
   */
  const quiet = async () => {
    let count = -1;
    await waitFor('the agent to be quiet for a second', () => {
      const same = agent.logs.length === count;
      count = agent.logs.length;
      return same;
    }, 15_000, 1000);
  };
  const reaches = async () => expect(await t.probe(node1.pods[0]!.ns, 'tcp', node2.pods[0]!.ip)).toEqual([expect.objectContaining({ ok: true, name: 'pod21' })]);

  it('moves the device to the interface of the new route, and back', async () => {
    agent = await t.startAgent(node1, ['--resync-period', '1h', '--iface-can-reach', '203.0.113.9']);
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '192.168.60.1', link: 'eth0' });
    await reaches();

    await quiet();
    await ip('route', 'replace', 'default', 'via', '10.99.0.254', 'dev', 'mgmt0');
    await waitFor('the device to move to mgmt0 after the default route did', on('10.99.0.1', 'mgmt0'), boundMs, 20);

    await quiet();
    await ip('route', 'add', '203.0.113.0/24', 'via', '192.168.60.254', 'dev', 'eth0');
    await waitFor('the device to move back to eth0 after a more specific route through it', on('192.168.60.1', 'eth0'), boundMs, 20);
    await reaches();
  }, 30_000);

  it('waits, saying why, while a blackhole route holds the address, and stops waiting when it goes', async () => {
    // From the first test: the default route via mgmt0, 203.0.113.0/24 via eth0, the device on eth0.
    await quiet();
    const from = agent.logs.length;
    const logged = (re: RegExp) => () => agent.logs.slice(from).some((l) => re.test(String(l.msg)));
    const noRoute = /^node node1 --iface-can-reach 203\.0\.113\.9: this host has no route to it$/;
    await ip('route', 'add', 'blackhole', '203.0.113.0/25');
    try {
      await waitFor('the agent to say it has no route to 203.0.113.9', logged(noRoute), boundMs, 20);
      // Waiting keeps what is programmed: the device where it was, and the pods reaching each other over it.
      expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '192.168.60.1', link: 'eth0' });
      await reaches();
    } finally {
      // Also after a failure, so that the next test starts from the routes it expects.
      await ip('route', 'del', 'blackhole', '203.0.113.0/25');
    }
    await waitFor('the agent to say the route is back', logged(/^node node1 has no problem any more \(it had: --iface-can-reach 203\.0\.113\.9: this host has no route to it\)$/), boundMs, 20);
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '192.168.60.1', link: 'eth0' });
  }, 30_000);

  it('follows a rule to table 100 and the routes of that table', async () => {
    await ip('route', 'del', '203.0.113.0/24', 'via', '192.168.60.254', 'dev', 'eth0');
    await waitFor('the device to move to mgmt0 with the default route', on('10.99.0.1', 'mgmt0'), boundMs, 20);
    await quiet();

    // A route in table 100 alone changes nothing: no rule looks there yet.
    await ip('route', 'add', '203.0.113.0/24', 'via', '192.168.60.254', 'dev', 'eth0', 'table', '100');
    await quiet();
    expect(await vxlanDevice(t, node1.ns)).toMatchObject({ local: '10.99.0.1', link: 'mgmt0' });

    await ip('rule', 'add', 'to', '203.0.113.0/24', 'lookup', '100', 'priority', '100');
    await waitFor('the device to move to eth0 after the rule to table 100', on('192.168.60.1', 'eth0'), boundMs, 20);
    await reaches();

    await quiet();
    await ip('route', 'del', '203.0.113.0/24', 'table', '100');
    await waitFor("the device to move back to mgmt0 after table 100's route went", on('10.99.0.1', 'mgmt0'), boundMs, 20);
    await quiet();
    await ip('route', 'add', '203.0.113.0/24', 'via', '192.168.60.254', 'dev', 'eth0', 'table', '100');
    await waitFor("the device to move to eth0 again with table 100's route", on('192.168.60.1', 'eth0'), boundMs, 20);

    await quiet();
    await ip('rule', 'del', 'priority', '100');
    await waitFor('the device to move back to mgmt0 after the rule went', on('10.99.0.1', 'mgmt0'), boundMs, 20);
  }, 60_000);
});
